//go:build live

package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// unameRuleID is the id of testdata/rules/uname_probe.yml.
const unameRuleID = "0f7b1c9e-8a51-4d7e-9c55-3c2f0e1d4a01"

// ownKernelRules returns the audit rules excluding this process's pid: the
// rules a sensor started by this process added.
func ownKernelRules(t *testing.T) []string {
	t.Helper()
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatalf("audit client: %v", err)
	}
	defer c.Close()
	wires, err := c.GetRules()
	if err != nil {
		t.Fatalf("list audit rules: %v", err)
	}
	mine := "pid!=" + strconv.Itoa(os.Getpid())
	var out []string
	for _, w := range wires {
		text, err := rule.ToCommandLine(rule.WireFormat(w), false)
		if err == nil && strings.Contains(text, mine) {
			out = append(out, text)
		}
	}
	return out
}

// TestLive starts the real sensor through gRPC, runs a marked shell command
// that the test rule detects, and waits for the signal. It needs root and
// the kernel audit subsystem, and skips (saying why) without them.
func TestLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("live local SIEM test: needs root and the kernel audit subsystem (run `make test` as root)")
	}
	if _, err := exec.LookPath("uname"); err != nil {
		t.Fatal("live local SIEM test: no uname on this host")
	}
	s := plugintest.SIEM(t, new(SIEM))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	cfg := fmt.Sprintf("mode = \"live\"\nrules = \"none\"\nsigmahq = false\nsigma_dirs = [\"testdata/rules\"]\nrecord = %q\n", rec)
	if err := s.Configure(ctx, []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close(context.Background())
		}
	})
	if n := len(ownKernelRules(t)); n == 0 {
		t.Fatal("the sensor added no audit rule")
	}

	marker := "vigil-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", "uname -n >/dev/null; true", marker).CombinedOutput()
	if err != nil {
		t.Fatalf("run the probe: %v: %s", err, out)
	}
	ended := time.Now()

	var found *plugin.Signal
	deadline := time.Now().Add(10 * time.Second)
	for found == nil {
		if time.Now().After(deadline) {
			t.Fatal("no signal of the uname test rule carrying the marker within 10s")
		}
		time.Sleep(100 * time.Millisecond)
		res, err := s.Search(ctx, plugin.SearchRequest{Start: start.Add(-time.Second), End: time.Now()})
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		for i, sg := range res.Signals {
			if sg.RuleID != unameRuleID {
				continue
			}
			for _, mv := range sg.MarkerValues {
				if mv.Location == plugin.MarkerCommandLine && strings.Contains(mv.Value, marker) {
					found = &res.Signals[i]
				}
			}
		}
	}
	if found.Timestamp.Before(start.Add(-time.Second)) || found.Timestamp.After(ended.Add(time.Second)) {
		t.Errorf("signal timestamp %s is not the event's time (the probe ran %s .. %s)", found.Timestamp, start, ended)
	}
	if !slices.Equal(found.Techniques, []string{"T1082"}) || found.Host == "" {
		t.Errorf("signal = %+v", *found)
	}

	raws, err := s.SearchRawEvents(ctx, plugin.RawEventsRequest{Start: start.Add(-time.Second), End: time.Now(), Markers: []string{marker}})
	if err != nil {
		t.Fatalf("SearchRawEvents: %v", err)
	}
	if len(raws) == 0 {
		t.Fatal("SearchRawEvents found no event of the marked shell")
	}
	for _, r := range raws {
		if r.IngestedAt.Before(r.Timestamp.Add(-time.Second)) {
			t.Errorf("raw event ingested at %s, before its time %s", r.IngestedAt, r.Timestamp)
		}
	}

	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	for _, k := range []string{"lost", "backlog", "records", "audit_events", "events", "signals"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("Stats lacks %q: %v", k, stats)
		}
	}
	if stats["records"] == 0 || stats["signals"] == 0 {
		t.Errorf("Stats = %v", stats)
	}

	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if left := ownKernelRules(t); len(left) > 0 {
		t.Errorf("Close left audit rules: %v", left)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), marker) {
		t.Errorf("record file (%d bytes) lacks the marked events", len(b))
	}
}
