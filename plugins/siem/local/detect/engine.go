package detect

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/vigilsec/vigil/core/telemetry"
)

// Match is one rule that matched an event.
type Match struct {
	// Rule is the matching rule (its Author and Link carry the DRL 1.1
	// attribution).
	Rule *Rule
	// Searches are the names of the rule's detection searches that were true
	// for the event (e.g. "selection"), sorted.
	Searches []string
}

// Engine evaluates events against a fixed set of rules, using an index to
// pick the candidate rules of an event and sigma-go to confirm them. It is
// safe for concurrent use.
type Engine struct {
	rules   []*Rule
	sources []*sourceIndex
	maxRule int
	pool    sync.Pool
}

// sourceIndex is the index of the rules of one logsource.
type sourceIndex struct {
	src     telemetry.Logsource
	rules   []*Rule
	shadows []*shadow // per rule: checked before running sigma-go
	always  []int32   // rules to evaluate for every event
	never   int       // rules whose condition can never be true
	fields  []*fieldIndex
}

// fieldIndex holds the requirements on one field.
type fieldIndex struct {
	name  string
	exact map[string][]int32 // foldKey(value) -> rules
	all   []int32            // every rule with a requirement on the field
	ac    *automaton         // lower-cased contains/startswith/endswith patterns
	hits  [][]patEntry       // pattern id -> requirements
}

type patEntry struct {
	op   op
	rule int32
}

// scratch is the per-call working memory, pooled to keep Match free of
// allocations for non-matching events.
type scratch struct {
	seen  []uint32 // rule -> generation it was marked in
	gen   uint32
	cands []int32
	buf   []byte
}

func (sc *scratch) mark(id int32) {
	if sc.seen[id] != sc.gen {
		sc.seen[id] = sc.gen
		sc.cands = append(sc.cands, id)
	}
}

// SourceStats describes the index of one logsource.
type SourceStats struct {
	// Logsource is the logsource.
	Logsource telemetry.Logsource
	// Rules is the number of rules of the logsource.
	Rules int
	// Indexed rules are evaluated only when one of their requirements fires.
	Indexed int
	// Always rules are evaluated for every event of the logsource.
	Always int
	// Never rules have a condition that can never be true.
	Never int
	// Fields is the number of indexed fields.
	Fields int
	// Exact and Patterns count exact-value keys and automaton patterns.
	Exact, Patterns int
}

// NewEngine indexes rules.
func NewEngine(rules []*Rule) *Engine {
	e := &Engine{rules: rules}
	bySource := map[telemetry.Logsource]*sourceIndex{}
	type fieldBuild struct {
		exact    map[string][]int32
		patterns []string
		patID    map[string]int32
		hits     [][]patEntry
		all      []int32
	}
	builds := map[*sourceIndex]map[string]*fieldBuild{}
	var order []*sourceIndex
	for _, r := range rules {
		si := bySource[r.Logsource]
		if si == nil {
			si = &sourceIndex{src: r.Logsource}
			bySource[r.Logsource] = si
			builds[si] = map[string]*fieldBuild{}
			order = append(order, si)
		}
		id := int32(len(si.rules))
		si.rules = append(si.rules, r)
		sh := ruleShadow(r.Sigma)
		si.shadows = append(si.shadows, sh)
		n := sh.need()
		switch {
		case n.top:
			si.always = append(si.always, id)
			continue
		case len(n.atoms) == 0:
			si.never++
			continue
		}
		for _, a := range n.atoms {
			fb := builds[si][a.field]
			if fb == nil {
				fb = &fieldBuild{exact: map[string][]int32{}, patID: map[string]int32{}}
				builds[si][a.field] = fb
			}
			if len(fb.all) == 0 || fb.all[len(fb.all)-1] != id {
				fb.all = append(fb.all, id)
			}
			if a.op == opExact {
				if ids := fb.exact[a.pattern]; len(ids) == 0 || ids[len(ids)-1] != id {
					fb.exact[a.pattern] = append(ids, id)
				}
				continue
			}
			p, ok := fb.patID[a.pattern]
			if !ok {
				p = int32(len(fb.patterns))
				fb.patID[a.pattern] = p
				fb.patterns = append(fb.patterns, a.pattern)
				fb.hits = append(fb.hits, nil)
			}
			fb.hits[p] = append(fb.hits[p], patEntry{op: a.op, rule: id})
		}
	}
	for _, si := range order {
		names := make([]string, 0, len(builds[si]))
		for name := range builds[si] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fb := builds[si][name]
			fi := &fieldIndex{name: name, hits: fb.hits, all: fb.all}
			if len(fb.exact) > 0 {
				fi.exact = fb.exact
			}
			if len(fb.patterns) > 0 {
				fi.ac = newAutomaton(fb.patterns)
			}
			si.fields = append(si.fields, fi)
		}
		e.sources = append(e.sources, si)
		e.maxRule = max(e.maxRule, len(si.rules))
	}
	e.pool.New = func() any {
		return &scratch{seen: make([]uint32, e.maxRule), buf: make([]byte, 0, 256)}
	}
	return e
}

