package main_test

// End-to-end tests of `vigil coverage`: a results file against the local
// SIEM's claims (vigil's own and SigmaHQ's Sigma rules, plus --sigma-dir),
// a scripted SIEM without the rules call and one with scripted claims.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/internal/reportcheck"
)

func coverageArgs(extra ...string) []string {
	return append([]string{"coverage", "--config", "testdata/e2e/coverage/vigil.toml", "--results", "testdata/e2e/coverage/results.json",
		"--plugin-dir", pluginDir, "--allow-unpinned"}, extra...)
}

func TestCoverageText(t *testing.T) {
	stdout, stderr, code := vigil(t, coverageArgs()...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a claimed technique was tested and never detected)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"claimed versus proven coverage of run 20261123T100000Z-cov3r4: ATT&CK v18.1, Linux and Containers techniques",
		"\nSIEM local: ",
		"  TACTIC                CLAIMED+PROVEN  NEVER PROVEN  PROVEN UNCLAIMED  CLAIMED UNTESTED  MISSED UNCLAIMED  NO TEST\n  Initial Access  ",
		"  claimed and proven (1):\n    T1053.003 Scheduled Task/Job: Cron - detected: linux-cron-decoy-job; rules: ",
		`"Crontab Modified With The Crontab Utility" (02a2b0b9-1866-405d-a265-fbe7179eede9) (fired)`,
		"  claimed, never proven (1):\n    T1003.008 OS Credential Dumping: /etc/passwd and /etc/shadow - missed: linux-shadow-read; rules: ",
		`"Shadow Password File Read With A Text Or Copy Tool" (fd72f59d-0790-41f7-aaf7-cefad7c3963c)`,
		"  proven, no rule claims it (1):\n    T1005 Data from Local System - detected: e2e-collect-local\n",
		"  missed, no rule claims it (1):\n    T1021.004 Remote Services: SSH - missed: e2e-ssh-lateral\n",
		"SIEM scripted: claims unknown (plugin has no rules call)\n",
		"  proven (claims unknown) (1):\n    T1053.003 Scheduled Task/Job: Cron - detected: linux-cron-decoy-job\n",
		"SIEM claimer: 2 rules (1 enabled)\n",
		"    T1053.003 Scheduled Task/Job: Cron - detected: linux-cron-decoy-job; rule: \"Cron rule\" (c1) (fired)\n",
		"    T1053.006 Scheduled Task/Job: Systemd Timers - rule: \"Cron rule\" (c1)\n",
		"    T1003.008 OS Credential Dumping: /etc/passwd and /etc/shadow - missed: linux-shadow-read\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	// Tactics in kill-chain order.
	last := -1
	for _, tactic := range []string{"Initial Access", "Execution", "Persistence", "Privilege Escalation", "Defense Evasion",
		"Credential Access", "Discovery", "Lateral Movement", "Collection", "Command and Control", "Exfiltration", "Impact"} {
		i := strings.Index(stdout, "\n  "+tactic+" ")
		if i < last {
			t.Errorf("tactic %s out of kill-chain order", tactic)
		}
		last = i
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestCoverageSigmaDir: an extra Sigma rule's attack.t1005 tag makes the
// local SIEM claim T1005, which the run proved.
func TestCoverageSigmaDir(t *testing.T) {
	stdout, stderr, code := vigil(t, coverageArgs("--siem", "local", "--sigma-dir", "testdata/e2e/coverage/sigma", "--format", "json")...)
	if code != 1 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var rep coverage.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not coverage.json: %v\n%s", err, stdout)
	}
	if rep.Schema != coverage.Schema || len(rep.SIEMs) != 1 || rep.SIEMs[0].Name != "local" || !rep.SIEMs[0].ClaimsKnown {
		t.Fatalf("report of %d SIEM(s), want local alone with known claims", len(rep.SIEMs))
	}
	s := rep.SIEMs[0]
	classes := map[string]coverage.Technique{}
	for _, tech := range s.Techniques {
		classes[tech.ID] = tech
	}
	for id, want := range map[string]coverage.Class{
		"T1005": coverage.ClaimedProven, "T1053.003": coverage.ClaimedProven, "T1003.008": coverage.ClaimedNotProven,
		"T1021.004": coverage.MissedUnclaimed, "T1609": coverage.ClaimedUntested,
	} {
		if got := classes[id].Class; got != want {
			t.Errorf("%s: class %s, want %s", id, got, want)
		}
	}
	t1005 := classes["T1005"]
	if len(t1005.Rules) != 1 || t1005.Rules[0].ID != "4d3c2b1a-0f9e-4d8c-b7a6-e2e0c0ffee05" || t1005.Rules[0].Fired ||
		!strings.HasSuffix(t1005.Rules[0].Source, filepath.Join("testdata", "e2e", "coverage", "sigma", "data_from_local_system.yml")) {
		t.Errorf("T1005 rules %+v: want the extra directory's rule, not fired (another rule detected the test)", t1005.Rules)
	}
	// The local SIEM's claims are its whole rule set: vigil's own rules and
	// SigmaHQ's, every one enabled.
	if s.Rules < 150 || s.Rules != s.EnabledRules {
		t.Errorf("%d rules (%d enabled): want the embedded and SigmaHQ rules, all enabled", s.Rules, s.EnabledRules)
	}
}

func TestCoverageNavigator(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := vigil(t, coverageArgs("--format", "navigator", "--out", out)...)
	if code != 1 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if err := reportcheck.ValidateLayer([]byte(stdout)); err != nil {
		t.Fatalf("standard output is not valid Navigator layers: %v", err)
	}
	var layers []struct {
		Name        string `json:"name"`
		LegendItems []struct {
			Label, Color string
		} `json:"legendItems"`
	}
	if err := json.Unmarshal([]byte(stdout), &layers); err != nil || len(layers) != 3 {
		t.Fatalf("want 3 layers: %v", err)
	}
	colors := map[string]bool{}
	for _, li := range layers[0].LegendItems {
		colors[li.Color] = true
	}
	if len(layers[0].LegendItems) != 6 || len(colors) != 6 || !strings.HasPrefix(layers[0].LegendItems[1].Label, "claimed, never proven (1)") {
		t.Errorf("local legend %+v: want 6 classes in 6 colours", layers[0].LegendItems)
	}
	for _, name := range []string{"coverage.json", "coverage-local.json", "coverage-scripted.json", "coverage-claimer.json"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if name != "coverage.json" {
			if err := reportcheck.ValidateLayer(b); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if !strings.Contains(stderr, "wrote "+filepath.Join(out, name)) {
			t.Errorf("stderr does not list %s:\n%s", name, stderr)
		}
	}
}

func TestCoverageErrors(t *testing.T) {
	t.Run("a failing rules call names the SIEM and its plugin", func(t *testing.T) {
		stdout, stderr, code := vigil(t, "coverage", "--config", "testdata/e2e/coverage/broken.toml", "--results", "testdata/e2e/coverage/results.json",
			"--plugin-dir", pluginDir, "--allow-unpinned")
		if code != 3 || !strings.Contains(stderr, `siem "broken" (plugin testsiem): rules: testsiem: rules API answered 500`) {
			t.Fatalf("exit %d stderr %q, want 3 and the SIEM named", code, stderr)
		}
		if !strings.Contains(stdout, "SIEM broken: claims unknown (rules not read: ") {
			t.Errorf("stdout:\n%s", stdout)
		}
	})
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad format", coverageArgs("--format", "html"), `--format "html": want text, json or navigator`},
		{"two run sources", coverageArgs("--run", "last"), "--results and --run choose the run two ways"},
		{"unknown SIEM", coverageArgs("--siem", "nope"), `no siem named "nope"`},
		{"unknown platform", coverageArgs("--platform", "amiga"), `--platform "amiga": not an ATT&CK Enterprise platform`},
		{"missing results", []string{"coverage", "--results", "testdata/e2e/coverage/nope.json"}, "read results"},
		{"empty history", []string{"coverage", "--history", filepath.Join(t.TempDir(), "h.db")}, "no run history at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := vigil(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, stderr, tc.wantErr)
			}
		})
	}
}

