// Package coverage compares what a SIEM's rules claim to detect with what
// vigil proved by firing techniques: claimed versus proven coverage.
//
// Claims come from the rules themselves (their ATT&CK tags or threat
// mapping, through the plugins' rules call); proof comes from a run's
// results. For each SIEM, every ATT&CK technique in scope gets one Class:
//
//	claimed_proven      a rule claims it and a test of it was detected
//	claimed_not_proven  a rule claims it, its tests ran and none was detected
//	proven_unclaimed    a test of it was detected, no rule claims it
//	claimed_untested    a rule claims it, no test of it ran
//	missed_unclaimed    its tests ran, none was detected, no rule claims it
//	no_test             no rule claims it and no test of it ran
//
// and, for a SIEM whose claims are unknown (its plugin has no rules call),
// proven, missed or no_test.
//
// Matching follows attack.TechniqueID.Covers: a rule claiming a technique
// (T1059) claims each of its sub-techniques (T1059.004), while a rule
// claiming a sub-technique claims neither its parent nor its siblings. A
// test proves only its own technique: a detected test of T1059.004 proves
// T1059.004, not T1059. A result counts as a test that ran when it is
// detected or missed; errors, skips and negative tests (quiet, noisy) are
// evidence of nothing.
//
// The scope is the ATT&CK techniques and sub-techniques of the given
// platforms (default Linux and Containers, what vigil's injectors and the
// local SIEM cover), plus every technique the catalog or the run tests.
// Claims outside the scope are counted, not classified.
package coverage

import (
	"slices"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
)

// Schema is the coverage.json schema identifier.
const Schema = "vigil/coverage/v1"

// Class is where a technique stands for one SIEM.
type Class string

// The classes.
const (
	ClaimedProven    Class = "claimed_proven"
	ClaimedNotProven Class = "claimed_not_proven"
	ProvenUnclaimed  Class = "proven_unclaimed"
	ClaimedUntested  Class = "claimed_untested"
	MissedUnclaimed  Class = "missed_unclaimed"
	NoTest           Class = "no_test"
	// Proven and Missed are used when the SIEM's claims are unknown.
	Proven Class = "proven"
	Missed Class = "missed"
)

// Classes lists every class in display order.
var Classes = []Class{ClaimedProven, ClaimedNotProven, ProvenUnclaimed, ClaimedUntested, MissedUnclaimed, Proven, Missed, NoTest}

// Label is the class's name for people.
func (c Class) Label() string {
	switch c {
	case ClaimedProven:
		return "claimed and proven"
	case ClaimedNotProven:
		return "claimed, never proven"
	case ProvenUnclaimed:
		return "proven, no rule claims it"
	case ClaimedUntested:
		return "claimed, untested"
	case MissedUnclaimed:
		return "missed, no rule claims it"
	case Proven:
		return "proven (claims unknown)"
	case Missed:
		return "missed (claims unknown)"
	case NoTest:
		return "no test, no claim"
	}
	return string(c)
}

// DefaultPlatforms is the ATT&CK platform scope when none is given.
var DefaultPlatforms = []string{"Linux", "Containers"}

// Test is a catalog test: the technique it performs.
type Test struct {
	ID        string
	Technique string
}

// Rule is a detection rule and the techniques it claims.
type Rule struct {
	ID, Name   string
	Techniques []string
	Enabled    bool
	Source     string
	// Platforms are the ATT&CK platforms whose telemetry the rule reads;
	// empty means any. A rule claims nothing outside the report's scope
	// (a CloudTrail rule tagged T1005 is not a claim on Linux hosts).
	Platforms []string
}

// Claims are one SIEM's rules. Known is false when they could not be read
// (the plugin has no rules call); Note then says why.
type Claims struct {
	SIEM  string
	Known bool
	Note  string
	Rules []Rule
	// Refused counts the rule files the SIEM refused to run (they cannot
	// work, or are outside what it evaluates): not among Rules.
	Refused int
}

// Input is what Compute compares.
type Input struct {
	// RunID names the run the results come from.
	RunID string
	// Tests is the catalog: techniques with a test, even if it did not run.
	Tests []Test
	// Results are the run's results, for every SIEM.
	Results []measure.Result
	// Claims are the SIEMs' claims. A SIEM with results and no Claims
	// entry has unknown claims.
	Claims []Claims
	// Platforms is the ATT&CK platform scope (default DefaultPlatforms).
	Platforms []string
	// Table is the ATT&CK table (default attack.Default()).
	Table *attack.Table
}

// Report is claimed versus proven coverage of every SIEM (coverage.json).
type Report struct {
	Schema        string `json:"schema"`
	RunID         string `json:"run_id,omitempty"`
	AttackVersion string `json:"attack_version"`
	// Platforms is the ATT&CK platform scope of the techniques.
	Platforms []string `json:"platforms"`
	// Techniques is the number of techniques in scope.
	Techniques int    `json:"techniques"`
	SIEMs      []SIEM `json:"siems"`
}

