package shellstep

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// absShell accepts absolute paths only, as a remote injector would.
func absShell(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	return nil
}

func problemStrings(probs []plugin.Problem) []string {
	var out []string
	for _, p := range probs {
		out = append(out, p.String())
	}
	return out
}

func TestParseInject(t *testing.T) {
	cases := []struct {
		name   string
		params plugin.Params
		want   Step
		probs  []string
	}{
		{name: "defaults", params: plugin.Params{"command": "id"},
			want: Step{Command: "id", Shell: "/bin/sh", Env: map[string]string{}}},
		{name: "every param", params: plugin.Params{"command": "id", "shell": "/bin/bash", "env": map[string]any{"A": "b", "N": 2.5, "B": true}, "expect_exit": 3, "stdin": "x"},
			want: Step{Command: "id", Shell: "/bin/bash", Env: map[string]string{"A": "b", "N": "2.5", "B": "true"}, ExpectExit: 3, Stdin: "x"}},
		{name: "ignore_exit", params: plugin.Params{"command": "find / -name x", "ignore_exit": true},
			want: Step{Command: "find / -name x", Shell: "/bin/sh", Env: map[string]string{}, IgnoreExit: true}},
		{name: "ignore_exit false with expect_exit is fine", params: plugin.Params{"command": "id", "ignore_exit": false, "expect_exit": 2},
			want: Step{Command: "id", Shell: "/bin/sh", Env: map[string]string{}, ExpectExit: 2}},
		{name: "ignore_exit and expect_exit conflict, even expect_exit 0", params: plugin.Params{"command": "id", "ignore_exit": true, "expect_exit": 0},
			want:  Step{Command: "id", Shell: "/bin/sh", Env: map[string]string{}, IgnoreExit: true},
			probs: []string{"ignore_exit: conflicts with expect_exit: set one of them"}},
		{name: "unknown param listed with the known ones", params: plugin.Params{"comand": "id"},
			want: Step{Shell: "/bin/sh", Env: map[string]string{}},
			probs: []string{
				"comand: unknown param (known: command, env, expect_exit, ignore_exit, shell, stdin)",
				"command: required: a non-empty shell command line",
			}},
		{name: "NUL in command", params: plugin.Params{"command": "a\x00b"},
			want: Step{Command: "a\x00b", Shell: "/bin/sh", Env: map[string]string{}}, probs: []string{"command: contains a NUL byte"}},
		{name: "shell checked", params: plugin.Params{"command": "id", "shell": "bash"},
			want: Step{Command: "id", Shell: "bash", Env: map[string]string{}}, probs: []string{`shell: "bash" is not an absolute path`}},
		{name: "exit out of range", params: plugin.Params{"command": "id", "expect_exit": -1},
			want: Step{Command: "id", Shell: "/bin/sh", Env: map[string]string{}, ExpectExit: -1}, probs: []string{"expect_exit: -1 out of range 0..255"}},
		{name: "bad env", params: plugin.Params{"command": "id", "env": map[string]any{"VIGIL_TEST_ID": "x", "OK": "y", "L": []any{}}},
			want: Step{Command: "id", Shell: "/bin/sh", Env: map[string]string{"OK": "y"}},
			probs: []string{
				"env.L: want a string, number or boolean, got []interface {}",
				"env: VIGIL_TEST_ID is set by the injector and cannot be overridden",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, probs := ParseInject(tc.params, "/bin/sh", absShell)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("step = %+v, want %+v", got, tc.want)
			}
			if g := problemStrings(probs); !reflect.DeepEqual(g, tc.probs) {
				t.Errorf("problems = %q, want %q", g, tc.probs)
			}
		})
	}
}

func TestParseCleanup(t *testing.T) {
	cases := []struct {
		params plugin.Params
		want   string
		probs  []string
	}{
		{params: nil},
		{params: plugin.Params{"command": "rm -f x"}, want: "rm -f x"},
		{params: plugin.Params{"command": "x", "ignore_exit": true}, want: "x", probs: []string{"ignore_exit: unknown param (known: command)"}},
		{params: plugin.Params{"command": "\x00"}, want: "\x00", probs: []string{"command: contains a NUL byte"}},
	}
	for _, tc := range cases {
		got, probs := ParseCleanup(tc.params)
		if got.Command != tc.want || !reflect.DeepEqual(problemStrings(probs), tc.probs) {
			t.Errorf("ParseCleanup(%v) = %q, %q; want %q, %q", tc.params, got.Command, problemStrings(probs), tc.want, tc.probs)
		}
	}
}

