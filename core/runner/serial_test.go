package runner_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/runner"
)

// instantSIEM answers every search at once with one signal per
// expectation, carrying its marker, so that jobs finish as soon as they
// are injected.
type instantSIEM struct{ sdk.SIEMBase }

func (instantSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "instant", MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}, ReportsHost: true}, nil
}
func (instantSIEM) Configure(context.Context, []byte) error { return nil }
func (instantSIEM) Search(_ context.Context, r plugin.SearchRequest) (plugin.SearchResult, error) {
	var out plugin.SearchResult
	for _, e := range r.Expectations {
		out.Signals = append(out.Signals, plugin.Signal{
			ID: "s-" + e.ID, Techniques: []string{e.Technique}, Timestamp: e.NotBefore.Add(time.Millisecond),
			MarkerValues: []plugin.MarkerValue{{Location: plugin.MarkerCommandLine, Value: "sh -c x " + e.Marker}},
		})
	}
	return out, nil
}

// overlapInjector records, per serial group and place (target/host), how
// many injections are live at once: from the start of Inject to the end of
// Cleanup, the span the runner must hold the group. Params:
//
//	group  the test's serial group ("" for none)
//	place  "{{target}}/{{host}}"
//	meet   a rendezvous: Inject returns only once need[meet] injections
//	       have arrived at it, so they must run at the same time
//	hold   Cleanup returns only once rendezvous hold is complete, so the
//	       group stays held until the other tests have run alongside
//
// Waits end with the request's context; nothing is timed.
type overlapInjector struct {
	sdk.InjectorBase
	need map[string]int
	// injected receives the test ID of every injection, if set.
	injected chan string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	live     map[string]int
	max      map[string]int
	met      map[string]int
	injects  int
	cleanups int
}

func newOverlapInjector(need map[string]int) *overlapInjector {
	return &overlapInjector{need: need, changed: make(chan struct{}), live: map[string]int{}, max: map[string]int{}, met: map[string]int{}}
}

// update changes the counters under the lock and wakes the waiters.
func (o *overlapInjector) update(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
	close(o.changed)
	o.changed = make(chan struct{})
}

// await returns once rendezvous name is complete, or with ctx's error.
func (o *overlapInjector) await(ctx context.Context, name string) error {
	for {
		o.mu.Lock()
		ok, ch := o.met[name] >= o.need[name], o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for rendezvous %q: %w", name, context.Cause(ctx))
		}
	}
}

func groupKey(p plugin.Params) string { return p.String("group") + " on " + p.String("place") }

func (o *overlapInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "overlap", MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}
func (o *overlapInjector) Configure(context.Context, []byte) error { return nil }

func (o *overlapInjector) Inject(ctx context.Context, r plugin.InjectRequest) (plugin.InjectResult, error) {
	o.update(func() {
		o.injects++
		if r.Params.String("group") != "" {
			k := groupKey(r.Params)
			o.live[k]++
			o.max[k] = max(o.max[k], o.live[k])
		}
		if m := r.Params.String("meet"); m != "" {
			o.met[m]++
		}
	})
	if o.injected != nil {
		o.injected <- r.TestID
	}
	if m := r.Params.String("meet"); m != "" {
		if err := o.await(ctx, m); err != nil {
			return plugin.InjectResult{}, err
		}
	}
	now := time.Now()
	return plugin.InjectResult{StartedAt: now, EndedAt: now, Outcome: plugin.OutcomeSucceeded,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}

func (o *overlapInjector) Cleanup(ctx context.Context, r plugin.CleanupRequest) (plugin.CleanupResult, error) {
	var err error
	if h := r.Params.String("hold"); h != "" {
		err = o.await(ctx, h)
	}
	o.update(func() {
		o.cleanups++
		if r.Params.String("group") != "" {
			o.live[groupKey(r.Params)]--
		}
	})
	return plugin.CleanupResult{}, err
}

// serialTest is a test for the overlap injector; params are its inject and
// cleanup params besides group and place.
func serialTest(t *testing.T, id, group string, params map[string]any) *catalog.Test {
	t.Helper()
	tech, err := attack.Lookup("T1070.004")
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]any{"group": group, "place": "{{target}}/{{host}}"}
	maps.Copy(p, params)
	return &catalog.Test{
		ID: id, Technique: tech, Tactics: tech.Tactics, Name: id, Safety: catalog.SafetySafe, Timeout: time.Minute,
		SerialGroup: group,
		Inject:      catalog.Step{Plugin: "overlap", Params: p}, Cleanup: &catalog.Step{Plugin: "overlap", Params: p},
	}
}