// TestCoverageHistory: the newest run of the history database is the
// default.
func TestCoverageHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "history.db")
	log := filepath.Join(t.TempDir(), "inject.log")
	_, stderr, code := vigil(t, "run", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog",
		"--id", "e2e-detected", "--id", "e2e-missed", "--plugin-dir", pluginDir, "--allow-unpinned", "--arg", "log="+log, "--history", db)
	if code != 1 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := vigil(t, "coverage", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog",
		"--plugin-dir", pluginDir, "--allow-unpinned", "--history", db)
	if code != 0 {
		t.Fatalf("coverage: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Both tests perform T1059.004: one detected proves it.
	if !strings.Contains(stdout, "SIEM scripted: claims unknown (plugin has no rules call)") ||
		!strings.Contains(stdout, "  proven (claims unknown) (1):\n    T1059.004 Command and Scripting Interpreter: Unix Shell - detected: e2e-detected; missed: e2e-missed\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// TestRunWritesCoverage: a run whose SIEM has the rules call writes
// coverage.json and its Navigator layer into --out (a replay: no root).
func TestRunWritesCoverage(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--replay", "--technique", "T1053.003", "--out", out, "--no-history", "-q")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, name := range []string{"coverage.json", "coverage-local.json"} {
		if !strings.Contains(stdout, "report: "+filepath.Join(out, name)) {
			t.Errorf("stdout does not list %s:\n%s", name, stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "coverage.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep coverage.Report
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.SIEMs) != 1 || !rep.SIEMs[0].ClaimsKnown {
		t.Fatalf("coverage.json: %v, %+v", err, rep.SIEMs)
	}
	for _, tech := range rep.SIEMs[0].Techniques {
		if tech.ID == "T1053.003" && (tech.Class != coverage.ClaimedProven || len(tech.Detected) == 0) {
			t.Errorf("T1053.003 = %+v, want claimed and proven by the replayed tests", tech)
		}
	}
	layer, err := os.ReadFile(filepath.Join(out, "coverage-local.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := reportcheck.ValidateLayer(layer); err != nil {
		t.Errorf("coverage-local.json: %v", err)
	}
}

// Sigma rules that cannot work are refused with their file, line and
// reason: vigil validate names them (and fails), vigil rules --refused lists
// them, and their ATT&CK tags never count as claims in vigil coverage.
func TestBrokenSigmaRulesRefused(t *testing.T) {
	broken := map[string]string{
		"invalid_regex.yml:13: invalid regular expression":                                      "T1205",
		`undefined_search.yml:14: condition error: condition "(selection and not filter_main)"`: "T1480",
		`empty_selector.yml:14: condition error: condition "1 of sel_*"`:                        "T1564.006",
	}
	t.Run("validate", func(t *testing.T) {
		stdout, stderr, code := vigil(t, "validate", "--sigma-dir", "testdata/e2e/sigma-broken")
		if code != 2 || !strings.Contains(stderr, "3 problem(s)") {
			t.Errorf("exit %d, stderr %q: want 2 and 3 problems", code, stderr)
		}
		for where := range broken {
			if !strings.Contains(stdout, "rule refused, broken: ") || !strings.Contains(stdout, where) {
				t.Errorf("validate does not name %q:\n%s", where, stdout)
			}
		}
		if !strings.Contains(stdout, `siem "local": 278 rules loaded, 36 refused (3 broken, 33 outside what it evaluates)`) {
			t.Errorf("validate's count:\n%s", stdout)
		}
	})
	t.Run("rules --refused", func(t *testing.T) {
		stdout, stderr, code := vigil(t, "rules", "--refused", "--sigma-dir", "testdata/e2e/sigma-broken")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if !strings.Contains(lines[0], "36 rules refused, 3 of them broken") {
			t.Errorf("header %q", lines[0])
		}
		for i, where := range []string{"empty_selector.yml", "invalid_regex.yml", "undefined_search.yml"} {
			if l := lines[1+i]; !strings.HasPrefix(l, "refused (BROKEN): ") || !strings.Contains(l, where) {
				t.Errorf("line %d %q: want the broken %s first", 1+i, l, where)
			}
		}
	})
	t.Run("coverage", func(t *testing.T) {
		stdout, stderr, _ := vigil(t, coverageArgs("--siem", "local", "--sigma-dir", "testdata/e2e/sigma-broken", "--format", "json")...)
		var rep coverage.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("stdout is not coverage.json: %v\n%s\n%s", err, stdout, stderr)
		}
		s := rep.SIEMs[0]
		if s.RefusedRules != 36 {
			t.Errorf("refused_rules %d, want 36", s.RefusedRules)
		}
		brokenIDs := []string{"9a0f3c1e-5b7d-4e2a-8c61-2f4e0b9d7a31", "2c7b9e04-1d3f-4a6e-9b58-7e0c3a1f5d92", "5e1d8a2b-9c4f-4b07-a3e6-0d8f2c6b1e74"}
		for _, tech := range s.Techniques {
			for _, r := range tech.Rules {
				if slices.Contains(brokenIDs, r.ID) {
					t.Errorf("%s is claimed by the broken rule %s: a broken rule claims nothing", tech.ID, r.Name)
				}
			}
		}
	})
}

func decodeCoverage(t *testing.T, s string) *coverage.Report {
	t.Helper()
	var rep coverage.Report
	if err := json.Unmarshal([]byte(s), &rep); err != nil {
		t.Fatalf("not coverage.json: %v\n%s", err, s)
	}
	if rep.Schema != coverage.Schema || len(rep.SIEMs) != 1 || rep.SIEMs[0].Name != "local" {
		t.Fatalf("coverage of %d SIEM(s), want local alone", len(rep.SIEMs))
	}
	return &rep
}

// TestCoverageAtomicsFlag: coverage --atomics (no root: the rules are read
// in replay mode) names the atomics among their techniques' tests; a
// checkout that cannot be read is a usage error.
func TestCoverageAtomicsFlag(t *testing.T) {
	args := []string{"coverage", "--config", "testdata/e2e/coverage/vigil.toml", "--results", "testdata/e2e/coverage/results.json",
		"--siem", "local", "--format", "json"}
	for _, tc := range []struct {
		name    string
		atomics []string
		// tests are the tests wanted for T1027.013 and T1007.
		t1027, t1007 []string
	}{
		{"without", nil, nil, []string{"linux-service-discovery"}},
		{"the atomic fixtures", []string{"core/atomic/testdata/atomic-red-team"},
			[]string{"art-t1027-013-c2ca068a"}, []string{"art-t1007-8f2a5d2b", "art-t1007-f4b26bce", "linux-service-discovery"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := slices.Clone(args)
			for _, d := range tc.atomics {
				a = append(a, "--atomics", d)
			}
			stdout, stderr, code := vigil(t, a...)
			if code != 1 { // the results have a claimed technique never detected
				t.Fatalf("exit %d, want 1\nstderr:\n%s", code, stderr)
			}
			rows := map[string]coverage.Technique{}
			for _, row := range decodeCoverage(t, stdout).SIEMs[0].Techniques {
				rows[row.ID] = row
			}
			if got := rows["T1027.013"].Tests; !slices.Equal(got, tc.t1027) {
				t.Errorf("T1027.013 tests %q, want %q", got, tc.t1027)
			}
			if got := rows["T1007"].Tests; !slices.Equal(got, tc.t1007) {
				t.Errorf("T1007 tests %q, want %q", got, tc.t1007)
			}
		})
	}
	t.Run("missing checkout", func(t *testing.T) {
		stdout, stderr, code := vigil(t, append(args, "--atomics", "testdata/nope")...)
		if code != 2 || !strings.Contains(stderr, "testdata/nope") || stdout != "" {
			t.Errorf("exit %d stderr %q stdout %d bytes, want 2, the checkout named, nothing on stdout", code, stderr, len(stdout))
		}
	})
}
