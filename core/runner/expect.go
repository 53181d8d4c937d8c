package runner

import (
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// waiting is one expectation registered with a SIEM's watcher.
type waiting struct {
	res    int // index of the job's result (its SIEM)
	index  int // index of the [[expect]] in the test
	exp    catalog.Expectation
	within time.Duration
	siem   *SIEM
	p      *pending
}

// expect registers the test's expectations with each SIEM's watcher. A
// SIEM whose replay failed, or that cannot see where the injector planted
// the marker, gets an error instead.
func (jr *jobRun) expect(failed map[string]string) []waiting {
	var all []waiting
	for i, s := range jr.j.SIEMs {
		if msg, bad := failed[s.Name]; bad {
			jr.rs[i].Status, jr.rs[i].Error = measure.Error, msg
			continue
		}
		pr := jr.j.Pairings[s.Name]
		locs := intersect(pr.MarkerLocations, jr.ir.MarkerLocations)
		if !pr.Fallback && len(locs) == 0 && len(jr.ir.MarkerLocations) > 0 {
			jr.rs[i].Status, jr.rs[i].Error = measure.Error, fmt.Sprintf("injector planted the marker only in %v, which siem %q cannot match", jr.ir.MarkerLocations, s.Name)
			continue
		}
		if len(jr.ir.MarkerLocations) == 0 {
			locs = pr.MarkerLocations
		}
		for _, ie := range expectationsFor(jr.j.Test, s) {
			w, err := jr.pendingFor(s, ie, locs)
			if err != nil {
				jr.rs[i].Status, jr.rs[i].Error = measure.Error, err.Error()
				continue
			}
			w.res = i
			all = append(all, w)
			jr.e.watcher(s.Name).add(w.p)
		}
	}
	return all
}

// pendingFor builds the watcher's view of one expectation.
func (jr *jobRun) pendingFor(s *SIEM, ie indexedExp, locs []plugin.MarkerLocation) (waiting, error) {
	t := jr.j.Test
	within := ie.exp.Within
	if within <= 0 {
		within = s.Timeout
	}
	if within <= 0 {
		within = time.Minute
	}
	query := ie.exp.Query[s.Name]
	if query == "" {
		query = ie.exp.Query[s.Plugin]
	}
	if query != "" {
		var err error
		if query, err = catalog.RenderString(query, jr.vars, false); err != nil {
			return waiting{}, fmt.Errorf("render query: %w", err)
		}
	}
	tech := string(ie.exp.Technique)
	if tech == "" {
		tech = string(t.Technique.ID)
	}
	p := &pending{
		exp: plugin.Expectation{
			ID: fmt.Sprintf("%s/%d/%s", jr.marker, ie.index, s.Name), TestID: t.ID, Technique: tech,
			RuleName: ie.exp.Rule, RuleID: ie.exp.RuleID, Query: query, Marker: jr.marker, Host: jr.host,
			NotBefore: jr.injectedAt, Deadline: jr.injectedAt.Add(within), Absent: ie.exp.Absent,
		},
		markerLocs: locs,
		done:       make(chan outcome, 1),
	}
	return waiting{index: ie.index, exp: ie.exp, within: within, siem: s, p: p}, nil
}

// collect waits for every outcome and records it in its result: the
// expectation's status, and for a signal its latency (from the credited
// time: the SIEM's timestamp, less its measured clock offset when that was
// needed), the correlation and the ingest latency.
func (jr *jobRun) collect(waits []waiting) {
	for _, w := range waits {
		o := <-w.p.done
		r := &jr.rs[w.res]
		er := measure.ExpectationResult{
			Index: w.index, Technique: w.p.exp.Technique, Rule: w.exp.Rule, RuleID: w.exp.RuleID, Absent: w.exp.Absent,
			Deadline: w.p.exp.Deadline, Status: o.status, Correlation: o.correlation, Error: o.err,
		}
		switch o.status {
		case measure.Missed:
			er.Diagnosis = diagnose(w.siem, w.p.exp, o, w.within)
		case measure.Noisy:
			er.Diagnosis = noisyDiagnosis(w.p.exp, *o.signal)
		}
		if o.signal != nil {
			jr.credit(r, &er, o)
		}
		if o.raw != nil && r.IngestLatencyMS == nil && w.siem.Desc.Has(plugin.CapIngestTime) {
			if first := firstArrival(o.raw.events); !first.IsZero() {
				r.IngestLatencyMS = measure.Millis(nonNegative(first.Sub(jr.injectedAt)))
			}
		}
		r.Expectations = append(r.Expectations, er)
	}
}

// credit records a matched signal in the result and its expectation.
func (jr *jobRun) credit(r *measure.Result, er *measure.ExpectationResult, o outcome) {
	er.SignalID = o.signal.ID
	er.LatencyMS = measure.Millis(nonNegative(o.at.Sub(jr.injectedAt)))
	r.Signals = append(r.Signals, measure.SignalRef{ID: o.signal.ID, Rule: o.signal.RuleName, RuleID: o.signal.RuleID, Timestamp: o.signal.Timestamp})
	if o.status != measure.Detected {
		return
	}
	if r.DetectedAt == nil || o.at.After(*r.DetectedAt) {
		at := o.at
		r.DetectedAt = &at
		r.LatencyMS = measure.Millis(nonNegative(at.Sub(jr.injectedAt)))
		if o.clockOffset != 0 {
			r.ClockOffsetMS = measure.Millis(o.clockOffset)
		}
	}
	if r.ObservedLatencyMS == nil || o.observedAt.Sub(jr.injectedAt).Milliseconds() > *r.ObservedLatencyMS {
		r.ObservedLatencyMS = measure.Millis(o.observedAt.Sub(jr.injectedAt))
	}
	r.Correlation = o.correlation
}

// firstArrival is when the first of the events reached the SIEM (its
// ingestion time), zero when none says. An event's own time is no
// stand-in: a replayed event is stamped by vigil, a live one by its host.
func firstArrival(evs []plugin.RawEvent) time.Time {
	var first time.Time
	for _, ev := range evs {
		if at := ev.IngestedAt; !at.IsZero() && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// nonNegative clamps a latency measured across the clock tolerance to 0.
func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}
