package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
)

// AllSIEMs is the name of the combined view in reports: a test counts as
// detected when at least one SIEM detected it.
const AllSIEMs = "all SIEMs"

// Key identifies one result across runs: a test on a target, checked in a
// SIEM.
type Key struct {
	TestID string `json:"test_id"`
	Target string `json:"target"`
	SIEM   string `json:"siem"`
}

// KeyOf returns the key of a result.
func KeyOf(r measure.Result) Key { return Key{TestID: r.TestID, Target: r.Target, SIEM: r.SIEM} }

// String renders the key as "test@target/siem".
func (k Key) String() string { return k.TestID + "@" + k.Target + "/" + k.SIEM }

// SIEMs returns the SIEM names of the results, sorted.
func SIEMs(run *measure.Run) []string {
	seen := map[string]bool{}
	for _, r := range run.Results {
		seen[r.SIEM] = true
	}
	return sortedKeys(seen)
}

// Summary recomputes the run's summary from its results (a partial
// results.json may carry a stale one).
func Summary(run *measure.Run) measure.Summary { return measure.Summarise(run.Results) }

// Budget is the latency budget of a detected result: the deadline its
// expectations gave the SIEM ([[expect]] within, else the SIEM's timeout).
type Budget struct {
	// BudgetMS is the smallest budget of the result's positive
	// expectations that were detected.
	BudgetMS int64
	// LatencyMS is the latency measured against it (the SIEM's own
	// timestamp of the matching signal minus the injection start).
	LatencyMS int64
	// Breached is true when the signal came after the budget: the SIEM
	// caught it, but later than the test allows.
	Breached bool
}

// BudgetOf returns the budget of a detected result, and false when the
// result has none to check (not detected, or no injection time).
func BudgetOf(r measure.Result) (Budget, bool) {
	if r.Status != measure.Detected || r.InjectedAt == nil {
		return Budget{}, false
	}
	var b Budget
	found := false
	for _, x := range r.Expectations {
		if x.Absent || x.Status != measure.Detected || x.LatencyMS == nil || x.Deadline.IsZero() {
			continue
		}
		budget := x.Deadline.Sub(*r.InjectedAt).Milliseconds()
		breached := *x.LatencyMS > budget
		switch {
		case !found, breached && !b.Breached, breached == b.Breached && budget < b.BudgetMS:
			b = Budget{BudgetMS: budget, LatencyMS: *x.LatencyMS, Breached: breached}
			found = true
		}
	}
	return b, found
}

// Breach is a detection that came later than its latency budget.
type Breach struct {
	Key
	Technique string `json:"technique"`
	Budget
}

// Breaches lists the run's budget breaches, in result order.
func Breaches(run *measure.Run) []Breach {
	var out []Breach
	for _, r := range run.Results {
		if b, ok := BudgetOf(r); ok && b.Breached {
			out = append(out, Breach{Key: KeyOf(r), Technique: r.Technique, Budget: b})
		}
	}
	return out
}

// Injection is one test on one target and what each SIEM made of it.
type Injection struct {
	TestID, TestName, Target  string
	Technique, TechniqueName  string
	Tactics                   []string
	BySIEM                    map[string]measure.Result
	Combined                  measure.Status
	FirstLatencyMS            *int64 // the fastest SIEM's latency
	FirstSIEMs, DetectedSIEMs []string
}

// Injections groups the results by (test, target), in result order.
func Injections(run *measure.Run) []*Injection {
	var out []*Injection
	idx := map[[2]string]*Injection{}
	for _, r := range run.Results {
		k := [2]string{r.TestID, r.Target}
		in := idx[k]
		if in == nil {
			in = &Injection{TestID: r.TestID, TestName: r.TestName, Target: r.Target, Technique: r.Technique,
				TechniqueName: techniqueName(r), Tactics: r.Tactics, BySIEM: map[string]measure.Result{}}
			idx[k] = in
			out = append(out, in)
		}
		in.BySIEM[r.SIEM] = r
	}
	for _, in := range out {
		in.Combined = combine(in.BySIEM)
		for _, s := range sortedKeys(in.BySIEM) {
			r := in.BySIEM[s]
			if r.Status != measure.Detected {
				continue
			}
			in.DetectedSIEMs = append(in.DetectedSIEMs, s)
			if r.LatencyMS == nil {
				continue
			}
			switch {
			case in.FirstLatencyMS == nil || *r.LatencyMS < *in.FirstLatencyMS:
				v := *r.LatencyMS
				in.FirstLatencyMS, in.FirstSIEMs = &v, []string{s}
			case *r.LatencyMS == *in.FirstLatencyMS:
				in.FirstSIEMs = append(in.FirstSIEMs, s)
			}
		}
	}
	return out
}

