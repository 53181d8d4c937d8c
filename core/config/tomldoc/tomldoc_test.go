package tomldoc

import (
	"strings"
	"testing"
	"time"
)

const sample = `# comment
id = "x"          # a comment
description = """
not_a_key = 1
[not_a_table]
"""
literal = '''
fake = "x"
'''
platforms = [
  "linux",   # a comment
  "macos",
]
inline = { a = 1, "b c" = { d = 2 } }
a.b.c = "dotted"

[args]
name = "v"

[[expect]]
rule = "one"
[expect.query]
splunk = "q1"

[[expect]]
rule = "two"
[expect.query]
splunk = "q2"
items = [{ k = 1 }, { k = 2 }]
when = 1979-05-27 07:32:00Z
after = true
`

func TestIndexLines(t *testing.T) {
	doc, err := Parse("f.toml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		line int
	}{
		{"id", 2},
		{"description", 3},
		{"not_a_key", 1}, // inside a multi-line string: unknown, falls back to the top
		{"literal", 7},
		{"platforms", 10},
		{"platforms[0]", 11},
		{"platforms[1]", 12},
		{"inline.a", 14},
		{`inline."b c".d`, 14},
		{"a.b.c", 15},
		{"args", 17},
		{"args.name", 18},
		{"expect", 20},
		{"expect[0]", 20},
		{"expect[0].rule", 21},
		{"expect[0].query.splunk", 23},
		{"expect[1]", 25},
		{"expect[1].rule", 26},
		{"expect[1].query", 27},
		{"expect[1].query.splunk", 28},
		{"expect[1].query.items[1].k", 29},
		{"expect[1].query.after", 31},
		{"expect[1].query.missing", 27}, // nearest enclosing table
	}
	for _, tc := range cases {
		if got := doc.Line(tc.path); got != tc.line {
			t.Errorf("Line(%s) = %d, want %d", tc.path, got, tc.line)
		}
	}
	if doc.Has("not_a_table") || doc.Has("fake") {
		t.Errorf("keys inside multi-line strings were indexed")
	}
}

func TestGettersAndErrors(t *testing.T) {
	src := `
name = 3
timeout = "30 sec"
ok = "5s"
list = ["a", 2]
flag = "yes"
tecnique = "T1"

[[sub]]
x = 1
[[sub]]
y = 2
`
	doc, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := doc.Root()
	_ = r.String("name")
	if _, ok := r.Duration("timeout"); ok {
		t.Error("bad duration accepted")
	}
	if d, ok := r.Duration("ok"); !ok || d != 5*time.Second {
		t.Errorf("Duration(ok) = %v, %v", d, ok)
	}
	if got := r.Strings("list"); len(got) != 1 || got[0] != "a" {
		t.Errorf("Strings(list) = %q", got)
	}
	_ = r.Bool("flag")
	_ = r.String("technique")
	for _, sub := range r.Tables("sub") {
		sub.Int("x")
		sub.Close()
	}
	r.Close()
	want := strings.Join([]string{
		`f.toml:2: name: want a string, got an integer`,
		`f.toml:3: timeout: invalid duration "30 sec" (want a Go duration such as "30s" or "5m")`,
		`f.toml:5: list[1]: want a string, got an integer`,
		`f.toml:6: flag: want true or false, got a string`,
		`f.toml:7: tecnique: unknown key (did you mean "technique"?)`,
		`f.toml:12: sub[1].y: unknown key`,
	}, "\n")
	if got := doc.Err().Error(); got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse("f.toml", []byte("a = 1\nb = \nc = 2\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "f.toml:2: invalid TOML: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestHide(t *testing.T) {
	doc, err := Parse("f.toml", []byte(`api_key = "hunter2"`))
	if err != nil {
		t.Fatal(err)
	}
	doc.Hide = func(p string) bool { return p == "api_key" }
	doc.Root().Duration("api_key")
	if got := doc.Err().Error(); strings.Contains(got, "hunter2") || !strings.Contains(got, "(value hidden)") {
		t.Errorf("secret not hidden: %s", got)
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.c":       "a.b",
		"a[2]":        "a",
		`a."x.y"`:     "a",
		`"x.y"`:       "",
		"a":           "",
		`a."q\"x".b`:  `a."q\"x"`,
		`a."q\"x"[0]`: `a."q\"x"`,
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestMapStrings(t *testing.T) {
	doc, err := Parse("f.toml", []byte("a = \"x\"\nb = [\"y\", 1]\n[[c]]\nd = { e = \"z\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	doc.MapStrings(func(path, v string) string {
		paths = append(paths, path)
		return strings.ToUpper(v)
	})
	if got, want := strings.Join(paths, " "), "a b[0] c[0].d.e"; got != want {
		t.Errorf("paths = %s, want %s", got, want)
	}
	r := doc.Root()
	if r.String("a") != "X" || r.Strings("b")[0] != "Y" {
		t.Errorf("values not replaced")
	}
	d := r.Tables("c")[0].Table("d")
	if d.String("e") != "Z" {
		t.Errorf("nested value not replaced")
	}
}

func TestIndexNestedArraysAndCRLF(t *testing.T) {
	src := "[[a]]\r\nx = 1\r\n[[a.b]]\r\ny = 2\r\n[[a]]\r\n[[a.b]]\r\n[[a.b]]\r\nz = 3\r\n[ c . \"d.e\" ] # comment\r\nf = '''\r\ng = 1\r\n'''\r\n"
	doc, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for path, line := range map[string]int{
		"a[0]": 1, "a[0].x": 2, "a[0].b[0]": 3, "a[0].b[0].y": 4,
		"a[1]": 5, "a[1].b[0]": 6, "a[1].b[1]": 7, "a[1].b[1].z": 8,
		`c."d.e"`: 9, `c."d.e".f`: 10,
	} {
		if got := doc.Line(path); got != line {
			t.Errorf("Line(%s) = %d, want %d", path, got, line)
		}
	}
	if doc.Has(`c."d.e".g`) {
		t.Error("indexed a key inside a multi-line literal string")
	}
	if got := header(`a[1].b[0].c`); got != "a.b.c" {
		t.Errorf("header = %s", got)
	}
}
