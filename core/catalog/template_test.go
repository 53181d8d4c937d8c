package catalog

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testVars() Vars {
	return Vars{
		Marker: "vigil-3f9a2c1b7d4e",
		TmpDir: "/tmp/vigil run",
		Host:   "web-1",
		Target: "localhost",
		TestID: "linux-x",
		Args: map[string]string{
			"name":  "it's here",
			"plain": "decoy.log",
			"file":  "{{tmpdir}}/{{marker}}.log",
		},
	}
}

func TestRender(t *testing.T) {
	params := map[string]any{
		"command": "rm -f {{args.file}} {{args.name}} {{ args.plain }} {{host}}",
		"argv":    []any{"rm", "{{args.name}}"},
		"env":     map[string]any{"NAME": "{{args.name}}", "DIR": "{{tmpdir}}"},
		"message": "{{test_id}} on {{target}}: {{args.name}}",
		"steps":   []map[string]any{{"run": "echo {{marker}}"}},
		"retries": int64(3),
		"format":  "docker inspect -f '{{.State.Pid}}'",
	}
	got, err := Render(params, testVars(), map[string]bool{"command": true, "argv": true, "steps": true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"command": `rm -f '/tmp/vigil run/vigil-3f9a2c1b7d4e.log' 'it'\''s here' decoy.log web-1`,
		"argv":    []any{"rm", `'it'\''s here'`},
		"env":     map[string]any{"NAME": "it's here", "DIR": "/tmp/vigil run"},
		"message": "linux-x on localhost: it's here",
		"steps":   []map[string]any{{"run": "echo vigil-3f9a2c1b7d4e"}},
		"retries": int64(3),
		"format":  "docker inspect -f '{{.State.Pid}}'",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Render:\n%#v\nwant:\n%#v", got, want)
	}
	if params["command"] != "rm -f {{args.file}} {{args.name}} {{ args.plain }} {{host}}" {
		t.Error("Render modified its input")
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name    string
		params  map[string]any
		args    map[string]string
		wantErr string
	}{
		{
			name:    "unknown placeholder",
			params:  map[string]any{"command": "echo {{tmp}}"},
			wantErr: "rendering params: command: unknown placeholder {{tmp}} (known: {{marker}}, {{tmpdir}}, {{host}}, {{target}}, {{test_id}}, {{args.NAME}})",
		},
		{
			name:    "missing arg in a nested value",
			params:  map[string]any{"env": map[string]any{"X": "{{args.nope}}"}},
			args:    map[string]string{"a": "1"},
			wantErr: "rendering params: env.X: unknown arg {{args.nope}} (the test's args: a)",
		},
		{
			name:    "arg referring to an arg",
			params:  map[string]any{"command": "echo {{args.b}}"},
			args:    map[string]string{"a": "1", "b": "{{args.a}}"},
			wantErr: `rendering args: arg "b": {{args.a}}: an arg cannot refer to another arg`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := testVars()
			v.Args = tc.args
			_, err := Render(tc.params, v, map[string]bool{"command": true})
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("err = %v\nwant %s", err, tc.wantErr)
			}
		})
	}
}

