package splunk

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/splunkfake"
)

// replayInjector is an in-process injector that performs nothing: like the
// replay injector, it returns telemetry (one process event whose command
// line is the test's cmd param and the run marker) for the engine to
// ingest into the SIEM.
type replayInjector struct {
	sdk.InjectorBase
	host string
}

var _ plugin.Injector = (*replayInjector)(nil)

func (r *replayInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "replaytest", Kind: plugin.KindInjector, MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}

func (r *replayInjector) Configure(context.Context, []byte) error { return nil }

func (r *replayInjector) Inject(_ context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	// Whole milliseconds, as Splunk renders _time: latencies come out exact.
	start := time.Now().Truncate(time.Millisecond)
	res := plugin.InjectResult{
		StartedAt: start, EndedAt: start.Add(5 * time.Millisecond), Outcome: plugin.OutcomeSucceeded, Host: r.host,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
		Events:          [][]byte{replayEvent(start, r.host, req.Params.String("cmd")+" # "+req.Marker)},
	}
	// The events param: "none" (no telemetry at all), "bad" (a second
	// event that is not JSON).
	switch req.Params.String("events") {
	case "none":
		res.Events = nil
	case "bad":
		res.Events = append(res.Events, []byte("not json"))
	}
	return res, nil
}

func (r *replayInjector) Cleanup(context.Context, plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

// e2eTest is a catalog test injected through the replay injector.
func e2eTest(t *testing.T, id, technique, cmd string, exps ...catalog.Expectation) *catalog.Test {
	t.Helper()
	tech, err := attack.Lookup(technique)
	if err != nil {
		t.Fatal(err)
	}
	return &catalog.Test{
		ID: id, Name: id, Technique: tech, Tactics: tech.Tactics, Safety: catalog.SafetySafe, Timeout: 5 * time.Second,
		Inject: catalog.Step{Plugin: "replaytest", Params: map[string]any{"cmd": cmd}}, Expect: exps,
	}
}

// e2eEngine wires the engine to the plugin (over gRPC) against the fake,
// and to the replay injector.
func e2eEngine(t *testing.T, f *splunkfake.Fake, extra string, timeout time.Duration) (*runner.Engine, plugin.SIEM) {
	t.Helper()
	s, _ := configured(t, f, extra)
	ctx := context.Background()
	d, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inj := &replayInjector{host: "lab-host"}
	id, _ := inj.Describe(ctx)
	return &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "splunk", Plugin: Name, Impl: s, Desc: d, PollInterval: 200 * time.Millisecond, Timeout: timeout}},
		Targets: []*runner.Target{{Name: "lab", Plugin: "replaytest", Impl: inj, Desc: id, Host: "lab-host", TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 4, CloseSignals: true},
	}, s
}

// cronRule is the fake's correlation search: crontab listings raise a
// notable tagged T1053.003, 700ms after the event.
var cronRule = splunkfake.Rule{
	Contains: "crontab", Name: "Linux Crontab Listing", SearchName: "ESCU - Linux Crontab Listing - Rule",
	Techniques: []string{"T1053.003"}, Delay: 700 * time.Millisecond,
}

