package detect

import (
	"fmt"
	"path"
	"regexp"
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
	opMinLen             // len(value) >= minLen (regular expressions)
	opRegex              // re.MatchString(value), exactly as sigma-go's re comparator
)

func (o op) String() string {
	return [...]string{"equals", "contains", "startswith", "endswith", "minlen", "matches"}[o]
}

// atom is one field requirement: some value of field satisfies op with
// pattern. For sigma-go's own comparators pattern is foldKey(v) for opExact
// and strings.ToLower(v) otherwise, v being the rule's value as sigma-go
// sees it; for wildcard and regular expression values it is the foldKey of
// a literal that must occur. Atoms are only ever applied to ASCII values
// (ASCII lower-cased), where both forms agree with sigma-go.
type atom struct {
	field   string
	op      op
	pattern string
	minLen  int            // opMinLen
	re      *regexp.Regexp // opRegex
}

func (a atom) String() string {
	switch a.op {
	case opMinLen:
		return fmt.Sprintf("%s %s %d", a.field, a.op, a.minLen)
	case opRegex:
		return fmt.Sprintf("%s %s /%s/", a.field, a.op, a.re)
	}
	return fmt.Sprintf("%s %s %q", a.field, a.op, a.pattern)
}

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

// better reports whether n is a more selective need than m: lower cost, then
// longer patterns.
func (n need) better(m need) bool {
	if c, d := n.cost(), m.cost(); c != d {
		return c < d
	}
	return n.patternBytes() > m.patternBytes()
}

