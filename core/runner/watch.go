package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// maxPagesPerPoll bounds the pages one poll reads, so that a SIEM answering
// an endless cursor cannot stall the watcher; reaching it is an error.
const maxPagesPerPoll = 100

// rawEventsTimeout bounds one batched raw-event search.
const rawEventsTimeout = 30 * time.Second

// outcome resolves one pending expectation.
type outcome struct {
	status measure.Status
	signal *plugin.Signal
	// at is the time credited to the signal: its timestamp, corrected by
	// the SIEM's clock offset when clockOffset is set.
	at          time.Time
	clockOffset time.Duration
	observedAt  time.Time
	correlation string
	err         string
	// evidence gathered while waiting, for the diagnosis of a miss.
	evidence evidence
	// raw is what the batched raw-event search found for the marker; nil
	// when the SIEM cannot search raw events or nothing was searched.
	raw *rawFinding
}

// evidence is what the searches showed about an expectation that did not
// (yet) match: at most maxEvidence signals of each kind.
type evidence struct {
	wrong, unmarked, outside []seen
}

// seen is a signal kept as evidence; late says it was found only after the
// deadline had passed.
type seen struct {
	sig  plugin.Signal
	late bool
}

const maxEvidence = 3

func (ev *evidence) add(list *[]seen, s plugin.Signal, late bool) {
	for _, x := range *list {
		if s.ID != "" && x.sig.ID == s.ID {
			return
		}
	}
	if len(*list) < maxEvidence {
		*list = append(*list, seen{sig: s, late: late})
	}
}

// rawFinding is the result of the raw-event search for one marker.
type rawFinding struct {
	events []plugin.RawEvent
	err    error
}

// pending is an expectation waiting on a watcher.
type pending struct {
	exp plugin.Expectation
	// markerLocs are the places where both the injector planted the marker
	// and the SIEM can find it; empty means the time+host fallback.
	markerLocs []plugin.MarkerLocation
	done       chan outcome // buffered, receives exactly one outcome
	// closing is set once a successful search covered the deadline without
	// a match: the next search is a last look for a signal that comes late
	// (the evidence of alert_outside_window), then the expectation is
	// missed. closedAt is when that search was sent.
	closing  bool
	closedAt time.Time
	ev       evidence
}

// watcher polls one SIEM: per poll interval ONE batched search (paged)
// covering every pending expectation, however many there are, and at most
// one batched raw-event search for the expectations that poll settled.
type watcher struct {
	siem *SIEM
	now  func() time.Time

	mu       sync.Mutex
	pending  map[string]*pending
	consumed map[string]bool // signal IDs already credited to an expectation
	wake     chan struct{}
	// settled are outcomes decided by the current poll, delivered once the
	// raw-event search has run.
	settled []settlement
	// clock is the SIEM's measured clock offset, when significant.
	clock   *clockCorrection
	reading *plugin.ClockReading

	// searches counts Search calls (pages included), rawSearches
	// SearchRawEvents calls, for tests and benchmarks.
	searches, rawSearches int64
	polls                 int64
}

// settlement is an outcome waiting for delivery.
type settlement struct {
	p *pending
	o outcome
}

