package local

import (
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var t0 = time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)

func TestStoreEventRing(t *testing.T) {
	clk := &fakeClock{t0}
	s := newStore(time.Hour, 3, clk.now)
	for i := range 5 {
		s.addEvent(&telemetry.Event{Time: t0.Add(time.Duration(i) * time.Second), Sequence: uint64(i)}, t0)
	}
	seqs := func(start, end time.Time) []uint64 {
		var out []uint64
		s.eachEvent(start, end, func(e storedEvent) bool {
			out = append(out, e.ev.Sequence)
			return true
		})
		return out
	}
	tests := []struct {
		name       string
		start, end time.Time
		want       []uint64
	}{
		{"all kept, oldest evicted", time.Time{}, time.Time{}, []uint64{2, 3, 4}},
		{"inclusive bounds", t0.Add(3 * time.Second), t0.Add(4 * time.Second), []uint64{3, 4}},
		{"open end", t0.Add(4 * time.Second), time.Time{}, []uint64{4}},
		{"before everything", time.Time{}, t0.Add(time.Second), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := seqs(tc.start, tc.end); !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
	if events, _, stored, _, evicted, _ := s.counts(); events != 5 || stored != 3 || evicted != 2 {
		t.Errorf("counts: events %d, stored %d, evicted %d", events, stored, evicted)
	}
	// Stop early.
	n := 0
	s.eachEvent(time.Time{}, time.Time{}, func(storedEvent) bool { n++; return false })
	if n != 1 {
		t.Errorf("eachEvent went on after false: %d calls", n)
	}
	// Retention counts from when the event was received.
	clk.t = t0.Add(time.Hour + time.Second)
	if got := seqs(time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("events past retention returned: %v", got)
	}
}

func TestStoreSignals(t *testing.T) {
	clk := &fakeClock{t0}
	s := newStore(time.Minute, 4, clk.now)
	sig := func(id string, sec int) plugin.Signal {
		return plugin.Signal{ID: id, Timestamp: t0.Add(time.Duration(sec) * time.Second)}
	}
	ids := func(ss []plugin.Signal) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	// Out of order, ties broken by ID, duplicates dropped.
	for _, sg := range []plugin.Signal{sig("c", 3), sig("a", 1), sig("b2", 2), sig("b1", 2), sig("a", 1)} {
		s.addSignal(sg, clk.t)
	}
	if got, want := ids(s.signalsIn(time.Time{}, time.Time{})), []string{"a", "b1", "b2", "c"}; !slices.Equal(got, want) {
		t.Errorf("signals %v, want %v", got, want)
	}
	if got, want := ids(s.signalsIn(t0.Add(2*time.Second), t0.Add(2*time.Second))), []string{"b1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("window [2s, 2s]: %v, want %v", got, want)
	}
	if _, signals, _, stored, _, dups := s.counts(); signals != 4 || stored != 4 || dups != 1 {
		t.Errorf("counts: signals %d, stored %d, duplicates %d", signals, stored, dups)
	}
	// Over the cap, the oldest signals go.
	s.addSignal(sig("d", 4), clk.t)
	if got, want := ids(s.signalsIn(time.Time{}, time.Time{})), []string{"b1", "b2", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("after the cap: %v, want %v", got, want)
	}
	// An evicted signal's ID may be stored again.
	if !s.addSignal(sig("a", 1), clk.t) {
		t.Error("an evicted signal's ID is still taken")
	}
	// Past retention, signals are neither returned nor kept.
	clk.t = t0.Add(2 * time.Minute)
	if got := s.signalsIn(time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("signals past retention returned: %v", ids(got))
	}
	s.addSignal(sig("e", 5), clk.t)
	if got, want := ids(s.signalsIn(time.Time{}, time.Time{})), []string{"e"}; !slices.Equal(got, want) {
		t.Errorf("after pruning: %v, want %v", got, want)
	}
	if _, _, _, stored, _, _ := s.counts(); stored != 1 {
		t.Errorf("%d signals kept after pruning, want 1", stored)
	}
}

func TestMarkerValues(t *testing.T) {
	cl := func(v string) plugin.MarkerValue {
		return plugin.MarkerValue{Location: plugin.MarkerCommandLine, Value: v}
	}
	fp := func(v string) plugin.MarkerValue {
		return plugin.MarkerValue{Location: plugin.MarkerFilePath, Value: v}
	}
	lm := func(v string) plugin.MarkerValue {
		return plugin.MarkerValue{Location: plugin.MarkerLogField, Value: v}
	}
	tests := []struct {
		name string
		ev   telemetry.Event
		want []plugin.MarkerValue
	}{
		{
			name: "process_creation with ancestry",
			ev: telemetry.Event{Source: telemetry.ProcessCreation, Ancestry: []string{"crontab -l", "sh -c crontab -l vigil-x"},
				Fields: map[string]any{"CommandLine": "crontab -l", "CurrentDirectory": "/tmp/vigil-x"}},
			want: []plugin.MarkerValue{cl("crontab -l"), cl("sh -c crontab -l vigil-x"), fp("/tmp/vigil-x")},
		},
		{
			name: "EXECVE arguments joined",
			ev: telemetry.Event{Source: telemetry.Auditd,
				Fields: map[string]any{"type": "EXECVE", "argc": "3", "a0": "/bin/sh", "a1": "-c", "a2": "id vigil-x", "proctitle": "/bin/sh -c id"}},
			want: []plugin.MarkerValue{cl("/bin/sh -c id vigil-x"), cl("/bin/sh -c id")},
		},
		{
			name: "SYSCALL arguments are not a command line",
			ev:   telemetry.Event{Source: telemetry.Auditd, Fields: map[string]any{"type": "SYSCALL", "a0": "3", "a1": "7ffd"}},
			want: nil,
		},
		{
			name: "paths and the replay marker",
			ev: telemetry.Event{Source: telemetry.Auditd, Fields: map[string]any{
				"type": "PATH", "name": "/etc/profile", "cwd": "/root", "TargetFilename": []string{"/a", "/b"}, MarkerField: "vigil-x"}},
			want: []plugin.MarkerValue{fp("/etc/profile"), fp("/a"), fp("/b"), fp("/root"), lm("vigil-x")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := markerValues(&tc.ev); !slices.Equal(got, tc.want) {
				t.Errorf("markerValues = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSignalIDIsStable(t *testing.T) {
	ev := telemetry.Event{Time: t0, Sequence: 7, Host: "h"}
	other := ev
	other.Sequence = 8
	a, b := signalID("r", "", &ev), signalID("r", "", &ev)
	if a != b {
		t.Errorf("two IDs for one rule and event: %s, %s", a, b)
	}
	for _, id := range []string{signalID("r2", "", &ev), signalID("r", "exp", &ev), signalID("r", "", &other)} {
		if id == a {
			t.Errorf("ID %s shared by a different rule, query or event", id)
		}
	}
}