func TestRenderString(t *testing.T) {
	got, err := RenderString(`test -e {{args.file}} && grep "x" {{args.name}}`, testVars(), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := `test -e '/tmp/vigil run/vigil-3f9a2c1b7d4e.log' && grep "x" 'it'\''s here'`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	got, err = RenderString(`index=main "{{marker}}" {{args.name}}`, testVars(), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := `index=main "vigil-3f9a2c1b7d4e" it's here`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "''",
		"plain":            "plain",
		"/tmp/a_b-c.d:e,f": "/tmp/a_b-c.d:e,f",
		"user@host%1+2=3":  "user@host%1+2=3",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"$(id)":            "'$(id)'",
		"*":                "'*'",
		"~root":            "'~root'",
		"ünïcode":          "'ünïcode'",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestHostileArgsStayOneWord runs rendered shell params with /bin/sh and
// checks that hostile arg values arrive as one literal argument, running
// nothing.
func TestHostileArgsStayOneWord(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	dir := t.TempDir()
	canary := filepath.Join(dir, "pwned")
	hostile := []string{
		`'; rm -rf / #`,
		`'; touch ` + canary + ` #`,
		`$(touch ` + canary + `)`,
		"`touch " + canary + "`",
		"a\nb; touch " + canary,
		`"; touch ` + canary + `; echo "`,
		`\'; touch ` + canary + `; #`,
		`'''`,
		`*`,
		`-n`,
		`${HOME}`,
		"tab\there",
		"",
		"a|b&c>d<e",
		`{{marker}}`, // an arg value's placeholders are filled in, then quoted
	}
	for _, value := range hostile {
		v := Vars{Marker: "vigil-abc", TmpDir: dir, Args: map[string]string{"x": value}}
		params := map[string]any{"command": "printf '[%s]\\n' {{args.x}} {{tmpdir}}"}
		out, err := Render(params, v, map[string]bool{"command": true})
		if err != nil {
			t.Fatalf("Render(%q): %v", value, err)
		}
		cmd := exec.Command(sh, "-c", out["command"].(string))
		cmd.Dir = dir
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sh -c %s: %v: %s", out["command"], err, got)
		}
		want := value
		if value == "{{marker}}" {
			want = "vigil-abc"
		}
		if string(got) != "["+want+"]\n["+dir+"]\n" {
			t.Errorf("arg %q came out as %q (command %s)", value, got, out["command"])
		}
		if _, err := os.Stat(canary); err == nil {
			t.Fatalf("arg %q ran a command (command %s)", value, out["command"])
		}
	}
}

func TestRenderDoesNotQuoteOutsideShellKeys(t *testing.T) {
	v := Vars{Args: map[string]string{"x": "a b"}}
	out, err := Render(map[string]any{"path": "/tmp/{{args.x}}", "command": "ls {{args.x}}"}, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out["path"] != "/tmp/a b" || out["command"] != "ls a b" {
		t.Errorf("got %v", out)
	}
	if !strings.Contains(ShellQuote("a b"), "'") {
		t.Error("ShellQuote did not quote")
	}
}

// TestRenderRaw: "| raw" placeholders are substituted as they are in shell
// params (Atomic Red Team's #{name}), so that the shell parses the value;
// plain ones next to them are still quoted.
func TestRenderRaw(t *testing.T) {
	v := Vars{Marker: "vigil-abc", TmpDir: "/tmp/a b", Args: map[string]string{"grep_args": "-e 'pass' -e ssh", "file": "~/.bash_history"}}
	cases := []struct {
		in, want string
	}{
		{"grep {{args.grep_args | raw}} {{args.file|raw}}", "grep -e 'pass' -e ssh ~/.bash_history"},
		{"ls {{ args.file | raw }} {{args.file}}", "ls ~/.bash_history '~/.bash_history'"},
		{"cd {{tmpdir | raw}} && cd {{tmpdir}}", "cd /tmp/a b && cd '/tmp/a b'"},
		{"echo {{args.grep_args | rawx}}", "echo {{args.grep_args | rawx}}"}, // not a placeholder
	}
	for _, tc := range cases {
		got, err := RenderString(tc.in, v, true)
		if err != nil {
			t.Fatalf("RenderString(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("RenderString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := RenderString("echo {{args.nope | raw}}", v, true); err == nil || !strings.Contains(err.Error(), "unknown arg {{args.nope}}") {
		t.Errorf("undeclared raw arg: got %v", err)
	}
	if p := checkPlaceholders("echo {{args.grep_args | raw}} {{args.x|raw}}", v.Args, false); len(p) != 1 || !strings.Contains(p[0], "{{args.x}}") {
		t.Errorf("checkPlaceholders = %q, want one problem for args.x", p)
	}
}
