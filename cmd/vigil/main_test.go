package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/pluginhost"
)

var (
	vigilBin  string
	pluginDir string
)

// TestMain builds vigil and the external test plugins of testdata/plugins,
// so these tests drive the real binary as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	pluginDir = filepath.Join(dir, "plugins")
	builds := [][]string{
		{"-o", vigilBin, "./cmd/vigil"},
		{"-o", filepath.Join(pluginDir, "vigil-plugin-siem-testsiem"), "./testdata/plugins/testsiem"},
		{"-o", filepath.Join(pluginDir, "vigil-plugin-injector-testinjector"), "./testdata/plugins/testinjector"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", append([]string{"build"}, b...)...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %v: %v\n%s", b, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func vigil(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(vigilBin, args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
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

func TestRunScripted(t *testing.T) {
	out := t.TempDir()
	log := filepath.Join(t.TempDir(), "inject.log")
	stdout, stderr, code := vigil(t, "run", "--config", "testdata/e2e/configs/scripted.toml",
		"--catalog", "testdata/e2e/catalog", "--id", "e2e-detected", "--id", "e2e-missed",
		"--plugin-dir", pluginDir, "--allow-unpinned", "--arg", "log="+log, "--out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one test missed)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"e2e-detected", "detected", "E2E rule", "e2e-missed", "missed", "scripted"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if run.Schema != "vigil/results/v1" || run.RunID == "" || len(run.Results) != 2 {
		t.Fatalf("results.json: schema %q run %q results %d", run.Schema, run.RunID, len(run.Results))
	}
	r := run.Results[0]
	if r.TestID != "e2e-detected" || r.Status != measure.Detected || r.LatencyMS == nil || *r.LatencyMS != 200 ||
		r.Correlation != "marker:process.command_line" || r.SIEM != "scripted" || r.Target != "lab" {
		t.Fatalf("result %+v", r)
	}
	if run.Summary.Detected != 1 || run.Summary.Missed != 1 {
		t.Fatalf("summary %+v", run.Summary.Counts)
	}
	logged, _ := os.ReadFile(log)
	if strings.Count(string(logged), "inject vigil-") != 1 {
		t.Fatalf("injector log: %q", logged)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown technique filter", []string{"list", "--technique", "T9999"}, 2, "T9999"},
		{"missing env var", []string{"plan", "--config", "testdata/e2e/configs/missing-env.toml"}, 2, "VIGIL_E2E_UNSET_KEY"},
		{"missing config file", []string{"list", "--config", "testdata/e2e/configs/nope.toml"}, 2, "nope.toml"},
		{"unpinned external plugin", []string{"plan", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog",
			"--plugin-dir", pluginDir}, 3, "not pinned by sha256"},
		{"no test selected", []string{"run", "--config", "testdata/e2e/configs/scripted.toml", "--catalog", "testdata/e2e/catalog", "--id", "e2e-missed", "--tactic", "persistence"}, 2, "no test matches"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := vigil(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d stderr %q, want exit %d and %q", code, stderr, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestPinnedPluginRuns(t *testing.T) {
	sumS, err := pluginhost.FileSHA256(filepath.Join(pluginDir, "vigil-plugin-siem-testsiem"))
	if err != nil {
		t.Fatal(err)
	}
	sumI, err := pluginhost.FileSHA256(filepath.Join(pluginDir, "vigil-plugin-injector-testinjector"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("../../testdata/e2e/configs/scripted.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	pins := fmt.Sprintf("\n[[plugin]]\nname = \"vigil-plugin-siem-testsiem\"\nsha256 = %q\n[[plugin]]\nname = \"vigil-plugin-injector-testinjector\"\nsha256 = %q\n", sumS, sumI)
	if err := os.WriteFile(cfg, append(base, pins...), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := vigil(t, "plan", "--config", cfg, "--catalog", "testdata/e2e/catalog", "--id", "e2e-detected", "--plugin-dir", pluginDir)
	if code != 0 || !strings.Contains(stdout, "marker in process.command_line") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// [run] history in vigil.toml chooses where runs are stored.
func TestHistoryPathFromConfig(t *testing.T) {
	base, err := os.ReadFile("../../testdata/e2e/configs/scripted.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.toml")
	withHistory := strings.Replace(string(base), "[run]\n", "[run]\nhistory = \"runs/history.db\"\n", 1)
	if err := os.WriteFile(cfg, []byte(withHistory), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := vigil(t, "run", "--config", cfg, "--catalog", "testdata/e2e/catalog", "--id", "e2e-detected",
		"--plugin-dir", pluginDir, "--allow-unpinned")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "history.db")); err != nil {
		t.Fatalf("history not stored where [run] history says: %v\nstdout:\n%s", err, stdout)
	}
}

// vigil plugins lists every built-in plugin as it describes itself,
// summary included, then what each can do.
func TestPluginsListing(t *testing.T) {
	stdout, stderr, code := vigil(t, "plugins")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	golden := filepath.Join("..", "..", "testdata", "e2e", "plugins.golden")
	if os.Getenv("VIGIL_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("vigil plugins differs from %s (VIGIL_UPDATE_GOLDEN=1 rewrites it):\n%s", golden, stdout)
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

// unprivileged runs the vigil binary as a user without root: as root, the
// binary drops to nobody; run by a contributor, it runs as that user. It
// returns the exit code, stdout and stderr.
func unprivileged(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(vigilBin), 0o755); err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "vigil-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, args...)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "TMPDIR=" + home}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// Without root the local SIEM says so in one line and points to --replay.
func TestLiveWithoutRootExplains(t *testing.T) {
	code, _, stderr := unprivileged(t, "run", "--id", "linux-file-delete-decoy")
	if code != 3 {
		t.Fatalf("exit %d, want 3; stderr:\n%s", code, stderr)
	}
	msg := strings.TrimSpace(stderr)
	if !strings.Contains(msg, "vigil run --replay") || !strings.Contains(msg, "root") || strings.Count(msg, "\n") > 0 {
		t.Fatalf("stderr %q: want one line naming root and pointing to vigil run --replay", msg)
	}
}

// A plan is a dry run: the local SIEM starts no sensor, so it needs no
// root, and it still lists every job.
func TestPlanNeedsNoRoot(t *testing.T) {
	code, stdout, stderr := unprivileged(t, "plan", "--id", "linux-file-delete-decoy", "--id", "linux-shadow-read")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "2 tests, 1 targets, 1 SIEMs: 2 jobs") {
		t.Errorf("plan:\n%s\nwant 2 jobs", stdout)
	}
}
