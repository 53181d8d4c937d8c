package detect

import (
	"fmt"
	"path"
	"strings"

	"github.com/bradleyjkemp/sigma-go"
)

// op is the comparison of a requirement.
type op uint8

const (
	opExact    op = iota // strings.EqualFold(value, pattern)
	opContains           // strings.Contains(lower(value), pattern)
	opPrefix             // strings.HasPrefix(lower(value), pattern)
	opSuffix             // strings.HasSuffix(lower(value), pattern)
)

func (o op) String() string {
	return [...]string{"equals", "contains", "startswith", "endswith"}[o]
}

// atom is one field requirement: some value of field satisfies op with
// pattern. pattern is foldKey(v) for opExact and strings.ToLower(v)
// otherwise, v being the rule's value as sigma-go sees it.
type atom struct {
	field   string
	op      op
	pattern string
}

func (a atom) String() string { return fmt.Sprintf("%s %s %q", a.field, a.op, a.pattern) }

// need is a disjunction of atoms implied by an expression: whenever the
// expression is true for an event, at least one atom holds. top means no
// such finite set is known (the expression must always be evaluated). A
// non-top need without atoms means the expression is never true.
type need struct {
	top   bool
	atoms []atom
}

var needTop = need{top: true}

// cost estimates how often a need fires; lower is more selective.
func (n need) cost() int {
	if n.top {
		return 1 << 30
	}
	c := 0
	for _, a := range n.atoms {
		c += a.cost()
	}
	return c
}

// cost estimates how often an atom fires on a busy host's telemetry, in
// rough events-per-thousand: a need's cost is the sum over its atoms (the
// chance that one of them fires), so many specific values beat one common
// one.
func (a atom) cost() int {
	l := len(a.pattern)
	switch a.op {
	case opExact:
		// Record-type and syscall values are shared by whole classes of
		// events; prefer any other field.
		switch strings.ToLower(a.field) {
		case "type", "syscall", "key", "user", "success":
			return 200
		}
		if l <= 1 { // "0", "1": root ids, flags
			return 50
		}
		return 1
	case opContains:
		switch {
		case l <= 2:
			return 150
		case l <= 4:
			return 30
		case l <= 7:
			return 10
		}
		return 3
	default: // prefix, suffix
		switch {
		case l <= 2:
			return 50
		case l <= 5:
			return 10
		}
		return 2
	}
}

// or combines alternatives: any of them may be the one that holds.
func or(ns ...need) need {
	out := need{}
	for _, n := range ns {
		if n.top {
			return needTop
		}
		out.atoms = append(out.atoms, n.atoms...)
	}
	return out
}

// and combines conjuncts: every one holds, so the most selective one's need
// is a need of the conjunction.
func and(ns ...need) need {
	best := needTop
	for _, n := range ns {
		if n.cost() < best.cost() {
			best = n
		}
	}
	return best
}

// ruleNeed analyses a rule's conditions (which sigma-go ORs).
func ruleNeed(r sigma.Rule) need {
	var ns []need
	for _, c := range r.Detection.Conditions {
		if c.Aggregation != nil {
			return needTop
		}
		ns = append(ns, exprNeed(r, c.Search))
	}
	return or(ns...)
}

// exprNeed mirrors sigma-go's evaluateSearchExpression.
func exprNeed(r sigma.Rule, e sigma.SearchExpr) need {
	switch e := e.(type) {
	case sigma.And:
		ns := make([]need, 0, len(e))
		for _, sub := range e {
			ns = append(ns, exprNeed(r, sub))
		}
		return and(ns...)
	case sigma.Or:
		ns := make([]need, 0, len(e))
		for _, sub := range e {
			ns = append(ns, exprNeed(r, sub))
		}
		return or(ns...)
	case sigma.Not:
		return needTop
	case sigma.SearchIdentifier:
		s, ok := r.Detection.Searches[e.Name]
		if !ok {
			return need{} // sigma-go: an undefined search is false
		}
		return searchNeed(s)
	case sigma.OneOfThem:
		return or(matchingSearches(r, "*")...) // no searches: false
	case sigma.AllOfThem:
		return and(matchingSearches(r, "*")...) // no searches: true (top)
	case sigma.OneOfPattern:
		return or(matchingSearches(r, e.Pattern)...)
	case sigma.AllOfPattern:
		return and(matchingSearches(r, e.Pattern)...)
	case sigma.OneOfIdentifier:
		return exprNeed(r, e.Ident)
	case sigma.AllOfIdentifier:
		return exprNeed(r, e.Ident)
	}
	return needTop // unknown node: be safe
}

// matchingSearches returns the needs of the searches whose name matches the
// path.Match pattern, as sigma-go selects them.
func matchingSearches(r sigma.Rule, pattern string) []need {
	var ns []need
	for name, s := range r.Detection.Searches {
		if ok, _ := path.Match(pattern, name); ok {
			ns = append(ns, searchNeed(s))
		}
	}
	return ns
}

