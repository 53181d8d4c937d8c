//go:build live

package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
)

// soakPaths are the places the Linux pack's tests touch, or sit next to:
// after any number of runs they must be byte for byte what they were.
var soakPaths = []string{
	"/var/spool/cron", "/etc/cron.d", "/etc/crontab", "/etc/sudoers", "/etc/sudoers.d",
	"/etc/ld.so.preload", "/etc/profile.d", "/etc/systemd/system", "/etc/security/limits.conf",
	"/etc/security/limits.d", "/usr/local/share/ca-certificates", "/root/.ssh", "/boot",
	"/etc/passwd", "/etc/group", "/etc/shadow",
}

// snapshot hashes every file under paths (missing paths are recorded as
// such), with its mode and modification time; a directory is its mode and,
// through the walk, its entries (its own modification time moves whenever
// a test adds and removes a decoy in it).
func snapshot(t *testing.T, paths []string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if os.IsNotExist(err) {
				snap[p] = "absent"
				return nil
			}
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			meta := fi.Mode().String()
			if fi.Mode().IsRegular() {
				meta += fmt.Sprintf(" %d", fi.ModTime().UnixNano())
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				meta += " " + hex.EncodeToString(sum[:])
			}
			snap[p] = meta
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

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
	before := snapshot(t, soakPaths)
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
	after := snapshot(t, soakPaths)
	var changed []string
	for p, v := range before {
		if after[p] != v {
			changed = append(changed, fmt.Sprintf("%s: %s -> %s", p, v, nonEmpty(after[p], "gone")))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			changed = append(changed, p+": new")
		}
	}
	sort.Strings(changed)
	if len(changed) > 0 {
		t.Errorf("the host changed after %d rounds:\n%s", rounds, strings.Join(changed, "\n"))
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
