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
//	skewed = false            # stamped by the SIEM's skewed clock: + clock_offset
//
// and `crash_after = N` (exit on the Nth search), `fail_first = N` (the first
// N searches fail), `hostname = "h"` (the host signals report),
// `clock_offset = "-30s"` (the SIEM's clock minus the host's, as the clock
// call answers it; `no_clock = true` makes that call unsupported),
// `paging = "stuck"` (every page answers the token it was given, "p1" for
// the first) or `paging = "repeat"` (every page is the first one again,
// under a new token), `reject = N` (Ingest rejects the last N events),
// `hang = true` (every search waits until vigil gives up on it, as a SIEM
// that never answers or a plugin that keeps retrying) and `deny = "msg"`
// (every search is refused with plugin.ErrDenied and msg, as a wrong key
// would be). Stats counts the searches ("searches").
//
// The raw-event search answers scripted events of the tests whose markers
// it is asked about (the test of a marker is learnt from the searches):
//
//	[[event]]
//	test_id = "x"
//	delay = "5ms"                       # event time = injection start + delay
//	source = "linux/process_creation"
//	summary = "/bin/sh -c touch /tmp/x"
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
	Skewed          bool   `toml:"skewed"`
	delay           time.Duration
}

// rawEvent is a scripted raw event.
type rawEvent struct {
	TestID  string `toml:"test_id"`
	Delay   string `toml:"delay"`
	Source  string `toml:"source"`
	Summary string `toml:"summary"`
	delay   time.Duration
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

	Events      []rawEvent `toml:"event"`
	ClockOffset string     `toml:"clock_offset"`
	NoClock     bool       `toml:"no_clock"`
	Paging      string     `toml:"paging"`
	Reject      int        `toml:"reject"`
	Hang        bool       `toml:"hang"`
	Deny        string     `toml:"deny"`
	clockOffset time.Duration
}

// injection is what the searches taught about a marker.
type injection struct {
	testID string
	start  time.Time
}

type testSIEM struct {
	sdk.SIEMBase
	mu       sync.Mutex
	cfg      config
	searches int
	pages    int
	onceSeen map[string]plugin.Signal
	markers  map[string]injection
}

func (s *testSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name: "testsiem", Version: "0.0.1", Summary: "scripted SIEM for engine tests",
		QueryDialect: "none", ReportsHost: true,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
		Capabilities:    []string{plugin.CapRawEvents, plugin.CapIngestTime, plugin.CapClock, plugin.CapIngest},
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
	for i := range s.cfg.Events {
		if s.cfg.Events[i].Delay != "" {
			d, err := time.ParseDuration(s.cfg.Events[i].Delay)
			if err != nil {
				return fmt.Errorf("testsiem: event %d: %w", i, err)
			}
			s.cfg.Events[i].delay = d
		}
	}
	if s.cfg.ClockOffset != "" {
		d, err := time.ParseDuration(s.cfg.ClockOffset)
		if err != nil {
			return fmt.Errorf("testsiem: clock_offset: %w", err)
		}
		s.cfg.clockOffset = d
	}
	s.onceSeen = map[string]plugin.Signal{}
	s.markers = map[string]injection{}
	return nil
}

// Clock answers the scripted clock offset.
func (s *testSIEM) Clock(context.Context) (plugin.ClockReading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.NoClock {
		return plugin.ClockReading{}, plugin.ErrUnsupported
	}
	return plugin.ClockReading{Offset: s.cfg.clockOffset, Uncertainty: time.Millisecond, Source: "testsiem clock_offset"}, nil
}

// SearchRawEvents answers the scripted events of the markers' tests.
func (s *testSIEM) SearchRawEvents(_ context.Context, req plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []plugin.RawEvent
	for _, m := range req.Markers {
		inj, ok := s.markers[m]
		if !ok {
			continue
		}
		for _, e := range s.cfg.Events {
			if e.TestID != inj.testID {
				continue
			}
			ts := inj.start.Add(e.delay)
			out = append(out, plugin.RawEvent{
				Marker: m, Timestamp: ts, IngestedAt: ts.Add(time.Millisecond), Host: s.cfg.Hostname,
				Raw: []byte(fmt.Sprintf(`{"summary":%q}`, e.Summary)), Source: e.Source, Summary: e.Summary,
			})
		}
	}
	return out, nil
}

// Ingest accepts every event but the last `reject` ones.
func (s *testSIEM) Ingest(_ context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := max(len(req.Events)-s.cfg.Reject, 0)
	res := plugin.IngestResult{Accepted: n}
	for i := n; i < len(req.Events); i++ {
		res.Problems = append(res.Problems, plugin.Problem{Subject: fmt.Sprintf("events[%d]", i), Message: "mapper_parsing_exception: failed to parse field [n]"})
	}
	return res, nil
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

// Stats counts the searches.
func (s *testSIEM) Stats(context.Context) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int64{"searches": int64(s.searches)}, nil
}

func (s *testSIEM) Search(ctx context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	s.mu.Lock()
	s.searches++
	hang, deny := s.cfg.Hang, s.cfg.Deny
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return plugin.SearchResult{}, fmt.Errorf("testsiem: scripted hang: %w", ctx.Err())
	}
	if deny != "" {
		return plugin.SearchResult{}, fmt.Errorf("testsiem: search: %w: %s", plugin.ErrDenied, deny)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.CrashAfter > 0 && s.searches >= s.cfg.CrashAfter {
		os.Exit(3)
	}
	if s.searches <= s.cfg.FailFirst {
		return plugin.SearchResult{}, fmt.Errorf("testsiem: scripted failure %d of %d", s.searches, s.cfg.FailFirst)
	}
	var out []plugin.Signal
	now := time.Now()
	for _, e := range req.Expectations {
		s.markers[e.Marker] = injection{testID: e.TestID, start: e.NotBefore}
		for i, r := range s.cfg.Rules {
			if r.TestID != "*" && r.TestID != e.TestID {
				continue
			}
			ts := e.NotBefore.Add(r.delay)
			if r.BeforeInjection {
				ts = e.NotBefore.Add(-time.Second)
			}
			if r.Skewed {
				ts = ts.Add(s.cfg.clockOffset)
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
	return s.page(req, out), nil
}

// page answers out as one page, or misbehaves as paging says.
func (s *testSIEM) page(req plugin.SearchRequest, out []plugin.Signal) plugin.SearchResult {
	switch s.cfg.Paging {
	case "stuck":
		tok := req.PageToken
		if tok == "" {
			tok = "p1"
		}
		return plugin.SearchResult{Signals: out, NextPageToken: tok}
	case "repeat":
		s.pages++
		return plugin.SearchResult{Signals: out, NextPageToken: fmt.Sprintf("p%d", s.pages)}
	}
	return plugin.SearchResult{Signals: out}
}

func main() { sdk.ServeSIEM(&testSIEM{}) }
