package reportcheck

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The XML Schema subset below is what the JUnit schemas CI tools publish
// are written in: global and local element declarations, element
// references, complex types (mixed or not) with sequence and choice
// content models and occurrence bounds, attributes (required or
// optional) of built-in or pattern-restricted string types. A schema that
// uses anything else is refused by ParseSchema rather than half-checked.

const xsNS = "http://www.w3.org/2001/XMLSchema"

// ErrUnsupported is returned by ParseSchema for XML Schema constructs
// outside the supported subset.
var ErrUnsupported = errors.New("unsupported XML Schema construct")

// node is a parsed XML element.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
	line     int
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// parseTree reads an XML document into a tree, with line numbers.
func parseTree(b []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []*node
	var root *node
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name, attrs: t.Attr, line: line}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root != nil {
				return nil, fmt.Errorf("parse xml: line %d: second root element <%s>", line, t.Name.Local)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("parse xml: text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, errors.New("parse xml: no root element")
	}
	return root, nil
}

// Schema is a parsed XML Schema (the supported subset).
type Schema struct {
	elements map[string]*elemDecl
	complex  map[string]*complexType
	simple   map[string]*simpleType
	pending  []func() error
}

type elemDecl struct {
	name    string
	typ     string // a named or built-in type, resolved lazily
	complex *complexType
	simple  *simpleType
}

type complexType struct {
	mixed   bool
	attrs   map[string]*attrDecl
	content *particle
	re      *regexp.Regexp
	decls   map[string]*elemDecl // child element name -> declaration
}

type attrDecl struct {
	name     string
	required bool
	typ      string
	simple   *simpleType
}

type simpleType struct {
	base    string
	pattern *regexp.Regexp
}

type particle struct {
	kind     string // element, sequence, choice
	name     string
	decl     *elemDecl // local declaration, or nil for a reference
	min, max int       // max < 0: unbounded
	children []*particle
}