// TestEndToEnd runs the engine with the plugin against the fake Splunk:
// telemetry replayed through HEC, notables raised after a delay by the
// fake's correlation search, found by one search job per poll.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	t.Run("replay, detect, latency, close, no double count", func(t *testing.T) {
		t.Parallel()
		f := splunkfake.New(t)
		f.SetRules([]splunkfake.Rule{cronRule})
		eng, s := e2eEngine(t, f, "close_notables = true\nindex = \"vigil\"", 3*time.Second)
		rs := plugintest.RunEngine(t, eng,
			e2eTest(t, "cron", "T1053.003", "crontab -l"),
			e2eTest(t, "cron-by-rule", "T1053", "crontab -e", catalog.Expectation{Rule: "linux crontab listing"}),
			e2eTest(t, "quiet", "T1053.003", "id", catalog.Expectation{Within: 1500 * time.Millisecond}),
		)
		for _, id := range []string{"cron", "cron-by-rule"} {
			r := rs[id]
			if r.Status != measure.Detected {
				t.Fatalf("%s: %s (error %q, reason %q)", id, r.Status, r.Error, r.Reason)
			}
			if r.LatencyMS == nil || *r.LatencyMS != 700 {
				t.Errorf("%s: latency_ms %v, want exactly 700 (notable _time - injection start)", id, r.LatencyMS)
			}
			if r.Correlation != "marker:process" || len(r.Signals) != 1 || r.Signals[0].Rule != "Linux Crontab Listing" ||
				r.Signals[0].RuleID != "ESCU - Linux Crontab Listing - Rule" {
				t.Errorf("%s: correlation %q signals %+v", id, r.Correlation, r.Signals)
			}
			if r.IngestLatencyMS == nil {
				t.Errorf("%s: no ingest latency (raw-event search by marker)", id)
			}
			if r.Reason != "" {
				t.Errorf("%s: reason %q (closing the notable failed?)", id, r.Reason)
			}
		}
		if a, b := rs["cron"].Signals, rs["cron-by-rule"].Signals; len(a) == 1 && len(b) == 1 && a[0].ID == b[0].ID {
			t.Errorf("one notable credited twice: %s", a[0].ID)
		}
		if r := rs["quiet"]; r.Status != measure.Missed || len(r.Signals) != 0 {
			t.Errorf("quiet: %s signals %v", r.Status, r.Signals)
		}

		// One search job per poll, each cancelled; the raw-event searches
		// come on top, at most one per poll (batched over the tests that
		// poll finished).
		searches, polls, _ := eng.Searches("splunk")
		var pollJobs, rawJobs int
		for _, c := range f.JobCreations() {
			switch spl := c.Form.Get("search"); {
			case spl == DefaultSearch:
				pollJobs++
			case strings.HasPrefix(spl, "search (index=*)"):
				rawJobs++
			default:
				t.Errorf("unexpected SPL %q", spl)
			}
		}
		if polls == 0 || int64(pollJobs) != polls || searches != polls {
			t.Errorf("%d poll jobs, %d Search calls for %d polls: want one job and one call per poll", pollJobs, searches, polls)
		}
		if _, _, raw := eng.Searches("splunk"); rawJobs == 0 || int64(rawJobs) != raw || rawJobs > pollJobs {
			t.Errorf("%d raw-event search jobs (%d calls) for %d polls: want at most one per poll", rawJobs, raw, pollJobs)
		}
		if n := len(f.Requests(http.MethodPost, "/control")); n != pollJobs+rawJobs {
			t.Errorf("%d jobs cancelled of %d", n, pollJobs+rawJobs)
		}
		// Both detected notables closed, in one update each.
		var closed []string
		for _, u := range f.Requests(http.MethodPost, "/services/notable_update") {
			closed = append(closed, u.Form["ruleUIDs"]...)
			if u.Form.Get("status") != "5" || !strings.Contains(u.Form.Get("comment"), "vigil-") {
				t.Errorf("notable_update form %v", u.Form)
			}
		}
		want := []string{rs["cron"].Signals[0].ID, rs["cron-by-rule"].Signals[0].ID}
		slices.Sort(closed)
		slices.Sort(want)
		if !slices.Equal(closed, want) {
			t.Errorf("closed %v, want %v", closed, want)
		}
		st, _ := s.Stats(context.Background())
		if st["hec_events"] != 3 || st["jobs_live"] != 0 || st["notables_closed"] != 2 {
			t.Errorf("Stats %v", st)
		}
	})

	t.Run("503 quota waited out in the poll", func(t *testing.T) {
		t.Parallel()
		f := splunkfake.New(t)
		f.SetRules([]splunkfake.Rule{cronRule})
		f.SetQuota(2)
		eng, s := e2eEngine(t, f, `quota_wait = "5s"`, 3*time.Second)
		r := plugintest.RunEngine(t, eng, e2eTest(t, "cron", "T1053.003", "crontab -l"))["cron"]
		if r.Status != measure.Detected || r.LatencyMS == nil || *r.LatencyMS != 700 {
			t.Errorf("cron: %s latency %v (error %q)", r.Status, r.LatencyMS, r.Error)
		}
		if st, _ := s.Stats(context.Background()); st["quota_refusals"] != 2 {
			t.Errorf("quota_refusals = %d, want 2", st["quota_refusals"])
		}
	})

	t.Run("503 quota backs the engine off, no lost result", func(t *testing.T) {
		t.Parallel()
		f := splunkfake.New(t)
		f.SetRules([]splunkfake.Rule{cronRule})
		f.SetQuota(3) // the first three polls are refused, quota_wait is 0
		eng, s := e2eEngine(t, f, "", 8*time.Second)
		r := plugintest.RunEngine(t, eng, e2eTest(t, "cron", "T1053.003", "crontab -l"))["cron"]
		if r.Status != measure.Detected || r.LatencyMS == nil || *r.LatencyMS != 700 {
			t.Errorf("cron: %s latency %v (error %q)", r.Status, r.LatencyMS, r.Error)
		}
		if st, _ := s.Stats(context.Background()); st["quota_refusals"] != 3 {
			t.Errorf("quota_refusals = %d, want 3", st["quota_refusals"])
		}
	})

	for _, tc := range []struct {
		name    string
		setup   func(f *splunkfake.Fake)
		wantErr string
	}{
		{"persistent FATAL is an error, not a miss", func(f *splunkfake.Fake) { f.SetFatal("Unknown search command 'notable'.") },
			"FAILED: FATAL: Unknown search command 'notable'. (SPL: search `notable`)"},
		{"persistent quota is an error, not a miss", func(f *splunkfake.Fake) { f.SetQuota(-1) },
			"still refused after waiting 0s (quota_wait): HTTP 503 Service Unavailable: FATAL: Search not executed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := splunkfake.New(t)
			f.SetRules([]splunkfake.Rule{cronRule})
			tc.setup(f)
			eng, _ := e2eEngine(t, f, "", time.Second)
			r := plugintest.RunEngine(t, eng, e2eTest(t, "cron", "T1053.003", "crontab -l"))["cron"]
			if r.Status != measure.Error || !strings.Contains(r.Error, tc.wantErr) || !strings.Contains(r.Error, `siem "splunk": search: splunk: search:`) {
				t.Errorf("cron: %s, error %q; want error containing %q", r.Status, r.Error, tc.wantErr)
			}
			noSecrets(t, "result error", r.Error)
		})
	}
}

