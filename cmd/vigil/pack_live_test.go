//go:build live

package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
)

// needsLiveAudit fails a live test (built with -tags live) on a host where
// the local SIEM's sensor cannot run: it needs root and the kernel audit
// subsystem. make test (as root, in CI) runs the live tests.
func needsLiveAudit(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("live test: the local SIEM's audit sensor needs root (run `make test` as root; `go test ./...` leaves the live tests out)")
	}
	if _, err := os.Stat("/proc/self/loginuid"); err != nil {
		t.Fatal("live test: no kernel audit subsystem (/proc/self/loginuid missing)")
	}
}

// negativeTests returns the IDs of the shipped tests whose expectations
// are all absent: benign look-alikes that must stay quiet.
func negativeTests(t *testing.T) map[string]bool {
	t.Helper()
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	neg := map[string]bool{}
	for _, ts := range cat.Tests {
		if len(ts.Expect) > 0 && !slices.ContainsFunc(ts.Expect, func(x catalog.Expectation) bool { return !x.Absent }) {
			neg[ts.ID] = true
		}
	}
	return neg
}

// checkPackRun asserts what every live run of the whole Linux pack must
// show: each test detected, with a latency and a correlation, each benign
// look-alike quiet, and no audit event lost by the kernel.
func checkPackRun(t *testing.T, run *measure.Run, negative map[string]bool) {
	t.Helper()
	if len(run.Results) < 31 {
		t.Fatalf("%d results, want the whole pack (>= 31)", len(run.Results))
	}
	quiet := 0
	for _, r := range run.Results {
		want := measure.Detected
		if negative[r.TestID] {
			want = measure.Quiet
		}
		if r.Status != want {
			t.Errorf("%s (%s): %s, want %s: %s%s", r.TestID, r.Technique, r.Status, want, r.Error, r.Reason)
			continue
		}
		if want == measure.Quiet {
			quiet++
			continue
		}
		if r.LatencyMS == nil || r.Correlation == "" {
			t.Errorf("%s: detected without latency or correlation: %+v", r.TestID, r)
		}
	}
	if quiet < 6 {
		t.Errorf("%d benign look-alikes quiet, want at least 6", quiet)
	}
	if lost := run.SIEMStats["local"]["lost"]; lost != 0 {
		t.Errorf("kernel lost %d audit events", lost)
	}
	checkHostUnchanged(t, run)
}

// checkHostUnchanged asserts that the run's host-integrity check ran and
// found the host as it was.
func checkHostUnchanged(t *testing.T, run *measure.Run) {
	t.Helper()
	if run.IntegrityCheck == nil {
		t.Error("the host-integrity check did not run")
		return
	}
	for _, c := range run.HostChanged {
		t.Errorf("host changed: %s: %s (by %s)", c.Path, c.Change, c.Attribution)
	}
}

// TestLinuxPackLive is the out-of-the-box run: no config, the whole Linux
// pack on this host against the local SIEM. Every shipped test must be
// detected by the shipped rules, with a latency, every benign look-alike
// must stay quiet, and the kernel must lose no audit event. The replay of
// the shipped recordings must give the same results.
func TestLinuxPackLive(t *testing.T) {
	needsLiveAudit(t)
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--out", out, "--quiet")
	run := readResults(t, out)
	checkPackRun(t, run, negativeTests(t))
	live := map[string]measure.Status{}
	for _, r := range run.Results {
		live[r.TestID] = r.Status
	}
	if code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("live: %d tests, %d detected, median latency %v ms, p95 %v ms, run %s",
		run.Summary.Total, run.Summary.Detected, deref(run.Summary.LatencyMedianMS), deref(run.Summary.LatencyP95MS),
		run.FinishedAt.Sub(run.StartedAt))

	t.Run("replay gives the same coverage", func(t *testing.T) {
		out := t.TempDir()
		vigil(t, "run", "--replay", "--platform", "linux", "--out", out, "--quiet")
		rep := readResults(t, out)
		for _, r := range rep.Results {
			if r.Status != live[r.TestID] {
				t.Errorf("%s: replay %s (%s%s), live %s", r.TestID, r.Status, r.Error, r.Reason, live[r.TestID])
			}
		}
		if len(rep.Results) != len(run.Results) {
			t.Errorf("replay has %d results, live %d", len(rep.Results), len(run.Results))
		}
	})
}

// A test whose rule is removed is missed, and says that its telemetry
// arrived and no rule fired; a benign look-alike a too broad rule fires on
// is noisy, and names the rule; an injection that fails is an error, never
// a miss.
func TestLinuxPackNegative(t *testing.T) {
	needsLiveAudit(t)
	// The vigil rules minus every rule tagged with T1140 (deobfuscate).
	rulesDir := t.TempDir()
	src := "../../rules/sigma/linux"
	removed := 0
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(strings.ToLower(string(b)), "attack.t1140") {
			removed++
			return nil
		}
		return os.WriteFile(filepath.Join(rulesDir, filepath.Base(p)), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if removed == 0 {
		t.Fatal("no vigil rule tagged attack.t1140 to remove")
	}
	// A rule too broad for its technique: any crontab run, listing included.
	if err := os.WriteFile(filepath.Join(rulesDir, "any_crontab.yml"), []byte(`title: Any Crontab Run
id: 0b7e6a52-6c0f-4c41-9d57-vigil0broad1
status: test
description: fires on every crontab run, listing included (too broad on purpose)
tags:
    - attack.persistence
    - attack.t1053.003
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/crontab'
    condition: selection
level: low
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	if err := os.WriteFile(cfg, []byte(`
[run]
timeout = "8s"
[[siem]]
name = "local"
plugin = "local"
poll_interval = "500ms"
[siem.params]
rules = "`+rulesDir+`"
sigmahq = false
[[target]]
name = "localhost"
plugin = "exec"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--config", cfg, "--catalog", "testdata/e2e/catalog-exec",
		"--id", "linux-base64-decode", "--id", "e2e-exec-fails", "--id", "linux-benign-crontab-list", "--out", out)
	if code != 3 {
		t.Errorf("exit %d, want 3 (an error result)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	got := map[string]measure.Result{}
	for _, r := range readResults(t, out).Results {
		got[r.TestID] = r
	}
	if r := got["linux-base64-decode"]; r.Status != measure.Missed || r.Diagnosis == nil ||
		r.Diagnosis.Class != measure.TelemetryNoAlert || r.Diagnosis.Events == nil || !slices.Contains(r.Diagnosis.Events.Sources, "linux/process_creation") {
		t.Errorf("rule removed: %s %s %+v, want missed, diagnosed telemetry_no_alert with process creations", r.Status, r.Error, r.Diagnosis)
	}
	if r := got["linux-benign-crontab-list"]; r.Status != measure.Noisy || r.Diagnosis == nil ||
		r.Diagnosis.Class != measure.RuleFired || !strings.Contains(r.Diagnosis.Summary, `rule "Any Crontab Run"`) {
		t.Errorf("too broad rule: %s %+v, want noisy naming the rule", r.Status, r.Diagnosis)
	}
	if !strings.Contains(stdout, "WHY MISSED (1)") || !strings.Contains(stdout, "linux-base64-decode on localhost in local: telemetry_no_alert") {
		t.Errorf("the console does not say why the test was missed:\n%s", stdout)
	}
	if r := got["e2e-exec-fails"]; r.Status != measure.Error || !strings.Contains(r.Error, "exit") {
		t.Errorf("failing injection: %s %q, want an error", r.Status, r.Error)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "-"
	}
	return *p
}