// searchNeed mirrors sigma-go's evaluateSearch: the event matchers are ORed,
// the field matchers of one event matcher ANDed.
func searchNeed(s sigma.Search) need {
	if len(s.Keywords) > 0 || len(s.EventMatchers) == 0 {
		return needTop
	}
	ns := make([]need, 0, len(s.EventMatchers))
	for _, em := range s.EventMatchers {
		fs := make([]need, 0, len(em))
		for _, fm := range em {
			fs = append(fs, fieldNeed(fm))
		}
		ns = append(ns, and(fs...)) // empty matcher: top (always true)
	}
	return or(ns...)
}

// fieldNeed analyses one field matcher. Only plain equality and the
// contains/startswith/endswith comparators, optionally with all, become
// atoms; anything else (re, cidr, base64, numeric comparisons, empty or
// special values) is top. Matchers with wildcards are evaluated as regular
// expressions (see expandWildcards); their atoms come from the literal
// segments of the values.
func fieldNeed(fm sigma.FieldMatcher) need {
	if fm.Field == "" || strings.HasPrefix(fm.Field, "$") {
		return needTop
	}
	if len(fm.Values) == 0 {
		return needTop
	}
	if n, ok := regexNeed(fm); ok {
		return n
	}
	o, all, ok := wildcardOp(fm)
	if !ok {
		return needTop
	}
	wild := wildcardMatcher(fm)
	atoms := make([]atom, 0, len(fm.Values))
	for _, v := range fm.Values {
		s, ok := scalarString(v)
		if !ok || (strings.HasPrefix(s, "%") && strings.HasSuffix(s, "%")) {
			return needTop // sigma-go rejects these; placeholder
		}
		var a atom
		if wild {
			a, ok = wildcardAtom(fm.Field, o, s)
		} else {
			a, ok = literalAtom(fm.Field, o, s)
		}
		if !ok {
			return needTop
		}
		atoms = append(atoms, a)
	}
	if all {
		// Every value must match, so any single one is necessary: keep the
		// most selective.
		best := atoms[0]
		for _, a := range atoms[1:] {
			if a.cost() < best.cost() || (a.cost() == best.cost() && len(a.pattern) > len(best.pattern)) {
				best = a
			}
		}
		return need{atoms: []atom{best}}
	}
	return need{atoms: atoms}
}

// regexNeed analyses a `re` (or `re|all`) matcher; ok is false for other
// matchers. An expression without a usable literal set makes the need top.
func regexNeed(fm sigma.FieldMatcher) (n need, ok bool) {
	mods := fm.Modifiers
	all := len(mods) == 2 && mods[0] == "re" && mods[1] == "all"
	if !all && (len(mods) != 1 || mods[0] != "re") {
		return need{}, false
	}
	var sets []need
	for _, v := range fm.Values {
		s, ok := scalarString(v)
		if !ok {
			return needTop, true
		}
		lits, ok := regexMust(s)
		if !ok {
			sets = append(sets, needTop)
			continue
		}
		var vn need
		for _, l := range lits {
			vn.atoms = append(vn.atoms, atom{field: fm.Field, op: opContains, pattern: foldKey(l)})
		}
		sets = append(sets, vn)
	}
	if all {
		return and(sets...), true
	}
	return or(sets...), true
}

// literalAtom is the requirement of a value compared by sigma-go's own
// comparators: strings.EqualFold for plain values, strings.ToLower on both
// sides for contains/startswith/endswith.
func literalAtom(field string, o op, s string) (atom, bool) {
	if o == opExact {
		if s == "null" {
			return atom{}, false // sigma-go: "null" also matches a missing field
		}
		return atom{field: field, op: o, pattern: foldKey(s)}, true
	}
	if s == "" {
		return atom{}, false // contains/startswith/endswith "" always hold
	}
	return atom{field: field, op: o, pattern: strings.ToLower(s)}, true
}

// wildcardAtom is a requirement implied by a value matched as the
// case-insensitive regular expression expandWildcards makes of it: a literal
// segment that must start, end or occur in the value. Regular expression
// case folding is Unicode simple folding, so patterns are foldKeys; the
// engine only applies them to ASCII values (non-ASCII values make every
// requirement of the field fire), for which foldKey is ASCII lower-casing.
func wildcardAtom(field string, o op, s string) (atom, bool) {
	segs, wild, startsWild, endsWild := wildcardSegments(s)
	if !wild && o == opExact {
		// ^literal$ under simple case folding is foldKey equality.
		return atom{field: field, op: opExact, pattern: foldKey(segs[0])}, true
	}
	first, last := segs[0], segs[len(segs)-1]
	var cands []atom
	if (o == opExact || o == opPrefix) && !startsWild && first != "" {
		cands = append(cands, atom{field: field, op: opPrefix, pattern: foldKey(first)})
	}
	if (o == opExact || o == opSuffix) && !endsWild && last != "" {
		cands = append(cands, atom{field: field, op: opSuffix, pattern: foldKey(last)})
	}
	for _, g := range segs {
		if g != "" {
			cands = append(cands, atom{field: field, op: opContains, pattern: foldKey(g)})
		}
	}
	if len(cands) == 0 {
		return atom{}, false // only wildcards: matches (nearly) anything
	}
	best := cands[0]
	for _, a := range cands[1:] {
		if a.cost() < best.cost() || (a.cost() == best.cost() && len(a.pattern) > len(best.pattern)) {
			best = a
		}
	}
	return best, true
}
