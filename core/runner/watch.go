package runner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// markerPattern finds run markers (NewMarker) in signal fields.
var markerPattern = regexp.MustCompile(`vigil-[0-9a-f]{12}`)

// maxPagesPerPoll bounds the pages one poll reads, so that a SIEM answering
// an endless cursor cannot stall the watcher.
const maxPagesPerPoll = 100

// outcome resolves one pending expectation.
type outcome struct {
	status      measure.Status
	signal      *plugin.Signal
	observedAt  time.Time
	correlation string
	err         string
}

// pending is an expectation waiting on a watcher.
type pending struct {
	exp plugin.Expectation
	// markerLocs are the places where both the injector planted the marker
	// and the SIEM can find it; empty means the time+host fallback.
	markerLocs []plugin.MarkerLocation
	done       chan outcome // buffered, receives exactly one outcome
}

// watcher polls one SIEM: per poll interval ONE batched search (paged)
// covering every pending expectation, however many there are.
type watcher struct {
	siem *SIEM
	now  func() time.Time

	mu       sync.Mutex
	pending  map[string]*pending
	consumed map[string]bool // signal IDs already credited to an expectation
	wake     chan struct{}

	// searches counts Search calls (pages included), for tests and benchmarks.
	searches int64
	polls    int64
}

func newWatcher(s *SIEM, now func() time.Time) *watcher {
	return &watcher{siem: s, now: now, pending: map[string]*pending{}, consumed: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// add registers an expectation; its outcome arrives on p.done.
func (w *watcher) add(p *pending) {
	w.mu.Lock()
	w.pending[p.exp.ID] = p
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) resolve(id string, o outcome) {
	p, ok := w.pending[id]
	if !ok {
		return
	}
	delete(w.pending, id)
	p.done <- o
}

// failAll resolves every pending expectation with an error.
func (w *watcher) failAll(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.pending {
		w.resolve(id, outcome{status: measure.Error, err: msg})
	}
}

// run polls until ctx ends; pending expectations then resolve as errors
// (an interrupted wait is not a miss).
func (w *watcher) run(ctx context.Context) {
	interval := w.siem.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	grace := 3 * interval
	if grace < 10*time.Second {
		grace = 10 * time.Second
	}
	var (
		lastOK   time.Time // end of the window of the last successful search
		lastErr  error
		failures int
	)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		w.mu.Lock()
		idle := len(w.pending) == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				w.failAll("interrupted: " + context.Cause(ctx).Error())
				return
			case <-w.wake:
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(interval)
			continue
		}
		select {
		case <-ctx.Done():
			w.failAll("interrupted: " + context.Cause(ctx).Error())
			return
		case <-w.wake:
			continue
		case <-timer.C:
		}

		wait := interval
		signals, retryAfter, end, err := w.poll(ctx)
		switch {
		case err == nil:
			lastOK, lastErr, failures = end, nil, 0
			w.match(signals, end)
		case ctx.Err() != nil:
			continue // the select above reports the interruption
		case errors.Is(err, plugin.ErrPluginGone):
			w.failAll(fmt.Sprintf("siem %q: %v", w.siem.Name, err))
			continue
		default:
			lastErr = err
			failures++
			wait = backoff(interval, failures)
		}
		if retryAfter > wait {
			wait = retryAfter
		}
		w.expire(lastOK, lastErr, grace)
		timer.Reset(wait)
	}
}

// backoff doubles the interval per consecutive failure, capped at a minute.
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < time.Minute; i++ {
		d *= 2
	}
	if d > time.Minute {
		d = time.Minute
	}
	return d
}

// poll issues one batched search (following pages) over the window from the
// earliest pending injection to now.
func (w *watcher) poll(ctx context.Context) ([]plugin.Signal, time.Duration, time.Time, error) {
	w.mu.Lock()
	exps := make([]plugin.Expectation, 0, len(w.pending))
	var start time.Time
	for _, p := range w.pending {
		exps = append(exps, p.exp)
		if start.IsZero() || p.exp.NotBefore.Before(start) {
			start = p.exp.NotBefore
		}
	}
	w.polls++
	w.mu.Unlock()
	sort.Slice(exps, func(i, j int) bool { return exps[i].ID < exps[j].ID })

	end := w.now()
	start = start.Add(-ClockTolerance)
	req := plugin.SearchRequest{Start: start, End: end, Expectations: exps, PageSize: w.siem.PageSize}
	var (
		all        []plugin.Signal
		retryAfter time.Duration
	)
	for page := 0; page < maxPagesPerPoll; page++ {
		w.mu.Lock()
		w.searches++
		w.mu.Unlock()
		res, err := w.siem.Impl.Search(ctx, req)
		if err != nil {
			return nil, 0, end, fmt.Errorf("siem %q: search: %w", w.siem.Name, err)
		}
		all = append(all, res.Signals...)
		if res.RetryAfter > retryAfter {
			retryAfter = res.RetryAfter
		}
		if res.NextPageToken == "" || res.NextPageToken == req.PageToken {
			break
		}
		req.PageToken = res.NextPageToken
	}
	return all, retryAfter, end, nil
}

