package sentinelfake

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The fake's KQL is the subset the sentinel plugin sends and the native
// queries its tests use, parsed for real; anything else is refused with
// the query API's syntax error:
//
//	query   := source ('|' op)*
//	source  := TABLE | 'print' assigns
//	         | 'union' ['isfuzzy=true'] ['withsource=' NAME] item (',' item)*
//	item    := TABLE | '(' query ')'
//	op      := 'where' expr | 'extend' assigns | 'project' NAME (',' NAME)*
//	         | 'summarize' ('arg_min'|'arg_max') '(' NAME ',' '*' ')' 'by' NAME
//	         | 'sort by' NAME ['asc'|'desc'] | 'take' INT
//	expr    := and ('or' and)* ; and := pred ('and' pred)*
//	pred    := '(' expr ')' | NAME 'between' '(' datetime '..' datetime ')'
//	         | NAME ('>='|'>'|'<='|'<') datetime | NAME ('=='|'!=') STRING
//	         | (NAME|'*') ('has'|'contains'|'!has'|'!contains'|'startswith') STRING
//	         | NAME 'has_any' '(' dynamic ')' | NAME 'in' '(' STRING (',' STRING)* ')'
//	value   := STRING | INT | 'datetime(' TIME ')' | 'dynamic([' STRING,* '])'
//	         | 'now()' | 'ingestion_time()'

// Record is one row of a table of the fake workspace.
type Record map[string]any

// stored is a row with what the fake knows of it.
type stored struct {
	rec       Record
	ingested  time.Time
	visibleAt time.Time
}

// SyntaxError is a query the fake does not understand.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

// SemanticError is a query that names what the workspace does not have.
type SemanticError struct{ Msg string }

func (e *SemanticError) Error() string { return e.Msg }

type token struct {
	kind string // "name", "string", "number", "op", "time"
	text string
	pos  int
}

func tokenize(q string) ([]token, error) {
	var out []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(q) && q[i+1] == '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(q) && q[j] != c; j++ {
				if q[j] == '\\' && j+1 < len(q) {
					j++
					switch q[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					case 'u':
						if j+4 < len(q) {
							n, err := strconv.ParseUint(q[j+1:j+5], 16, 32)
							if err == nil {
								b.WriteRune(rune(n))
								j += 4
								continue
							}
						}
						b.WriteByte('u')
					default:
						b.WriteByte(q[j])
					}
					continue
				}
				b.WriteByte(q[j])
			}
			if j >= len(q) {
				return nil, &SyntaxError{fmt.Sprintf("unterminated string at %d", i)}
			}
			out = append(out, token{"string", b.String(), i})
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			out = append(out, token{"number", q[i:j], i})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(q) && (q[j] == '_' || unicode.IsLetter(rune(q[j])) || unicode.IsDigit(rune(q[j]))) {
				j++
			}
			word := q[i:j]
			if (word == "datetime") && j < len(q) && q[j] == '(' {
				k := strings.IndexByte(q[j:], ')')
				if k < 0 {
					return nil, &SyntaxError{fmt.Sprintf("unterminated datetime at %d", i)}
				}
				out = append(out, token{"time", strings.TrimSpace(q[j+1 : j+k]), i})
				i = j + k + 1
				continue
			}
			out = append(out, token{"name", word, i})
			i = j
		default:
			for _, op := range []string{"..", ">=", "<=", "==", "!=", "!has", "!contains", "|", ",", "(", ")", "[", "]", "=", ">", "<", "*"} {
				if strings.HasPrefix(q[i:], op) {
					out = append(out, token{"op", op, i})
					i += len(op)
					goto next
				}
			}
			return nil, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%c' on position %d", c, i)}
		next:
		}
	}
	return out, nil
}

// parser is a recursive-descent parser over the tokens.
type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: "eof"}
}

func (p *parser) next() token { t := p.peek(); p.i++; return t }

func (p *parser) is(kind, text string) bool {
	t := p.peek()
	return t.kind == kind && (text == "" || t.text == text)
}

func (p *parser) expect(kind, text string) (token, error) {
	t := p.next()
	if t.kind != kind || (text != "" && t.text != text) {
		want := text
		if want == "" {
			want = kind
		}
		got := t.text
		if t.kind == "eof" {
			got = "end of query"
		}
		return t, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%s' on position %d: expected %s", got, t.pos, want)}
	}
	return t, nil
}

