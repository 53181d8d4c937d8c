package sensor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
)

// syscallRules are the baseline syscall rules, in auditctl syntax without
// the key and the sensor's pid exclusion, which BaselineRules appends.
// Syscalls a kernel or arch does not know (stime exists only on b32) are
// dropped from a rule when it is built.
var syscallRules = []string{
	// Process execution (also how /tmp activity is seen: no /tmp watches).
	"-a always,exit -F arch=b64 -S execve,execveat",
	"-a always,exit -F arch=b32 -S execve,execveat",
	// Clock changes (T1070.006 timestomp, T1124).
	"-a always,exit -F arch=b64 -S settimeofday,clock_settime,adjtimex,clock_adjtime",
	"-a always,exit -F arch=b32 -S settimeofday,clock_settime,adjtimex,clock_adjtime,stime,clock_settime64,clock_adjtime64",
	// Resource limits: setrlimit, and prlimit64 when it sets a limit (a2,
	// the new limit, is not NULL; programs read limits with a2 = NULL).
	"-a always,exit -F arch=b64 -S setrlimit",
	"-a always,exit -F arch=b32 -S setrlimit",
	"-a always,exit -F arch=b64 -S prlimit64 -F a2!=0",
	"-a always,exit -F arch=b32 -S prlimit64 -F a2!=0",
	// Process injection.
	"-a always,exit -F arch=b64 -S ptrace",
	"-a always,exit -F arch=b32 -S ptrace",
	// Kernel modules.
	"-a always,exit -F arch=b64 -S init_module,finit_module,delete_module",
	"-a always,exit -F arch=b32 -S init_module,finit_module,delete_module",
}

// watch is a file or directory the baseline rules watch.
type watch struct {
	// Path is absolute; it may be a filepath.Match pattern, whose matches
	// are watched (a pattern that matches nothing is skipped).
	Path string
	// Perm is the audit permission filter: r, w, x, a.
	Perm string
}

// watches are the baseline file watches: writes, attribute changes, renames
// and deletions of persistence, credential and log locations, and reads of
// the shadow files. An existing directory is watched recursively (dir=), a
// file or a missing path whose parent exists with path= (the kernel then
// watches the parent for its creation); a path whose parent is missing is
// skipped.
var watches = []watch{
	{"/etc/ssh", "wa"},
	{"/root/.ssh", "wa"},
	{"/home", "wa"}, // ~/.ssh/authorized_keys, shell rc files
	{"/etc/ssl/certs", "wa"},
	{"/usr/local/share/ca-certificates", "wa"},
	{"/usr/share/ca-certificates", "wa"},
	{"/etc/ca-certificates", "wa"},
	{"/etc/ca-certificates.conf", "wa"},
	{"/etc/ca-certificates*", "wa"},
	{"/boot", "wa"},
	{"/etc/security/limits.conf", "wa"},
	{"/etc/security/limits.d", "wa"},
	{"/var/log", "wa"},
	{"/etc/crontab", "wa"},
	{"/etc/cron.d", "wa"},
	{"/etc/cron.allow", "wa"},
	{"/etc/cron.deny", "wa"},
	{"/etc/cron*", "wa"},
	{"/var/spool/cron", "wa"},
	{"/etc/systemd/system", "wa"},
	{"/lib/systemd/system", "wa"},
	{"/etc/profile", "wa"},
	{"/etc/profile.d", "wa"},
	{"/etc/bash.bashrc", "wa"},
	{"/root/.bashrc", "wa"},
	{"/root/.profile", "wa"},
	{"/etc/passwd", "wa"},
	{"/etc/group", "wa"},
	{"/etc/sudoers", "wa"},
	{"/etc/sudoers.d", "wa"},
	{"/etc/sudoers*", "wa"},
	{"/etc/ld.so.preload", "wa"},
	{"/etc/shadow", "rwa"},
	{"/etc/gshadow", "rwa"},
}

// Rule is one audit rule ready for the kernel.
type Rule struct {
	// Text is the rule in auditctl syntax.
	Text string
	// Wire is the rule in the kernel's audit_rule_data format.
	Wire []byte
}

