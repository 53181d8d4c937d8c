package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
)

// TestImportCloudTrail is issue 19's third "done when": a Stratus Red Team
// detonation log becomes a test that a replay detects with SigmaHQ's
// CloudTrail rules, tied to the replay by its marker.
func TestImportCloudTrail(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "import", "cloudtrail", "core/telemetry/testdata/stratus-iam-create-admin-user.json", "--technique", "T1098", "--out", out)
	if code != 0 || !strings.Contains(stdout, "3 of 3 record(s) carry the marker stratus-red-team_") {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	const id = "ct-stratus-iam-create-admin-user"
	for _, f := range []string{id + ".toml", id + ".jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatal(err)
		}
	}
	res := t.TempDir()
	stdout, stderr, code = vigil(t, "run", "--replay", "--catalog", out, "--replay-dir", out, "--id", id, "--out", res, "--no-history", "-q")
	run := readResults(t, res)
	if code != 0 || len(run.Results) != 1 {
		t.Fatalf("replay: exit %d, %d results\n%s%s", code, len(run.Results), stdout, stderr)
	}
	r := run.Results[0]
	if r.Status != measure.Detected || len(r.Signals) == 0 || !strings.HasPrefix(r.Correlation, "marker:") {
		t.Fatalf("replay: %s (%s%s), correlation %q", r.Status, r.Reason, r.Error, r.Correlation)
	}
	if s := r.Signals[0]; s.Rule != "AWS IAM Backdoor Users Keys" {
		t.Errorf("detected by %q, want SigmaHQ's AWS IAM Backdoor Users Keys", s.Rule)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"core/telemetry/testdata/stratus-iam-create-admin-user.json", "--out", out}, "cloudtrail: --technique is required"},
		{[]string{"core/telemetry/testdata/stratus-iam-create-admin-user.json", "--technique", "T1098"}, "--out DIR is required"},
		{[]string{"core/telemetry/testdata/stratus-iam-create-admin-user.json", "--technique", "T1098", "--out", out, "--marker-field", "eventID"}, "none of the 3 records has a marker in eventID"},
		{[]string{"testdata/nope.json", "--technique", "T1098", "--out", out}, "no such file or directory"},
	} {
		_, stderr, code := vigil(t, append([]string{"import", "cloudtrail"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("import cloudtrail %q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