// pipeline is a parsed query.
type pipeline struct {
	src source
	ops []op
}

type source struct {
	table      string
	print      []assign
	union      []pipeline
	unionNames []string // the table of each union item ("" for a subquery)
	fuzzy      bool
	withSource string
}

type assign struct {
	name string
	val  value
}

type value struct {
	kind string // "string", "number", "time", "dynamic", "now", "ingestion_time"
	s    string
	list []string
	t    time.Time
	n    int64
}

type op struct {
	kind    string // where, extend, project, summarize, sort, take
	expr    *expr
	assigns []assign
	names   []string
	agg     string // arg_min, arg_max
	aggCol  string
	by      string
	desc    bool
	n       int
}

type expr struct {
	or, and []*expr // disjunction or conjunction of sub-expressions
	pred    *pred
}

type pred struct {
	col, op string
	str     string
	list    []string
	lo, hi  time.Time
}

func parse(q string) (pipeline, error) {
	toks, err := tokenize(q)
	if err != nil {
		return pipeline{}, err
	}
	p := &parser{toks: toks}
	pl, err := p.pipeline()
	if err != nil {
		return pipeline{}, err
	}
	if !p.is("eof", "") {
		t := p.peek()
		return pipeline{}, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%s' on position %d", t.text, t.pos)}
	}
	return pl, nil
}

func (p *parser) pipeline() (pipeline, error) {
	var pl pipeline
	var err error
	if pl.src, err = p.source(); err != nil {
		return pl, err
	}
	for p.is("op", "|") {
		p.next()
		o, err := p.op()
		if err != nil {
			return pl, err
		}
		pl.ops = append(pl.ops, o)
	}
	return pl, nil
}

func (p *parser) source() (source, error) {
	t, err := p.expect("name", "")
	if err != nil {
		return source{}, err
	}
	switch t.text {
	case "print":
		as, err := p.assigns()
		return source{print: as}, err
	case "union":
		var s source
		for p.is("name", "isfuzzy") || p.is("name", "withsource") {
			opt := p.next().text
			if _, err := p.expect("op", "="); err != nil {
				return s, err
			}
			v, err := p.expect("name", "")
			if err != nil {
				return s, err
			}
			if opt == "isfuzzy" {
				s.fuzzy = v.text == "true"
			} else {
				s.withSource = v.text
			}
		}
		for {
			if p.is("op", "(") {
				p.next()
				sub, err := p.pipeline()
				if err != nil {
					return s, err
				}
				if _, err := p.expect("op", ")"); err != nil {
					return s, err
				}
				s.union = append(s.union, sub)
				s.unionNames = append(s.unionNames, "")
			} else {
				n, err := p.expect("name", "")
				if err != nil {
					return s, err
				}
				s.union = append(s.union, pipeline{src: source{table: n.text}})
				s.unionNames = append(s.unionNames, n.text)
			}
			if !p.is("op", ",") {
				return s, nil
			}
			p.next()
		}
	}
	return source{table: t.text}, nil
}

func (p *parser) assigns() ([]assign, error) {
	var out []assign
	for {
		n, err := p.expect("name", "")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect("op", "="); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, assign{n.text, v})
		if !p.is("op", ",") {
			return out, nil
		}
		p.next()
	}
}

func (p *parser) value() (value, error) {
	t := p.next()
	switch {
	case t.kind == "string":
		return value{kind: "string", s: t.text}, nil
	case t.kind == "number":
		n, _ := strconv.ParseInt(t.text, 10, 64)
		return value{kind: "number", n: n}, nil
	case t.kind == "time":
		tm, err := parseTime(t.text)
		return value{kind: "time", t: tm}, err
	case t.kind == "name" && (t.text == "now" || t.text == "ingestion_time"):
		if _, err := p.expect("op", "("); err != nil {
			return value{}, err
		}
		_, err := p.expect("op", ")")
		return value{kind: t.text}, err
	case t.kind == "name" && t.text == "dynamic":
		list, err := p.dynamicList()
		return value{kind: "dynamic", list: list}, err
	}
	return value{}, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%s' on position %d: not a value the fake knows", t.text, t.pos)}
}

