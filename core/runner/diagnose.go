package runner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// maxExcerpt bounds the excerpt of an event's key field in a diagnosis.
const maxExcerpt = 160

// diagnose explains a missed expectation from the evidence the searches
// gave, the strongest first: a marker-tied signal for the expected
// technique stamped outside the window, a marker-tied signal for another
// technique, a signal for the technique without the marker, then the raw
// events carrying the marker (or their absence), else unknown.
func diagnose(s *SIEM, e plugin.Expectation, o outcome, within time.Duration) *measure.Diagnosis {
	ev := o.evidence
	switch {
	case len(ev.outside) > 0:
		return outsideWindowDiagnosis(e, ev.outside)
	case len(ev.wrong) > 0:
		d := &measure.Diagnosis{Class: measure.AlertWrongTechnique, Signals: signalEvidence(e, ev.wrong, true)}
		x := ev.wrong[0].sig
		d.Summary = fmt.Sprintf("a signal carrying the marker fired for %s, not for %s: a mapping gap (the rule's ATT&CK tags, or the expectation)",
			describeSignal(x), wanted(e))
		return d
	case len(ev.unmarked) > 0:
		d := &measure.Diagnosis{Class: measure.AlertWithoutMarker, Signals: signalEvidence(e, ev.unmarked, false)}
		if o.raw != nil && len(o.raw.events) > 0 {
			d.Events = eventEvidence(o.raw.events)
		}
		x := ev.unmarked[0].sig
		d.Summary = fmt.Sprintf("%s fired on host %s inside the window (%s after the injection) without the marker: likely detected, not proven (a correlation gap: the rule's alert does not carry the field that holds the marker)",
			describeSignal(x), x.Host, fmtOffset(x.Timestamp.Sub(e.NotBefore)))
		return d
	}
	return telemetryDiagnosis(s, e, o.raw, within)
}

// outsideWindowDiagnosis: the alert exists, stamped (or found) outside the
// window.
func outsideWindowDiagnosis(e plugin.Expectation, list []seen) *measure.Diagnosis {
	d := &measure.Diagnosis{Class: measure.AlertOutsideWindow, Signals: signalEvidence(e, list, true)}
	x := list[0]
	ts := x.sig.Timestamp
	switch {
	case ts.Before(e.NotBefore):
		d.Summary = fmt.Sprintf("%s carries the marker but is stamped %s before the injection: the SIEM's or the log source's clock is behind this host's (vigil validate --online measures it)",
			describeSignal(x.sig), fmtOffset(e.NotBefore.Sub(ts)))
	case ts.After(e.Deadline):
		d.Summary = fmt.Sprintf("%s carries the marker but is stamped %s after the deadline (%s after the injection), found only once the deadline had passed: a slow pipeline or a clock ahead of this host's",
			describeSignal(x.sig), fmtOffset(ts.Sub(e.Deadline)), fmtOffset(ts.Sub(e.NotBefore)))
	default:
		d.Summary = fmt.Sprintf("%s carries the marker and is stamped %s after the injection, inside the window, but became searchable only after the deadline had passed: a slow pipeline (indexing or rule schedule)",
			describeSignal(x.sig), fmtOffset(ts.Sub(e.NotBefore)))
	}
	return d
}

// telemetryDiagnosis tells a rule gap from a collection gap by the raw
// events carrying the marker.
func telemetryDiagnosis(s *SIEM, e plugin.Expectation, raw *rawFinding, within time.Duration) *measure.Diagnosis {
	switch {
	case !s.Desc.Has(plugin.CapRawEvents):
		return &measure.Diagnosis{Class: measure.Unknown, Summary: fmt.Sprintf(
			"no signal for %s by the deadline (%s), and siem %q cannot tell a rule gap from a collection gap: its plugin (%s) has no raw-event search (the SearchRawEvents call, capability %q)",
			wanted(e), fmtOffset(within), s.Name, s.Plugin, plugin.CapRawEvents)}
	case raw == nil:
		return &measure.Diagnosis{Class: measure.Unknown, Summary: fmt.Sprintf("no signal for %s by the deadline (%s); the raw events were not searched", wanted(e), fmtOffset(within))}
	case raw.err != nil:
		return &measure.Diagnosis{Class: measure.Unknown, Summary: fmt.Sprintf("no signal for %s by the deadline (%s), and the raw-event search that would tell why failed: %v", wanted(e), fmtOffset(within), raw.err)}
	case len(raw.events) == 0:
		return &measure.Diagnosis{Class: measure.NoTelemetry, Summary: fmt.Sprintf(
			"no event carrying the marker reached siem %q by the deadline (%s): a log source or collection gap (is the host's telemetry shipped, and searchable by the marker?)",
			s.Name, fmtOffset(within))}
	}
	ee := eventEvidence(raw.events)
	d := &measure.Diagnosis{Class: measure.TelemetryNoAlert, Events: ee}
	what := ""
	if ee.Excerpt != "" {
		what = fmt.Sprintf(": %q", ee.Excerpt)
	}
	d.Summary = fmt.Sprintf("%d event(s) carrying the marker arrived (%s; the first stamped %s after the injection%s) and no rule fired for %s by the deadline (%s): a rule gap",
		ee.Count, strings.Join(ee.Sources, ", "), fmtOffset(ee.FirstAt.Sub(e.NotBefore)), what, wanted(e), fmtOffset(within))
	return d
}

