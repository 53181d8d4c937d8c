package runner

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/plugin"
)

// markerPattern finds run markers (NewMarker) in signal fields.
var markerPattern = regexp.MustCompile(`vigil-[0-9a-f]{12}`)

// ClockTolerance is how far before the injection start a signal may be
// stamped and still count: kernel audit timestamps come from a coarse clock
// (measured up to ~4ms before the injector's own start time). It is far
// below any real detection latency and far above clock granularity.
const ClockTolerance = 20 * time.Millisecond

// verdict is how one signal relates to one expectation.
type verdict int

const (
	// unrelated: the signal says nothing about the expectation.
	unrelated verdict = iota
	// matched: the signal satisfies the expectation.
	matched
	// wrongCriterion: the signal carries the injection's marker but is not
	// for the expected technique, rule or native query.
	wrongCriterion
	// outsideWindow: the signal carries the marker and meets the criterion
	// but is stamped before the injection, even allowing for the SIEM's
	// measured clock offset.
	outsideWindow
	// withoutMarker: the signal meets the criterion on the expectation's
	// host inside its window but carries no run marker at all.
	withoutMarker
)

// judgement is the verdict on one signal for one expectation.
type judgement struct {
	verdict verdict
	// how the signal was correlated ("marker:process.command_line",
	// "time+host"), for matches.
	how string
	// at is the time credited to the signal: its timestamp, minus the
	// SIEM's clock offset when corrected is set.
	at        time.Time
	corrected bool
}

// clockCorrection is a SIEM's measured clock offset (its clock minus this
// host's), used only when it is larger than the reading's uncertainty, and
// that uncertainty.
type clockCorrection struct {
	offset, uncertainty time.Duration
}

// judge decides how signal s relates to expectation e. markerLocs are the
// locations where the marker can be found; when empty, the signal is tied
// by time window and host.
//
// A signal counts from ClockTolerance before the injection start; one
// stamped after the deadline but found before the expectation was closed
// still counts (a latency budget breach). A marker-tied signal stamped
// earlier counts only when the SIEM's measured clock offset, taken off its
// timestamp, brings it into [start, deadline] give or take the reading's
// uncertainty (its latency is then clamped at zero). By default a signal tagged
// with the expected technique (or its parent) meets the criterion; a rule
// name or ID, or a native query, replaces it.
func judge(e plugin.Expectation, markerLocs []plugin.MarkerLocation, s plugin.Signal, clock *clockCorrection) judgement {
	criterion := meetsCriterion(e, s)
	if len(markerLocs) == 0 {
		if criterion && !early(e, s.Timestamp) && e.Host != "" && s.Host != "" && plugin.SameHost(e.Host, s.Host) {
			return judgement{verdict: matched, how: "time+host", at: s.Timestamp}
		}
		return judgement{verdict: unrelated}
	}
	how, tied := markerTie(e, markerLocs, s)
	switch {
	case !tied:
		if criterion && inWindow(e, s.Timestamp) && e.Host != "" && s.Host != "" && plugin.SameHost(e.Host, s.Host) && !carriesMarker(s) {
			return judgement{verdict: withoutMarker, at: s.Timestamp}
		}
		return judgement{verdict: unrelated}
	case !criterion:
		return judgement{verdict: wrongCriterion, at: s.Timestamp}
	case !early(e, s.Timestamp):
		return judgement{verdict: matched, how: how, at: s.Timestamp}
	}
	if clock != nil {
		c := s.Timestamp.Add(-clock.offset)
		widened := e
		widened.NotBefore, widened.Deadline = e.NotBefore.Add(-clock.uncertainty), e.Deadline.Add(clock.uncertainty)
		if inWindow(widened, c) {
			return judgement{verdict: matched, how: how, at: c, corrected: true}
		}
	}
	return judgement{verdict: outsideWindow, at: s.Timestamp}
}

// early reports whether t is before the expectation's window.
func early(e plugin.Expectation, t time.Time) bool {
	return t.Before(e.NotBefore.Add(-ClockTolerance))
}

// inWindow reports whether t is in [start - ClockTolerance, deadline].
func inWindow(e plugin.Expectation, t time.Time) bool {
	return !early(e, t) && !t.After(e.Deadline)
}

// meetsCriterion reports whether s is what e waits for: its native query
// returned s, or s is from the named rule, or s is tagged with the
// technique.
func meetsCriterion(e plugin.Expectation, s plugin.Signal) bool {
	switch {
	case e.Query != "":
		return slices.Contains(s.MatchedExpectations, e.ID)
	case e.RuleName != "" || e.RuleID != "":
		if e.RuleName != "" && !strings.EqualFold(strings.TrimSpace(s.RuleName), strings.TrimSpace(e.RuleName)) {
			return false
		}
		return e.RuleID == "" || strings.EqualFold(s.RuleID, e.RuleID)
	default:
		return attack.AnyCovers(s.Techniques, e.Technique)
	}
}

// markerTie finds e's marker in one of the signal's marker fields at a
// location both plugins share. The correlation names the SIEM's field
// where it was found when the plugin says (marker:vigil.marker), else the
// location (marker:process.command_line).
func markerTie(e plugin.Expectation, markerLocs []plugin.MarkerLocation, s plugin.Signal) (string, bool) {
	if e.Marker == "" {
		return "", false
	}
	for _, mv := range s.MarkerValues {
		if slices.Contains(markerLocs, mv.Location) && strings.Contains(mv.Value, e.Marker) {
			if mv.Field != "" {
				return "marker:" + mv.Field, true
			}
			return "marker:" + string(mv.Location), true
		}
	}
	return "", false
}

// carriesMarker reports whether any marker field of s holds a run marker
// (of this injection or another one).
func carriesMarker(s plugin.Signal) bool {
	for _, mv := range s.MarkerValues {
		if markerPattern.MatchString(mv.Value) {
			return true
		}
	}
	return false
}

// intersect returns the marker locations present in both lists.
func intersect(a, b []plugin.MarkerLocation) []plugin.MarkerLocation {
	var out []plugin.MarkerLocation
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