func TestVerdict(t *testing.T) {
	started := errors.New("ssh: open session: EOF")
	cases := []struct {
		name    string
		step    Step
		exit    Exit
		stderr  string
		ctxErr  error
		want    plugin.Outcome
		wantErr string
	}{
		{name: "expected zero", exit: Exit{Code: 0}, want: plugin.OutcomeSucceeded},
		{name: "unexpected code with stderr", exit: Exit{Code: 1}, stderr: "find: '/proc/1/fd': Permission denied\n",
			want: plugin.OutcomeFailed, wantErr: "command exited 1, want 0: find: '/proc/1/fd': Permission denied"},
		{name: "expect_exit", step: Step{ExpectExit: 3}, exit: Exit{Code: 3}, want: plugin.OutcomeSucceeded},
		{name: "ignore_exit keeps a failing command a success", step: Step{IgnoreExit: true}, exit: Exit{Code: 1}, want: plugin.OutcomeSucceeded},
		{name: "ignore_exit does not hide a timeout", step: Step{IgnoreExit: true}, exit: Exit{Code: -1, TimedOut: true, Group: "remote process group"},
			want: plugin.OutcomeTimedOut, wantErr: "command timed out after 2s; remote process group killed"},
		{name: "ignore_exit does not hide a start failure", step: Step{IgnoreExit: true}, exit: Exit{Code: -1, StartErr: started},
			want: plugin.OutcomeFailed, wantErr: started.Error()},
		{name: "canceled names the context error", exit: Exit{Code: -1, Canceled: true}, ctxErr: context.DeadlineExceeded,
			want: plugin.OutcomeTimedOut, wantErr: "command canceled (context deadline exceeded); process group killed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Verdict(tc.step, tc.exit, []byte(tc.stderr), 2*time.Second, tc.ctxErr)
			if got != tc.want || msg != tc.wantErr {
				t.Errorf("Verdict = %s, %q; want %s, %q", got, msg, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDetails(t *testing.T) {
	d := Step{Shell: "/bin/sh", ExpectExit: 2}.Details(time.Second)
	if d["expect_exit"] != 2 || d["ignore_exit"] != nil || d["timeout_ms"] != int64(1000) {
		t.Errorf("details = %v", d)
	}
	d = Step{Shell: "/bin/sh", IgnoreExit: true}.Details(time.Second)
	if _, ok := d["expect_exit"]; ok || d["ignore_exit"] != true {
		t.Errorf("details with ignore_exit = %v, want ignore_exit and no expect_exit", d)
	}
}

func TestCappedBuffer(t *testing.T) {
	cases := []struct {
		max    int
		writes []string
		want   string
	}{
		{10, []string{"hello"}, "hello"},
		{5, []string{"hello"}, "hello"},
		{5, []string{"hel", "lo w", "orld"}, "hello\n[truncated 6 bytes]\n"},
		{4, []string{"ab\n", "cd\n"}, "ab\nc\n[truncated 2 bytes]\n"},
	}
	for _, tc := range cases {
		b := NewCappedBuffer(tc.max)
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if got := string(b.Bytes()); got != tc.want {
			t.Errorf("max %d, writes %q: %q, want %q", tc.max, tc.writes, got, tc.want)
		}
	}
}

func TestEnvironAndExcerpt(t *testing.T) {
	got := Environ(map[string]string{"PATH": "/bin", "A": "1"}, map[string]string{"A": "2"}, nil)
	if want := []string{"A=2", "PATH=/bin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
	if got := Excerpt([]byte("  line one\n\tline two  \n"), 200); got != "line one line two" {
		t.Errorf("Excerpt = %q", got)
	}
	if got := Excerpt([]byte("héllo"), 2); got != "h…" {
		t.Errorf("Excerpt cut inside a rune = %q, want %q", got, "h…")
	}
}