// serialEngine runs the overlap injector on targets named by targets
// (name → hosts; no hosts means the single host "h").
func serialEngine(inj *overlapInjector, conc int, targets map[string][]string) *runner.Engine {
	desc := plugin.Description{MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}
	eng := &runner.Engine{
		SIEMs: []*runner.SIEM{{Name: "instant", Impl: instantSIEM{}, Desc: plugin.Description{MarkerLocations: desc.MarkerLocations, ReportsHost: true},
			PollInterval: 5 * time.Millisecond, Timeout: time.Minute}},
		Opts: runner.Options{Concurrency: conc},
	}
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		eng.Targets = append(eng.Targets, &runner.Target{Name: name, Plugin: "overlap", Impl: inj, Desc: desc, Host: "h", Hosts: targets[name], TmpRoot: "/tmp"})
	}
	return eng
}

// Tests of one serial group never run at once on one target and host,
// whatever the concurrency, while tests of other groups, of no group, on
// other hosts and on other targets run alongside. The rendezvous make the
// second half a fact rather than a timing: a test that meets others can
// only finish if they ran at the same time, and a group's holder keeps
// its group until they did (a runner that let waiting jobs hold slots
// would deadlock there).
func TestEngineSerialGroups(t *testing.T) {
	meet := func(name string) map[string]any { return map[string]any{"meet": name} }
	hold := map[string]any{"hold": "free"}
	tests := []struct {
		name    string
		conc    int
		targets map[string][]string
		need    map[string]int
		tests   func(t *testing.T) []*catalog.Test
		wantMax map[string]int // group on place → most live at once
	}{
		{
			name: "one group on one host runs one at a time, other tests pass its waiting jobs",
			conc: 4, targets: map[string][]string{"lab": nil}, need: map[string]int{"free": 3},
			tests: func(t *testing.T) []*catalog.Test {
				return []*catalog.Test{
					serialTest(t, "g1", "atomic-red-team/T1070.004", hold),
					serialTest(t, "g2", "atomic-red-team/T1070.004", hold),
					serialTest(t, "g3", "atomic-red-team/T1070.004", hold),
					serialTest(t, "f1", "", meet("free")),
					serialTest(t, "f2", "", meet("free")),
					serialTest(t, "f3", "", meet("free")),
				}
			},
			wantMax: map[string]int{"atomic-red-team/T1070.004 on lab/h": 1},
		},
		{
			name: "two groups on one host run alongside",
			conc: 4, targets: map[string][]string{"lab": nil}, need: map[string]int{"ab": 2},
			tests: func(t *testing.T) []*catalog.Test {
				return []*catalog.Test{
					serialTest(t, "a1", "A", meet("ab")), serialTest(t, "a2", "A", meet("ab")),
					serialTest(t, "b1", "B", meet("ab")), serialTest(t, "b2", "B", meet("ab")),
				}
			},
			wantMax: map[string]int{"A on lab/h": 1, "B on lab/h": 1},
		},
		{
			name: "one group runs on every host of a fleet at once",
			conc: 3, targets: map[string][]string{"fleet": {"web-1", "web-2:2222", "web-3"}}, need: map[string]int{"hosts": 3},
			tests: func(t *testing.T) []*catalog.Test {
				return []*catalog.Test{serialTest(t, "g1", "G", meet("hosts")), serialTest(t, "g2", "G", meet("hosts"))}
			},
			wantMax: map[string]int{"G on fleet/web-1": 1, "G on fleet/web-2": 1, "G on fleet/web-3": 1},
		},
		{
			name: "one group runs on two targets of the same host name at once",
			conc: 2, targets: map[string][]string{"lab1": nil, "lab2": nil}, need: map[string]int{"targets": 2},
			tests: func(t *testing.T) []*catalog.Test {
				return []*catalog.Test{serialTest(t, "g1", "G", meet("targets")), serialTest(t, "g2", "G", meet("targets"))}
			},
			wantMax: map[string]int{"G on lab1/h": 1, "G on lab2/h": 1},
		},
		{
			name: "concurrency 1",
			conc: 1, targets: map[string][]string{"lab": nil},
			tests: func(t *testing.T) []*catalog.Test {
				return []*catalog.Test{serialTest(t, "g1", "G", nil), serialTest(t, "f1", "", nil), serialTest(t, "g2", "G", nil)}
			},
			wantMax: map[string]int{"G on lab/h": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj := newOverlapInjector(tc.need)
			eng := serialEngine(inj, tc.conc, tc.targets)
			// A runner that deadlocks fails here instead of hanging.
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Minute, errors.New("deadlock: the run did not finish"))
			defer cancel()
			eng.Opts.CleanupContext = ctx
			plan, err := eng.Plan(tc.tests(t))
			if err != nil {
				t.Fatal(err)
			}
			rs := eng.Run(ctx, plan)
			if len(rs) != len(plan.Jobs) {
				t.Fatalf("%d results for %d jobs", len(rs), len(plan.Jobs))
			}
			for _, r := range rs {
				if r.Status != measure.Detected || r.Injection == nil || r.Injection.Cleanup != "" {
					t.Errorf("%s on %s: status %s error %q injection %+v, want detected and cleaned up", r.TestID, r.Target, r.Status, r.Error, r.Injection)
				}
			}
			inj.mu.Lock()
			defer inj.mu.Unlock()
			if inj.injects != len(plan.Jobs) || inj.cleanups != len(plan.Jobs) {
				t.Errorf("%d injects, %d cleanups, want %d each", inj.injects, inj.cleanups, len(plan.Jobs))
			}
			if !maps.Equal(inj.max, tc.wantMax) {
				t.Errorf("most live at once per group and place: %v, want %v", inj.max, tc.wantMax)
			}
		})
	}
}

