// Command testsiem is a scripted SIEM plugin for vigil's engine tests and an
// example of an external plugin: it implements plugin.SIEM with the sdk and
// serves it as vigil-plugin-siem-testsiem.
//
// It raises signals derived from the expectations it is asked about, after
// chosen delays, so that tests can check latency accounting, deadlines,
// double counting and failure handling through a real go-plugin process.
// Its config ([siem.params]) is a list of rules:
//
//	[[rule]]
//	test_id = "fast"          # which test's expectations it answers ("*": all)
//	delay = "300ms"           # signal timestamp = injection start + delay
//	                          # (negative: a coarse or skewed clock)
//	technique = "T1059.004"   # tag; default: the expectation's technique
//	name = "Scripted rule"
//	marker = true             # the signal carries the marker in the command line
//	once = false              # one signal per test_id, not per injection
//	before_injection = false  # timestamp 1s BEFORE the injection (must not count)
//
// and `crash_after = N` (exit on the Nth search), `fail_first = N` (the first
// N searches fail), `hostname = "h"` (the host signals report).
//
// Its claimed rules (the rules call, for `vigil coverage`) are scripted too:
//
//	[[claim]]
//	id = "r1"
//	name = "Shell spawned"
//	techniques = ["T1059.004"]
//	enabled = true
//
// Without any [[claim]] the call is unsupported; `rules_error = "msg"`
// makes it fail with that message.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

type rule struct {
	TestID          string `toml:"test_id"`
	Delay           string `toml:"delay"`
	Technique       string `toml:"technique"`
	Name            string `toml:"name"`
	Marker          bool   `toml:"marker"`
	Once            bool   `toml:"once"`
	BeforeInjection bool   `toml:"before_injection"`
	delay           time.Duration
}

// claim is a scripted detection rule for the rules call.
type claim struct {
	ID         string   `toml:"id"`
	Name       string   `toml:"name"`
	Techniques []string `toml:"techniques"`
	Enabled    bool     `toml:"enabled"`
}

type config struct {
	Rules      []rule  `toml:"rule"`
	Claims     []claim `toml:"claim"`
	RulesError string  `toml:"rules_error"`
	CrashAfter int     `toml:"crash_after"`
	FailFirst  int     `toml:"fail_first"`
	Hostname   string  `toml:"hostname"`
}

type testSIEM struct {
	sdk.SIEMBase
	mu       sync.Mutex
	cfg      config
	searches int
	onceSeen map[string]plugin.Signal
}

func (s *testSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name: "testsiem", Version: "0.0.1", Summary: "scripted SIEM for engine tests",
		QueryDialect: "none", ReportsHost: true,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
	}, nil
}

func (s *testSIEM) Configure(_ context.Context, b []byte) error {
	md, err := toml.Decode(string(b), &s.cfg)
	if err != nil {
		return fmt.Errorf("testsiem: config: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("testsiem: config: unknown keys %v", u)
	}
	for i := range s.cfg.Rules {
		if s.cfg.Rules[i].Delay != "" {
			d, err := time.ParseDuration(s.cfg.Rules[i].Delay)
			if err != nil {
				return fmt.Errorf("testsiem: rule %d: %w", i, err)
			}
			s.cfg.Rules[i].delay = d
		}
	}
	s.onceSeen = map[string]plugin.Signal{}
	return nil
}

// ClaimedRules answers the scripted [[claim]] rules.
func (s *testSIEM) ClaimedRules(context.Context) ([]plugin.Rule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.RulesError != "" {
		return nil, fmt.Errorf("testsiem: %s", s.cfg.RulesError)
	}
	if len(s.cfg.Claims) == 0 {
		return nil, plugin.ErrUnsupported
	}
	out := make([]plugin.Rule, len(s.cfg.Claims))
	for i, c := range s.cfg.Claims {
		out[i] = plugin.Rule{ID: c.ID, Name: c.Name, Techniques: c.Techniques, Enabled: c.Enabled, Source: "testsiem [[claim]] " + fmt.Sprint(i)}
	}
	return out, nil
}

func (s *testSIEM) Search(_ context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searches++
	if s.cfg.CrashAfter > 0 && s.searches >= s.cfg.CrashAfter {
		os.Exit(3)
	}
	if s.searches <= s.cfg.FailFirst {
		return plugin.SearchResult{}, fmt.Errorf("testsiem: scripted failure %d of %d", s.searches, s.cfg.FailFirst)
	}
	var out []plugin.Signal
	now := time.Now()
	for _, e := range req.Expectations {
		for i, r := range s.cfg.Rules {
			if r.TestID != "*" && r.TestID != e.TestID {
				continue
			}
			ts := e.NotBefore.Add(r.delay)
			if r.BeforeInjection {
				ts = e.NotBefore.Add(-time.Second)
			}
			// Like a real SIEM: only what exists now, inside the window.
			if ts.After(now) || ts.Before(req.Start) || (!req.End.IsZero() && ts.After(req.End)) {
				continue
			}
			tech := r.Technique
			if tech == "" {
				tech = e.Technique
			}
			sig := plugin.Signal{
				ID: fmt.Sprintf("sig-%s-%d", e.Marker, i), RuleName: r.Name, RuleID: fmt.Sprintf("rule-%d", i),
				Techniques: []string{tech}, Timestamp: ts, Host: s.cfg.Hostname,
				Raw: []byte(fmt.Sprintf(`{"rule":%q}`, r.Name)),
			}
			if r.Marker {
				sig.MarkerValues = []plugin.MarkerValue{{Location: plugin.MarkerCommandLine, Value: "/bin/sh -c true " + e.Marker}}
			}
			if r.Once {
				key := fmt.Sprintf("%s/%d", e.TestID, i)
				if prev, ok := s.onceSeen[key]; ok {
					sig = prev
				} else {
					sig.ID = "sig-once-" + key
					s.onceSeen[key] = sig
				}
			}
			out = append(out, sig)
		}
	}
	return plugin.SearchResult{Signals: out}, nil
}

func main() { sdk.ServeSIEM(&testSIEM{}) }
