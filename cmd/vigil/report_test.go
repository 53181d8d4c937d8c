package main_test

// End-to-end tests of reports, history, diff and the baseline gate,
// driving the real binary with the scripted external plugins and, where
// root and the kernel audit subsystem are there (CI), the local SIEM.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/report"
	"github.com/vigilsec/vigil/internal/reportcheck"
)

// repVigil runs vigil with extra environment variables.
func repVigil(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(vigilBin, args...)
	cmd.Dir = "../.."
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "XDG_STATE_HOME="), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func repReadRun(t *testing.T, path string) *measure.Run {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &run
}

// repScriptedConfig writes the scripted SIEM's config whose only rule
// (detect e2e-detected) is chosen by environment variables, so that the
// SIEM's behaviour changes between runs while the redacted config, and so
// its hash, stays the same: like a rule removed in the SIEM itself.
func repScriptedConfig(t *testing.T) string {
	t.Helper()
	cfg := `[run]
concurrency = 2
poll_interval = "100ms"
timeout = "5s"

[[siem]]
name = "scripted"
plugin = "testsiem"
[siem.params]
hostname = "testhost"
[[siem.params.rule]]
test_id = "${VIGIL_E2E_RULE_TEST}"
delay = "${VIGIL_E2E_RULE_DELAY}"
marker = true
name = "E2E rule"

[[target]]
name = "lab"
plugin = "testinjector"
`
	p := filepath.Join(t.TempDir(), "vigil.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func repRuleEnv(test, delay string) []string {
	return []string{"VIGIL_E2E_RULE_TEST=" + test, "VIGIL_E2E_RULE_DELAY=" + delay}
}

// repCheckReports checks every format of a run's --out directory against
// its specification and against results.json.
func repCheckReports(t *testing.T, out string) *measure.Run {
	t.Helper()
	run := repReadRun(t, filepath.Join(out, "results.json"))
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Navigator: the combined layer and one per SIEM, each a valid 4.5 layer.
	layers := []string{"navigator.json"}
	for _, s := range report.SIEMs(run) {
		layers = append(layers, report.SIEMLayerFileName(s))
	}
	for _, name := range layers {
		if err := reportcheck.ValidateLayer(read(name)); err != nil {
			t.Errorf("%s is not a valid Navigator 4.5 layer:\n%v", name, err)
		}
	}
	// JUnit against the Jenkins schema, with one testcase per result.
	xsd, err := os.ReadFile("../../core/report/testdata/junit/jenkins-junit.xsd")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := reportcheck.ParseSchema(xsd)
	if err != nil {
		t.Fatal(err)
	}
	junit := read("junit.xml")
	if err := schema.Validate(junit); err != nil {
		t.Errorf("junit.xml does not conform to the JUnit schema:\n%v", err)
	}
	// One testcase per result, and the host-integrity suite's: one case
	// when the host was left unchanged, one per change otherwise.
	want := len(run.Results)
	if run.IntegrityCheck != nil {
		want += max(1, len(run.HostChanged))
	}
	if n := bytes.Count(junit, []byte("<testcase ")); n != want {
		t.Errorf("junit.xml has %d testcases, want %d (results.json has %d results, integrity check %v)", n, want, len(run.Results), run.IntegrityCheck != nil)
	}
	// CSV: a header and one row per result.
	rows, err := csv.NewReader(bytes.NewReader(read("results.csv"))).ReadAll()
	if err != nil || len(rows) != len(run.Results)+1 {
		t.Errorf("results.csv: %d rows, %v; want %d", len(rows), err, len(run.Results)+1)
	}
	// Markdown: the headline matches the results.
	sum := measure.Summarise(run.Results)
	head := fmt.Sprintf("## vigil: %d of %d detected", sum.Detected, sum.Detected+sum.Missed)
	if md := read("summary.md"); !bytes.HasPrefix(md, []byte(head)) {
		t.Errorf("summary.md starts %q, want %q", md[:min(len(md), 60)], head)
	}
	// HTML: loads in Chromium without a console message, matrix complete.
	html := read("report.html")
	if n := bytes.Count(html, []byte(`<a class="cell `)); n != report.MatrixCells(run) {
		t.Errorf("report.html has %d matrix cells, want %d", n, report.MatrixCells(run))
	}
	if _, err := reportcheck.Chromium(); err != nil {
		if os.Getenv("VIGIL_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("VIGIL_REQUIRE_CHROMIUM is set: %v", err)
		}
		t.Logf("report.html not opened in a browser: %v", err)
		return run
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := reportcheck.Render(ctx, filepath.Join(out, "report.html"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Console) > 0 {
		t.Errorf("report.html logged to the console:\n%s", strings.Join(p.Console, "\n"))
	}
	if !strings.Contains(p.DOM, `data-ready="true"`) || strings.Count(p.DOM, `<a class="cell `) != report.MatrixCells(run) {
		t.Errorf("report.html in Chromium: script not run or %d cells, want %d", strings.Count(p.DOM, `<a class="cell `), report.MatrixCells(run))
	}
	return run
}

func TestRunFormatsAndReport(t *testing.T) {
	out := t.TempDir()
	db := filepath.Join(t.TempDir(), "history.db")
	stdout, stderr, code := repVigil(t, nil, "run", "--config", "testdata/e2e/configs/scripted.toml",
		"--catalog", "testdata/e2e/catalog", "--id", "e2e-detected", "--id", "e2e-missed",
		"--plugin-dir", pluginDir, "--allow-unpinned", "--out", out, "--format", "all", "--history", db)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one test missed)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"navigator.json", "navigator-scripted.json", "junit.xml", "report.html", "summary.md", "results.csv"} {
		if !strings.Contains(stdout, "report: "+filepath.Join(out, f)) {
			t.Errorf("stdout does not name %s:\n%s", f, stdout)
		}
	}
	run := repCheckReports(t, out)
	// The miss is diagnosed (the scripted SIEM holds no event of the
	// injection), and every output says so.
	const diag = "no_telemetry"
	const why = `no event carrying the marker reached siem "scripted" by the deadline`
	if !strings.Contains(stdout, "WHY MISSED (1)\ne2e-missed on lab in scripted: "+diag) || !strings.Contains(stdout, why) {
		t.Errorf("the console does not say why e2e-missed was missed:\n%s", stdout)
	}
	for _, f := range []string{"junit.xml", "report.html", "summary.md", "results.csv"} {
		b, _ := os.ReadFile(filepath.Join(out, f))
		if !strings.Contains(string(b), diag) || !strings.Contains(strings.ReplaceAll(string(b), "&#34;", `"`), strings.ReplaceAll(why, `"`, "")[:20]) {
			t.Errorf("%s does not carry the diagnosis %s", f, diag)
		}
	}
	for _, r := range run.Results {
		if r.TestID == "e2e-missed" && (r.Diagnosis == nil || r.Diagnosis.Class != diag) {
			t.Errorf("results.json: e2e-missed diagnosis %+v", r.Diagnosis)
		}
	}
	if !strings.Contains(stdout, "history: run "+run.RunID+" stored in "+db) {
		t.Errorf("stdout does not say where the run is stored:\n%s", stdout)
	}
	for _, n := range run.Notes {
		if strings.HasPrefix(n, "incomplete") {
			t.Errorf("the final results.json still says %q", n)
		}
	}

	// vigil report re-derives the same files from results.json and from
	// the history database.
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	got, stderr, code := repVigil(t, nil, "report", filepath.Join(out, "results.json"), "--format", "markdown", "--out", "-")
	if code != 0 || got != string(md) {
		t.Errorf("report --out - (exit %d, %s):\n%s\nwant:\n%s", code, stderr, got, md)
	}
	csvRun, _ := os.ReadFile(filepath.Join(out, "results.csv"))
	dir := t.TempDir()
	stdout, stderr, code = repVigil(t, nil, "report", run.RunID[:18], "--history", db, "--format", "csv,junit", "--out", dir)
	if code != 0 || strings.TrimSpace(stdout) != filepath.Join(dir, "junit.xml")+"\n"+filepath.Join(dir, "results.csv") {
		t.Fatalf("report from history: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	csvHist, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	if !bytes.Equal(csvRun, csvHist) {
		t.Errorf("results.csv from history differs from the run's:\n%s\nvs\n%s", csvHist, csvRun)
	}
}

// TestHistoryDiffAndBaseline: runs of one config in which the SIEM's rule
// is removed, restored, and made slower; diff and --baseline report
// exactly what changed.
func TestHistoryDiffAndBaseline(t *testing.T) {
	cfg := repScriptedConfig(t)
	env := []string{"VIGIL_HISTORY=" + filepath.Join(t.TempDir(), "h", "history.db")}
	run := func(ruleEnv []string, extra ...string) (string, string, int, *measure.Run) {
		t.Helper()
		out := t.TempDir()
		args := append([]string{"run", "--config", cfg, "--catalog", "testdata/e2e/catalog", "--id", "e2e-detected", "--id", "e2e-missed",
			"--plugin-dir", pluginDir, "--allow-unpinned", "--out", out, "-q"}, extra...)
		stdout, stderr, code := repVigil(t, append(env, ruleEnv...), args...)
		return stdout, stderr, code, repReadRun(t, filepath.Join(out, "results.json"))
	}
	regressionLines := func(stdout string) []string {
		i := strings.Index(stdout, "REGRESSIONS against baseline")
		if i < 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(stdout[i:]), "\n")
	}

	// 1. The first run: nothing to compare with yet, so the gate passes.
	stdout, stderr, code, first := run(repRuleEnv("e2e-detected", "200ms"), "--baseline", "last")
	if code != 0 || !strings.Contains(stderr, "no complete run of config") {
		t.Fatalf("first run: exit %d, want 0 (no baseline yet)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// 2. The rule is removed: e2e-detected is now missed; e2e-missed was
	// missed before and is not a regression.
	stdout, stderr, code, second := run(repRuleEnv("no-such-test", "200ms"), "--baseline", "last")
	lines := regressionLines(stdout)
	if code != 1 || len(lines) != 3 || lines[0] != "REGRESSIONS against baseline "+first.RunID+" (1):" ||
		!regexp.MustCompile(`^e2e-detected\s+T1059\.004\s+lab\s+scripted\s+detected 200ms\s+missed\s+no longer detected$`).MatchString(lines[2]) {
		t.Fatalf("rule removed: exit %d, want 1 and exactly one regression\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// vigil history lists both, same config; vigil diff (no argument)
	// compares them.
	hist, stderr, code := repVigil(t, env, "history")
	if code != 0 || !strings.Contains(hist, second.RunID) || !strings.Contains(hist, first.RunID) ||
		strings.Index(hist, second.RunID) > strings.Index(hist, first.RunID) {
		t.Fatalf("history: exit %d\n%s\n%s", code, hist, stderr)
	}
	js, _, _ := repVigil(t, env, "history", "--output", "json")
	var infos []map[string]any
	if err := json.Unmarshal([]byte(js), &infos); err != nil || len(infos) != 2 || infos[0]["config_hash"] != infos[1]["config_hash"] ||
		infos[0]["state"] != "complete" || infos[0]["detected"] != float64(0) || infos[1]["detected"] != float64(1) {
		t.Fatalf("history --output json: %v\n%s", err, js)
	}
	diff, stderr, code := repVigil(t, env, "diff")
	if code != 0 || !strings.HasPrefix(diff, first.RunID+" -> "+second.RunID+": 1 newly missed, 0 newly detected, 0 slower") ||
		!regexp.MustCompile(`\nnewly missed \(1\):\n.*\ne2e-detected\s+T1059\.004\s+lab\s+scripted\s+detected 200ms\s+missed`).MatchString(diff) {
		t.Fatalf("diff: exit %d\n%s\n%s", code, diff, stderr)
	}

	// 3. The rule is back: newly detected, and the gate passes although
	// e2e-missed is still missed (it was in the baseline too).
	stdout, stderr, code, third := run(repRuleEnv("e2e-detected", "200ms"), "--baseline", "last")
	if code != 0 || !strings.Contains(stdout, "no regression against baseline "+second.RunID) {
		t.Fatalf("rule restored: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	diff, _, _ = repVigil(t, env, "diff", second.RunID)
	if !strings.HasPrefix(diff, second.RunID+" -> "+third.RunID+": 0 newly missed, 1 newly detected") {
		t.Fatalf("diff RUN_A:\n%s", diff)
	}

	// 4. The rule fires 1.5s after the injection instead of 200ms: a
	// latency regression beyond x2, and none with a looser ratio.
	stdout, stderr, code, _ = run(repRuleEnv("e2e-detected", "1500ms"), "--baseline", third.RunID, "--max-latency-regression", "2")
	lines = regressionLines(stdout)
	if code != 1 || len(lines) != 3 ||
		!regexp.MustCompile(`^e2e-detected\s+T1059\.004\s+lab\s+scripted\s+detected 200ms\s+detected 1\.5s\s+\+1\.3s \(x7\.5\)$`).MatchString(lines[2]) {
		t.Fatalf("slower: exit %d, want 1 and one latency regression\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, _, code, _ = run(repRuleEnv("e2e-detected", "1500ms"), "--baseline", third.RunID, "--max-latency-regression", "10")
	if code != 0 || !strings.Contains(stdout, "no regression against baseline "+third.RunID) {
		t.Fatalf("x10 allowed: exit %d\n%s", code, stdout)
	}

	// A run can be compared with two explicit results.json or IDs.
	diff, _, code = repVigil(t, env, "diff", first.RunID, third.RunID)
	if code != 0 || !strings.Contains(diff, ": 0 newly missed, 0 newly detected, 0 slower, 0 faster, 0 other changes, 0 added, 0 removed, 2 unchanged") {
		t.Fatalf("diff A B: exit %d\n%s", code, diff)
	}
}

// TestRunThatDies: a run killed halfway (SIGKILL: no cleanup, no final
// write) leaves every result measured so far in results.json and in the
// history database; an interrupted run (SIGINT) is stored as interrupted.
func TestRunThatDies(t *testing.T) {
	catalog := t.TempDir()
	slow := `id = "e2e-slow"
technique = "T1059.004"
name = "Scripted test that waits a minute for a signal"
description = "End-to-end fixture: nothing answers it, so it is in flight until its deadline."
platforms = ["linux"]
safety = "safe"

[inject]
plugin = "testinjector"

[[expect]]
within = "60s"
`
	if err := os.MkdirAll(filepath.Join(catalog, "linux", "execution"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(catalog, "linux", "execution", "e2e-slow.toml"), []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		sig       syscall.Signal
		wantState string
		wantCode  int
	}{
		{"killed", syscall.SIGKILL, "running", -1},
		{"interrupted", syscall.SIGINT, "interrupted", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			db := filepath.Join(t.TempDir(), "history.db")
			cmd := exec.Command(vigilBin, "run", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog",
				"--catalog", catalog, "--id", "e2e-detected", "--id", "e2e-slow", "--concurrency", "2",
				"--plugin-dir", pluginDir, "--allow-unpinned", "--out", out, "--history", db)
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			// Wait until e2e-detected is measured (results.json is
			// rewritten after each test); e2e-slow is then in flight.
			results := filepath.Join(out, "results.json")
			deadline := time.Now().Add(60 * time.Second)
			for {
				if b, err := os.ReadFile(results); err == nil && bytes.Contains(b, []byte(`"status": "detected"`)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("results.json never showed the first result\nstderr:\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			target := cmd.Process.Pid
			if tc.sig == syscall.SIGKILL {
				target = -target // the whole group: vigil and its plugins, as a crash would leave it
			}
			if err := syscall.Kill(target, tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			code := -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", code, tc.wantCode, stderr.String())
			}
			run := repReadRun(t, results)
			byID := map[string]measure.Status{}
			for _, r := range run.Results {
				byID[r.TestID] = r.Status
			}
			if byID["e2e-detected"] != measure.Detected {
				t.Fatalf("results.json lost the measured result: %+v", run.Results)
			}
			hist, _, _ := repVigil(t, nil, "history", "--history", db, "--output", "json")
			var infos []map[string]any
			if err := json.Unmarshal([]byte(hist), &infos); err != nil || len(infos) != 1 {
				t.Fatalf("history: %v\n%s", err, hist)
			}
			if infos[0]["run_id"] != run.RunID || infos[0]["state"] != tc.wantState || infos[0]["detected"] != float64(1) {
				t.Fatalf("history %v, want run %s %s with 1 detected", infos[0], run.RunID, tc.wantState)
			}
			if tc.sig == syscall.SIGKILL {
				incomplete := false
				for _, n := range run.Notes {
					incomplete = incomplete || strings.HasPrefix(n, "incomplete: 1 of 2 test(s) measured so far")
				}
				if len(run.Results) != 1 || !incomplete {
					t.Fatalf("results.json of a dead run: %d results, notes %q", len(run.Results), run.Notes)
				}
				// The stored part is a run like any other for reports.
				stdout, stderr, code := repVigil(t, nil, "report", run.RunID, "--history", db, "--format", "csv", "--out", "-")
				if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, "e2e-detected") {
					t.Fatalf("report of a dead run: exit %d\n%s\n%s", code, stdout, stderr)
				}
			} else if byID["e2e-slow"] != measure.Error && byID["e2e-slow"] != measure.Skipped {
				t.Fatalf("interrupted test: %s", byID["e2e-slow"])
			}
		})
	}
}

func TestReportCommandErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nothing-here.db")
	run := []string{"run", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog", "--id", "e2e-detected",
		"--plugin-dir", pluginDir, "--allow-unpinned", "--history", filepath.Join(t.TempDir(), "run.db")}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown format", append(run, "--out", t.TempDir(), "--format", "pdf"), 2, `unknown report format "pdf"`},
		{"format without out", append(run, "--format", "junit"), 2, "--format needs --out DIR"},
		{"ratio below 1", append(run, "--baseline", "last", "--max-latency-regression", "0.5"), 2, "a ratio below 1"},
		{"unknown baseline", append(run, "--baseline", "20200101T000000Z-abcdef"), 2, `--baseline: no such run in history: "20200101T000000Z-abcdef"`},
		{"history without a database", []string{"history", "--history", db}, 2, "no run history at " + db},
		{"diff without a database", []string{"diff", "--history", db}, 2, "no run history at " + db},
		{"report of a missing file", []string{"report", "nope/results.json"}, 2, "read results"},
		{"report to stdout of two formats", []string{"report", "x.json", "--format", "csv,junit", "--out", "-"}, 2, "--out - writes one format"},
		{"report of a non-results file", []string{"report", "go.mod"}, 2, "read results go.mod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := repVigil(t, nil, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d stderr %q, want exit %d and %q", code, stderr, tc.wantCode, tc.wantErr)
			}
		})
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading commands created %s", db)
	}
}

// TestCompareTwoSIEMs: with two SIEMs configured, each test is injected
// once and checked in both; compare shows what only one caught and what
// none caught, and the HTML report has the same view.
func TestCompareTwoSIEMs(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	if err := os.WriteFile(cfg, []byte(`[run]
poll_interval = "100ms"
timeout = "5s"

[[siem]]
name = "alpha"
plugin = "testsiem"
[[siem.params.rule]]
test_id = "e2e-detected"
delay = "300ms"
marker = true
name = "Alpha rule"

[[siem]]
name = "beta"
plugin = "testsiem"
[siem.params]
hostname = "testhost"

[[target]]
name = "lab"
plugin = "testinjector"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	log := filepath.Join(t.TempDir(), "inject.log")
	db := filepath.Join(t.TempDir(), "history.db")
	stdout, stderr, code := repVigil(t, nil, "run", "--config", cfg, "--catalog", "testdata/e2e/catalog", "--id", "e2e-detected", "--id", "e2e-missed",
		"--plugin-dir", pluginDir, "--allow-unpinned", "--arg", "log="+log, "--out", out, "--format", "html", "--history", db, "-q")
	if code != 1 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	logged, _ := os.ReadFile(log)
	if n := strings.Count(string(logged), "inject vigil-"); n != 1 {
		t.Fatalf("e2e-detected injected %d times for two SIEMs, want once:\n%s", n, logged)
	}
	cmp, stderr, code := repVigil(t, nil, "compare", "--history", db)
	if code != 0 {
		t.Fatalf("compare: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		`\nalpha\s+2\s+1\s+1\s+0\s+50%\s+300ms\s+300ms\n`,
		`\nbeta\s+2\s+0\s+2\s+0\s+0%\s+-\s+-\n`,
		`\nexecution\s+50% \(1/2\)\s+0% \(0/2\)\n`,
		`caught by only one SIEM \(1\):\n.*\ne2e-detected\s+lab\s+T1059\.004\s+alpha\s+300ms\s+beta\n`,
		`caught by no SIEM \(1\):\n.*\ne2e-missed\s+lab\s+T1059\.004\s+alpha, beta\s+-\n`,
	} {
		if !regexp.MustCompile(want).MatchString(cmp) {
			t.Errorf("compare lacks %s:\n%s", want, cmp)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{`id="compare"`, "Caught by only one SIEM (1)", "Caught by no SIEM (1)", `<option value="beta">beta</option>`} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}