// ParseSchema parses an XML Schema document.
func ParseSchema(b []byte) (*Schema, error) {
	root, err := parseTree(b)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if root.name.Space != xsNS || root.name.Local != "schema" {
		return nil, fmt.Errorf("schema: root element <%s> is not xs:schema", root.name.Local)
	}
	s := &Schema{elements: map[string]*elemDecl{}, complex: map[string]*complexType{}, simple: map[string]*simpleType{}}
	for _, c := range root.children {
		if err := s.global(c); err != nil {
			return nil, fmt.Errorf("schema: line %d: %w", c.line, err)
		}
	}
	for _, f := range s.pending {
		if err := f(); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	return s, nil
}

func unsupported(n *node) error {
	return fmt.Errorf("%w <xs:%s>", ErrUnsupported, n.name.Local)
}

func (s *Schema) global(n *node) error {
	if n.name.Space != xsNS {
		return fmt.Errorf("element <%s> outside the XML Schema namespace", n.name.Local)
	}
	name, _ := n.attr("name")
	switch n.name.Local {
	case "annotation":
		return nil
	case "element":
		d, err := s.elementDecl(n)
		if err != nil {
			return err
		}
		s.elements[name] = d
	case "complexType":
		ct, err := s.complexType(n)
		if err != nil {
			return err
		}
		s.complex[name] = ct
	case "simpleType":
		st, err := simpleTypeOf(n)
		if err != nil {
			return err
		}
		s.simple[name] = st
	default:
		return unsupported(n)
	}
	return nil
}

func (s *Schema) elementDecl(n *node) (*elemDecl, error) {
	name, ok := n.attr("name")
	if !ok {
		return nil, errors.New("element without a name")
	}
	d := &elemDecl{name: name}
	d.typ, _ = n.attr("type")
	for _, c := range n.children {
		switch c.name.Local {
		case "annotation":
		case "complexType":
			ct, err := s.complexType(c)
			if err != nil {
				return nil, err
			}
			d.complex = ct
		case "simpleType":
			st, err := simpleTypeOf(c)
			if err != nil {
				return nil, err
			}
			d.simple = st
		default:
			return nil, unsupported(c)
		}
	}
	if d.typ == "" && d.complex == nil && d.simple == nil {
		d.typ = "xs:anyType"
	}
	if d.typ != "" {
		s.pending = append(s.pending, func() error { return s.resolveElem(d) })
	}
	return d, nil
}

func (s *Schema) resolveElem(d *elemDecl) error {
	switch {
	case d.typ == "xs:anyType":
		return fmt.Errorf("element %q: %w (xs:anyType)", d.name, ErrUnsupported)
	case builtin(d.typ):
		d.simple = &simpleType{base: d.typ}
	case s.complex[d.typ] != nil:
		d.complex = s.complex[d.typ]
	case s.simple[d.typ] != nil:
		d.simple = s.simple[d.typ]
	default:
		return fmt.Errorf("element %q: unknown type %q", d.name, d.typ)
	}
	return nil
}

func builtin(t string) bool {
	switch t {
	case "xs:string", "xs:token", "xs:int", "xs:integer", "xs:decimal", "xs:boolean", "xs:dateTime", "xs:normalizedString":
		return true
	}
	return false
}

func simpleTypeOf(n *node) (*simpleType, error) {
	st := &simpleType{}
	for _, c := range n.children {
		switch c.name.Local {
		case "annotation":
		case "restriction":
			st.base, _ = c.attr("base")
			if !builtin(st.base) {
				return nil, fmt.Errorf("restriction of %q: %w", st.base, ErrUnsupported)
			}
			for _, f := range c.children {
				switch f.name.Local {
				case "annotation":
				case "pattern":
					v, _ := f.attr("value")
					re, err := regexp.Compile(`^(?:` + v + `)$`)
					if err != nil {
						return nil, fmt.Errorf("pattern %q: %w", v, err)
					}
					st.pattern = re
				default:
					return nil, unsupported(f)
				}
			}
		default:
			return nil, unsupported(c)
		}
	}
	if st.base == "" {
		return nil, errors.New("simpleType without a restriction")
	}
	return st, nil
}

func (s *Schema) complexType(n *node) (*complexType, error) {
	ct := &complexType{attrs: map[string]*attrDecl{}, decls: map[string]*elemDecl{}}
	if m, ok := n.attr("mixed"); ok {
		ct.mixed = m == "true"
	}
	for _, c := range n.children {
		switch c.name.Local {
		case "annotation":
		case "sequence", "choice":
			if ct.content != nil {
				return nil, errors.New("complexType with two content models")
			}
			p, err := s.particle(c)
			if err != nil {
				return nil, err
			}
			ct.content = p
		case "attribute":
			a, err := attribute(c)
			if err != nil {
				return nil, err
			}
			ct.attrs[a.name] = a
			if a.typ != "" && !builtin(a.typ) {
				s.pending = append(s.pending, func() error {
					if a.simple = s.simple[a.typ]; a.simple == nil {
						return fmt.Errorf("attribute %q: unknown type %q", a.name, a.typ)
					}
					return nil
				})
			}
		default:
			return nil, unsupported(c)
		}
	}
	expr := ""
	if ct.content != nil {
		var err error
		if expr, err = ct.regexpOf(ct.content); err != nil {
			return nil, err
		}
	}
	ct.re = regexp.MustCompile("^" + expr + "$")
	return ct, nil
}

func attribute(n *node) (*attrDecl, error) {
	a := &attrDecl{}
	var ok bool
	if a.name, ok = n.attr("name"); !ok {
		return nil, errors.New("attribute without a name")
	}
	a.typ, _ = n.attr("type")
	use, _ := n.attr("use")
	switch use {
	case "", "optional":
	case "required":
		a.required = true
	default:
		return nil, fmt.Errorf("attribute %q: use=%q: %w", a.name, use, ErrUnsupported)
	}
	for _, k := range []string{"default", "fixed", "ref"} {
		if _, has := n.attr(k); has {
			return nil, fmt.Errorf("attribute %q: %s=: %w", a.name, k, ErrUnsupported)
		}
	}
	if a.typ == "" {
		a.typ = "xs:string"
	}
	return a, nil
}

func occurs(n *node) (min, max int, err error) {
	min, max = 1, 1
	if v, ok := n.attr("minOccurs"); ok {
		if min, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("minOccurs %q: %w", v, err)
		}
	}
	if v, ok := n.attr("maxOccurs"); ok {
		if v == "unbounded" {
			max = -1
		} else if max, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("maxOccurs %q: %w", v, err)
		}
	}
	if max >= 0 && max < min {
		return 0, 0, fmt.Errorf("maxOccurs %d < minOccurs %d", max, min)
	}
	return min, max, nil
}

func (s *Schema) particle(n *node) (*particle, error) {
	p := &particle{kind: n.name.Local}
	var err error
	if p.min, p.max, err = occurs(n); err != nil {
		return nil, err
	}
	switch p.kind {
	case "element":
		if ref, ok := n.attr("ref"); ok {
			p.name = ref
			return p, nil
		}
		if p.decl, err = s.elementDecl(n); err != nil {
			return nil, err
		}
		p.name = p.decl.name
		return p, nil
	case "sequence", "choice":
		for _, c := range n.children {
			if c.name.Local == "annotation" {
				continue
			}
			cp, err := s.particle(c)
			if err != nil {
				return nil, err
			}
			p.children = append(p.children, cp)
		}
		return p, nil
	}
	return nil, unsupported(n)
}