func newWatcher(s *SIEM, now func() time.Time) *watcher {
	return &watcher{siem: s, now: now, pending: map[string]*pending{}, consumed: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// slack is how far before the earliest pending injection (and after now)
// searches reach: the SIEM's clock slack, at least ClockTolerance.
func (w *watcher) slack() time.Duration {
	return max(w.siem.ClockSlack, ClockTolerance)
}

// lead is how far ahead of this host's clock the SIEM's may be, capped at
// the slack, when a reading says it is surely ahead (beyond the reading's
// uncertainty); else 0.
func (w *watcher) lead() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reading == nil || w.reading.Offset-w.reading.Uncertainty <= 0 {
		return 0
	}
	return min(w.reading.Offset+w.reading.Uncertainty, w.slack())
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

// settle takes an expectation off the pending set; its outcome is
// delivered by deliver. w.mu must be held.
func (w *watcher) settle(id string, o outcome) {
	p, ok := w.pending[id]
	if !ok {
		return
	}
	delete(w.pending, id)
	o.evidence = p.ev
	w.settled = append(w.settled, settlement{p: p, o: o})
}

// failAll resolves every pending expectation with an error, and delivers
// what was settled without a raw-event search.
func (w *watcher) failAll(msg string) {
	w.mu.Lock()
	for id := range w.pending {
		w.settle(id, outcome{status: measure.Error, err: msg})
	}
	settled := w.settled
	w.settled = nil
	w.mu.Unlock()
	for _, st := range settled {
		st.p.done <- st.o
	}
}

// readClock asks the SIEM for its clock once, when it can tell; an offset
// beyond the reading's uncertainty is then taken off the timestamps of
// marker-tied signals stamped outside their window.
func (w *watcher) readClock(ctx context.Context, timeout time.Duration) {
	if !w.siem.Desc.Has(plugin.CapClock) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := w.siem.Impl.Clock(cctx)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reading = &r
	if abs(r.Offset) > r.Uncertainty+ClockTolerance {
		w.clock = &clockCorrection{offset: r.Offset, uncertainty: r.Uncertainty}
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
	// The first poll is due one interval from now; the clock is read in
	// that time, and given no more than a second beyond it: a SIEM slow to
	// answer must not hold the tests' deadlines.
	timer := time.NewTimer(interval)
	defer timer.Stop()
	w.readClock(ctx, min(max(interval, time.Second), 10*time.Second))
	var (
		lastErr  error
		failures int
		// denied is the error that ended every search for good (the
		// plugin is gone, or the SIEM refused the credentials).
		denied error
	)
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

		if denied != nil {
			w.failAll(denied.Error())
			continue
		}
		if lastErr != nil {
			// The searches are failing: end what is due before asking
			// again, not after.
			w.expireFailed(lastErr, interval, grace)
			w.deliver(ctx)
		}
		wait := interval
		res, err := w.poll(ctx, interval)
		switch {
		case err == nil:
			lastErr, failures = nil, 0
			w.match(res.signals, res.answered)
			w.expire(res.end)
		case ctx.Err() != nil:
			continue // the select above reports the interruption
		case errors.Is(err, plugin.ErrPluginGone), errors.Is(err, plugin.ErrDenied):
			// Asking again cannot succeed (and a refused login asked again
			// may lock the account): every test waiting on this SIEM ends,
			// and so will every later one, without another search.
			denied = err
			w.failAll(err.Error())
			continue
		default:
			lastErr = err
			failures++
			wait = backoff(interval, failures)
		}
		if res.retryAfter > wait {
			wait = res.retryAfter
		}
		w.expireFailed(lastErr, interval, grace)
		w.deliver(ctx)
		timer.Reset(w.wakeBy(wait, interval))
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

// pollResult is what one poll found.
type pollResult struct {
	signals    []plugin.Signal
	retryAfter time.Duration
	// end is when the search was sent: it covers the deadlines up to then.
	end time.Time
	// answered is when its last page came back: when vigil saw its signals.
	answered time.Time
}

// poll issues one batched search (following pages) over the window from
// the earliest pending injection, less the clock slack, to now (plus the
// SIEM's measured lead when its clock is ahead: it stamps signals in this
// host's future). Paging that does not advance (a cursor the SIEM ignores,
// a page it repeats) or never ends is an error, never a silent stop. The
// search must answer by the time a pending test is due to end (see
// cutoff): a SIEM that hangs, or a plugin that keeps retrying, cannot hold
// a test past its deadline plus one poll interval.
func (w *watcher) poll(ctx context.Context, interval time.Duration) (pollResult, error) {
	w.mu.Lock()
	exps := make([]plugin.Expectation, 0, len(w.pending))
	var start time.Time
	for _, p := range w.pending {
		exps = append(exps, p.exp)
		if start.IsZero() || p.exp.NotBefore.Before(start) {
			start = p.exp.NotBefore
		}
	}
	cut := w.cutoffLocked(interval)
	w.polls++
	w.mu.Unlock()
	sort.Slice(exps, func(i, j int) bool { return exps[i].ID < exps[j].ID })
	if !cut.IsZero() {
		// A timeout from w.now, not a deadline: tests run the watcher on
		// a clock of their own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cut.Sub(w.now()), errSearchCut)
		defer cancel()
	}

	res := pollResult{end: w.now()}
	req := plugin.SearchRequest{Start: start.Add(-w.slack()), End: res.end.Add(w.lead()), Expectations: exps, PageSize: w.siem.PageSize}
	seenIDs := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxPagesPerPoll {
			return res, fmt.Errorf("siem %q: search: more than %d pages in one poll: the SIEM's cursor never ends (or the window holds too many signals: narrow the plugin's query)", w.siem.Name, maxPagesPerPoll)
		}
		w.mu.Lock()
		w.searches++
		w.mu.Unlock()
		r, err := w.siem.Impl.Search(ctx, req)
		if err != nil {
			// The plugin gets the same deadline over gRPC, so its own
			// cancellation may arrive a moment before ours fires.
			if errors.Is(context.Cause(ctx), errSearchCut) || !cut.IsZero() && !w.now().Add(cutSlack).Before(cut) {
				return res, fmt.Errorf("siem %q: search: no answer %s after it was sent, by the time a pending test was due to end: %w", w.siem.Name, w.now().Sub(res.end).Round(time.Millisecond), err)
			}
			return res, fmt.Errorf("siem %q: search: %w", w.siem.Name, err)
		}
		if r.NextPageToken != "" && r.NextPageToken == req.PageToken {
			return res, fmt.Errorf("siem %q: search: page %d returned the page token it was given: the paging cursor does not advance, so the answer would be incomplete", w.siem.Name, page)
		}
		if page > 1 && repeated(r.Signals, seenIDs) {
			return res, fmt.Errorf("siem %q: search: page %d repeats signals of an earlier page: the SIEM ignores the paging cursor, so the answer would be incomplete", w.siem.Name, page)
		}
		for _, s := range r.Signals {
			if s.ID != "" {
				seenIDs[s.ID] = true
			}
		}
		res.signals = append(res.signals, r.Signals...)
		res.retryAfter = max(res.retryAfter, r.RetryAfter)
		if r.NextPageToken == "" {
			res.answered = w.now()
			return res, nil
		}
		req.PageToken = r.NextPageToken
	}
}

// cutSlack is how early before the cut a failed search still counts as
// cut off (see poll).
const cutSlack = 50 * time.Millisecond

// errSearchCut is the cause of a search the watcher stopped waiting for.
var errSearchCut = errors.New("search cut at a pending test's due time")

// cutoffLocked is when the next search must have answered: the earliest
// time a pending test is due to end (one interval after its deadline; for
// one in its last look, one interval after that look begins), and at
// least half an interval from now. Zero when nothing is pending.
func (w *watcher) cutoffLocked(interval time.Duration) time.Time {
	var cut time.Time
	for _, p := range w.pending {
		due := p.exp.Deadline.Add(interval)
		if p.closing {
			due = p.closedAt.Add(2 * interval)
		}
		if cut.IsZero() || due.Before(cut) {
			cut = due
		}
	}
	if cut.IsZero() {
		return cut
	}
	if floor := w.now().Add(interval / 2); cut.Before(floor) {
		cut = floor
	}
	return cut
}

// repeated reports whether a non-empty page holds only signals already
// seen in this poll.
func repeated(page []plugin.Signal, seenIDs map[string]bool) bool {
	if len(page) == 0 {
		return false
	}
	for _, s := range page {
		if s.ID == "" || !seenIDs[s.ID] {
			return false
		}
	}
	return true
}

// match credits signals to pending expectations, earliest injection first,
// each signal at most once, and keeps the near misses as evidence.
// Expectations in their last look take no signal: a marker-tied one is the
// evidence of a late alert.
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
	idx := indexSignals(signals)
	for _, p := range ps {
		candidates := idx.all
		if len(p.markerLocs) > 0 && markerPattern.MatchString(p.exp.Marker) {
			candidates = idx.byMarker[p.exp.Marker]
		}
		if w.matchOne(p, signals, candidates, observedAt) {
			continue
		}
		if len(p.markerLocs) > 0 {
			// Signals without any marker may be this injection's,
			// uncorrelated: evidence of alert_without_marker.
			for _, i := range idx.unmarked {
				if j := judge(p.exp, p.markerLocs, signals[i], w.clock); j.verdict == withoutMarker {
					p.ev.add(&p.ev.unmarked, signals[i], p.closing)
				}
			}
		}
	}
}

// matchOne tries the candidate signals on p: the first match settles it;
// the others are kept as evidence. It reports whether p was settled.
func (w *watcher) matchOne(p *pending, signals []plugin.Signal, candidates []int, observedAt time.Time) bool {
	for _, i := range candidates {
		s := &signals[i]
		if s.ID != "" && w.consumed[s.ID] {
			continue
		}
		j := judge(p.exp, p.markerLocs, *s, w.clock)
		switch {
		case j.verdict == matched && p.closing:
			p.ev.add(&p.ev.outside, *s, true)
		case j.verdict == matched:
			if s.ID != "" {
				w.consumed[s.ID] = true
			}
			st := measure.Detected
			if p.exp.Absent {
				st = measure.Noisy
			}
			sig := *s
			o := outcome{status: st, signal: &sig, at: j.at, observedAt: observedAt, correlation: j.how}
			if j.corrected {
				o.clockOffset = w.clock.offset
			}
			w.settle(p.exp.ID, o)
			return true
		case j.verdict == wrongCriterion:
			p.ev.add(&p.ev.wrong, *s, p.closing)
		case j.verdict == outsideWindow:
			p.ev.add(&p.ev.outside, *s, false)
		}
	}
	return false
}

// signalIndex indexes a poll's signals by the run markers their marker
// fields carry, so that matching stays linear in pending expectations and
// signals.
type signalIndex struct {
	byMarker map[string][]int
	all      []int
	unmarked []int
}

func indexSignals(signals []plugin.Signal) signalIndex {
	idx := signalIndex{byMarker: map[string][]int{}, all: make([]int, len(signals))}
	for i := range signals {
		idx.all[i] = i
		marked := false
		for _, mv := range signals[i].MarkerValues {
			for _, m := range markerPattern.FindAllString(mv.Value, -1) {
				marked = true
				if l := idx.byMarker[m]; len(l) == 0 || l[len(l)-1] != i {
					idx.byMarker[m] = append(idx.byMarker[m], i)
				}
			}
		}
		if !marked {
			idx.unmarked = append(idx.unmarked, i)
		}
	}
	return idx
}

// expire handles the expectations whose deadline a successful search sent
// at end has covered: absent ones are quiet; positive ones get one last
// look (closing), and those already in their last look are missed.
func (w *watcher) expire(end time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, p := range w.pending {
		switch {
		case end.Before(p.exp.Deadline):
		case p.exp.Absent:
			w.settle(id, outcome{status: measure.Quiet})
		case p.closing:
			w.settle(id, outcome{status: measure.Missed})
		default:
			p.closing, p.closedAt = true, end
		}
	}
}

// expireFailed ends the expectations the SIEM's failures keep open, one
// poll interval after their deadline, whatever the backoff: an error when
// no successful search covered the deadline (never a silent miss), a miss
// when one did and only the last look failed. While searches succeed but
// are too slow to cover the deadline, grace bounds the wait.
func (w *watcher) expireFailed(lastErr error, interval, grace time.Duration) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, p := range w.pending {
		switch {
		case p.closing && (lastErr != nil && now.After(p.closedAt.Add(interval)) || now.After(p.closedAt.Add(grace))):
			w.settle(id, outcome{status: measure.Missed})
		case p.closing:
		case lastErr != nil && now.After(p.exp.Deadline.Add(interval)):
			w.settle(id, outcome{status: measure.Error, err: fmt.Sprintf("%v (the search kept failing past the deadline, %s after the injection)", lastErr, p.exp.Deadline.Sub(p.exp.NotBefore).Round(time.Millisecond))})
		case now.After(p.exp.Deadline.Add(grace)):
			w.settle(id, outcome{status: measure.Error, err: fmt.Sprintf("siem %q: no search covered the deadline (%s after the injection) within %s of it", w.siem.Name, p.exp.Deadline.Sub(p.exp.NotBefore).Round(time.Millisecond), grace)})
		}
	}
}

// wakeBy shortens wait (a backoff, a rate limit's hint) so that the
// watcher wakes when a pending expectation needs it: at its deadline (the
// search that covers it starts then, and has one interval to answer), one
// interval past it (when expireFailed may end it), or at its last look.
func (w *watcher) wakeBy(wait, interval time.Duration) time.Duration {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pending {
		dues := []time.Time{p.exp.Deadline, p.exp.Deadline.Add(interval)}
		if p.closing {
			dues = []time.Time{p.closedAt.Add(interval)}
		}
		for _, due := range dues {
			if d := due.Sub(now); d > 0 && d < wait {
				wait = d
			}
		}
	}
	return max(wait, time.Millisecond)
}

// deliver runs one raw-event search for the markers of the detected and
// missed outcomes of this poll (the ingest latency of the first, the
// diagnosis of the second), when the SIEM can, then delivers every
// settled outcome.
func (w *watcher) deliver(ctx context.Context) {
	w.mu.Lock()
	settled := w.settled
	w.settled = nil
	w.mu.Unlock()
	if len(settled) == 0 {
		return
	}
	if w.siem.Desc.Has(plugin.CapRawEvents) {
		w.searchRaw(ctx, settled)
	}
	for _, st := range settled {
		st.p.done <- st.o
	}
}

// searchRaw fills the raw findings of the settlements that need them with
// ONE SearchRawEvents call, whatever their number.
func (w *watcher) searchRaw(ctx context.Context, settled []settlement) {
	var (
		need    []int
		markers []string
		hosts   []string
		start   time.Time
	)
	for i, st := range settled {
		if st.o.status != measure.Detected && st.o.status != measure.Missed {
			continue
		}
		need = append(need, i)
		e := st.p.exp
		if !slices.Contains(markers, e.Marker) {
			markers = append(markers, e.Marker)
		}
		if e.Host != "" && !slices.Contains(hosts, e.Host) {
			hosts = append(hosts, e.Host)
		}
		if start.IsZero() || e.NotBefore.Before(start) {
			start = e.NotBefore
		}
	}
	if len(need) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, rawEventsTimeout)
	defer cancel()
	w.mu.Lock()
	w.rawSearches++
	w.mu.Unlock()
	evs, err := w.siem.Impl.SearchRawEvents(rctx, plugin.RawEventsRequest{
		Start: start.Add(-w.slack()), End: w.now().Add(w.lead()), Markers: markers, Hosts: hosts,
	})
	if err != nil {
		err = fmt.Errorf("siem %q: search raw events: %w", w.siem.Name, err)
	}
	byMarker := map[string][]plugin.RawEvent{}
	for _, ev := range evs {
		byMarker[ev.Marker] = append(byMarker[ev.Marker], ev)
	}
	for _, i := range need {
		settled[i].o.raw = &rawFinding{events: byMarker[settled[i].p.exp.Marker], err: err}
	}
}

// Searches returns how many Search calls (pages included), polls and
// SearchRawEvents calls the watcher of SIEM name made during the last run.
func (e *Engine) Searches(name string) (searches, polls, rawSearches int64) {
	e.mu.Lock()
	w := e.watchers[name]
	e.mu.Unlock()
	if w == nil {
		return 0, 0, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.searches, w.polls, w.rawSearches
}

// Clock returns the clock reading of SIEM name taken at the start of the
// last run, if its plugin could give one.
func (e *Engine) Clock(name string) (plugin.ClockReading, bool) {
	e.mu.Lock()
	w := e.watchers[name]
	e.mu.Unlock()
	if w == nil {
		return plugin.ClockReading{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reading == nil {
		return plugin.ClockReading{}, false
	}
	return *w.reading, true
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
