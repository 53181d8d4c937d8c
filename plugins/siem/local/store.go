package local

import (
	"sort"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// storedEvent is one raw event in the ring.
type storedEvent struct {
	ev       *telemetry.Event
	received time.Time
}

// storedSignal is one signal and when it was raised.
type storedSignal struct {
	sig      plugin.Signal
	received time.Time
}

// store keeps the raw events (a ring of at most maxEvents, in arrival order)
// and the signals (sorted by timestamp then ID, at most maxSignals), both
// for at most retention after they arrived. It is safe for concurrent use.
type store struct {
	retention  time.Duration
	maxEvents  int
	maxSignals int
	now        func() time.Time

	mu        sync.Mutex
	events    []storedEvent // ring: oldest at head once full
	head      int
	signals   []storedSignal
	ids       map[string]struct{}
	lastPrune time.Time

	nEvents, nSignals, nEvicted, nDuplicates uint64
}

func newStore(retention time.Duration, maxEvents int, now func() time.Time) *store {
	return &store{
		retention: retention, maxEvents: maxEvents, maxSignals: maxEvents, now: now,
		ids: map[string]struct{}{},
	}
}

// addEvent appends ev to the ring, evicting the oldest event when full.
func (s *store) addEvent(ev *telemetry.Event, received time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nEvents++
	e := storedEvent{ev: ev, received: received}
	if len(s.events) < s.maxEvents {
		s.events = append(s.events, e)
		return
	}
	s.events[s.head] = e
	s.head = (s.head + 1) % len(s.events)
	s.nEvicted++
}

// eachEvent calls f for each unexpired event whose time is in [start, end]
// (a zero bound is open), in arrival order, until f returns false. f runs
// with the store locked: it must not call the store.
func (s *store) eachEvent(start, end time.Time, f func(storedEvent) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-s.retention)
	n := len(s.events)
	for i := 0; i < n; i++ {
		e := s.events[(s.head+i)%n]
		if e.received.Before(cutoff) || !inWindow(e.ev.Time, start, end) {
			continue
		}
		if !f(e) {
			return
		}
	}
}

// addSignal stores sig unless a signal with its ID is already stored. It
// reports whether the signal was new.
func (s *store) addSignal(sig plugin.Signal, received time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ids[sig.ID]; dup {
		s.nDuplicates++
		return false
	}
	s.nSignals++
	s.ids[sig.ID] = struct{}{}
	i := len(s.signals)
	if i > 0 && less(sig, s.signals[i-1].sig) {
		i = sort.Search(len(s.signals), func(k int) bool { return less(sig, s.signals[k].sig) })
	}
	s.signals = append(s.signals, storedSignal{})
	copy(s.signals[i+1:], s.signals[i:])
	s.signals[i] = storedSignal{sig: sig, received: received}
	s.prune(received)
	return true
}

// prune drops signals past retention (at most every retention/60) and the
// oldest ones beyond maxSignals. s.mu must be held.
func (s *store) prune(now time.Time) {
	if over := len(s.signals) - s.maxSignals; over > 0 {
		for _, x := range s.signals[:over] {
			delete(s.ids, x.sig.ID)
		}
		s.signals = append(s.signals[:0], s.signals[over:]...)
	}
	if now.Sub(s.lastPrune) < s.retention/60 {
		return
	}
	s.lastPrune = now
	cutoff := now.Add(-s.retention)
	kept := s.signals[:0]
	for _, x := range s.signals {
		if x.received.Before(cutoff) {
			delete(s.ids, x.sig.ID)
			continue
		}
		kept = append(kept, x)
	}
	clear(s.signals[len(kept):])
	s.signals = kept
}

// signalsIn returns the unexpired signals with a timestamp in [start, end]
// (a zero bound is open), sorted by timestamp then ID.
func (s *store) signalsIn(start, end time.Time) []plugin.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-s.retention)
	i := 0
	if !start.IsZero() {
		i = sort.Search(len(s.signals), func(k int) bool { return !s.signals[k].sig.Timestamp.Before(start) })
	}
	var out []plugin.Signal
	for ; i < len(s.signals); i++ {
		x := s.signals[i]
		if !end.IsZero() && x.sig.Timestamp.After(end) {
			break
		}
		if x.received.Before(cutoff) {
			continue
		}
		out = append(out, x.sig)
	}
	return out
}

// counts returns the store's counters.
func (s *store) counts() (events, signals, storedEvents, storedSignals, evicted, duplicates uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nEvents, s.nSignals, uint64(len(s.events)), uint64(len(s.signals)), s.nEvicted, s.nDuplicates
}

// less orders signals by timestamp, then ID.
func less(a, b plugin.Signal) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	return a.ID < b.ID
}

// inWindow reports whether t is in [start, end]; a zero bound is open.
func inWindow(t, start, end time.Time) bool {
	return (start.IsZero() || !t.Before(start)) && (end.IsZero() || !t.After(end))
}