// Rules returns the rules the engine was built from.
func (e *Engine) Rules() []*Rule { return e.rules }

// Stats describes the index, one entry per logsource.
func (e *Engine) Stats() []SourceStats {
	var out []SourceStats
	for _, si := range e.sources {
		st := SourceStats{Logsource: si.src, Rules: len(si.rules), Always: len(si.always), Never: si.never, Fields: len(si.fields)}
		st.Indexed = st.Rules - st.Always - st.Never
		for _, fi := range si.fields {
			st.Exact += len(fi.exact)
			st.Patterns += len(fi.hits)
		}
		out = append(out, st)
	}
	return out
}

// Match returns the rules that match ev, in rule order.
func (e *Engine) Match(ev *telemetry.Event) []Match {
	return e.AppendMatches(nil, ev)
}

// AppendMatches appends the rules that match ev to dst, in rule order. It
// does not allocate when nothing matches.
func (e *Engine) AppendMatches(dst []Match, ev *telemetry.Event) []Match {
	var si *sourceIndex
	for _, s := range e.sources {
		if s.src == ev.Source {
			si = s
			break
		}
	}
	if si == nil {
		return dst
	}
	sc := e.pool.Get().(*scratch)
	defer e.pool.Put(sc)
	si.candidates(ev, sc)
	for _, id := range sc.cands {
		if !si.shadows[id].eval(ev, sc) {
			continue // cannot match: skip the sigma-go evaluation
		}
		r := si.rules[id]
		ok, searches := r.evaluate(ev)
		if !ok {
			continue
		}
		m := Match{Rule: r}
		for name, hit := range searches {
			if hit {
				m.Searches = append(m.Searches, name)
			}
		}
		sort.Strings(m.Searches)
		dst = append(dst, m)
	}
	return dst
}

// candidates fills sc.cands with the ids of the rules of si that may match
// ev, sorted.
func (si *sourceIndex) candidates(ev *telemetry.Event, sc *scratch) {
	sc.gen++
	if sc.gen == 0 { // wrapped: forget every old mark
		clear(sc.seen)
		sc.gen = 1
	}
	sc.cands = sc.cands[:0]
	for _, id := range si.always {
		sc.mark(id)
	}
fields:
	for _, fi := range si.fields {
		switch v := ev.Fields[fi.name].(type) {
		case string:
			fi.scan(v, sc)
		case []string:
			for _, s := range v {
				fi.scan(s, sc)
			}
		case nil:
			fi.scan("<nil>", sc) // sigma-go compares a missing field as fmt.Sprint(nil)
		default:
			// A value type the index does not model: evaluate every rule.
			for id := range si.rules {
				sc.mark(int32(id))
			}
			break fields
		}
	}
	slices.Sort(sc.cands)
}

