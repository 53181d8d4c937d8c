package detect

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bradleyjkemp/sigma-go"
)

// Sigma values may hold the wildcards * (any run of characters) and ? (any
// single character), escaped as \* and \? (and \\ for a backslash before a
// wildcard). sigma-go v0.6.6 compares such values literally, so a rule like
// `name: '/home/*/.bashrc'` would never match. The loader therefore rewrites
// every plain, contains, startswith or endswith field matcher that has a
// wildcard value into an equivalent case-insensitive `re` matcher before
// handing the rule to sigma-go; the Engine's analysis uses the same
// predicate (wildcardMatcher) and derives its requirements from the literal
// segments of the values.

// wildcardSegments splits a Sigma value into its literal segments around
// unescaped wildcards, unescaping \*, \? and \\. wild reports whether there
// was any wildcard; startsWild/endsWild whether the value begins or ends
// with one.
func wildcardSegments(v string) (segs []string, wild, startsWild, endsWild bool) {
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\'):
			cur.WriteByte(v[i+1])
			i++
		case c == '*' || c == '?':
			if i == 0 {
				startsWild = true
			}
			if i == len(v)-1 {
				endsWild = true
			}
			wild = true
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	segs = append(segs, cur.String())
	return segs, wild, startsWild, endsWild
}

// wildcardRegexp translates a Sigma value to a regular expression body
// (without flags or anchors).
func wildcardRegexp(v string) string {
	var b strings.Builder
	lit := func(s string) { b.WriteString(regexp.QuoteMeta(s)) }
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\'):
			lit(v[start:i])
			lit(v[i+1 : i+2])
			i++
			start = i + 1
		case c == '*':
			lit(v[start:i])
			b.WriteString(".*")
			start = i + 1
		case c == '?':
			lit(v[start:i])
			b.WriteString(".")
			start = i + 1
		}
	}
	lit(v[start:])
	return b.String()
}

// scalarString renders a rule value the way sigma-go's getMatcherValues
// does; ok is false for values sigma-go rejects.
func scalarString(v any) (s string, ok bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int, float32, float64, bool:
		return fmt.Sprintf("%v", v), true
	}
	return "", false
}

// wildcardOp returns the comparison of a field matcher whose values are
// eligible for wildcard rewriting (plain, contains, startswith, endswith,
// each optionally followed by all), and whether it is eligible.
func wildcardOp(fm sigma.FieldMatcher) (o op, all, ok bool) {
	mods := fm.Modifiers
	if len(mods) > 0 && mods[len(mods)-1] == "all" {
		all = true
		mods = mods[:len(mods)-1]
	}
	switch {
	case len(mods) == 0:
		return opExact, all, true
	case len(mods) == 1 && mods[0] == "contains":
		return opContains, all, true
	case len(mods) == 1 && mods[0] == "startswith":
		return opPrefix, all, true
	case len(mods) == 1 && mods[0] == "endswith":
		return opSuffix, all, true
	}
	return 0, false, false
}

// wildcardMatcher reports whether fm is rewritten to a regular expression
// matcher: its comparison is eligible and at least one of its values is a
// string with an unescaped wildcard. Matchers with a "null" value keep
// sigma-go's literal semantics (null also matches a missing field).
func wildcardMatcher(fm sigma.FieldMatcher) bool {
	if _, _, ok := wildcardOp(fm); !ok || fm.Field == "" {
		return false
	}
	wild := false
	for _, v := range fm.Values {
		switch v := v.(type) {
		case string:
			if v == "null" || (strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%")) {
				return false
			}
			if _, w, _, _ := wildcardSegments(v); w {
				wild = true
			}
			// An escaped wildcard (principal: '\*', a literal asterisk):
			// sigma-go would compare the backslash too; the expansion
			// unescapes it.
			if strings.Contains(v, `\*`) || strings.Contains(v, `\?`) || strings.Contains(v, `\\`) {
				wild = true
			}
		case int, float32, float64, bool:
		default:
			return false
		}
	}
	return wild
}

// expandWildcards returns a copy of r in which every wildcardMatcher is an
// `re` matcher: (?is) makes it case-insensitive (simple case folding, as
// Sigma requires) and lets * and ? match newlines; plain values are anchored
// at both ends, startswith at the start, endswith at the end. r itself is
// not modified.
func expandWildcards(r sigma.Rule) sigma.Rule {
	return rewriteMatchers(r, wildcardMatcher, func(fm sigma.FieldMatcher) sigma.FieldMatcher {
		o, all, _ := wildcardOp(fm)
		nfm := fm
		nfm.Modifiers = []string{"re"}
		if all {
			nfm.Modifiers = append(nfm.Modifiers, "all")
		}
		nfm.Values = make([]any, len(fm.Values))
		for k, v := range fm.Values {
			sv, _ := scalarString(v) // wildcardMatcher checked the types
			body := wildcardRegexp(sv)
			switch o {
			case opExact:
				body = "^" + body + "$"
			case opPrefix:
				body = "^" + body
			case opSuffix:
				body = body + "$"
			}
			nfm.Values[k] = "(?is)" + body
		}
		return nfm
	})
}

// rewriteMatchers returns a copy of r in which every field matcher that
// match selects is replaced by fix's; r itself is not modified, and is
// returned as it is when no matcher is selected.
func rewriteMatchers(r sigma.Rule, match func(sigma.FieldMatcher) bool, fix func(sigma.FieldMatcher) sigma.FieldMatcher) sigma.Rule {
	changed := false
	for _, s := range r.Detection.Searches {
		for _, em := range s.EventMatchers {
			for _, fm := range em {
				changed = changed || match(fm)
			}
		}
	}
	if !changed {
		return r
	}
	out := r
	out.Detection.Searches = make(map[string]sigma.Search, len(r.Detection.Searches))
	for name, s := range r.Detection.Searches {
		ns := s
		ns.EventMatchers = make([]sigma.EventMatcher, len(s.EventMatchers))
		for i, em := range s.EventMatchers {
			nem := make(sigma.EventMatcher, len(em))
			for j, fm := range em {
				nem[j] = fm
				if match(fm) {
					nem[j] = fix(fm)
				}
			}
			ns.EventMatchers[i] = nem
		}
		out.Detection.Searches[name] = ns
	}
	return out
}