// dynamicList parses ([ "a", "b" ]) after "dynamic".
func (p *parser) dynamicList() ([]string, error) {
	if _, err := p.expect("op", "("); err != nil {
		return nil, err
	}
	if _, err := p.expect("op", "["); err != nil {
		return nil, err
	}
	var list []string
	for !p.is("op", "]") {
		s, err := p.expect("string", "")
		if err != nil {
			return nil, err
		}
		list = append(list, s.text)
		if p.is("op", ",") {
			p.next()
		}
	}
	p.next()
	_, err := p.expect("op", ")")
	return list, err
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, &SyntaxError{fmt.Sprintf("datetime(%s): not a datetime the fake knows", s)}
	}
	return t, nil
}

func (p *parser) op() (op, error) {
	t, err := p.expect("name", "")
	if err != nil {
		return op{}, err
	}
	switch t.text {
	case "where":
		e, err := p.expr()
		return op{kind: "where", expr: e}, err
	case "extend":
		as, err := p.assigns()
		return op{kind: "extend", assigns: as}, err
	case "project":
		var names []string
		for {
			n, err := p.expect("name", "")
			if err != nil {
				return op{}, err
			}
			names = append(names, n.text)
			if !p.is("op", ",") {
				return op{kind: "project", names: names}, nil
			}
			p.next()
		}
	case "summarize":
		agg, err := p.expect("name", "")
		if err != nil {
			return op{}, err
		}
		if agg.text != "arg_min" && agg.text != "arg_max" {
			return op{}, &SyntaxError{fmt.Sprintf("summarize %s: the fake knows arg_min and arg_max only", agg.text)}
		}
		o := op{kind: "summarize", agg: agg.text}
		if _, err := p.expect("op", "("); err != nil {
			return o, err
		}
		c, err := p.expect("name", "")
		if err != nil {
			return o, err
		}
		o.aggCol = c.text
		for _, want := range []string{",", "*", ")"} {
			if _, err := p.expect("op", want); err != nil {
				return o, err
			}
		}
		if _, err := p.expect("name", "by"); err != nil {
			return o, err
		}
		by, err := p.expect("name", "")
		o.by = by.text
		return o, err
	case "sort", "order":
		if _, err := p.expect("name", "by"); err != nil {
			return op{}, err
		}
		c, err := p.expect("name", "")
		if err != nil {
			return op{}, err
		}
		o := op{kind: "sort", names: []string{c.text}, desc: true}
		if p.is("name", "asc") || p.is("name", "desc") {
			o.desc = p.next().text == "desc"
		}
		return o, nil
	case "take", "limit":
		n, err := p.expect("number", "")
		if err != nil {
			return op{}, err
		}
		v, _ := strconv.Atoi(n.text)
		return op{kind: "take", n: v}, nil
	}
	return op{}, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%s' on position %d: an operator the fake does not know", t.text, t.pos)}
}

func (p *parser) expr() (*expr, error) {
	first, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	e := &expr{or: []*expr{first}}
	for p.is("name", "or") {
		p.next()
		n, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		e.or = append(e.or, n)
	}
	return e, nil
}

func (p *parser) andExpr() (*expr, error) {
	e := &expr{}
	for {
		var sub *expr
		if p.is("op", "(") {
			p.next()
			inner, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect("op", ")"); err != nil {
				return nil, err
			}
			sub = inner
		} else {
			pr, err := p.pred()
			if err != nil {
				return nil, err
			}
			sub = &expr{pred: pr}
		}
		e.and = append(e.and, sub)
		if !p.is("name", "and") {
			return e, nil
		}
		p.next()
	}
}