// scan marks the rules with a requirement on fi that value s satisfies.
// Requirements are only applied to ASCII values; a non-ASCII value (rare in
// audit data) marks every rule with a requirement on the field, which keeps
// the index exact without modelling Unicode case mapping.
func (fi *fieldIndex) scan(s string, sc *scratch) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, id := range fi.all {
				sc.mark(id)
			}
			return
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if fi.exact != nil {
		var ids []int32
		if upper {
			sc.buf = sc.buf[:0]
			for i := 0; i < len(s); i++ {
				sc.buf = append(sc.buf, lowerTable[s[i]])
			}
			ids = fi.exact[string(sc.buf)]
		} else {
			ids = fi.exact[s]
		}
		for _, id := range ids {
			sc.mark(id)
		}
	}
	if fi.ac != nil {
		fi.scanPatterns(s, sc)
	}
}

// scanPatterns runs the automaton over the ASCII string t and marks the rules whose contains/startswith/endswith requirement holds.
func (fi *fieldIndex) scanPatterns(t string, sc *scratch) {
	a := fi.ac
	n := int32(a.nclasses)
	st := int32(0)
	for i := 0; i < len(t); i++ {
		v := a.delta[st+int32(a.classes[t[i]])]
		st = v >> 1
		if v&1 == 0 {
			continue
		}
		end := i + 1
		for q := st / n; q >= 0; q = a.dict[q] {
			for _, p := range a.out[q] {
				for _, h := range fi.hits[p] {
					switch h.op {
					case opContains:
						sc.mark(h.rule)
					case opPrefix:
						if end == int(a.patLen[p]) {
							sc.mark(h.rule)
						}
					case opSuffix:
						if end == len(t) {
							sc.mark(h.rule)
						}
					}
				}
			}
		}
	}
}

// eval reports whether the rule the shadow belongs to may match ev (false
// means it certainly does not).
func (s *shadow) eval(ev *telemetry.Event, sc *scratch) bool {
	switch s.kind {
	case kNever:
		return false
	case kAnd:
		for _, k := range s.kids {
			if !k.eval(ev, sc) {
				return false
			}
		}
		return true
	case kOr:
		for _, k := range s.kids {
			if k.eval(ev, sc) {
				return true
			}
		}
		return false
	case kAtom:
		switch v := ev.Fields[s.atom.field].(type) {
		case string:
			return s.holds(v, sc)
		case []string:
			for _, x := range v {
				if s.holds(x, sc) {
					return true
				}
			}
			return false
		case nil:
			return s.holds("<nil>", sc) // as sigma-go sees a missing field
		}
	}
	return true // maybe, or a value type that is not modelled
}

// holds checks the atom of an atom node on one value.
func (s *shadow) holds(v string, sc *scratch) bool {
	a := &s.atom
	switch a.op {
	case opMinLen:
		return len(v) >= a.minLen
	case opRegex:
		return a.re.MatchString(v)
	}
	upper := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return true // non-ASCII values are not modelled
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		switch a.op {
		case opExact:
			return v == a.pattern
		case opContains:
			return strings.Contains(v, a.pattern)
		case opPrefix:
			return strings.HasPrefix(v, a.pattern)
		default:
			return strings.HasSuffix(v, a.pattern)
		}
	}
	sc.buf = sc.buf[:0]
	for i := 0; i < len(v); i++ {
		sc.buf = append(sc.buf, lowerTable[v[i]])
	}
	switch a.op {
	case opExact:
		return bytes.Equal(sc.buf, s.pb)
	case opContains:
		return bytes.Contains(sc.buf, s.pb)
	case opPrefix:
		return bytes.HasPrefix(sc.buf, s.pb)
	default:
		return bytes.HasSuffix(sc.buf, s.pb)
	}
}
