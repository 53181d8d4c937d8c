package runner

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// countingSIEM answers every search at once: one signal per expectation
// that asked, carrying its marker. It counts searches.
type countingSIEM struct {
	sdk.SIEMBase
	searches atomic.Int64
}

func (c *countingSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "counting", MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}, ReportsHost: true}, nil
}
func (c *countingSIEM) Configure(context.Context, []byte) error { return nil }
func (c *countingSIEM) Search(_ context.Context, r plugin.SearchRequest) (plugin.SearchResult, error) {
	c.searches.Add(1)
	out := plugin.SearchResult{Signals: make([]plugin.Signal, 0, len(r.Expectations))}
	for _, e := range r.Expectations {
		out.Signals = append(out.Signals, plugin.Signal{
			ID: "s-" + e.ID, Techniques: []string{e.Technique}, Timestamp: e.NotBefore.Add(time.Millisecond),
			MarkerValues: []plugin.MarkerValue{{Location: plugin.MarkerCommandLine, Value: "sh -c x " + e.Marker}},
		})
	}
	return out, nil
}

// BenchmarkSearchesPerPoll shows that one poll issues ONE search whatever
// the number of pending expectations (metric searches/poll), and what
// matching costs per expectation.
func BenchmarkSearchesPerPoll(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			siem := &countingSIEM{}
			s := &SIEM{Name: "c", Impl: siem, PollInterval: time.Second}
			t0 := time.Now()
			var polls int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				w := newWatcher(s, time.Now)
				for k := 0; k < n; k++ {
					m := fmt.Sprintf("vigil-%012x", k)
					w.add(&pending{
						exp:        plugin.Expectation{ID: m, Technique: "T1059.004", Marker: m, NotBefore: t0, Deadline: t0.Add(time.Hour)},
						markerLocs: []plugin.MarkerLocation{plugin.MarkerCommandLine},
						done:       make(chan outcome, 1),
					})
				}
				b.StartTimer()
				res, err := w.poll(context.Background(), time.Second)
				if err != nil {
					b.Fatal(err)
				}
				w.match(res.signals, res.answered)
				w.settled = nil
				polls++
				if len(w.pending) != 0 {
					b.Fatalf("%d expectations left unmatched", len(w.pending))
				}
			}
			b.ReportMetric(float64(siem.searches.Load())/float64(polls), "searches/poll")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(polls*int64(n)), "ns/expectation")
		})
	}
}

type nopInjector struct{ sdk.InjectorBase }

func (nopInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "nop", MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}
func (nopInjector) Configure(context.Context, []byte) error { return nil }
func (nopInjector) Inject(_ context.Context, r plugin.InjectRequest) (plugin.InjectResult, error) {
	now := time.Now()
	return plugin.InjectResult{StartedAt: now, EndedAt: now, Outcome: plugin.OutcomeSucceeded, Host: "h"}, nil
}
func (nopInjector) Cleanup(context.Context, plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

// BenchmarkEngineOverheadPerTest measures the engine's own cost per test
// (plan, marker, render, inject and cleanup calls, watcher bookkeeping,
// result assembly) with in-process plugins that answer at once. The poll
// interval is 1ms, so the time is dominated by the engine, not by waiting.
func BenchmarkEngineOverheadPerTest(b *testing.B) {
	tech, err := attack.Lookup("T1059.004")
	if err != nil {
		b.Fatal(err)
	}
	const tests = 200
	var ts []*catalog.Test
	for i := 0; i < tests; i++ {
		ts = append(ts, &catalog.Test{
			ID: fmt.Sprintf("t%d", i), Technique: tech, Tactics: tech.Tactics, Safety: catalog.SafetySafe, Timeout: time.Second,
			Inject: catalog.Step{Plugin: "nop", Params: map[string]any{"command": "echo {{marker}}"}},
			Expect: []catalog.Expectation{{Technique: tech.ID, Within: time.Minute}},
		})
	}
	siem := &countingSIEM{}
	eng := &Engine{
		SIEMs:   []*SIEM{{Name: "c", Impl: siem, Desc: plugin.Description{MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, PollInterval: time.Millisecond, Timeout: time.Minute}},
		Targets: []*Target{{Name: "t", Plugin: "nop", Impl: nopInjector{}, Desc: plugin.Description{MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, Host: "h", TmpRoot: b.TempDir()}},
		Opts:    Options{Concurrency: 64},
	}
	plan, err := eng.Plan(ts)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs := eng.Run(context.Background(), plan)
		for _, r := range rs {
			if r.Status != measure.Detected {
				b.Fatalf("%s: %s %s", r.TestID, r.Status, r.Error)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tests), "ns/test")
}