func (p *parser) pred() (*pred, error) {
	var col string
	if p.is("op", "*") {
		p.next()
		col = "*"
	} else {
		c, err := p.expect("name", "")
		if err != nil {
			return nil, err
		}
		col = c.text
	}
	t := p.next()
	pr := &pred{col: col, op: t.text}
	switch {
	case t.text == "between":
		if _, err := p.expect("op", "("); err != nil {
			return nil, err
		}
		lo, err := p.value()
		if err != nil || lo.kind != "time" {
			return nil, &SyntaxError{"between: the fake knows datetime bounds only"}
		}
		if _, err := p.expect("op", ".."); err != nil {
			return nil, err
		}
		hi, err := p.value()
		if err != nil || hi.kind != "time" {
			return nil, &SyntaxError{"between: the fake knows datetime bounds only"}
		}
		_, err = p.expect("op", ")")
		pr.lo, pr.hi = lo.t, hi.t
		return pr, err
	case col != "*" && (t.text == ">=" || t.text == ">" || t.text == "<=" || t.text == "<"):
		v, err := p.value()
		if err != nil || v.kind != "time" {
			return nil, &SyntaxError{fmt.Sprintf("%s %s: the fake compares datetimes only", col, t.text)}
		}
		pr.lo = v.t
		return pr, nil
	case col != "*" && (t.text == "==" || t.text == "!="):
		s, err := p.expect("string", "")
		pr.str = s.text
		return pr, err
	case t.text == "has" || t.text == "contains" || t.text == "!has" || t.text == "!contains" || t.text == "startswith":
		s, err := p.expect("string", "")
		pr.str = s.text
		return pr, err
	case col != "*" && t.text == "has_any":
		if _, err := p.expect("op", "("); err != nil {
			return nil, err
		}
		if _, err := p.expect("name", "dynamic"); err != nil {
			return nil, err
		}
		list, err := p.dynamicList()
		if err != nil {
			return nil, err
		}
		pr.list = list
		_, err = p.expect("op", ")")
		return pr, err
	case col != "*" && t.text == "in":
		if _, err := p.expect("op", "("); err != nil {
			return nil, err
		}
		for {
			s, err := p.expect("string", "")
			if err != nil {
				return nil, err
			}
			pr.list = append(pr.list, s.text)
			if !p.is("op", ",") {
				break
			}
			p.next()
		}
		_, err := p.expect("op", ")")
		return pr, err
	}
	return nil, &SyntaxError{fmt.Sprintf("Query could not be parsed at '%s' on position %d: an operator the fake does not know", t.text, t.pos)}
}

// evalCtx is what a query runs against.
type evalCtx struct {
	tables     map[string][]stored
	now        time.Time
	start, end time.Time // the request's timespan (zero: none)
}

// row is a record being computed, with the ingestion time of its source.
type row struct {
	rec      Record
	ingested time.Time
}

func (c *evalCtx) run(pl pipeline) ([]row, []string, error) {
	rows, cols, err := c.source(pl.src)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range pl.ops {
		switch o.kind {
		case "where":
			var keep []row
			for _, r := range rows {
				if o.expr.eval(r.rec) {
					keep = append(keep, r)
				}
			}
			rows = keep
		case "extend":
			for i := range rows {
				rec := maps(rows[i].rec)
				for _, a := range o.assigns {
					rec[a.name] = c.value(a.val, rows[i])
				}
				rows[i].rec = rec
			}
			for _, a := range o.assigns {
				cols = addCol(cols, a.name)
			}
		case "project":
			for i := range rows {
				rec := Record{}
				for _, n := range o.names {
					rec[n] = rows[i].rec[n]
				}
				rows[i].rec = rec
			}
			cols = append([]string(nil), o.names...)
		case "summarize":
			best := map[string]int{}
			var order []string
			for i, r := range rows {
				k := fmt.Sprint(r.rec[o.by])
				j, ok := best[k]
				if !ok {
					best[k] = i
					order = append(order, k)
					continue
				}
				a, b := timeOf(r.rec[o.aggCol]), timeOf(rows[j].rec[o.aggCol])
				if o.agg == "arg_min" && a.Before(b) || o.agg == "arg_max" && a.After(b) {
					best[k] = i
				}
			}
			out := make([]row, 0, len(order))
			for _, k := range order {
				out = append(out, rows[best[k]])
			}
			rows = out
			cols = append([]string{o.by}, removeCol(cols, o.by)...)
		case "sort":
			col := o.names[0]
			sort.SliceStable(rows, func(i, j int) bool {
				a, b := timeOf(rows[i].rec[col]), timeOf(rows[j].rec[col])
				if o.desc {
					return a.After(b)
				}
				return a.Before(b)
			})
		case "take":
			if len(rows) > o.n {
				rows = rows[:o.n]
			}
		}
	}
	return rows, cols, nil
}