// regexpOf turns a content model into a regular expression over the
// child element names, each followed by ";".
func (ct *complexType) regexpOf(p *particle) (string, error) {
	var body string
	switch p.kind {
	case "element":
		if prev, ok := ct.decls[p.name]; ok && prev != p.decl {
			return "", fmt.Errorf("element %q declared twice in one content model: %w", p.name, ErrUnsupported)
		}
		ct.decls[p.name] = p.decl
		body = regexp.QuoteMeta(p.name + ";")
	case "sequence", "choice":
		parts := make([]string, len(p.children))
		for i, c := range p.children {
			e, err := ct.regexpOf(c)
			if err != nil {
				return "", err
			}
			parts[i] = e
		}
		sep := ""
		if p.kind == "choice" {
			sep = "|"
		}
		body = strings.Join(parts, sep)
	}
	body = "(?:" + body + ")"
	switch {
	case p.min == 1 && p.max == 1:
		return body, nil
	case p.min == 0 && p.max == 1:
		return body + "?", nil
	case p.min == 0 && p.max < 0:
		return body + "*", nil
	case p.min == 1 && p.max < 0:
		return body + "+", nil
	case p.max < 0:
		return fmt.Sprintf("%s{%d,}", body, p.min), nil
	}
	return fmt.Sprintf("%s{%d,%d}", body, p.min, p.max), nil
}

// Validate checks an XML document against the schema and returns every
// problem found, each naming the element path and line.
func (s *Schema) Validate(doc []byte) error {
	root, err := parseTree(doc)
	if err != nil {
		return err
	}
	d, ok := s.elements[root.name.Local]
	if !ok || root.name.Space != "" {
		return fmt.Errorf("line %d: root element <%s> is not declared by the schema", root.line, root.name.Local)
	}
	c := &checker{}
	s.check(c, "/"+root.name.Local, root, d)
	return c.err()
}

func (s *Schema) check(c *checker, path string, n *node, d *elemDecl) {
	where := fmt.Sprintf("%s (line %d)", path, n.line)
	if d.complex == nil {
		// A simple type: text only, no attributes, no children.
		for _, a := range n.attrs {
			if !namespaceAttr(a) {
				c.addf(where, "attribute %q not allowed on an element of type %s", a.Name.Local, d.simple.base)
			}
		}
		if len(n.children) > 0 {
			c.addf(where, "child element <%s> not allowed in an element of type %s", n.children[0].name.Local, d.simple.base)
		}
		if err := d.simple.check(n.text.String()); err != nil {
			c.addf(where, "%v", err)
		}
		return
	}
	ct := d.complex
	for _, a := range n.attrs {
		if namespaceAttr(a) {
			continue
		}
		decl, ok := ct.attrs[a.Name.Local]
		if !ok || a.Name.Space != "" {
			c.addf(where, "attribute %q is not declared", a.Name.Local)
			continue
		}
		if err := decl.check(a.Value); err != nil {
			c.addf(where+"/@"+a.Name.Local, "%v", err)
		}
	}
	for _, name := range sortedAttrNames(ct.attrs) {
		if a := ct.attrs[name]; a.required {
			if _, ok := n.attr(name); !ok {
				c.addf(where, "required attribute %q missing", name)
			}
		}
	}
	if !ct.mixed && strings.TrimSpace(n.text.String()) != "" {
		c.addf(where, "text not allowed (element-only content)")
	}
	var seq strings.Builder
	for _, ch := range n.children {
		seq.WriteString(ch.name.Local + ";")
	}
	if !ct.re.MatchString(seq.String()) {
		names := strings.TrimSuffix(strings.ReplaceAll(seq.String(), ";", ", "), ", ")
		c.addf(where, "children [%s] do not match the content model", names)
	}
	for i, ch := range n.children {
		cp := fmt.Sprintf("%s/%s[%d]", path, ch.name.Local, i)
		cd, declared := ct.decls[ch.name.Local]
		if !declared || ch.name.Space != "" {
			c.addf(cp, "element not allowed here")
			continue
		}
		if cd == nil { // a reference to a global element
			if cd = s.elements[ch.name.Local]; cd == nil {
				c.addf(cp, "reference to undeclared element")
				continue
			}
		}
		s.check(c, cp, ch, cd)
	}
}

func sortedAttrNames(m map[string]*attrDecl) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func namespaceAttr(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") ||
		a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance"
}

func (a *attrDecl) check(v string) error {
	if a.simple != nil {
		return a.simple.check(v)
	}
	return (&simpleType{base: a.typ}).check(v)
}

func (st *simpleType) check(v string) error {
	switch st.base {
	case "xs:int", "xs:integer":
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case "xs:decimal":
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return fmt.Errorf("%q is not a decimal", v)
		}
	case "xs:boolean":
		switch strings.TrimSpace(v) {
		case "true", "false", "1", "0":
		default:
			return fmt.Errorf("%q is not a boolean", v)
		}
	case "xs:dateTime":
		t := strings.TrimSpace(v)
		if _, err := time.Parse("2006-01-02T15:04:05", t); err != nil {
			if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
				return fmt.Errorf("%q is not an xs:dateTime", v)
			}
		}
	}
	if st.pattern != nil && !st.pattern.MatchString(v) {
		return fmt.Errorf("%q does not match the pattern %s", v, st.pattern)
	}
	return nil
}