func (n need) patternBytes() int {
	l := 0
	for _, a := range n.atoms {
		l += len(a.pattern)
	}
	return l
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
	case opMinLen, opRegex:
		return 1 << 20
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

// Shadow trees.
//
// A shadow is a rule's condition with every field matcher replaced by
// necessary requirements (atoms), and every part that cannot be modelled
// (not, keywords, unknown modifiers) replaced by "maybe". It over-approximates
// the rule: if the shadow is false for an event, sigma-go's evaluator is
// false too. The Engine uses it twice: the shadow's need (a disjunction of
// atoms) is what the index keys the rule by, and the shadow itself is
// checked on each candidate before sigma-go is run.

// kind is a shadow node's type.
type kind uint8

const (
	kMaybe kind = iota // unknown: may be true
	kNever             // always false
	kAnd
	kOr
	kAtom
)

// shadow is one node of a shadow tree.
type shadow struct {
	kind kind
	kids []*shadow
	atom atom
	pb   []byte // atom.pattern as bytes
}

var (
	maybe = &shadow{kind: kMaybe}
	never = &shadow{kind: kNever}
)

// sAnd builds a simplified conjunction: never wins, maybes drop out.
func sAnd(kids ...*shadow) *shadow {
	var out []*shadow
	for _, k := range kids {
		switch k.kind {
		case kNever:
			return never
		case kMaybe:
			continue
		case kAnd:
			out = append(out, k.kids...)
		default:
			out = append(out, k)
		}
	}
	switch len(out) {
	case 0:
		return maybe
	case 1:
		return out[0]
	}
	return &shadow{kind: kAnd, kids: out}
}

// sOr builds a simplified disjunction: maybe wins, nevers drop out.
func sOr(kids ...*shadow) *shadow {
	var out []*shadow
	for _, k := range kids {
		switch k.kind {
		case kMaybe:
			return maybe
		case kNever:
			continue
		case kOr:
			out = append(out, k.kids...)
		default:
			out = append(out, k)
		}
	}
	switch len(out) {
	case 0:
		return never
	case 1:
		return out[0]
	}
	return &shadow{kind: kOr, kids: out}
}

func sAtom(a atom) *shadow { return &shadow{kind: kAtom, atom: a, pb: []byte(a.pattern)} }

// need derives the disjunction of atoms the shadow implies.
func (s *shadow) need() need {
	switch s.kind {
	case kNever:
		return need{}
	case kAtom:
		if s.atom.op == opMinLen || s.atom.op == opRegex {
			return needTop
		}
		return need{atoms: []atom{s.atom}}
	case kAnd:
		best := needTop
		for _, k := range s.kids {
			if n := k.need(); n.better(best) {
				best = n
			}
		}
		return best
	case kOr:
		out := need{}
		for _, k := range s.kids {
			n := k.need()
			if n.top {
				return needTop
			}
			out.atoms = append(out.atoms, n.atoms...)
		}
		return out
	}
	return needTop
}

// String renders the shadow for debugging and tests.
func (s *shadow) String() string {
	switch s.kind {
	case kMaybe:
		return "maybe"
	case kNever:
		return "never"
	case kAtom:
		return s.atom.String()
	}
	parts := make([]string, len(s.kids))
	for i, k := range s.kids {
		parts[i] = k.String()
	}
	sep := " and "
	if s.kind == kOr {
		sep = " or "
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// ruleShadow builds the shadow of a rule as written (before wildcard
// expansion; wildcard matchers are modelled from their segments). sigma-go
// ORs the conditions of a rule.
func ruleShadow(r sigma.Rule) *shadow {
	var kids []*shadow
	for _, c := range r.Detection.Conditions {
		if c.Aggregation != nil {
			return maybe
		}
		kids = append(kids, exprShadow(r, c.Search))
	}
	return sOr(kids...)
}

// exprShadow mirrors sigma-go's evaluateSearchExpression.
func exprShadow(r sigma.Rule, e sigma.SearchExpr) *shadow {
	switch e := e.(type) {
	case sigma.And:
		kids := make([]*shadow, 0, len(e))
		for _, sub := range e {
			kids = append(kids, exprShadow(r, sub))
		}
		return sAnd(kids...)
	case sigma.Or:
		kids := make([]*shadow, 0, len(e))
		for _, sub := range e {
			kids = append(kids, exprShadow(r, sub))
		}
		return sOr(kids...)
	case sigma.Not:
		return maybe
	case sigma.SearchIdentifier:
		s, ok := r.Detection.Searches[e.Name]
		if !ok {
			return never // sigma-go: an undefined search is false
		}
		return searchShadow(s)
	case sigma.OneOfThem:
		return sOr(matchingSearches(r, "*")...) // no searches: false
	case sigma.AllOfThem:
		return sAnd(matchingSearches(r, "*")...) // no searches: true (maybe)
	case sigma.OneOfPattern:
		return sOr(matchingSearches(r, e.Pattern)...)
	case sigma.AllOfPattern:
		return sAnd(matchingSearches(r, e.Pattern)...)
	}
	return maybe // unknown node (the loader rejects those sigma-go panics on)
}

// matchingSearches returns the shadows of the searches whose name matches
// the path.Match pattern, as sigma-go selects them.
func matchingSearches(r sigma.Rule, pattern string) []*shadow {
	var out []*shadow
	for name, s := range r.Detection.Searches {
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, searchShadow(s))
		}
	}
	return out
}

// searchShadow mirrors sigma-go's evaluateSearch: the event matchers are
// ORed, the field matchers of one event matcher ANDed.
func searchShadow(s sigma.Search) *shadow {
	if len(s.Keywords) > 0 || len(s.EventMatchers) == 0 {
		return maybe
	}
	ors := make([]*shadow, 0, len(s.EventMatchers))
	for _, em := range s.EventMatchers {
		ands := make([]*shadow, 0, len(em))
		for _, fm := range em {
			ands = append(ands, fieldShadow(fm))
		}
		ors = append(ors, sAnd(ands...)) // empty matcher: maybe (sigma-go: true)
	}
	return sOr(ors...)
}

// fieldShadow models one field matcher. Plain equality and the
// contains/startswith/endswith comparators (optionally with all), wildcard
// values and regular expressions become atoms; anything else (cidr, base64,
// numeric comparisons, "null", empty or placeholder values) is maybe. A
// non-all matcher is the OR of its values, an all matcher the AND.
func fieldShadow(fm sigma.FieldMatcher) *shadow {
	if fm.Field == "" || strings.HasPrefix(fm.Field, "$") || len(fm.Values) == 0 {
		return maybe
	}
	var valueShadow func(s string) *shadow
	mods := fm.Modifiers
	all := len(mods) > 0 && mods[len(mods)-1] == "all"
	if all {
		mods = mods[:len(mods)-1]
	}
	switch {
	case len(mods) == 1 && mods[0] == "re":
		valueShadow = func(s string) *shadow { return regexShadow(fm.Field, s) }
	default:
		o, _, ok := wildcardOp(fm)
		if !ok {
			return maybe
		}
		if wildcardMatcher(fm) {
			valueShadow = func(s string) *shadow { return wildcardShadow(fm.Field, o, s) }
		} else {
			valueShadow = func(s string) *shadow { return literalShadow(fm.Field, o, s) }
		}
	}
	kids := make([]*shadow, 0, len(fm.Values))
	for _, v := range fm.Values {
		s, ok := scalarString(v)
		if !ok || (strings.HasPrefix(s, "%") && strings.HasSuffix(s, "%")) {
			return maybe // sigma-go rejects these; placeholders
		}
		kids = append(kids, valueShadow(s))
	}
	if all {
		return sAnd(kids...)
	}
	return sOr(kids...)
}

// literalShadow is a value compared by sigma-go's own comparators:
// strings.EqualFold for plain values, strings.ToLower on both sides for
// contains/startswith/endswith.
func literalShadow(field string, o op, s string) *shadow {
	if o == opExact {
		if s == "null" {
			return maybe // sigma-go: "null" also matches a missing field
		}
		return sAtom(atom{field: field, op: o, pattern: foldKey(s)})
	}
	if s == "" {
		return maybe // contains/startswith/endswith "" always hold
	}
	return sAtom(atom{field: field, op: o, pattern: strings.ToLower(s)})
}

// wildcardShadow is a value matched as the case-insensitive regular
// expression expandWildcards makes of it: its first literal segment must
// start the value (unless the value starts with a wildcard, or the
// comparison is contains/endswith), its last must end it, and every segment
// must occur. Regular expression case folding is Unicode simple folding, so
// patterns are foldKeys.
func wildcardShadow(field string, o op, s string) *shadow {
	segs, wild, startsWild, endsWild := wildcardSegments(s)
	if !wild && o == opExact {
		// ^literal$ under simple case folding is foldKey equality.
		return sAtom(atom{field: field, op: opExact, pattern: foldKey(segs[0])})
	}
	var kids []*shadow
	first, last := segs[0], segs[len(segs)-1]
	if (o == opExact || o == opPrefix) && !startsWild && first != "" {
		kids = append(kids, sAtom(atom{field: field, op: opPrefix, pattern: foldKey(first)}))
	}
	if (o == opExact || o == opSuffix) && !endsWild && last != "" {
		kids = append(kids, sAtom(atom{field: field, op: opSuffix, pattern: foldKey(last)}))
	}
	for _, g := range segs {
		if g != "" {
			kids = append(kids, sAtom(atom{field: field, op: opContains, pattern: foldKey(g)}))
		}
	}
	return sAnd(kids...) // only wildcards: maybe
}

// regexShadow is a value matched with regexp.MatchString: one of its
// necessary literals occurs (used by the index), the value is at least as
// long as the shortest match, and finally the compiled expression itself
// matches (sigma-go recompiles it on every evaluation, so checking it once
// here first is much cheaper). An expression that does not compile never
// matches in sigma-go either (its comparator error counts as no match), but
// is left as maybe.
func regexShadow(field, expr string) *shadow {
	re, err := regexp.Compile(expr)
	if err != nil {
		return maybe
	}
	var kids []*shadow
	if lits, ok := regexMust(expr); ok {
		ors := make([]*shadow, 0, len(lits))
		for _, l := range lits {
			ors = append(ors, sAtom(atom{field: field, op: opContains, pattern: foldKey(l)}))
		}
		kids = append(kids, sOr(ors...))
	}
	if n := regexMinLen(expr); n > 0 {
		kids = append(kids, sAtom(atom{field: field, op: opMinLen, minLen: n}))
	}
	kids = append(kids, sAtom(atom{field: field, op: opRegex, re: re}))
	return sAnd(kids...)
}
