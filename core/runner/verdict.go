package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// settle turns each result's expectation outcomes into its status, and
// says why: the diagnosis of the first missed expectation, the rule of the
// first noisy one, the first error.
func (jr *jobRun) settle() {
	for i := range jr.rs {
		r := &jr.rs[i]
		if r.Status != "" {
			continue
		}
		r.Status = combine(r.Expectations)
		x := firstWith(r.Expectations, r.Status)
		switch {
		case x == nil:
		case r.Status == measure.Error:
			r.Error = x.Error
		case x.Diagnosis != nil:
			r.Diagnosis = x.Diagnosis
			r.Reason = string(x.Diagnosis.Class) + ": " + x.Diagnosis.Summary
		}
	}
}

// firstWith returns the first expectation that gives a result its status:
// a missed positive one, a noisy one, or one with an error.
func firstWith(xs []measure.ExpectationResult, st measure.Status) *measure.ExpectationResult {
	for i := range xs {
		x := &xs[i]
		switch {
		case st == measure.Missed && x.Status == measure.Missed && !x.Absent,
			st == measure.Noisy && x.Status == measure.Noisy,
			st == measure.Error && x.Error != "":
			return x
		}
	}
	return nil
}

// closeSignals archives the matched signals in the SIEMs that can, when
// asked to.
func (jr *jobRun) closeSignals(ctx context.Context) {
	if !jr.e.Opts.CloseSignals {
		return
	}
	for i, s := range jr.j.SIEMs {
		r := &jr.rs[i]
		if r.Status == measure.Error || r.Status == measure.Skipped || !s.Desc.Has(plugin.CapCloseSignals) || len(r.Signals) == 0 {
			continue
		}
		ids := make([]string, len(r.Signals))
		for k, sg := range r.Signals {
			ids[k] = sg.ID
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := s.Impl.CloseSignals(cctx, plugin.CloseSignalsRequest{SignalIDs: ids, Reason: "testing or maintenance (vigil " + jr.marker + ")"}); err != nil {
			r.Reason = fmt.Sprintf("close signals: %v", err)
		}
		cancel()
	}
}

// combine turns the expectation outcomes of one (test, SIEM) into its status:
// any error is an error; then a missed positive expectation; then a noisy
// negative one; a test with only negative expectations is quiet.
func combine(xs []measure.ExpectationResult) measure.Status {
	if len(xs) == 0 {
		return measure.Skipped
	}
	has := map[measure.Status]bool{}
	positive := false
	for _, x := range xs {
		has[x.Status] = true
		if !x.Absent {
			positive = true
		}
	}
	switch {
	case has[measure.Error]:
		return measure.Error
	case has[measure.Missed]:
		return measure.Missed
	case has[measure.Noisy]:
		return measure.Noisy
	case positive:
		return measure.Detected
	default:
		return measure.Quiet
	}
}