func (c *evalCtx) source(s source) ([]row, []string, error) {
	switch {
	case s.print != nil:
		rec := Record{}
		var cols []string
		for _, a := range s.print {
			rec[a.name] = c.value(a.val, row{})
			cols = append(cols, a.name)
		}
		return []row{{rec: rec}}, cols, nil
	case s.union != nil:
		var rows []row
		var cols []string
		for i, sub := range s.union {
			if name := s.unionNames[i]; name != "" {
				if _, ok := c.tables[name]; !ok {
					if s.fuzzy {
						continue
					}
					return nil, nil, &SemanticError{fmt.Sprintf("'union' operator: Failed to resolve table expression named '%s'", name)}
				}
			}
			rs, cs, err := c.run(sub)
			if err != nil {
				return nil, nil, err
			}
			for _, r := range rs {
				if s.withSource != "" {
					rec := maps(r.rec)
					rec[s.withSource] = s.unionNames[i]
					r.rec = rec
				}
				rows = append(rows, r)
			}
			for _, col := range cs {
				cols = addCol(cols, col)
			}
		}
		if s.withSource != "" {
			cols = append([]string{s.withSource}, removeCol(cols, s.withSource)...)
		}
		return rows, cols, nil
	}
	recs, ok := c.tables[s.table]
	if !ok {
		return nil, nil, &SemanticError{fmt.Sprintf("'where' operator: Failed to resolve table or column expression named '%s'", s.table)}
	}
	var rows []row
	var cols []string
	for _, st := range recs {
		if st.visibleAt.After(c.now) {
			continue
		}
		if !c.start.IsZero() {
			tg := timeOf(st.rec["TimeGenerated"])
			if tg.Before(c.start) || tg.After(c.end) {
				continue
			}
		}
		rows = append(rows, row{rec: st.rec, ingested: st.ingested})
		keys := make([]string, 0, len(st.rec))
		for k := range st.rec {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			cols = addCol(cols, k)
		}
	}
	if len(cols) == 0 {
		cols = []string{"TimeGenerated"}
	}
	return rows, cols, nil
}

func (c *evalCtx) value(v value, r row) any {
	switch v.kind {
	case "string":
		return v.s
	case "number":
		return v.n
	case "time":
		return v.t
	case "now":
		return c.now
	case "ingestion_time":
		if r.ingested.IsZero() {
			return nil
		}
		return r.ingested
	case "dynamic":
		out := make([]any, len(v.list))
		for i, s := range v.list {
			out[i] = s
		}
		return out
	}
	return nil
}

func (e *expr) eval(r Record) bool {
	switch {
	case e.pred != nil:
		return e.pred.eval(r)
	case e.or != nil:
		for _, x := range e.or {
			if x.eval(r) {
				return true
			}
		}
		return false
	}
	for _, x := range e.and {
		if !x.eval(r) {
			return false
		}
	}
	return true
}

func (p *pred) eval(r Record) bool {
	text := func() string {
		if p.col == "*" {
			b, _ := json.Marshal(r)
			return string(b)
		}
		return textOf(r[p.col])
	}
	switch p.op {
	case "between":
		t := timeOf(r[p.col])
		return !t.IsZero() && !t.Before(p.lo) && !t.After(p.hi)
	case ">=", ">", "<=", "<":
		t := timeOf(r[p.col])
		if t.IsZero() {
			return false
		}
		switch p.op {
		case ">=":
			return !t.Before(p.lo)
		case ">":
			return t.After(p.lo)
		case "<=":
			return !t.After(p.lo)
		}
		return t.Before(p.lo)
	case "==":
		return textOf(r[p.col]) == p.str
	case "!=":
		return textOf(r[p.col]) != p.str
	case "has", "contains":
		return strings.Contains(strings.ToLower(text()), strings.ToLower(p.str))
	case "!has", "!contains":
		return !strings.Contains(strings.ToLower(text()), strings.ToLower(p.str))
	case "startswith":
		return strings.HasPrefix(strings.ToLower(text()), strings.ToLower(p.str))
	case "has_any":
		s := strings.ToLower(text())
		for _, x := range p.list {
			if strings.Contains(s, strings.ToLower(x)) {
				return true
			}
		}
		return false
	case "in":
		s := textOf(r[p.col])
		for _, x := range p.list {
			if s == x {
				return true
			}
		}
	}
	return false
}

// textOf renders a value as the query API would.
func textOf(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case time.Time:
		return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

func timeOf(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case string:
		tm, _ := time.Parse(time.RFC3339Nano, t)
		return tm
	}
	return time.Time{}
}

func maps(r Record) Record {
	out := make(Record, len(r)+2)
	for k, v := range r {
		out[k] = v
	}
	return out
}

func addCol(cols []string, c string) []string {
	for _, x := range cols {
		if x == c {
			return cols
		}
	}
	return append(cols, c)
}

func removeCol(cols []string, c string) []string {
	out := make([]string, 0, len(cols))
	for _, x := range cols {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}
