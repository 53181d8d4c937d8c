package detect

import (
	"regexp/syntax"
)

// Requirements of `re` matchers.
//
// sigma-go evaluates `field|re: expr` with regexp.MatchString, case-sensitive
// unless the expression sets (?i). regexMust finds a set of literal strings
// one of which occurs in every string the expression matches (in the spirit
// of sigma-go's own regexStrings and Russ Cox's codesearch trigram
// analysis). Each literal becomes a contains requirement on the foldKey of
// the literal: if a literal occurs in an ASCII value (case-sensitively or
// under simple case folding), its foldKey occurs in the ASCII lower-cased
// value, which is what the engine scans. Non-ASCII values make every
// requirement of the field fire, so they need no modelling.

const (
	maxReSet    = 32  // largest literal set kept
	maxReLitLen = 64  // longest literal built by concatenation
	maxClass    = 8   // largest character class expanded into literals
	maxReDepth  = 100 // recursion guard
)

// reInfo summarises a sub-expression.
type reInfo struct {
	// exact, when non-nil, is the complete set of strings matched.
	exact []string
	// must, when non-nil, holds literals one of which occurs in every match.
	must []string
}

// regexMust parses expr as sigma-go does and returns the literal set, or
// ok == false when no useful set exists (or expr does not parse).
func regexMust(expr string) (lits []string, ok bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	info := analyzeRe(re.Simplify(), 0)
	m := info.must
	if info.exact != nil {
		m = info.exact
	}
	if len(m) == 0 {
		return nil, false
	}
	for _, s := range m {
		if s == "" {
			return nil, false
		}
	}
	return m, true
}

func analyzeRe(re *syntax.Regexp, depth int) reInfo {
	if depth > maxReDepth {
		return reInfo{}
	}
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		return reInfo{exact: []string{s}, must: []string{s}}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi-lo >= maxClass || len(set)+int(hi-lo)+1 > maxClass {
				return reInfo{}
			}
			for r := lo; r <= hi; r++ {
				set = append(set, string(r))
			}
		}
		if len(set) == 0 {
			return reInfo{}
		}
		return reInfo{exact: set, must: set}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return reInfo{exact: []string{""}}
	case syntax.OpCapture:
		return analyzeRe(re.Sub[0], depth+1)
	case syntax.OpPlus:
		sub := analyzeRe(re.Sub[0], depth+1)
		return reInfo{must: mustOf(sub)}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			sub := analyzeRe(re.Sub[0], depth+1)
			return reInfo{must: mustOf(sub)}
		}
		return reInfo{}
	case syntax.OpAlternate:
		var exact, must []string
		allExact, allMust := true, true
		for _, s := range re.Sub {
			sub := analyzeRe(s, depth+1)
			if sub.exact == nil {
				allExact = false
			}
			m := mustOf(sub)
			if m == nil {
				allMust = false
			}
			exact = append(exact, sub.exact...)
			must = append(must, m...)
		}
		out := reInfo{}
		if allExact && len(exact) <= maxReSet {
			out.exact = dedupe(exact)
		}
		if allMust && len(must) <= maxReSet {
			out.must = dedupe(must)
		}
		return out
	case syntax.OpConcat:
		var best []string
		consider := func(set []string) {
			if set == nil || hasEmpty(set) {
				return
			}
			if best == nil || setCost(set) < setCost(best) {
				best = set
			}
		}
		run := []string{""} // exact strings of the current run of exact children
		exactAll := true
		for _, s := range re.Sub {
			sub := analyzeRe(s, depth+1)
			if sub.exact == nil {
				// An exact child is part of the current run, which is at
				// least as selective as the child alone.
				consider(sub.must)
			}
			if sub.exact != nil && len(run)*len(sub.exact) <= maxReSet {
				next := make([]string, 0, len(run)*len(sub.exact))
				long := false
				for _, a := range run {
					for _, b := range sub.exact {
						next = append(next, a+b)
						long = long || len(a)+len(b) > maxReLitLen
					}
				}
				if !long {
					run = dedupe(next)
					continue
				}
			}
			// The run ends here.
			consider(run)
			exactAll = false
			run = []string{""}
			if sub.exact != nil && len(sub.exact) <= maxReSet {
				run = sub.exact
			}
		}
		consider(run)
		out := reInfo{must: best}
		if exactAll {
			out.exact = run
		}
		return out
	}
	// OpAnyChar, OpAnyCharNotNL, OpStar, OpQuest, OpNoMatch, ...
	return reInfo{}
}

// mustOf returns the literals one of which occurs in every match.
func mustOf(i reInfo) []string {
	if i.exact != nil && !hasEmpty(i.exact) {
		return i.exact
	}
	if i.must != nil && !hasEmpty(i.must) {
		return i.must
	}
	return nil
}

func hasEmpty(set []string) bool {
	for _, s := range set {
		if s == "" {
			return true
		}
	}
	return false
}

func dedupe(set []string) []string {
	seen := make(map[string]bool, len(set))
	out := set[:0:0]
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// setCost is the cost of requiring one of the literals.
func setCost(set []string) int {
	c := 0
	for _, s := range set {
		c += atom{op: opContains, pattern: s}.cost()
	}
	return c
}

// regexMinLen returns a lower bound on the length in bytes of any string
// expr matches (0 when unknown or when expr does not parse).
func regexMinLen(expr string) int {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return 0
	}
	return minLenRe(re, 0)
}

func minLenRe(re *syntax.Regexp, depth int) int {
	if depth > maxReDepth {
		return 0
	}
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) // every rune is at least one byte
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLenRe(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		n := re.Min * minLenRe(re.Sub[0], depth+1)
		return min(n, 1<<20)
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n += minLenRe(s, depth+1)
		}
		return min(n, 1<<20)
	case syntax.OpAlternate:
		n := -1
		for _, s := range re.Sub {
			if m := minLenRe(s, depth+1); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // star, quest, empty-width, no-match
}
