//go:build live

package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
)

// cleanTest cleans up after itself; brokenCleanupTest's cleanup forgets
// the file its injection put under /etc/cron.d (a comment, no job).
const cleanTest = `
id = "integrity-clean"
technique = "T1053.003"
name = "Writes a decoy under its temporary directory and removes it"
description = "A well-behaved test for the host-integrity check."
platforms = ["linux"]
safety = "reversible"
timeout = "10s"
[inject]
plugin = "exec"
[inject.params]
command = "echo '# decoy' > {{tmpdir}}/cron-decoy"
[cleanup]
[cleanup.params]
command = "rm -f {{tmpdir}}/cron-decoy"
[[expect]]
within = "5s"
`

const brokenCleanupTest = `
id = "integrity-broken-cleanup"
technique = "T1053.003"
name = "Writes a cron file and forgets it"
description = "A deliberately broken test for the host-integrity check: its cleanup removes the wrong file."
platforms = ["linux"]
safety = "reversible"
timeout = "10s"
[inject]
plugin = "exec"
[inject.params]
command = "echo '# vigil integrity test, no job' > /etc/cron.d/vigil-broken-{{marker}}"
[cleanup]
[cleanup.params]
command = "rm -f /etc/cron.d/vigil-forgotten-{{marker}}"
[[expect]]
within = "5s"
`

// TestIntegrityCatchesBrokenCleanup: a test whose cleanup forgets to undo
// its change makes the run exit 4, and the check names the path, what
// changed and the test, in the console, results.json and the reports.
func TestIntegrityCatchesBrokenCleanup(t *testing.T) {
	needsLiveAudit(t)
	cat := t.TempDir()
	for name, body := range map[string]string{"integrity-clean.toml": cleanTest, "integrity-broken-cleanup.toml": brokenCleanupTest} {
		if err := os.WriteFile(filepath.Join(cat, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		left, _ := filepath.Glob("/etc/cron.d/vigil-broken-*")
		for _, p := range left {
			os.Remove(p)
		}
	})
	cfg := liveAtomicsConfig(t, "5s", "500ms")
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--config", cfg, "--catalog", cat, "--id", "integrity-clean", "--id", "integrity-broken-cleanup",
		"--out", out, "--format", "junit,markdown", "--no-history")
	if code != 4 {
		t.Fatalf("exit %d, want 4 (host changed)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := readResults(t, out)
	if len(run.HostChanged) != 1 {
		t.Fatalf("host_changed %+v, want the one cron file", run.HostChanged)
	}
	c := run.HostChanged[0]
	if !strings.HasPrefix(c.Path, "/etc/cron.d/vigil-broken-vigil-") || c.Change != "created (file)" ||
		!slices.Equal(c.Tests, []string{"integrity-broken-cleanup"}) || c.Attribution != "integrity-broken-cleanup" {
		t.Errorf("host change %+v, want /etc/cron.d/vigil-broken-<marker> created by integrity-broken-cleanup", c)
	}
	if run.IntegrityCheck == nil || run.IntegrityCheck.Snapshots < 5 || run.IntegrityCheck.Entries < 100 {
		t.Errorf("integrity_check %+v: want a snapshot before, after each step and after", run.IntegrityCheck)
	}
	for _, want := range []string{"HOST CHANGED (1)", c.Path, "integrity-broken-cleanup"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("console lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"junit.xml", "summary.md"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || !strings.Contains(string(b), c.Path) {
			t.Errorf("%s does not name %s (%v)", f, c.Path, err)
		}
	}
	t.Logf("integrity check: %d entries, %d snapshots, %d ms in all", run.IntegrityCheck.Entries, run.IntegrityCheck.Snapshots, run.IntegrityCheck.CostMS)

	// Without the check, the same run says nothing of the host.
	os.Remove(c.Path)
	out2 := t.TempDir()
	_, _, code = vigil(t, "run", "--config", cfg, "--catalog", cat, "--id", "integrity-broken-cleanup", "--out", out2, "--no-history", "--no-integrity-check", "-q")
	if run2 := readResults(t, out2); code == 4 || run2.IntegrityCheck != nil || run2.HostChanged != nil {
		t.Errorf("--no-integrity-check: exit %d, integrity_check %+v", code, run2.IntegrityCheck)
	}
}

// TestAtomicsLeaveHostUnchangedLive proves the converter's safety labels
// on the project's corpus: every atomic that imports as safe or
// reversible, without the network or payload tag, runs as root under the
// host-integrity check, which must find the host as it was. The
// destructive ones are refused by the runner (skipped), never run.
func TestAtomicsLeaveHostUnchangedLive(t *testing.T) {
	needsLiveAudit(t)
	if _, err := os.Stat(filepath.Join("../..", corpusDir, "atomics")); err != nil {
		t.Fatalf("no Atomic Red Team corpus at %s", corpusDir)
	}
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	if err := os.WriteFile(cfg, []byte("[run]\nconcurrency = 4\ntimeout = \"3s\"\n\n[[siem]]\nname = \"local\"\nplugin = \"local\"\npoll_interval = \"500ms\"\n\n[[target]]\nname = \"localhost\"\nplugin = \"exec\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--config", cfg, "--atomics", corpusDir, "--tag", "atomic-red-team",
		"--exclude-tag", "network", "--exclude-tag", "payload", "--out", out, "--no-history", "-q")
	run := readResults(t, out)
	if code == 4 || code == 2 || len(run.Results) == 0 {
		t.Errorf("exit %d with %d results\nstdout:\n%s\nstderr:\n%s", code, len(run.Results), stdout, stderr)
	}
	checkHostUnchanged(t, run)
	ran, refused, unmet := 0, 0, 0
	for _, r := range run.Results {
		switch {
		case r.Status == measure.Skipped && strings.HasPrefix(r.Reason, "destructive test refused"):
			refused++
		case r.Status == measure.Skipped:
			unmet++
		default:
			ran++
			if r.Status == measure.Error {
				t.Logf("%s: error: %s", r.TestID, r.Error)
			}
		}
	}
	if ran < 60 {
		t.Errorf("only %d atomics ran (%d refused as destructive, %d with a prerequisite unmet)", ran, refused, unmet)
	}
	ic := run.IntegrityCheck
	if ic != nil {
		t.Logf("%d safe or reversible atomics ran (%d destructive refused, %d with a prerequisite unmet): host unchanged over %d entries, %d snapshots, %d ms of checking in a %s run",
			ran, refused, unmet, ic.Entries, ic.Snapshots, ic.CostMS, run.FinishedAt.Sub(run.StartedAt).Round(time.Second))
	}
}
