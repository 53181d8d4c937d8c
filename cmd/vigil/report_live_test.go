//go:build live

package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repLiveCatalog writes two tests of the local SIEM with short deadlines:
// a base64 decode (caught by vigil's base64 rule) and a tar archive in a
// temporary directory (caught by the archive rule).
func repLiveCatalog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tests := map[string]string{
		"defense-evasion/report-e2e-base64.toml": `id = "report-e2e-base64"
technique = "T1140"
name = "Decode base64 (report tests)"
description = "End-to-end fixture of the report tests: base64 -d of a marked file."
platforms = ["linux"]
safety = "safe"
[inject]
plugin = "exec"
[inject.params]
command = '''
set -e
echo 'vigil report test' | base64 > {{tmpdir}}/{{marker}}.b64
base64 -d {{tmpdir}}/{{marker}}.b64 > {{tmpdir}}/{{marker}}.txt
'''
[[expect]]
within = "4s"
`,
		"collection/report-e2e-archive.toml": `id = "report-e2e-archive"
technique = "T1560.001"
name = "Archive decoys with tar (report tests)"
description = "End-to-end fixture of the report tests: tar of decoys in the injection's directory."
platforms = ["linux"]
safety = "safe"
[inject]
plugin = "exec"
[inject.params]
command = '''
set -e
mkdir -p {{tmpdir}}/loot
echo decoy > {{tmpdir}}/loot/report.txt
tar -czf {{tmpdir}}/{{marker}}-data.tar.gz -C {{tmpdir}} loot
'''
[[expect]]
within = "4s"
`,
	}
	for name, body := range tests {
		p := filepath.Join(dir, "linux", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// repCopyDir copies a directory tree.
func repCopyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReportsOfALiveRun is the "done when" on the real local SIEM:
// every format produced from a live run and checked against its
// specification, then a second run of the same config after a Sigma rule
// was removed, gated by --baseline last and shown by vigil diff.
func TestReportsOfALiveRun(t *testing.T) {
	needsLiveAudit(t)
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	// Only the rules of --sigma-dir: the SIEM's rule set lives outside the
	// config, as in a real SIEM.
	if err := os.WriteFile(cfg, []byte(`[run]
poll_interval = "500ms"

[[siem]]
name = "local"
plugin = "local"
[siem.params]
rules = "none"
sigmahq = false

[[target]]
name = "localhost"
plugin = "exec"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	catalog := repLiveCatalog(t)
	rules := t.TempDir()
	repCopyDir(t, "../../rules/sigma/linux", rules)
	env := []string{"VIGIL_HISTORY=" + filepath.Join(t.TempDir(), "history.db")}
	live := func(extra ...string) (string, string, int, string) {
		out := t.TempDir()
		args := append([]string{"run", "--config", cfg, "--catalog", catalog, "--sigma-dir", rules,
			"--id", "report-e2e-base64", "--id", "report-e2e-archive", "--out", out}, extra...)
		stdout, stderr, code := repVigil(t, env, args...)
		return stdout, stderr, code, out
	}

	stdout, stderr, code, out := live("--format", "all")
	if code != 0 {
		t.Fatalf("live run: exit %d, want 0 (both detected)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	first := repCheckReports(t, out)
	if first.Summary.Detected != 2 {
		t.Fatalf("live run: %+v", first.Summary.Counts)
	}

	// The base64 rule is removed from the SIEM.
	if err := os.Remove(filepath.Join(rules, "process_creation", "proc_creation_lnx_base64_decode.yml")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code, _ = live("--baseline", "last", "-q")
	i := strings.Index(stdout, "REGRESSIONS against baseline "+first.RunID+" (1):")
	if code != 1 || i < 0 {
		t.Fatalf("rule removed: exit %d, want 1 with one regression\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout[i:]), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^report-e2e-base64\s+T1140\s+localhost\s+local\s+detected \d+(ms|\.\ds)\s+missed\s+no longer detected$`).MatchString(lines[2]) {
		t.Fatalf("regressions, want exactly report-e2e-base64:\n%s", strings.Join(lines, "\n"))
	}
	diff, stderr, code := repVigil(t, env, "diff")
	if code != 0 || !strings.Contains(diff, ": 1 newly missed, 0 newly detected") || !strings.Contains(diff, "report-e2e-base64") {
		t.Fatalf("diff: exit %d\n%s\n%s", code, diff, stderr)
	}
}
