// Package tomldoc decodes TOML documents strictly and reports every problem
// with the file and line it comes from.
//
// BurntSushi/toml reports lines for syntax errors but not for keys, and its
// struct decoding stops at the first type mismatch. vigil's catalog and
// config want all problems of a file at once, each as "file:line: message",
// including problems found after decoding (an unknown ATT&CK technique, a
// duplicate name). So a Doc parses the text into plain values, indexes the
// line of every key path (tables, arrays of tables and their elements, dotted
// keys, inline tables), and hands out Tables whose typed getters record type
// errors instead of stopping. Table.Close reports the keys nobody asked for,
// which is what strict decoding (toml.MetaData.Undecoded) does for structs.
//
// Key paths look like the keys in the file, with array indexes:
// "inject.params.command", "expect[1].within", `args."odd key"`.
package tomldoc

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a TOML document.
type Error struct {
	File string // label of the document, as given to Parse
	Line int    // 1-based; 0 when unknown
	Msg  string // the problem, prefixed by the key path it concerns

	path string
}

// Error returns "file:line: message".
func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return e.File + ": " + e.Msg
	}
}

// Doc is a parsed TOML document that collects the problems found in it.
type Doc struct {
	// File is the label used in errors, such as "rules/techniques/linux/x.toml".
	File string
	// Hide reports whether the value at a key path must not appear in error
	// messages (a secret). Nil hides nothing.
	Hide func(path string) bool

	root  map[string]any
	lines map[string]int
	errs  []*Error
}

// Parse parses data as TOML. A syntax error is returned as an *Error with the
// line toml reported; the Doc is then nil.
func Parse(file string, data []byte) (*Doc, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: file, Line: pe.Position.Line, Msg: "invalid TOML: " + pe.Message}
		}
		return nil, &Error{File: file, Msg: fmt.Sprintf("invalid TOML: %v", err)}
	}
	if root == nil {
		root = map[string]any{}
	}
	return &Doc{File: file, root: root, lines: indexKeys(string(data))}, nil
}

// Root returns the document's top-level table.
func (d *Doc) Root() *Table { return d.table("", d.root) }

// Line returns the line of the key path, or of the nearest enclosing key or
// table that has one (a value inside an inline table or an array reports the
// line of its key). The top-level table is on line 1.
func (d *Doc) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 1
}

// Has reports whether the key path appears in the text.
func (d *Doc) Has(path string) bool {
	_, ok := d.lines[path]
	return ok
}

// Errorf records a problem at the line of path. The message is prefixed with
// the path unless the path is empty.
func (d *Doc) Errorf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, &Error{File: d.File, Line: d.Line(path), Msg: msg, path: path})
}

// HasError reports whether a problem was recorded at path, so that later
// checks can skip values that failed to decode.
func (d *Doc) HasError(path string) bool {
	for _, e := range d.errs {
		if e.path == path {
			return true
		}
	}
	return false
}