// A run interrupted while jobs wait (for their serial group, or for a
// slot) skips them with the interrupt's cause: they never inject, and the
// run returns once the running job has cleaned up.
func TestEngineSerialGroupInterrupt(t *testing.T) {
	tests := []struct {
		name   string
		conc   int
		groups [2]string
	}{
		{name: "waiting for its serial group", conc: 2, groups: [2]string{"G", "G"}},
		{name: "waiting for a slot", conc: 1, groups: [2]string{"", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj := newOverlapInjector(map[string]int{"never": 2})
			inj.injected = make(chan string, 2)
			eng := serialEngine(inj, tc.conc, map[string][]string{"lab": nil})
			plan, err := eng.Plan([]*catalog.Test{
				serialTest(t, "holder", tc.groups[0], map[string]any{"meet": "never"}),
				serialTest(t, "waiter", tc.groups[1], nil),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			done := make(chan []measure.Result)
			go func() { done <- eng.Run(ctx, plan) }()
			if id := <-inj.injected; id != "holder" {
				t.Fatalf("first injection %q, want holder", id)
			}
			cancel(errors.New("operator stop"))
			rs := <-done

			got := map[string]measure.Result{}
			for _, r := range rs {
				got[r.TestID] = r
			}
			if r := got["holder"]; r.Status != measure.Error || !strings.Contains(r.Error, "operator stop") {
				t.Errorf("holder: status %s error %q, want an error saying why it stopped", r.Status, r.Error)
			}
			if r := got["waiter"]; r.Status != measure.Skipped || r.Reason != "not run: operator stop" {
				t.Errorf("waiter: status %s reason %q, want skipped: not run: operator stop", r.Status, r.Reason)
			}
			inj.mu.Lock()
			defer inj.mu.Unlock()
			if inj.injects != 1 || inj.cleanups != 1 {
				t.Errorf("%d injects, %d cleanups, want the holder's only", inj.injects, inj.cleanups)
			}
		})
	}
}
