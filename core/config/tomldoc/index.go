package tomldoc

import (
	"sort"
	"strconv"
	"strings"
)

// Join returns the path of key inside the table at parent. Bare keys stay
// bare; any other key is quoted, so "args.decoy_name" and `args."a b"` are
// both valid paths.
func Join(parent, key string) string {
	if !isBare(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index returns the path of element i of the array at parent, such as
// "expect[1]".
func Index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last segment (a key or an index) from path.
func parentPath(path string) string {
	if path == "" {
		return ""
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if strings.HasSuffix(path, `"`) {
		// Find the opening quote of a quoted key, skipping escaped quotes.
		for i := len(path) - 2; i >= 0; i-- {
			if path[i] == '"' && (i == 0 || path[i-1] != '\\') {
				return strings.TrimSuffix(path[:i], ".")
			}
		}
		return ""
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func isBare(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// indexer finds the line of every key, table header and array element in a
// TOML text that the toml package has already accepted, so it can be lenient
// about syntax. Paths use the form of Join and Index.
type indexer struct {
	s          string
	i          int
	lineStarts []int
	lines      map[string]int
	arrays     map[string]int // array-of-tables path -> number of [[headers]] seen
}

// indexKeys maps the path of every key in text to its 1-based line.
func indexKeys(text string) map[string]int {
	x := &indexer{
		s:          text,
		lineStarts: []int{0},
		lines:      make(map[string]int),
		arrays:     make(map[string]int),
	}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			x.lineStarts = append(x.lineStarts, i+1)
		}
	}
	x.document()
	return x.lines
}

func (x *indexer) lineAt(pos int) int {
	return sort.Search(len(x.lineStarts), func(i int) bool { return x.lineStarts[i] > pos })
}

func (x *indexer) record(path string, pos int) {
	if _, ok := x.lines[path]; !ok {
		x.lines[path] = x.lineAt(pos)
	}
}

func (x *indexer) eof() bool { return x.i >= len(x.s) }

func (x *indexer) peek(prefix string) bool { return strings.HasPrefix(x.s[x.i:], prefix) }

// skipSpace skips blanks; with newlines also line breaks and comments.
func (x *indexer) skipSpace(newlines bool) {
	for !x.eof() {
		switch c := x.s[x.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			x.i++
		case newlines && c == '\n':
			x.i++
		case newlines && c == '#':
			for !x.eof() && x.s[x.i] != '\n' {
				x.i++
			}
		default:
			return
		}
	}
}

func (x *indexer) skipLine() {
	for !x.eof() && x.s[x.i] != '\n' {
		x.i++
	}
}

func (x *indexer) document() {
	current := ""
	for {
		x.skipSpace(true)
		if x.eof() {
			return
		}
		start := x.i
		if x.s[x.i] == '[' {
			array := x.peek("[[")
			if array {
				x.i += 2
			} else {
				x.i++
			}
			keys := x.key()
			current = x.header(keys, array, start)
			x.skipLine()
			continue
		}
		keys := x.key()
		if len(keys) == 0 { // not a key: give up on this line
			x.skipLine()
			continue
		}
		path := current
		for _, k := range keys {
			path = Join(path, k)
			x.record(path, start)
		}
		x.skipSpace(false)
		if x.eof() || x.s[x.i] != '=' {
			x.skipLine()
			continue
		}
		x.i++
		x.skipSpace(false)
		x.value(path)
		x.skipLine()
	}
}

// header records a [table] or [[array]] header and returns its path.
func (x *indexer) header(keys []string, array bool, pos int) string {
	path := ""
	for n, k := range keys {
		path = Join(path, k)
		if array && n == len(keys)-1 {
			x.record(path, pos)
			i := x.arrays[path]
			x.arrays[path] = i + 1
			path = Index(path, i)
			break
		}
		if c, ok := x.arrays[path]; ok {
			path = Index(path, c-1)
		}
	}
	x.record(path, pos)
	return path
}

// key reads a dotted key and returns its parts.
func (x *indexer) key() []string {
	var parts []string
	for {
		x.skipSpace(false)
		if x.eof() {
			return parts
		}
		switch x.s[x.i] {
		case '"':
			raw := x.basicString()
			k, err := strconv.Unquote(raw)
			if err != nil {
				k = strings.Trim(raw, `"`)
			}
			parts = append(parts, k)
		case '\'':
			start := x.i
			x.i++
			for !x.eof() && x.s[x.i] != '\'' && x.s[x.i] != '\n' {
				x.i++
			}
			parts = append(parts, x.s[start+1:min(x.i, len(x.s))])
			x.i++
		default:
			start := x.i
			for !x.eof() && isBareByte(x.s[x.i]) {
				x.i++
			}
			if x.i == start {
				return parts
			}
			parts = append(parts, x.s[start:x.i])
		}
		x.skipSpace(false)
		if x.eof() || x.s[x.i] != '.' {
			return parts
		}
		x.i++
	}
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString consumes a single-line "..." string and returns it with quotes.
func (x *indexer) basicString() string {
	start := x.i
	x.i++
	for !x.eof() && x.s[x.i] != '"' && x.s[x.i] != '\n' {
		if x.s[x.i] == '\\' {
			x.i++
		}
		x.i++
	}
	x.i++
	return x.s[start:min(x.i, len(x.s))]
}

// value skips one value, recording the paths of array elements and of the
// keys of inline tables.
func (x *indexer) value(path string) {
	if x.eof() {
		return
	}
	switch {
	case x.peek(`"""`):
		x.multiline(`"""`, true)
	case x.peek(`'''`):
		x.multiline(`'''`, false)
	case x.s[x.i] == '"':
		x.basicString()
	case x.s[x.i] == '\'':
		x.i++
		for !x.eof() && x.s[x.i] != '\'' && x.s[x.i] != '\n' {
			x.i++
		}
		x.i++
	case x.s[x.i] == '[':
		x.i++
		for n := 0; ; n++ {
			x.skipSpace(true)
			if x.eof() || x.s[x.i] == ']' {
				x.i++
				return
			}
			elem := Index(path, n)
			x.record(elem, x.i)
			x.value(elem)
			x.skipSpace(true)
			if !x.eof() && x.s[x.i] == ',' {
				x.i++
			}
		}
	case x.s[x.i] == '{':
		x.i++
		for {
			x.skipSpace(true)
			if x.eof() || x.s[x.i] == '}' {
				x.i++
				return
			}
			start := x.i
			keys := x.key()
			if len(keys) == 0 {
				x.i++ // malformed; make progress
				continue
			}
			p := path
			for _, k := range keys {
				p = Join(p, k)
				x.record(p, start)
			}
			x.skipSpace(false)
			if !x.eof() && x.s[x.i] == '=' {
				x.i++
			}
			x.skipSpace(false)
			x.value(p)
			x.skipSpace(true)
			if !x.eof() && x.s[x.i] == ',' {
				x.i++
			}
		}
	default: // number, boolean, date-time (which may contain a space)
		for !x.eof() && !strings.ContainsRune(",]}\n#", rune(x.s[x.i])) {
			x.i++
		}
	}
}

// multiline skips a multi-line string delimited by delim, including up to two
// extra quotes that belong to the content.
func (x *indexer) multiline(delim string, escapes bool) {
	x.i += len(delim)
	for !x.eof() {
		if escapes && x.s[x.i] == '\\' {
			x.i += 2
			continue
		}
		if x.peek(delim) {
			x.i += len(delim)
			for n := 0; n < 2 && !x.eof() && x.s[x.i] == delim[0]; n++ {
				x.i++
			}
			return
		}
		x.i++
	}
}
