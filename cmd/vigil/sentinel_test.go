package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/internal/awspack"
	"github.com/vigilsec/vigil/internal/sentinelfake"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// TestSentinelReplayAndCompare is issue 21's second "done when": `vigil
// run --replay` with the sentinel SIEM (against the fake workspace, its
// client secret from the environment) beside the local SIEM, then `vigil
// compare` of that run. The imported Stratus detonation is replayed into
// both; the fake's analytics rules (SigmaHQ's CloudTrail rules over
// AWSCloudTrail) and the local SIEM both detect it, tied by the marker.
func TestSentinelReplayAndCompare(t *testing.T) {
	f := sentinelfake.New(t)
	f.SetDetect(detect.NewEngine(awspack.Rules(t)), 400*time.Millisecond)
	dir := t.TempDir()
	const id = "ct-stratus-iam-create-admin-user"
	if _, stderr, code := vigil(t, "import", "cloudtrail", "core/telemetry/testdata/stratus-iam-create-admin-user.json", "--technique", "T1098", "--out", dir); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "vigil.toml")
	if err := os.WriteFile(cfg, []byte(`[run]
poll_interval = "200ms"
timeout = "10s"

[[siem]]
name = "local"
plugin = "local"

[[siem]]
name = "sentinel"
plugin = "sentinel"
[siem.params]
`+f.Params("VIGIL_TEST_AZURE_CLIENT_SECRET")+`cloudtrail_stream = "`+sentinelfake.CloudTrailStream+`"
close_signals = true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"VIGIL_TEST_AZURE_CLIENT_SECRET=" + sentinelfake.ClientSecret}
	out, db := t.TempDir(), filepath.Join(t.TempDir(), "history.db")
	stdout, stderr, code := repVigil(t, env, "run", "--config", cfg, "--replay", "--catalog", dir, "--replay-dir", dir, "--id", id,
		"--out", out, "--history", db, "-q")
	if code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := readResults(t, out)
	bySIEM := map[string]measure.Result{}
	for _, r := range run.Results {
		bySIEM[r.SIEM] = r
	}
	for _, name := range []string{"local", "sentinel"} {
		r, ok := bySIEM[name]
		if !ok || r.Status != measure.Detected || !strings.HasPrefix(r.Correlation, "marker:") {
			t.Fatalf("%s: %+v; want detected by marker", name, r)
		}
	}
	if s := bySIEM["sentinel"]; len(s.Signals) == 0 || s.Signals[0].Rule != "AWS IAM Backdoor Users Keys" || s.LatencyMS == nil {
		t.Errorf("sentinel: signals %+v latency %v", s.Signals, s.LatencyMS)
	}
	if n := len(f.Rows("AWSCloudTrail")); n != 3 {
		t.Errorf("%d rows replayed into AWSCloudTrail, want the 3 records", n)
	}

	cmp, stderr, code := repVigil(t, env, "compare", "--history", db)
	if code != 0 {
		t.Fatalf("compare: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`\nlocal\s+1\s+1\s+0\s+0\s+100%`, `\nsentinel\s+1\s+1\s+0\s+0\s+100%`} {
		if !regexp.MustCompile(want).MatchString(cmp) {
			t.Errorf("compare lacks %s:\n%s", want, cmp)
		}
	}
	results, _ := os.ReadFile(filepath.Join(out, "results.json"))
	for what, s := range map[string]string{"stdout": stdout, "stderr": stderr, "compare": cmp, "results.json": string(results)} {
		if strings.Contains(s, sentinelfake.ClientSecret) {
			t.Errorf("%s carries the client secret", what)
		}
	}
}
