package sensor

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/rule"
)

func TestBaselineRulesBuild(t *testing.T) {
	rules, err := BaselineRules("vigil", 4242, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < len(syscallRules) {
		t.Fatalf("%d rules, fewer than the %d syscall rules", len(rules), len(syscallRules))
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if !strings.HasSuffix(r.Text, " -F pid!=4242 -k vigil") {
			t.Errorf("rule lacks the pid exclusion or the key: %s", r.Text)
		}
		if strings.Contains(r.Text, "/tmp") {
			t.Errorf("rule on /tmp: %s", r.Text)
		}
		if seen[r.Text] {
			t.Errorf("duplicate rule %s", r.Text)
		}
		seen[r.Text] = true
		// The wire format decodes back to the same rule.
		back, err := rule.ToCommandLine(r.Wire, false)
		if err != nil {
			t.Errorf("%s: decode: %v", r.Text, err)
			continue
		}
		if !hasKey(back, "vigil") || !strings.Contains(back, "pid!=4242") {
			t.Errorf("%s decodes to %s", r.Text, back)
		}
	}
	for _, want := range []string{
		"-S execve,execveat", "-S settimeofday,clock_settime,adjtimex,clock_adjtime ",
		"stime", "-S prlimit64 -F a2!=0", "-S ptrace", "finit_module",
		"-F dir=/var/log -F perm=wa", "-F path=/etc/shadow -F perm=rwa", "-F path=/etc/passwd -F perm=wa",
	} {
		found := false
		for _, r := range rules {
			if strings.Contains(r.Text, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no baseline rule contains %q", want)
		}
	}
	if _, err := BaselineRules("bad key", 1, nil); err == nil {
		t.Error("a key with a space was accepted")
	}
}

func TestBuildRule(t *testing.T) {
	cases := []struct {
		in, text, err string
	}{
		{in: "-a always,exit -F arch=b64 -S execve -k k", text: "-a always,exit -F arch=b64 -S execve -k k"},
		// stime exists on b32 only: dropped from a b64 rule.
		{in: "-a always,exit -F arch=b64 -S settimeofday,stime -k k", text: "-a always,exit -F arch=b64 -S settimeofday -k k"},
		{in: "-a always,exit -F arch=b64 -S stime -k k", err: "no syscall known"},
		{in: "-a always,exit -F nosuchfield=1 -S execve", err: "build rule"},
		{in: "-x", err: "parse rule"},
	}
	for _, c := range cases {
		r, err := BuildRule(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("BuildRule(%q) err = %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("BuildRule(%q): %v", c.in, err)
		case r.Text != c.text || len(r.Wire) == 0:
			t.Errorf("BuildRule(%q) = %q, want %q", c.in, r.Text, c.text)
		}
	}
}

func TestResolveWatch(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, kind, resolved string
		ok                   bool
	}{
		{dir, "dir", dir, true},
		{file, "path", file, true},
		{filepath.Join(link, "file"), "path", file, true},
		{filepath.Join(dir, "missing"), "path", filepath.Join(dir, "missing"), true},
		{filepath.Join(link, "missing"), "path", filepath.Join(dir, "missing"), true},
		{filepath.Join(dir, "no", "such"), "", "", false},
		{filepath.Join(file, "below-a-file"), "", "", false},
	}
	for _, c := range cases {
		kind, resolved, ok := resolveWatch(c.path, slog.New(slog.DiscardHandler))
		if kind != c.kind || resolved != c.resolved || ok != c.ok {
			t.Errorf("resolveWatch(%s) = %s %s %v, want %s %s %v", c.path, kind, resolved, ok, c.kind, c.resolved, c.ok)
		}
	}
}

func TestHasKey(t *testing.T) {
	cases := map[string]bool{
		"-a always,exit -S all -F dir=/x -F perm=wa -F pid!=1 -F key=vigil": true,
		"-a always,exit -F arch=b64 -S execve -k vigil":                     true,
		"-a always,exit -F arch=b64 -S execve -F key=vigil-other":           false,
		"-a always,exit -F arch=b64 -S execve":                              false,
	}
	for text, want := range cases {
		if got := hasKey(text, "vigil"); got != want {
			t.Errorf("hasKey(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestUnavailableMessage(t *testing.T) {
	err := unavailable("running as uid 1000, not root\nsecond line")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatal("error does not wrap ErrUnavailable")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans lines: %q", msg)
	}
	for _, want := range []string{"local siem: the audit sensor needs root and the kernel audit subsystem (running as uid 1000", "vigil run --replay"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}
