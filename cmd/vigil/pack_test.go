package main_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
)

// needsLiveAudit skips unless the local SIEM's sensor can run here (root and
// the kernel audit subsystem); CI runs as root.
func needsLiveAudit(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("live pack run skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("the live Linux pack needs root for the kernel audit sensor")
	}
	if _, err := os.Stat("/proc/self/loginuid"); err != nil {
		t.Skip("no kernel audit subsystem (/proc/self/loginuid missing)")
	}
}

func readResults(t *testing.T, dir string) *measure.Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	return &run
}

// TestLinuxPackLive is the out-of-the-box run: no config, the whole Linux
// pack on this host against the local SIEM. Every shipped test must be
// detected by the shipped rules, with a latency, and the kernel must lose no
// audit event. The replay of the shipped recordings must give the same
// coverage.
func TestLinuxPackLive(t *testing.T) {
	needsLiveAudit(t)
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--out", out, "--quiet")
	run := readResults(t, out)
	if len(run.Results) < 31 {
		t.Fatalf("%d results, want the whole pack (>= 31)", len(run.Results))
	}
	live := map[string]measure.Status{}
	for _, r := range run.Results {
		live[r.TestID] = r.Status
		if r.Status != measure.Detected {
			t.Errorf("%s (%s): %s %s%s", r.TestID, r.Technique, r.Status, r.Error, r.Reason)
			continue
		}
		if r.LatencyMS == nil || r.Correlation == "" {
			t.Errorf("%s: detected without latency or correlation: %+v", r.TestID, r)
		}
	}
	if lost := run.SIEMStats["local"]["lost"]; lost != 0 {
		t.Errorf("kernel lost %d audit events", lost)
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

// A test whose rule is removed is missed; an injection that fails is an
// error, never a miss.
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
		"--id", "linux-base64-decode", "--id", "e2e-exec-fails", "--out", out)
	if code != 3 {
		t.Errorf("exit %d, want 3 (an error result)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	got := map[string]measure.Result{}
	for _, r := range readResults(t, out).Results {
		got[r.TestID] = r
	}
	if r := got["linux-base64-decode"]; r.Status != measure.Missed {
		t.Errorf("rule removed: %s %s, want missed", r.Status, r.Error)
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

// Without root the local SIEM says so in one line and points to --replay.
func TestLiveWithoutRootExplains(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	for _, p := range []string{filepath.Dir(vigilBin)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home, err := os.MkdirTemp("", "vigil-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, "run", "--id", "linux-file-delete-decoy")
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "TMPDIR=" + home}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err %v, want exit 3; stderr:\n%s", err, stderr.String())
	}
	msg := strings.TrimSpace(stderr.String())
	if !strings.Contains(msg, "vigil run --replay") || !strings.Contains(msg, "root") || strings.Count(msg, "\n") > 0 {
		t.Fatalf("stderr %q: want one line naming root and pointing to vigil run --replay", msg)
	}
}