// SIEM is the coverage of one SIEM.
type SIEM struct {
	Name string `json:"name"`
	// ClaimsKnown is false when the SIEM's rules could not be read.
	ClaimsKnown bool   `json:"claims_known"`
	ClaimsNote  string `json:"claims_note,omitempty"`
	// Rules and EnabledRules count the SIEM's rules; only enabled rules
	// claim anything.
	Rules        int `json:"rules"`
	EnabledRules int `json:"enabled_rules"`
	// RefusedRules counts the rule files the SIEM refused to run; they
	// claim nothing and are not among Rules.
	RefusedRules int `json:"refused_rules,omitempty"`
	// ClaimedOutOfScope counts techniques enabled rules claim outside the
	// platform scope and untested (not classified).
	ClaimedOutOfScope int `json:"claimed_out_of_scope"`
	// Counts are the techniques per class.
	Counts map[Class]int `json:"counts"`
	// Tactics are the counts per tactic, in ATT&CK kill-chain order; a
	// technique counts under each of its tactics.
	Tactics []Tactic `json:"tactics"`
	// Techniques are every technique in scope, by ID.
	Techniques []Technique `json:"techniques"`
	// SilentRules are enabled rules that claim a technique whose test ran
	// and never fired on it.
	SilentRules []RuleRef `json:"silent_rules,omitempty"`
}

// Tactic is the class counts of one tactic.
type Tactic struct {
	Tactic string        `json:"tactic"` // short name
	Name   string        `json:"name"`
	Counts map[Class]int `json:"counts"`
}

// Technique is one technique's standing for a SIEM.
type Technique struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Tactics []string `json:"tactics"`
	Class   Class    `json:"class"`
	// Rules are the enabled rules claiming it, each saying whether it
	// fired on a detected test of it.
	Rules []RuleRef `json:"rules,omitempty"`
	// Tests are the catalog's tests of it; Detected and Missed the tests
	// that ran, by verdict.
	Tests    []string `json:"tests,omitempty"`
	Detected []string `json:"detected,omitempty"`
	Missed   []string `json:"missed,omitempty"`
}

// RuleRef names a rule.
type RuleRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
	// Claims are the techniques the rule claims that a test ran for
	// (SilentRules only).
	Claims []string `json:"claims,omitempty"`
	// Fired is set when a detected test's signal came from the rule.
	Fired bool `json:"fired"`
}