// Errors returns the recorded problems ordered by line.
func (d *Doc) Errors() []*Error {
	out := append([]*Error(nil), d.errs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Err joins the recorded problems, one per line, or returns nil.
func (d *Doc) Err() error {
	errs := d.Errors()
	if len(errs) == 0 {
		return nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

// MapStrings replaces every string value of the document, at any depth
// (tables, arrays, arrays of tables), by fn(path, value). Use it before
// reading the document, for instance to expand environment variables.
func (d *Doc) MapStrings(fn func(path, value string) string) {
	mapStrings(d.root, "", fn)
}

func mapStrings(v any, path string, fn func(path, value string) string) any {
	switch v := v.(type) {
	case string:
		return fn(path, v)
	case map[string]any:
		for _, k := range sortedKeys(v) {
			v[k] = mapStrings(v[k], Join(path, k), fn)
		}
	case []map[string]any:
		for i, m := range v {
			mapStrings(m, Index(path, i), fn)
		}
	case []any:
		for i, e := range v {
			v[i] = mapStrings(e, Index(path, i), fn)
		}
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Quote returns the value quoted for an error message, or "(value hidden)"
// when Hide says the path holds a secret.
func (d *Doc) Quote(path, value string) string {
	if d.Hide != nil && d.Hide(path) {
		return "(value hidden)"
	}
	return fmt.Sprintf("%q", value)
}

func (d *Doc) table(path string, m map[string]any) *Table {
	return &Table{doc: d, path: path, m: m, used: make(map[string]bool, len(m)), known: make(map[string]bool)}
}

// Table is one TOML table of a Doc. Its getters return the zero value when a
// key is absent or has the wrong type; a wrong type is recorded as an error.
type Table struct {
	doc   *Doc
	path  string
	m     map[string]any
	used  map[string]bool // keys read by a getter
	known map[string]bool // keys a getter asked for, present or not
}

// Path returns the table's own key path ("" for the top-level table).
func (t *Table) Path() string { return t.path }

// PathOf returns the key path of key inside the table.
func (t *Table) PathOf(key string) string { return Join(t.path, key) }

// Doc returns the document the table belongs to.
func (t *Table) Doc() *Doc { return t.doc }

// Line returns the line of key, or of the table itself when key is "".
func (t *Table) Line(key string) int {
	if key == "" {
		return t.doc.Line(t.path)
	}
	return t.doc.Line(t.PathOf(key))
}

// Has reports whether key is set, and marks it as used.
func (t *Table) Has(key string) bool {
	_, ok := t.get(key)
	return ok
}

// Errorf records a problem at the line of key ("" for the table itself).
func (t *Table) Errorf(key, format string, args ...any) {
	path := t.path
	if key != "" {
		path = t.PathOf(key)
	}
	t.doc.Errorf(path, format, args...)
}

// Require records a "missing required key" problem for each absent key and
// reports whether all were present.
func (t *Table) Require(keys ...string) bool {
	ok := true
	for _, k := range keys {
		t.known[k] = true
		if _, found := t.m[k]; !found {
			t.Errorf("", "missing required key %q", k)
			ok = false
		}
	}
	return ok
}

func (t *Table) get(key string) (any, bool) {
	t.known[key] = true
	v, ok := t.m[key]
	if ok {
		t.used[key] = true
	}
	return v, ok
}

func (t *Table) typeError(path, want string, got any) {
	t.doc.Errorf(path, "want %s, got %s", want, TypeName(got))
}

// Any returns the raw value of key, for free-form tables: strings, int64,
// float64, bool, time.Time, []any, map[string]any or []map[string]any.
func (t *Table) Any(key string) (any, bool) { return t.get(key) }

// String returns the string value of key.
func (t *Table) String(key string) string {
	v, ok := t.get(key)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		t.typeError(t.PathOf(key), "a string", v)
	}
	return s
}

// Bool returns the boolean value of key.
func (t *Table) Bool(key string) bool {
	v, ok := t.get(key)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		t.typeError(t.PathOf(key), "true or false", v)
	}
	return b
}

// Int returns the integer value of key and whether it was set correctly.
func (t *Table) Int(key string) (int64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.typeError(t.PathOf(key), "an integer", v)
	}
	return n, ok
}

// Strings returns the array of strings at key.
func (t *Table) Strings(key string) []string {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	path := t.PathOf(key)
	arr, ok := v.([]any)
	if !ok {
		t.typeError(path, "an array of strings", v)
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.typeError(Index(path, i), "a string", e)
			continue
		}
		out = append(out, s)
	}
	return out
}

// Duration returns the Go duration string at key ("30s", "2m") parsed, and
// whether it was set correctly.
func (t *Table) Duration(key string) (time.Duration, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	path := t.PathOf(key)
	s, ok := v.(string)
	if !ok {
		t.typeError(path, `a duration string such as "30s"`, v)
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.doc.Errorf(path, `invalid duration %s (want a Go duration such as "30s" or "5m")`, t.doc.Quote(path, s))
		return 0, false
	}
	return d, true
}

// StringMap returns the table at key whose values must all be strings.
func (t *Table) StringMap(key string) map[string]string {
	sub := t.Table(key)
	if sub == nil {
		return nil
	}
	out := make(map[string]string, len(sub.m))
	for _, k := range sub.Keys() {
		v, _ := sub.get(k)
		s, ok := v.(string)
		if !ok {
			sub.typeError(sub.PathOf(k), "a string", v)
			continue
		}
		out[k] = s
	}
	return out
}

// Table returns the sub-table at key, or nil when it is absent or not a table.
func (t *Table) Table(key string) *Table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeError(t.PathOf(key), "a table (["+header(t.PathOf(key))+"])", v)
		return nil
	}
	return t.doc.table(t.PathOf(key), m)
}

// Tables returns the array of tables at key ([[key]] sections or an array of
// inline tables).
func (t *Table) Tables(key string) []*Table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	path := t.PathOf(key)
	var out []*Table
	switch arr := v.(type) {
	case []map[string]any:
		for i, m := range arr {
			out = append(out, t.doc.table(Index(path, i), m))
		}
	case []any:
		for i, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				t.typeError(Index(path, i), "a table", e)
				continue
			}
			out = append(out, t.doc.table(Index(path, i), m))
		}
	default:
		t.typeError(path, "an array of tables ([["+header(path)+"]])", v)
	}
	return out
}

// Keys returns the table's keys ordered by line, then name.
func (t *Table) Keys() []string {
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := t.Line(keys[i]), t.Line(keys[j])
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Close records an "unknown key" problem for every key no getter asked for,
// suggesting the closest known key. Call it once all keys have been read.
func (t *Table) Close() {
	for _, k := range t.Keys() {
		if t.used[k] {
			continue
		}
		if s := t.suggest(k); s != "" {
			t.doc.Errorf(t.PathOf(k), "unknown key (did you mean %q?)", s)
		} else {
			t.doc.Errorf(t.PathOf(k), "unknown key")
		}
	}
}

// suggest returns the known key closest to the unknown key k, if any is
// close enough to be a typo.
func (t *Table) suggest(k string) string {
	best, bestDist := "", 3
	for cand := range t.known {
		d := distance(strings.ToLower(k), strings.ToLower(cand))
		if d < bestDist || d == bestDist && best != "" && cand < best {
			best, bestDist = cand, d
		}
	}
	if bestDist > len(k)/2 {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// header returns the table header naming path: the path without indexes.
func header(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			if j := strings.IndexByte(path[i:], ']'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

// TypeName names the TOML type of a decoded value for error messages.
func TypeName(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	default:
		return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
	}
}
