package main_test

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
)

// The Kubernetes pack runs end to end with no cluster: its recorded audit
// events are replayed into the local SIEM, whose Kubernetes rules detect
// every test (no root needed).
func TestKubernetesPackReplay(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := vigil(t, "run", "--replay", "--platform", "kubernetes", "--out", out, "--no-history", "--quiet")
	if code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := readResults(t, out)
	if len(run.Results) != 7 {
		t.Errorf("%d results, want one per Kubernetes test (7)", len(run.Results))
	}
	tests := map[string]bool{}
	for _, r := range run.Results {
		tests[r.TestID] = true
		if !strings.HasPrefix(r.TestID, "k8s-") {
			t.Errorf("%s selected by --platform kubernetes", r.TestID)
		}
		if r.Status != measure.Detected || r.LatencyMS == nil || r.Correlation == "" {
			t.Errorf("%s (%s): %s %s%s latency %v correlation %q", r.TestID, r.Technique, r.Status, r.Error, r.Reason, r.LatencyMS, r.Correlation)
		}
	}
	if len(tests) != 7 {
		t.Errorf("%d tests, want 7", len(tests))
	}
}

// Without a target using the k8s injector (the default config: this host
// only), the Kubernetes tests are not planned: one note names them.
func TestKubernetesPackNotPlannedWithoutCluster(t *testing.T) {
	stdout, stderr, code := vigil(t, "plan", "--platform", "kubernetes")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "7 tests, 1 targets, 1 SIEMs: 0 jobs") {
		t.Errorf("plan:\n%s\nwant 0 jobs for the 7 Kubernetes tests", stdout)
	}
	if n := strings.Count(stdout+stderr, `7 tests need an injector "k8s" but no target uses it: k8s-`); n != 1 {
		t.Errorf("%d notes about the missing k8s target, want one naming the 7 tests:\n%s%s", n, stdout, stderr)
	}
}