// eventEvidence sums up the raw events of one marker.
func eventEvidence(evs []plugin.RawEvent) *measure.EventEvidence {
	first := evs[0]
	for _, ev := range evs[1:] {
		if ev.Timestamp.Before(first.Timestamp) {
			first = ev
		}
	}
	ee := &measure.EventEvidence{Count: len(evs), FirstAt: first.Timestamp}
	var firstIngested time.Time
	for _, ev := range evs {
		if ev.Source != "" && !slices.Contains(ee.Sources, ev.Source) {
			ee.Sources = append(ee.Sources, ev.Source)
		}
		if !ev.IngestedAt.IsZero() && (firstIngested.IsZero() || ev.IngestedAt.Before(firstIngested)) {
			firstIngested = ev.IngestedAt
		}
	}
	if len(ee.Sources) == 0 {
		ee.Sources = []string{"source not given by the plugin"}
	}
	if !firstIngested.IsZero() {
		ee.FirstIngestedAt = &firstIngested
	}
	ee.Excerpt = first.Summary
	if ee.Excerpt == "" {
		ee.Excerpt = string(first.Raw)
	}
	ee.Excerpt = excerpt([]byte(strings.Join(strings.Fields(ee.Excerpt), " ")), maxExcerpt)
	return ee
}

// signalEvidence turns kept signals into results' evidence.
func signalEvidence(e plugin.Expectation, list []seen, marker bool) []measure.SignalEvidence {
	out := make([]measure.SignalEvidence, len(list))
	for i, x := range list {
		out[i] = measure.SignalEvidence{
			ID: x.sig.ID, Rule: x.sig.RuleName, RuleID: x.sig.RuleID, Techniques: x.sig.Techniques,
			Timestamp: x.sig.Timestamp, Host: x.sig.Host, Marker: marker,
			OffsetMS: x.sig.Timestamp.Sub(e.NotBefore).Milliseconds(),
		}
	}
	return out
}

// noisyDiagnosis names the rule that fired for a benign action.
func noisyDiagnosis(e plugin.Expectation, sig plugin.Signal) *measure.Diagnosis {
	return &measure.Diagnosis{
		Class:   measure.RuleFired,
		Summary: fmt.Sprintf("%s fired for this benign action, %s after it: a false positive to tune", describeSignal(sig), fmtOffset(sig.Timestamp.Sub(e.NotBefore))),
		Signals: signalEvidence(e, []seen{{sig: sig}}, true),
	}
}

// describeSignal names a signal's rule and techniques: rule "X" (id) [T1, T2].
func describeSignal(s plugin.Signal) string {
	name := "a signal"
	switch {
	case s.RuleName != "" && s.RuleID != "":
		name = fmt.Sprintf("rule %q (%s)", s.RuleName, s.RuleID)
	case s.RuleName != "":
		name = fmt.Sprintf("rule %q", s.RuleName)
	case s.RuleID != "":
		name = "rule " + s.RuleID
	}
	if len(s.Techniques) == 0 {
		return name + " [no ATT&CK technique]"
	}
	return name + " [" + strings.Join(s.Techniques, ", ") + "]"
}

// wanted says what an expectation waits for.
func wanted(e plugin.Expectation) string {
	switch {
	case e.Query != "":
		return "its native query"
	case e.RuleName != "" && e.RuleID != "":
		return fmt.Sprintf("rule %q (%s)", e.RuleName, e.RuleID)
	case e.RuleName != "":
		return fmt.Sprintf("rule %q", e.RuleName)
	case e.RuleID != "":
		return "rule " + e.RuleID
	}
	return e.Technique
}

// fmtOffset renders a duration for people: 3ms, 1.2s, 2m5s.
func fmtOffset(d time.Duration) string {
	d = abs(d)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