// Every class of miss the Splunk plugin can give evidence for, each set up
// in the fake exactly; and the faults that make a run prove nothing end in
// an error: a replay HEC accepts in part, a server that drops the results
// offset.
func TestEndToEndDiagnoses(t *testing.T) {
	t.Parallel()
	rule := func(mod func(*splunkfake.Rule)) []splunkfake.Rule {
		r := cronRule
		if mod != nil {
			mod(&r)
		}
		return []splunkfake.Rule{r}
	}
	cases := []struct {
		name   string
		setup  func(f *splunkfake.Fake)
		extra  string
		events string
		tech   string
		status measure.Status
		class  measure.DiagnosisClass
		says   string
	}{
		{name: "telemetry, no alert", status: measure.Missed, class: measure.TelemetryNoAlert,
			says: `1 event(s) carrying the marker arrived (_json; the first stamped 0s after the injection: "crontab -l # vigil-`},
		{name: "no telemetry", events: "none", status: measure.Missed, class: measure.NoTelemetry,
			says: `no event carrying the marker reached siem "splunk"`},
		{name: "notable for another technique", setup: func(f *splunkfake.Fake) { f.SetRules(rule(nil)) }, tech: "T1070.003",
			status: measure.Missed, class: measure.AlertWrongTechnique, says: `rule "Linux Crontab Listing" (ESCU - Linux Crontab Listing - Rule) [T1053.003], not for T1070.003`},
		{name: "notable without the marker", setup: func(f *splunkfake.Fake) { f.SetRules(rule(func(r *splunkfake.Rule) { r.NoMarker = true })) },
			status: measure.Missed, class: measure.AlertWithoutMarker, says: "on host lab-host inside the window (700ms after the injection) without the marker"},
		{name: "notable stamped 30s early, clock in sync", setup: func(f *splunkfake.Fake) {
			f.SetRules(rule(func(r *splunkfake.Rule) { r.Shift = -30 * time.Second }))
		}, status: measure.Missed, class: measure.AlertOutsideWindow, says: "stamped 29.3s before the injection"},
		{name: "clock 30s behind, measured", setup: func(f *splunkfake.Fake) {
			f.SetRules(rule(func(r *splunkfake.Rule) { r.Shift = -30 * time.Second }))
			f.SetClockSkew(-30 * time.Second)
		}, status: measure.Detected},
		{name: "replay accepted in part", events: "bad", status: measure.Error,
			says: `siem "splunk" rejected 1 of the 2 replayed events (1 accepted): event 1: not a JSON object`},
		{name: "results offset ignored", setup: func(f *splunkfake.Fake) {
			f.SetRules(rule(nil))
			f.SetIgnoreOffset(true)
			old := time.Now().Add(-time.Second)
			for i := 0; i < 2; i++ {
				f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(old), "event_id": fmt.Sprintf("OLD%d@@notable@@x", i),
					"search_name": "Old", "rule_name": "Old", "dest": "lab-host", "process": "vigil-ffffffffffff"}, old)
			}
		}, extra: "results_page = 1", status: measure.Error, says: "the paging offset is ignored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := splunkfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			eng, _ := e2eEngine(t, f, tc.extra, 1500*time.Millisecond)
			eng.SIEMs[0].ClockSlack = time.Minute
			tech := tc.tech
			if tech == "" {
				tech = "T1053.003"
			}
			ts := e2eTest(t, "x", tech, "crontab -l")
			ts.Inject.Params["events"] = tc.events
			r := plugintest.RunEngine(t, eng, ts)["x"]
			if r.Status != tc.status {
				t.Fatalf("status %s (error %q, reason %q), want %s", r.Status, r.Error, r.Reason, tc.status)
			}
			switch tc.status {
			case measure.Error:
				if !strings.Contains(r.Error, tc.says) {
					t.Errorf("error %q does not say %q", r.Error, tc.says)
				}
			case measure.Detected:
				// The Date header reads the clock to within a second.
				if r.LatencyMS == nil || r.ClockOffsetMS == nil || *r.LatencyMS > 1700 || *r.ClockOffsetMS > -29000 || *r.ClockOffsetMS < -31000 {
					t.Errorf("latency_ms %v clock_offset_ms %v: want about 700 and -30000 (+/- the Date header's second)", r.LatencyMS, r.ClockOffsetMS)
				}
			default:
				if r.Diagnosis == nil || r.Diagnosis.Class != tc.class || !strings.Contains(r.Diagnosis.Summary, tc.says) {
					t.Errorf("diagnosis %+v\nwant %s saying %q", r.Diagnosis, tc.class, tc.says)
				}
			}
		})
	}
}

