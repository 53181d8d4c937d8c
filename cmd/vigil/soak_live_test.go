//go:build live

package main_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/integrity"
	"github.com/vigilsec/vigil/core/measure"
)

// TestLinuxPackSoak fires the whole Linux pack again and again, as a
// nightly job would: every run must detect every test and keep every
// benign look-alike quiet (no missed, no error, no noisy), and the host
// must be left as it was. Opt-in: VIGIL_SOAK=N rounds (make soak runs 20);
// VIGIL_SOAK_STRESS=1 loads the CPUs with stress-ng --cpu 4 meanwhile.
func TestLinuxPackSoak(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("VIGIL_SOAK"))
	if rounds <= 0 {
		t.Skip("soak test: set VIGIL_SOAK=N to fire the whole pack N times (make soak)")
	}
	needsLiveAudit(t)
	if os.Getenv("VIGIL_SOAK_STRESS") != "" {
		if _, err := exec.LookPath("stress-ng"); err != nil {
			t.Fatal("VIGIL_SOAK_STRESS needs stress-ng (Debian: stress-ng)")
		}
		ctx, cancel := context.WithCancel(context.Background())
		stress := exec.CommandContext(ctx, "stress-ng", "--cpu", "4", "--quiet")
		if err := stress.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); _ = stress.Wait() })
		t.Log("stress-ng --cpu 4 is loading the CPUs")
	}
	negative := negativeTests(t)
	// Besides each run's own check, the host after all rounds is compared
	// with the host before the first: the same paths and items, by content,
	// type, mode and owner.
	sc := &integrity.Scanner{}
	before, err := sc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var missed, errored, noisy int
	for i := 1; i <= rounds; i++ {
		out := t.TempDir()
		start := time.Now()
		_, stderr, code := vigil(t, "run", "--out", out, "--quiet", "--no-history")
		run := readResults(t, out)
		c := run.Summary.Counts
		missed, errored, noisy = missed+c.Missed, errored+c.Error, noisy+c.Noisy
		t.Logf("round %d/%d: %d tests, %d detected, %d quiet, %d missed, %d error, %d noisy, latency p50 %v p95 %v max %v ms, lost %d, %s, exit %d",
			i, rounds, c.Total, c.Detected, c.Quiet, c.Missed, c.Error, c.Noisy, deref(c.LatencyMedianMS), deref(c.LatencyP95MS),
			deref(c.LatencyMaxMS), run.SIEMStats["local"]["lost"], time.Since(start).Round(time.Second), code)
		checkPackRun(t, run, negative)
		if code != 0 {
			t.Errorf("round %d: exit %d\n%s", i, code, stderr)
		}
		for _, r := range run.Results {
			if r.Status == measure.Missed || r.Status == measure.Noisy {
				t.Logf("round %d: %s %s: %s", i, r.TestID, r.Status, r.Reason)
			}
		}
	}
	t.Logf("%d rounds: %d missed, %d error, %d noisy", rounds, missed, errored, noisy)
	after, err := sc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range integrity.Diff(before, after) {
		t.Errorf("the host changed after %d rounds: %s: %s", rounds, c.Path, c.What)
	}
	t.Logf("host compared after %d rounds: %d paths and items unchanged", rounds, after.Entries())
}