// Compute classifies every technique in scope for every SIEM of the
// results and of the claims (in that order, then by name).
func Compute(in Input) *Report {
	table := in.Table
	if table == nil {
		table = attack.Default()
	}
	platforms := in.Platforms
	if len(platforms) == 0 {
		platforms = DefaultPlatforms
	}
	rep := &Report{Schema: Schema, RunID: in.RunID, AttackVersion: table.Version, Platforms: platforms}

	// The scope: techniques of the platforms plus every tested one.
	inScope := map[attack.TechniqueID]attack.Technique{}
	for _, t := range table.Techniques() {
		for _, p := range t.Platforms {
			if containsFold(platforms, p) {
				inScope[t.ID] = t
				break
			}
		}
	}
	addTested := func(id string) {
		tid := attack.TechniqueID(strings.ToUpper(id))
		if _, ok := inScope[tid]; ok {
			return
		}
		if t, err := table.Lookup(string(tid)); err == nil {
			inScope[tid] = t
		}
	}
	testsOf := map[attack.TechniqueID][]string{}
	for _, t := range in.Tests {
		addTested(t.Technique)
		tid := attack.TechniqueID(strings.ToUpper(t.Technique))
		testsOf[tid] = append(testsOf[tid], t.ID)
	}
	for _, r := range in.Results {
		addTested(r.Technique)
	}
	ids := make([]attack.TechniqueID, 0, len(inScope))
	for id := range inScope {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rep.Techniques = len(ids)

	// The SIEMs: of the results first, then of the claims.
	var names []string
	claims := map[string]Claims{}
	for _, r := range in.Results {
		if !slices.Contains(names, r.SIEM) {
			names = append(names, r.SIEM)
		}
	}
	var extra []string
	for _, c := range in.Claims {
		claims[c.SIEM] = c
		if !slices.Contains(names, c.SIEM) && !slices.Contains(extra, c.SIEM) {
			extra = append(extra, c.SIEM)
		}
	}
	sort.Strings(extra)
	names = append(names, extra...)

	for _, name := range names {
		c, ok := claims[name]
		if !ok {
			c = Claims{SIEM: name, Note: "claims unknown (no rules read)"}
		}
		var results []measure.Result
		for _, r := range in.Results {
			if r.SIEM == name {
				results = append(results, r)
			}
		}
		rep.SIEMs = append(rep.SIEMs, computeSIEM(table, platforms, ids, inScope, testsOf, c, results))
	}
	return rep
}

// verdicts are the tests of one technique that ran, by verdict, and the
// rules whose signals detected them.
type verdicts struct {
	detected, missed []string
	firedIDs         map[string]bool // rule IDs and names, lower-case
}

func computeSIEM(table *attack.Table, platforms []string, ids []attack.TechniqueID, inScope map[attack.TechniqueID]attack.Technique,
	testsOf map[attack.TechniqueID][]string, c Claims, results []measure.Result) SIEM {
	s := SIEM{Name: c.SIEM, ClaimsKnown: c.Known, ClaimsNote: c.Note, Rules: len(c.Rules), Counts: map[Class]int{}}

	byTech := map[attack.TechniqueID]*verdicts{}
	for _, r := range results {
		if r.Status != measure.Detected && r.Status != measure.Missed {
			continue
		}
		tid := attack.TechniqueID(strings.ToUpper(r.Technique))
		v := byTech[tid]
		if v == nil {
			v = &verdicts{firedIDs: map[string]bool{}}
			byTech[tid] = v
		}
		if r.Status == measure.Detected {
			v.detected = appendNew(v.detected, r.TestID)
			for _, sig := range r.Signals {
				for _, k := range []string{sig.RuleID, sig.Rule} {
					if k != "" {
						v.firedIDs[strings.ToLower(k)] = true
					}
				}
			}
		} else {
			v.missed = appendNew(v.missed, r.TestID)
		}
	}
	// A test detected on one target and missed on another is detected.
	for _, v := range byTech {
		v.missed = slices.DeleteFunc(v.missed, func(id string) bool { return slices.Contains(v.detected, id) })
	}

	var enabled []Rule
	n := 0
	for _, r := range c.Rules {
		if !r.Enabled {
			continue
		}
		n++
		if len(r.Platforms) == 0 || slices.ContainsFunc(r.Platforms, func(p string) bool { return containsFold(platforms, p) }) {
			enabled = append(enabled, r)
		}
	}
	s.EnabledRules = n
	s.RefusedRules = c.Refused
	fired := func(r Rule, v *verdicts) bool {
		return v != nil && (v.firedIDs[strings.ToLower(r.ID)] || (r.Name != "" && v.firedIDs[strings.ToLower(r.Name)]))
	}

	// Claims outside the scope.
	outside := map[attack.TechniqueID]bool{}
	for _, r := range enabled {
		for _, t := range r.Techniques {
			tid := attack.TechniqueID(strings.ToUpper(t))
			if _, ok := inScope[tid]; !ok && tid.Validate() == nil {
				outside[tid] = true
			}
		}
	}
	s.ClaimedOutOfScope = len(outside)

	tactics := map[string]map[Class]int{}
	silent := map[string]*RuleRef{}
	var silentOrder []string
	for _, id := range ids {
		tech := inScope[id]
		v := byTech[id]
		row := Technique{ID: string(id), Name: tech.FullName(), Tactics: tech.Tactics, Tests: testsOf[id]}
		if v != nil {
			row.Detected, row.Missed = v.detected, v.missed
		}
		for _, r := range enabled {
			if !claims(r, id) {
				continue
			}
			ref := RuleRef{ID: r.ID, Name: r.Name, Source: r.Source, Fired: fired(r, v)}
			row.Rules = append(row.Rules, ref)
			if v != nil && !ref.Fired {
				key := r.ID + "\x00" + r.Name
				if silent[key] == nil {
					silent[key] = &RuleRef{ID: r.ID, Name: r.Name, Source: r.Source}
					silentOrder = append(silentOrder, key)
				}
				silent[key].Claims = append(silent[key].Claims, string(id))
			}
		}
		row.Class = classify(c.Known, len(row.Rules) > 0, len(row.Detected) > 0, len(row.Missed) > 0)
		s.Counts[row.Class]++
		for _, t := range row.Tactics {
			if tactics[t] == nil {
				tactics[t] = map[Class]int{}
			}
			tactics[t][row.Class]++
		}
		s.Techniques = append(s.Techniques, row)
	}
	for _, key := range silentOrder {
		s.SilentRules = append(s.SilentRules, *silent[key])
	}
	for _, t := range table.Tactics() {
		if counts, ok := tactics[t.ShortName]; ok {
			s.Tactics = append(s.Tactics, Tactic{Tactic: t.ShortName, Name: t.Name, Counts: counts})
		}
	}
	return s
}

// claims reports whether the rule claims the technique (Covers semantics).
func claims(r Rule, id attack.TechniqueID) bool {
	for _, t := range r.Techniques {
		if attack.TechniqueID(strings.ToUpper(strings.TrimSpace(t))).Covers(id) {
			return true
		}
	}
	return false
}

// classify is the class of a technique.
func classify(known, claimed, detected, missed bool) Class {
	switch {
	case !known && detected:
		return Proven
	case !known && missed:
		return Missed
	case !known:
		return NoTest
	case claimed && detected:
		return ClaimedProven
	case claimed && missed:
		return ClaimedNotProven
	case claimed:
		return ClaimedUntested
	case detected:
		return ProvenUnclaimed
	case missed:
		return MissedUnclaimed
	}
	return NoTest
}

// Of returns the techniques of a class.
func (s SIEM) Of(c Class) []Technique {
	var out []Technique
	for _, t := range s.Techniques {
		if t.Class == c {
			out = append(out, t)
		}
	}
	return out
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

func containsFold(xs []string, x string) bool {
	for _, v := range xs {
		if strings.EqualFold(v, x) {
			return true
		}
	}
	return false
}
