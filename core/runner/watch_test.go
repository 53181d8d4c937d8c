package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// scriptSIEM answers each search with the signals the test put in
// `visible` by then, and counts searches and raw-event searches.
type scriptSIEM struct {
	sdk.SIEMBase
	mu          sync.Mutex
	visible     []plugin.Signal
	searches    int
	rawSearches int
	rawMarkers  [][]string
	events      map[string][]plugin.RawEvent
}

func (f *scriptSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{}, nil
}
func (f *scriptSIEM) Configure(context.Context, []byte) error { return nil }
func (f *scriptSIEM) Search(_ context.Context, r plugin.SearchRequest) (plugin.SearchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches++
	return plugin.SearchResult{Signals: append([]plugin.Signal(nil), f.visible...)}, nil
}
func (f *scriptSIEM) SearchRawEvents(_ context.Context, r plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rawSearches++
	f.rawMarkers = append(f.rawMarkers, r.Markers)
	var out []plugin.RawEvent
	for _, m := range r.Markers {
		out = append(out, f.events[m]...)
	}
	return out, nil
}

// fakeClock is the watcher's clock, moved by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var locs = []plugin.MarkerLocation{plugin.MarkerCommandLine}

func marked(id, marker string, ts time.Time) plugin.Signal {
	return plugin.Signal{ID: id, RuleName: "Late Rule", Techniques: []string{"T1059.004"}, Timestamp: ts,
		MarkerValues: []plugin.MarkerValue{{Location: plugin.MarkerCommandLine, Value: "sh -c " + marker}}}
}

// step is one successful poll of the run loop: search, match, expire,
// deliver.
func step(t *testing.T, w *watcher) {
	t.Helper()
	res, err := w.poll(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w.match(res.signals, res.answered)
	w.expire(res.end)
	w.deliver(context.Background())
}

// A signal that becomes searchable only after the deadline was covered is
// found by the last look: the miss says alert_outside_window, with where it
// was stamped. Nothing comes of a last look that finds nothing.
func TestWatcherLastLook(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		stamped time.Duration // signal timestamp after the injection; 0: no signal
		says    string
	}{
		{name: "stamped after the deadline", stamped: 3500 * time.Millisecond, says: "stamped 1.5s after the deadline (3.5s after the injection), found only once the deadline had passed"},
		{name: "stamped inside, searchable late", stamped: 1500 * time.Millisecond, says: "stamped 1.5s after the injection, inside the window, but became searchable only after the deadline"},
		{name: "nothing late", says: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			siem := &scriptSIEM{}
			w := newWatcher(&SIEM{Name: "s", Impl: siem, Desc: plugin.Description{Capabilities: []string{plugin.CapRawEvents}}, PollInterval: time.Second}, clk.now)
			m := "vigil-00000000000a"
			p := &pending{exp: plugin.Expectation{ID: "e", Technique: "T1059.004", Marker: m, Host: "h", NotBefore: t0, Deadline: t0.Add(2 * time.Second)},
				markerLocs: locs, done: make(chan outcome, 1)}
			w.add(p)
			clk.t = t0.Add(time.Second)
			step(t, w) // before the deadline
			clk.t = t0.Add(2100 * time.Millisecond)
			step(t, w) // covers the deadline: last look next
			if len(p.done) != 0 || !p.closing {
				t.Fatalf("settled at the first search past the deadline (closing %v)", p.closing)
			}
			if tc.stamped != 0 {
				siem.visible = []plugin.Signal{marked("late", m, t0.Add(tc.stamped))}
			}
			clk.t = t0.Add(3100 * time.Millisecond)
			step(t, w)
			o := <-p.done
			if o.status != measure.Missed {
				t.Fatalf("status %s, want missed", o.status)
			}
			d := diagnose(w.siem, p.exp, o, 2*time.Second)
			if tc.says == "" {
				if d.Class != measure.NoTelemetry {
					t.Errorf("diagnosis %s: %s, want no_telemetry", d.Class, d.Summary)
				}
				return
			}
			if d.Class != measure.AlertOutsideWindow || !strings.Contains(d.Summary, tc.says) {
				t.Errorf("diagnosis %s: %s\nwant alert_outside_window saying %q", d.Class, d.Summary, tc.says)
			}
		})
	}
}

// The outcomes one poll settles share ONE raw-event search, whatever their
// number; expectations still pending are not searched.
func TestWatcherBatchesRawEvents(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	siem := &scriptSIEM{events: map[string][]plugin.RawEvent{}}
	w := newWatcher(&SIEM{Name: "s", Impl: siem, Desc: plugin.Description{Capabilities: []string{plugin.CapRawEvents}}, PollInterval: time.Second}, clk.now)
	const n = 50
	var ps []*pending
	for i := 0; i < n; i++ {
		m := fmt.Sprintf("vigil-%012x", i)
		deadline := t0.Add(time.Second)
		if i%2 == 1 {
			deadline = t0.Add(time.Hour) // stays pending
		}
		p := &pending{exp: plugin.Expectation{ID: m, Technique: "T1059.004", Marker: m, NotBefore: t0, Deadline: deadline}, markerLocs: locs, done: make(chan outcome, 1)}
		ps = append(ps, p)
		w.add(p)
		if i%4 == 0 {
			siem.visible = append(siem.visible, marked("s"+m, m, t0.Add(10*time.Millisecond)))
			siem.events[m] = []plugin.RawEvent{{Marker: m, Timestamp: t0.Add(time.Millisecond), IngestedAt: t0.Add(2 * time.Millisecond)}}
		}
	}
	clk.t = t0.Add(1500 * time.Millisecond)
	step(t, w) // detects i%4 == 0, closes the other even ones
	step(t, w) // the even ones not detected are missed
	if siem.rawSearches != 2 || siem.searches != 2 {
		t.Fatalf("%d searches, %d raw-event searches, want 2 and 2: one of each per poll", siem.searches, siem.rawSearches)
	}
	if got := len(siem.rawMarkers[0]) + len(siem.rawMarkers[1]); got != n/2 {
		t.Errorf("raw-event searches asked for %d markers, want the %d settled ones", got, n/2)
	}
	for i, p := range ps {
		if i%2 == 1 {
			if len(p.done) != 0 {
				t.Errorf("%d: settled before its deadline", i)
			}
			continue
		}
		o := <-p.done
		want := measure.Missed
		if i%4 == 0 {
			want = measure.Detected
			if o.raw == nil || len(o.raw.events) != 1 {
				t.Errorf("%d: detected without its raw events: %+v", i, o.raw)
			}
		}
		if o.status != want {
			t.Errorf("%d: %s, want %s", i, o.status, want)
		}
	}
}
