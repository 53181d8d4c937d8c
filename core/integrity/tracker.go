package integrity

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Finding is a change left on the host after a run, with the tests that
// were changing the host when it appeared.
type Finding struct {
	Change
	// Tests were in a step that changes the host (prerequisites,
	// injection, cleanup) between the last snapshot without the change and
	// the first with it. Empty: no test was.
	Tests []string
}

// Attribution says who made the change, in words.
func (f Finding) Attribution() string {
	switch len(f.Tests) {
	case 0:
		return "no test was changing the host when it appeared: something else on the host did it"
	case 1:
		return f.Tests[0]
	default:
		return "one of " + strings.Join(f.Tests, ", ") + " (they were changing the host at the same time; it cannot tell which)"
	}
}

// Report is what a tracked run left on the host.
type Report struct {
	Findings []Finding
	// Entries is the size of a snapshot (paths and items); Snapshots how
	// many were taken; Cost their total time.
	Entries, Snapshots int
	Cost               time.Duration
}

// Tracker follows a run: a snapshot before it, one each time a test ends
// a step that changes the host, and one after it.
type Tracker struct {
	sc *Scanner

	mu      sync.Mutex
	base    *Snapshot
	last    *Snapshot
	steps   []step
	active  map[string]int
	touched map[string]bool
	logs    []Finding
	cost    time.Duration
	err     error
}

// step is one snapshot after the base: what differed from the base, and
// the tests changing the host since the snapshot before.
type step struct {
	differs map[string]bool
	tests   []string
}

// Start takes the snapshot before the run.
func Start(ctx context.Context, sc *Scanner) (*Tracker, error) {
	base, err := sc.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &Tracker{sc: sc, base: base, last: base, active: map[string]int{}, touched: map[string]bool{}, cost: base.Took}, nil
}

// Begin says test is starting a step that may change the host.
func (t *Tracker) Begin(test string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active[test]++
	t.touched[test] = true
}

// End says test ended that step: the host is read again before the test
// counts as done.
func (t *Tracker) End(ctx context.Context, test string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.snapshot(ctx)
	if t.active[test]--; t.active[test] <= 0 {
		delete(t.active, test)
	}
	// From now on, only the tests still in a step are changing the host.
	t.touched = map[string]bool{}
	for k := range t.active {
		t.touched[k] = true
	}
}

// snapshot reads the host and records what differs from the base, with
// the tests changing the host since the last snapshot. Called locked.
func (t *Tracker) snapshot(ctx context.Context) {
	if t.err != nil {
		return
	}
	s, err := t.sc.Snapshot(ctx)
	if err != nil {
		t.err = err
		return
	}
	t.cost += s.Took
	tests := make([]string, 0, len(t.touched))
	for k := range t.touched {
		tests = append(tests, k)
	}
	sort.Strings(tests)
	st := step{differs: map[string]bool{}, tests: tests}
	for _, k := range unionKeys(t.base.state, s.state) {
		if _, ok := diffState(k, t.base.state, s.state); ok {
			st.differs[k] = true
		}
	}
	if _, ok := diffClock(t.base.clock, s.clock); ok {
		st.differs["clock"] = true
	}
	t.steps = append(t.steps, st)
	// Logs are compared with the snapshot before: one truncated and grown
	// again since is still found.
	for _, c := range diffLogs(t.last.logs, s.logs, t.base.logs) {
		t.logs = append(t.logs, Finding{Change: c, Tests: tests})
	}
	t.last = s
}

// Finish takes the snapshot after the run and reports every change left,
// with its tests.
func (t *Tracker) Finish(ctx context.Context) (*Report, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.snapshot(ctx)
	if t.err != nil {
		return nil, fmt.Errorf("integrity: %w", t.err)
	}
	final := t.last
	r := &Report{Entries: t.base.Entries(), Snapshots: len(t.steps) + 1, Cost: t.cost}
	for _, k := range unionKeys(t.base.state, final.state) {
		if c, ok := diffState(k, t.base.state, final.state); ok {
			r.Findings = append(r.Findings, Finding{Change: c, Tests: t.culprits(k)})
		}
	}
	if c, ok := diffClock(t.base.clock, final.clock); ok {
		r.Findings = append(r.Findings, Finding{Change: c, Tests: t.culprits("clock")})
	}
	seen := map[string]bool{}
	for _, f := range t.logs {
		if !seen[f.Path] {
			seen[f.Path] = true
			r.Findings = append(r.Findings, f)
		}
	}
	return r, nil
}

// culprits are the tests of the step where k began to differ from the
// base for good.
func (t *Tracker) culprits(k string) []string {
	i := len(t.steps) - 1
	for i > 0 && t.steps[i-1].differs[k] {
		i--
	}
	if i < 0 {
		return nil
	}
	return t.steps[i].tests
}