// BaselineRules returns the sensor's baseline audit rules for this host:
// every rule excludes the process selfPID (the sensor itself) and carries the
// key. Watched paths are resolved now (symbolic links followed, patterns
// expanded, missing paths handled as described on watches), and what was
// skipped or watched through its parent is logged at debug level on log.
func BaselineRules(key string, selfPID int, log *slog.Logger) ([]Rule, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if key == "" || strings.ContainsAny(key, " \t\"'") {
		return nil, fmt.Errorf("sensor: invalid rule key %q", key)
	}
	suffix := " -F pid!=" + strconv.Itoa(selfPID) + " -k " + key
	var texts []string
	for _, r := range syscallRules {
		texts = append(texts, r+suffix)
	}
	for _, w := range watchTargets(log) {
		texts = append(texts, "-a always,exit -F "+w.kind+"="+w.path+" -F perm="+w.perm+suffix)
	}
	rules := make([]Rule, 0, len(texts))
	for _, t := range texts {
		r, err := BuildRule(t)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// BuildRule parses an auditctl-syntax rule with go-libaudit's rule/flags and
// builds its wire format. Syscalls unknown for the rule's arch are dropped;
// a rule left without any syscall is an error.
func BuildRule(text string) (Rule, error) {
	parsed, err := flags.Parse(text)
	if err != nil {
		return Rule{}, fmt.Errorf("sensor: parse rule %q: %w", text, err)
	}
	if sr, ok := parsed.(*rule.SyscallRule); ok && len(sr.Syscalls) > 0 {
		known := sr.Syscalls[:0:0]
		for _, sc := range sr.Syscalls {
			probe := *sr
			probe.Syscalls = []string{sc}
			if _, err := rule.Build(&probe); err == nil {
				known = append(known, sc)
			}
		}
		if len(known) == 0 {
			return Rule{}, fmt.Errorf("sensor: build rule %q: no syscall known for its arch", text)
		}
		if len(known) != len(sr.Syscalls) {
			sr.Syscalls = known
			text = rewriteSyscalls(text, known)
		}
	}
	wire, err := rule.Build(parsed)
	if err != nil {
		return Rule{}, fmt.Errorf("sensor: build rule %q: %w", text, err)
	}
	return Rule{Text: text, Wire: wire}, nil
}

// rewriteSyscalls replaces the -S list of an auditctl rule.
func rewriteSyscalls(text string, syscalls []string) string {
	f := strings.Fields(text)
	out := make([]string, 0, len(f))
	done := false
	for i := 0; i < len(f); i++ {
		if f[i] == "-S" && i+1 < len(f) {
			i++
			if !done {
				out = append(out, "-S", strings.Join(syscalls, ","))
				done = true
			}
			continue
		}
		out = append(out, f[i])
	}
	return strings.Join(out, " ")
}

// watchTarget is a resolved watch: kind is "dir" or "path".
type watchTarget struct {
	kind, path, perm string
}

// watchTargets resolves the baseline watches on this host.
func watchTargets(log *slog.Logger) []watchTarget {
	seen := map[string]bool{}
	var out []watchTarget
	add := func(p, perm string) {
		kind, resolved, ok := resolveWatch(p, log)
		if !ok || seen[kind+resolved] {
			return
		}
		seen[kind+resolved] = true
		out = append(out, watchTarget{kind: kind, path: resolved, perm: perm})
	}
	for _, w := range watches {
		if strings.ContainsAny(w.Path, "*?[") {
			matches, _ := filepath.Glob(w.Path)
			sort.Strings(matches)
			if len(matches) == 0 {
				log.Debug("audit sensor: watch pattern matches nothing, skipped", "pattern", w.Path)
			}
			for _, m := range matches {
				add(m, w.Perm)
			}
			continue
		}
		add(w.Path, w.Perm)
	}
	return out
}

// resolveWatch decides how to watch p: an existing directory recursively
// (dir=), an existing file or a missing path under an existing parent with
// path=. ok is false when the path cannot be watched.
func resolveWatch(p string, log *slog.Logger) (kind, resolved string, ok bool) {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		fi, err := os.Stat(r)
		if err != nil {
			return "", "", false
		}
		if fi.IsDir() {
			return "dir", r, true
		}
		return "path", r, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Debug("audit sensor: watch path unreadable, skipped", "path", p, "err", err)
		return "", "", false
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		log.Debug("audit sensor: watch path and its parent do not exist, skipped", "path", p)
		return "", "", false
	}
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		log.Debug("audit sensor: watch parent is not a directory, skipped", "path", p)
		return "", "", false
	}
	resolved = filepath.Join(parent, filepath.Base(p))
	log.Debug("audit sensor: watch path does not exist, watching its creation through the parent directory", "path", resolved, "parent", parent)
	return "path", resolved, true
}