// A Splunk that cannot answer ends every test by its deadline plus one
// poll interval; refused credentials end them at once, and a refused
// password is never tried again (repeated failed logins lock accounts).
func TestEngineSearchFaults(t *testing.T) {
	const within = 1500 * time.Millisecond
	password := func(pw string) func(string) string {
		return func(cfg string) string {
			return strings.Replace(cfg, `token = "`+splunkfake.Token+`"`, `username = "`+splunkfake.User+`"`+"\n"+`password = "`+pw+`"`, 1)
		}
	}
	cases := []struct {
		name  string
		cfg   func(string) string
		setup func(*splunkfake.Fake)
		says  string
		by    time.Duration
		// logins bounds the login attempts, when >= 0.
		logins int
		// restRequests bounds the authenticated requests, when > 0.
		restRequests int
	}{
		{name: "wrong password", cfg: password("wrong-password-0000"), says: `login as "` + splunkfake.User + `": HTTP 401 Unauthorized: WARN: Login failed (not tried again`,
			by: within / 2, logins: 1},
		{name: "wrong token", cfg: func(cfg string) string { return strings.Replace(cfg, splunkfake.Token, "tok-wrong-00000000000000", 1) },
			says: "HTTP 401 Unauthorized", by: within / 2, logins: -1, restRequests: 2},
		{name: "jobs keep failing", setup: func(f *splunkfake.Fake) { f.SetFatal("Error in 'search' command: the search head is broken") },
			says: "the search head is broken", by: within + time.Second, logins: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := splunkfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := fakeConfig(f, "")
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			impl := &SIEM{warn: &bytes.Buffer{}}
			s := plugintest.SIEM(t, impl)
			if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			d, _ := s.Describe(context.Background())
			inj := &replayInjector{host: "lab-host"}
			id, _ := inj.Describe(context.Background())
			eng := &runner.Engine{
				SIEMs:   []*runner.SIEM{{Name: "splunk", Plugin: Name, Impl: s, Desc: d, PollInterval: 200 * time.Millisecond, Timeout: within}},
				Targets: []*runner.Target{{Name: "lab", Plugin: "replaytest", Impl: inj, Desc: id, Host: "lab-host", TmpRoot: t.TempDir()}},
				Opts:    runner.Options{Concurrency: 4},
			}
			var tests []*catalog.Test
			for _, name := range []string{"a", "b", "c"} {
				tests = append(tests, e2eTest(t, name, "T1053.003", "crontab -l"))
			}
			start := time.Now()
			rs := plugintest.RunEngine(t, eng, tests...)
			took := time.Since(start)
			for name, r := range rs {
				if r.Status != measure.Error || !strings.Contains(r.Error, tc.says) {
					t.Errorf("%s: status %s error %q, want an error saying %q", name, r.Status, r.Error, tc.says)
				}
				noSecrets(t, name+" error", r.Error)
			}
			if took > tc.by {
				t.Errorf("the tests ended %v after the run began, want by %v (deadline %v plus a poll interval)", took.Round(time.Millisecond), tc.by, within)
			}
			if n := len(f.Requests(http.MethodPost, "/services/auth/login")); tc.logins >= 0 && n > tc.logins {
				t.Errorf("%d login attempts, want at most %d", n, tc.logins)
			}
			if tc.restRequests > 0 {
				n := 0
				for _, r := range f.Requests("", "") {
					if r.Auth != "" && !strings.HasPrefix(r.Path, "/services/collector") {
						n++
					}
				}
				if n > tc.restRequests {
					t.Errorf("%d requests with the refused token, want at most %d", n, tc.restRequests)
				}
			}
		})
	}
}