// match credits signals to pending expectations: earliest injection first,
// each signal at most once.
func (w *watcher) match(signals []plugin.Signal, observedAt time.Time) {
	sort.SliceStable(signals, func(i, j int) bool { return signals[i].Timestamp.Before(signals[j].Timestamp) })
	w.mu.Lock()
	defer w.mu.Unlock()
	ps := make([]*pending, 0, len(w.pending))
	for _, p := range w.pending {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].exp.NotBefore.Equal(ps[j].exp.NotBefore) {
			return ps[i].exp.NotBefore.Before(ps[j].exp.NotBefore)
		}
		return ps[i].exp.ID < ps[j].exp.ID
	})
	// Index the signals by the run markers their marker fields carry, so
	// that matching stays linear in pending expectations and signals.
	byMarker := map[string][]int{}
	for i := range signals {
		for _, mv := range signals[i].MarkerValues {
			for _, m := range markerPattern.FindAllString(mv.Value, -1) {
				if l := byMarker[m]; len(l) == 0 || l[len(l)-1] != i {
					byMarker[m] = append(byMarker[m], i)
				}
			}
		}
	}
	all := make([]int, len(signals))
	for i := range all {
		all[i] = i
	}
	for _, p := range ps {
		candidates := all
		if len(p.markerLocs) > 0 && markerPattern.MatchString(p.exp.Marker) {
			candidates = byMarker[p.exp.Marker]
		}
		for _, i := range candidates {
			s := &signals[i]
			if s.ID != "" && w.consumed[s.ID] {
				continue
			}
			how, ok := Match(p.exp, p.markerLocs, *s)
			if !ok {
				continue
			}
			if s.ID != "" {
				w.consumed[s.ID] = true
			}
			st := measure.Detected
			if p.exp.Absent {
				st = measure.Noisy
			}
			sig := *s
			w.resolve(p.exp.ID, outcome{status: st, signal: &sig, observedAt: observedAt, correlation: how})
			break
		}
	}
}

// expire resolves expectations whose deadline a successful search has
// covered (missed, or quiet for absent ones), and those whose SIEM could not
// be searched past the deadline plus grace (error: never a silent miss).
func (w *watcher) expire(lastOK time.Time, lastErr error, grace time.Duration) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, p := range w.pending {
		switch {
		case !lastOK.IsZero() && !lastOK.Before(p.exp.Deadline):
			st := measure.Missed
			if p.exp.Absent {
				st = measure.Quiet
			}
			w.resolve(id, outcome{status: st})
		case now.After(p.exp.Deadline.Add(grace)):
			msg := fmt.Sprintf("siem %q: no successful search after the deadline", w.siem.Name)
			if lastErr != nil {
				msg = lastErr.Error()
			}
			w.resolve(id, outcome{status: measure.Error, err: msg})
		}
	}
}

// ClockTolerance is how far before the injection start a signal may be
// stamped and still count: kernel audit timestamps come from a coarse clock
// (measured up to ~2ms before the injector's own start time). It is far
// below any real detection latency and far above clock granularity.
const ClockTolerance = 20 * time.Millisecond

// Match reports whether signal s satisfies expectation e and how it was
// correlated. markerLocs are the locations where the marker can be found;
// when empty, the signal is tied by time window and host.
//
// A signal counts only if its timestamp is at or after the injection start.
// By default a signal tagged with the expected technique (or its parent)
// matches; a rule name or ID, or a native query, replaces that criterion.
func Match(e plugin.Expectation, markerLocs []plugin.MarkerLocation, s plugin.Signal) (string, bool) {
	if s.Timestamp.Before(e.NotBefore.Add(-ClockTolerance)) {
		return "", false
	}
	switch {
	case e.Query != "":
		if !contains(s.MatchedExpectations, e.ID) {
			return "", false
		}
	case e.RuleName != "" || e.RuleID != "":
		if e.RuleName != "" && !strings.EqualFold(strings.TrimSpace(s.RuleName), strings.TrimSpace(e.RuleName)) {
			return "", false
		}
		if e.RuleID != "" && !strings.EqualFold(s.RuleID, e.RuleID) {
			return "", false
		}
	default:
		if !coversTechnique(s.Techniques, e.Technique) {
			return "", false
		}
	}
	if len(markerLocs) > 0 {
		for _, mv := range s.MarkerValues {
			if e.Marker != "" && containsLoc(markerLocs, mv.Location) && strings.Contains(mv.Value, e.Marker) {
				return "marker:" + string(mv.Location), true
			}
		}
		return "", false
	}
	if e.Host != "" && s.Host != "" && sameHost(e.Host, s.Host) {
		return "time+host", true
	}
	return "", false
}

func coversTechnique(tags []string, expected string) bool {
	want := attack.TechniqueID(strings.ToUpper(expected))
	for _, t := range tags {
		if attack.TechniqueID(strings.ToUpper(strings.TrimSpace(t))).Covers(want) {
			return true
		}
	}
	return false
}

// sameHost compares host names case-insensitively, and a short name with
// the first label of a fully qualified one.
func sameHost(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	short := func(h string) string {
		if i := strings.IndexByte(h, '.'); i > 0 {
			return h[:i]
		}
		return h
	}
	return short(a) == short(b)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func containsLoc(xs []plugin.MarkerLocation, x plugin.MarkerLocation) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// intersect returns the marker locations present in both lists.
func intersect(a, b []plugin.MarkerLocation) []plugin.MarkerLocation {
	var out []plugin.MarkerLocation
	for _, x := range a {
		if containsLoc(b, x) && !containsLoc(out, x) {
			out = append(out, x)
		}
	}
	return out
}
