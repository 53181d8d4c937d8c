package ddfake

import (
	"fmt"
	"strings"
	"unicode"
)

// The fake understands the part of Datadog's search syntax the plugin and
// its tests use: terms joined by AND (or juxtaposition), OR, NOT or "-",
// parentheses, tag terms (env:prod, source:route53), reserved attributes
// (status:, host:, service:, source:), facet terms (@workflow.rule.name:"X",
// @vigil.marker:vigil-0123), values with a trailing or leading *, and free
// text ("phrase" or word) matched in the message.

// doc is what a query is evaluated against.
type doc struct {
	tags     []string
	reserved map[string]string // status, host, service, source
	attrs    map[string]any    // the @ facets
	message  string
}

// node is a parsed query.
type node func(d *doc) bool

// parseQuery parses q; an empty query matches everything.
func parseQuery(q string) (node, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return func(*doc) bool { return true }, nil
	}
	p := &parser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at token %d", p.toks[p.pos], p.pos)
	}
	return n, nil
}

func tokenize(q string) ([]string, error) {
	var toks []string
	rs := []rune(q)
	n := len(rs)
	for i := 0; i < n; {
		c := rs[i]
		if unicode.IsSpace(c) {
			i++
			continue
		}
		if c == '(' || c == ')' {
			toks = append(toks, string(c))
			i++
			continue
		}
		start := i
	word:
		for i < n {
			switch c := rs[i]; {
			case c == '"':
				i++
				for i < n && rs[i] != '"' {
					if rs[i] == '\\' {
						i++
					}
					i++
				}
				if i >= n {
					return nil, fmt.Errorf("unterminated quote in %q", q)
				}
				i++
			case c == '(' && i > start && rs[i-1] == ':':
				// key:(a OR b) is one term.
				depth := 0
				for ; i < n; i++ {
					if rs[i] == '(' {
						depth++
					} else if rs[i] == ')' {
						depth--
						if depth == 0 {
							break
						}
					}
				}
				if i >= n {
					return nil, fmt.Errorf("unbalanced parenthesis in %q", q)
				}
				i++
			case unicode.IsSpace(c) || c == '(' || c == ')':
				break word
			default:
				i++
			}
		}
		toks = append(toks, string(rs[start:i]))
	}
	return toks, nil
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) or() (node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "OR" {
		p.pos++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(d *doc) bool { return a(d) || b(d) }
	}
	return l, nil
}

func (p *parser) and() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t == "" || t == ")" || t == "OR" {
			return l, nil
		}
		if t == "AND" {
			p.pos++
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(d *doc) bool { return a(d) && b(d) }
	}
}

func (p *parser) unary() (node, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("unexpected end of query")
	case t == "NOT":
		p.pos++
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(d *doc) bool { return !n(d) }, nil
	case t == "(":
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return n, nil
	case t == ")" || t == "AND" || t == "OR":
		return nil, fmt.Errorf("unexpected %q", t)
	case strings.HasPrefix(t, "-") && len(t) > 1:
		p.pos++
		n, err := term(t[1:])
		if err != nil {
			return nil, err
		}
		return func(d *doc) bool { return !n(d) }, nil
	}
	p.pos++
	return term(t)
}

// term parses one key:value, key:(a OR b) or free-text term.
func term(t string) (node, error) {
	key, val, ok := cutKey(t)
	if !ok {
		text := strings.ToLower(unquote(t))
		return func(d *doc) bool { return strings.Contains(strings.ToLower(d.message), text) }, nil
	}
	var vals []string
	if strings.HasPrefix(val, "(") && strings.HasSuffix(val, ")") {
		for _, v := range strings.Fields(val[1 : len(val)-1]) {
			if v != "OR" {
				vals = append(vals, unquote(v))
			}
		}
	} else {
		vals = []string{unquote(val)}
	}
	match := func(got string) bool {
		for _, v := range vals {
			if wildcard(strings.ToLower(v), strings.ToLower(got)) {
				return true
			}
		}
		return false
	}
	if strings.HasPrefix(key, "@") {
		keys := strings.Split(key[1:], ".")
		return func(d *doc) bool {
			for _, got := range values(d.attrs, keys) {
				if match(got) {
					return true
				}
			}
			return false
		}, nil
	}
	return func(d *doc) bool {
		if r, ok := d.reserved[key]; ok && match(r) {
			return true
		}
		for _, tag := range d.tags {
			k, v, _ := strings.Cut(tag, ":")
			if strings.EqualFold(k, key) && match(v) {
				return true
			}
		}
		return false
	}, nil
}

// cutKey splits key:value outside quotes.
func cutKey(t string) (string, string, bool) {
	if strings.HasPrefix(t, `"`) {
		return "", "", false
	}
	i := strings.IndexByte(t, ':')
	if i <= 0 {
		return "", "", false
	}
	return t[:i], t[i+1:], true
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`)
	}
	return s
}

// wildcard matches v (lower-cased, with * wildcards) against got.
func wildcard(v, got string) bool {
	if !strings.Contains(v, "*") {
		return v == got
	}
	parts := strings.Split(v, "*")
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(got, p)
		}
		j := strings.Index(got, p)
		if j < 0 {
			return false
		}
		got = got[j+len(p):]
	}
	return true
}

// values returns the string values at a path, through arrays.
func values(v any, keys []string) []string {
	if len(keys) == 0 {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var out []string
			for _, e := range x {
				out = append(out, values(e, nil)...)
			}
			return out
		case nil:
			return nil
		default:
			return []string{fmt.Sprint(x)}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		return values(x[keys[0]], keys[1:])
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, values(e, keys)...)
		}
		return out
	}
	return nil
}