// combine is the status of one injection across SIEMs: detected when any
// SIEM detected it; an error anywhere else leaves the question open; then
// missed; for negative tests noisy when any SIEM raised the signal.
func combine(by map[string]measure.Result) measure.Status {
	has := map[measure.Status]bool{}
	for _, r := range by {
		has[r.Status] = true
	}
	for _, st := range []measure.Status{measure.Detected, measure.Noisy, measure.Error, measure.Missed, measure.Quiet} {
		if has[st] {
			return st
		}
	}
	return measure.Skipped
}

// CombinedResults turns each injection into one result whose SIEM is
// AllSIEMs, for the combined views (status from every SIEM, latency of
// the fastest).
func CombinedResults(run *measure.Run) []measure.Result {
	var out []measure.Result
	for _, in := range Injections(run) {
		r := measure.Result{
			TestID: in.TestID, TestName: in.TestName, Technique: in.Technique, TechniqueName: in.TechniqueName,
			Tactics: in.Tactics, Target: in.Target, SIEM: AllSIEMs, Status: in.Combined, LatencyMS: in.FirstLatencyMS,
		}
		out = append(out, r)
	}
	return out
}

// TechniqueStats is how a technique's tests fared in one view (one SIEM,
// or all SIEMs combined).
type TechniqueStats struct {
	ID, Name string
	Tactics  []string // the tactics its tests demonstrate, kill-chain order
	Results  []measure.Result
	Counts   measure.Counts
}

// Score is the share of the technique's tests detected (detected over
// detected plus missed), and false when none of them was measured.
func (t TechniqueStats) Score() (float64, bool) {
	if t.Counts.Coverage == nil {
		return 0, false
	}
	return *t.Counts.Coverage, true
}

// ByTechnique groups results by technique, sorted by technique ID.
func ByTechnique(results []measure.Result) []TechniqueStats {
	idx := map[string]*TechniqueStats{}
	var order []string
	for _, r := range results {
		t := idx[r.Technique]
		if t == nil {
			t = &TechniqueStats{ID: r.Technique, Name: techniqueName(r)}
			idx[r.Technique] = t
			order = append(order, r.Technique)
		}
		t.Results = append(t.Results, r)
		for _, tac := range r.Tactics {
			if !contains(t.Tactics, tac) {
				t.Tactics = append(t.Tactics, tac)
			}
		}
	}
	sort.Strings(order)
	out := make([]TechniqueStats, 0, len(order))
	for _, id := range order {
		t := idx[id]
		t.Counts = measure.Summarise(t.Results).Counts
		sortTactics(t.Tactics)
		out = append(out, *t)
	}
	return out
}

// Tactics returns the ATT&CK Enterprise tactics in kill-chain order.
func Tactics() []attack.Tactic { return attack.Default().Tactics() }

// sortTactics sorts tactic short names in kill-chain order, unknown ones
// last by name.
func sortTactics(ts []string) {
	order := map[string]int{}
	for _, t := range Tactics() {
		order[t.ShortName] = t.Order
	}
	sort.SliceStable(ts, func(i, j int) bool {
		oi, iok := order[ts[i]]
		oj, jok := order[ts[j]]
		switch {
		case iok && jok:
			return oi < oj
		case iok != jok:
			return iok
		}
		return ts[i] < ts[j]
	})
}

// tacticNames returns the tactic short names present in counts, in
// kill-chain order.
func tacticNames[V any](m map[string]V) []string {
	ts := sortedKeys(m)
	sortTactics(ts)
	return ts
}

func tacticDisplay(short string) string {
	if t, err := attack.Default().Tactic(short); err == nil {
		return t.Name
	}
	return short
}

func techniqueName(r measure.Result) string {
	if r.TechniqueName != "" {
		return r.TechniqueName
	}
	if t, err := attack.Lookup(r.Technique); err == nil {
		return t.FullName()
	}
	return ""
}

// TechniqueURL is the technique's page on attack.mitre.org.
func TechniqueURL(id string) string {
	return "https://attack.mitre.org/techniques/" + strings.ReplaceAll(id, ".", "/") + "/"
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// FormatMS renders milliseconds for people: "42ms", "1.5s", "2m5s".
func FormatMS(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func optMS(p *int64) string {
	if p == nil {
		return "-"
	}
	return FormatMS(*p)
}

// Percent renders a coverage ratio as "67%", "-" when nil.
func Percent(c *float64) string {
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *c*100)
}

// detail is the one-line explanation of a result: its rules, else its
// error or reason.
func detail(r measure.Result) string {
	switch {
	case len(r.Signals) > 0:
		var rules []string
		for _, s := range r.Signals {
			if !contains(rules, s.Rule) {
				rules = append(rules, s.Rule)
			}
		}
		return strings.Join(rules, "; ")
	case r.Error != "":
		return r.Error
	}
	return r.Reason
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// duration is the run's wall time, zero when unknown.
func duration(run *measure.Run) time.Duration {
	if run.StartedAt.IsZero() || run.FinishedAt.IsZero() || run.FinishedAt.Before(run.StartedAt) {
		return 0
	}
	return run.FinishedAt.Sub(run.StartedAt)
}
