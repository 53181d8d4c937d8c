package datadog

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/awspack"
	"github.com/vigilsec/vigil/internal/ddfake"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/plugins/injector/replay"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// fakeInjector performs nothing: it tells the test a technique was fired
// (so that the test can make the fake Datadog raise a signal) and plants
// the marker in the command line.
type fakeInjector struct {
	sdk.InjectorBase
	onInject func(req plugin.InjectRequest, started time.Time)
}

var _ plugin.Injector = (*fakeInjector)(nil)

func (f *fakeInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "fakeinj", Kind: plugin.KindInjector, MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}

func (f *fakeInjector) Configure(context.Context, []byte) error { return nil }

func (f *fakeInjector) Inject(_ context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	// Datadog stamps signals to the millisecond: so does the injection, so
	// that latencies are exact.
	started := time.Now().Truncate(time.Millisecond)
	if f.onInject != nil {
		f.onInject(req, started)
	}
	return plugin.InjectResult{StartedAt: started, EndedAt: started, Outcome: plugin.OutcomeSucceeded, Host: "lab-1",
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}

func (f *fakeInjector) Cleanup(context.Context, plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

// e2eTest is a catalog test of technique tech fired by injector inj.
func e2eTest(t *testing.T, id, tech, inj string, within time.Duration) *catalog.Test {
	t.Helper()
	tk, err := attack.Lookup(tech)
	if err != nil {
		t.Fatal(err)
	}
	return &catalog.Test{
		ID: id, Name: id, Technique: tk, Tactics: tk.Tactics, Safety: catalog.SafetySafe, Timeout: 5 * time.Second,
		Inject: catalog.Step{Plugin: inj, Params: map[string]any{}},
		Expect: []catalog.Expectation{{Within: within}},
	}
}

// engine wires the datadog plugin (over gRPC, against srv) and an injector
// into the real engine.
func engine(t *testing.T, srv *ddfake.Server, extra string, inj plugin.Injector, injName string) (*runner.Engine, *SIEM) {
	t.Helper()
	s, impl := configured(t, srv, extra, nil)
	ctx := context.Background()
	sd, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := inj.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "datadog", Plugin: Name, Impl: s, Desc: sd, PollInterval: 100 * time.Millisecond, Timeout: 5 * time.Second}},
		Targets: []*runner.Target{{Name: "lab", Plugin: injName, Impl: inj, Desc: id, Host: "lab-1", TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 8, CloseSignals: true},
	}, impl
}

// shellSignal is the signal a Unix shell technique raises in Datadog,
// with the marked command line among its samples.
func shellSignal(at time.Time, marker string) ddfake.Signal {
	return taggedSignal(at, marker, "technique:t1059.004-unix-shell")
}

func taggedSignal(at time.Time, marker, technique string) ddfake.Signal {
	return ddfake.Signal{
		Timestamp: at, RuleID: "abc-she-ll1", RuleName: "Shell spawned with a suspicious command line", RuleType: "Workload Security",
		Host: "lab-1", Tags: []string{"security:attack", technique, "tactic:ta0002-execution", technique},
		Samples: []map[string]any{{"process": map[string]any{"args": []any{"-c", "true " + marker}, "executable": map[string]any{"path": "/bin/sh"}}}},
	}
}

func TestEngineEndToEnd(t *testing.T) {
	t.Run("signals after a delay are detected with their latency", func(t *testing.T) {
		t.Parallel()
		srv := newFake(t, ddfake.Options{})
		delays := map[string]time.Duration{"fast": 300 * time.Millisecond, "slow": 900 * time.Millisecond, "twin-a": 500 * time.Millisecond, "twin-b": 500 * time.Millisecond}
		var mu sync.Mutex
		signalOf := map[string]string{}
		inj := &fakeInjector{onInject: func(req plugin.InjectRequest, started time.Time) {
			// A decoy of the same technique from another run comes first:
			// it must never be credited to this one.
			srv.AddSignal(shellSignal(started.Add(100*time.Millisecond), "vigil-ffffffffffff"))
			if d, ok := delays[req.TestID]; ok {
				tag := "technique:t1059.004-unix-shell"
				if req.TestID == "slow" {
					// A rule tagged with the parent technique covers the
					// expected sub-technique.
					tag = "technique:t1059-command-and-scripting-interpreter"
				}
				id := srv.AddSignal(taggedSignal(started.Add(d), req.Marker, tag))
				mu.Lock()
				signalOf[req.TestID] = id
				mu.Unlock()
			}
		}}
		eng, _ := engine(t, srv, "close_signals = true\nquery = \"security:attack\"", inj, "fakeinj")
		rs := plugintest.RunEngine(t, eng,
			e2eTest(t, "fast", "T1059.004", "fakeinj", 5*time.Second),
			e2eTest(t, "slow", "T1059.004", "fakeinj", 5*time.Second),
			e2eTest(t, "twin-a", "T1059.004", "fakeinj", 5*time.Second),
			e2eTest(t, "twin-b", "T1059.004", "fakeinj", 5*time.Second),
			e2eTest(t, "silent", "T1059.004", "fakeinj", 1500*time.Millisecond),
		)
		for id, d := range delays {
			r := rs[id]
			if r.Status != measure.Detected {
				t.Errorf("%s: %s (%s), want detected", id, r.Status, r.Error)
				continue
			}
			if r.LatencyMS == nil || *r.LatencyMS != d.Milliseconds() {
				t.Errorf("%s: latency_ms %v, want exactly %d (signal timestamp - injection)", id, r.LatencyMS, d.Milliseconds())
			}
			if r.ObservedLatencyMS == nil || *r.ObservedLatencyMS < d.Milliseconds() || *r.ObservedLatencyMS > d.Milliseconds()+5000 {
				t.Errorf("%s: observed_latency_ms %v", id, r.ObservedLatencyMS)
			}
			// the signal's own field: its sample's process.args
			if r.Correlation != "marker:process.args" || len(r.Signals) != 1 || r.Signals[0].ID != signalOf[id] {
				t.Errorf("%s: correlation %q signals %+v, want its own signal %s", id, r.Correlation, r.Signals, signalOf[id])
			}
			if r.Signals[0].Rule != "Shell spawned with a suspicious command line" || r.Signals[0].RuleID != "abc-she-ll1" {
				t.Errorf("%s: signal %+v", id, r.Signals[0])
			}
		}
		if r := rs["silent"]; r.Status != measure.Missed {
			t.Errorf("silent: %s (%s), want missed", r.Status, r.Error)
		}
		// The matched signals, and only they, are archived.
		archived := srv.Archived()
		if len(archived) != len(delays) {
			t.Errorf("%d signals archived, want %d: %v", len(archived), len(delays), archived)
		}
		for id, sig := range signalOf {
			if archived[sig] != "testing_or_maintenance" {
				t.Errorf("%s: signal %s not archived (%v)", id, sig, archived)
			}
		}
		// One batched search per poll: its first page, plus the empty page
		// that ends it when it found signals, whatever the number of tests;
		// and one more request that read Datadog's clock at the start.
		searches, polls, _ := eng.Searches("datadog")
		if got := srv.Count(http.MethodPost, ddfake.PathSignalsSearch); int64(got) != searches+1 || searches > 2*polls || polls == 0 {
			t.Errorf("%d search requests, %d Search calls, %d polls", got, searches, polls)
		}
	})

	t.Run("a 429 storm slows polling and loses nothing", func(t *testing.T) {
		t.Parallel()
		srv := newFake(t, ddfake.Options{})
		const storm = 5
		var n atomic.Int32
		srv.SetFault(func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path != ddfake.PathSignalsSearch || n.Add(1) > storm {
				return nil
			}
			return &ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`,
				Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}}}
		})
		inj := &fakeInjector{onInject: func(req plugin.InjectRequest, started time.Time) {
			srv.AddSignal(shellSignal(started.Add(300*time.Millisecond), req.Marker))
		}}
		eng, impl := engine(t, srv, "max_retries = 3", inj, "fakeinj")
		rs := plugintest.RunEngine(t, eng,
			e2eTest(t, "a", "T1059.004", "fakeinj", 15*time.Second),
			e2eTest(t, "b", "T1059.004", "fakeinj", 15*time.Second),
			e2eTest(t, "c", "T1059.004", "fakeinj", 15*time.Second),
		)
		for id, r := range rs {
			if r.Status != measure.Detected || r.LatencyMS == nil || *r.LatencyMS != 300 {
				t.Errorf("%s: %s latency %v (%s), want detected in 300ms", id, r.Status, r.LatencyMS, r.Error)
			}
		}
		// Every 429 was waited out (X-RateLimit-Reset: 1) before the next
		// search went out.
		var searches []ddfake.Request
		for _, r := range srv.Requests() {
			if r.Path == ddfake.PathSignalsSearch {
				searches = append(searches, r)
			}
		}
		if len(searches) <= storm {
			t.Fatalf("%d searches", len(searches))
		}
		for i := 0; i < storm; i++ {
			if gap := searches[i+1].At.Sub(searches[i].At); gap < time.Second {
				t.Errorf("search %d went out %s after a 429 that asked for 1s", i+1, gap)
			}
		}
		stats, _ := impl.Stats(context.Background())
		if stats["rate_limited"] != storm || stats["throttled_ms"] < (storm-1)*1000 {
			t.Errorf("stats %v: want %d 429s waited out", stats, storm)
		}
	})

	t.Run("a persistent 500 is an error, never a miss", func(t *testing.T) {
		t.Parallel()
		srv := newFake(t, ddfake.Options{})
		srv.SetFault(func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path == ddfake.PathSignalsSearch {
				return &ddfake.Answer{Status: 500, Body: `{"errors":["Internal Server Error"]}`}
			}
			return nil
		})
		inj := &fakeInjector{onInject: func(req plugin.InjectRequest, started time.Time) {
			srv.AddSignal(shellSignal(started.Add(100*time.Millisecond), req.Marker))
		}}
		eng, _ := engine(t, srv, "max_retries = 1", inj, "fakeinj")
		rs := plugintest.RunEngine(t, eng, e2eTest(t, "broken", "T1059.004", "fakeinj", 500*time.Millisecond))
		r := rs["broken"]
		if r.Status != measure.Error || !strings.Contains(r.Error, "datadog: search signals: giving up after") || !strings.Contains(r.Error, "500 Internal Server Error") {
			t.Fatalf("status %s error %q, want an error naming the call", r.Status, r.Error)
		}
		if strings.Contains(r.Error, testAPIKey) || strings.Contains(r.Error, testAppKey) {
			t.Fatalf("error leaks a key: %s", r.Error)
		}
	})

	t.Run("replay, ingest, detect, search", func(t *testing.T) {
		t.Parallel()
		hq, err := fs.Sub(rules.Sigma, rules.SigmaHQRoot)
		if err != nil {
			t.Fatal(err)
		}
		set, err := detect.LoadWithOptions(hq, detect.Options{LinkBase: detect.SigmaHQLinkBase})
		if err != nil {
			t.Fatal(err)
		}
		const delay = 400 * time.Millisecond
		srv := newFake(t, ddfake.Options{Detect: detect.NewEngine(set.Rules), SignalDelay: delay, Rules: ddfake.RulesFromSigma(set.Rules)})

		// A recording of a crontab listing, in the replay injector's format.
		dir := t.TempDir()
		const rec = `{"vigil_recording":1,"test_id":"dd-crontab-list","marker":"vigil-0123456789ab","host":"recordhost","recorded_at":"2026-08-20T10:05:00Z"}
{"time":"2026-08-20T10:00:00.25Z","host":"recordhost","logsource":{"product":"linux","category":"process_creation"},"fields":{"Image":"/usr/bin/crontab","CommandLine":"crontab -l","ParentCommandLine":"/bin/sh -c crontab -l; true vigil-0123456789ab"},"ancestry":["crontab -l","/bin/sh -c crontab -l; true vigil-0123456789ab"]}
{"time":"2026-08-20T10:00:00.75Z","host":"recordhost","logsource":{"product":"linux","category":"process_creation"},"fields":{"Image":"/usr/bin/id","CommandLine":"id -u"},"ancestry":["id -u","/bin/sh -c id -u; true vigil-0123456789ab"]}
`
		if err := os.WriteFile(filepath.Join(dir, "dd-crontab-list.jsonl"), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
		inj := new(replay.Injector)
		if err := inj.Configure(context.Background(), []byte(fmt.Sprintf("dir = %q", dir))); err != nil {
			t.Fatal(err)
		}
		eng, _ := engine(t, srv, "close_signals = true", inj, replay.Name)
		rs := plugintest.RunEngine(t, eng,
			e2eTest(t, "dd-crontab-list", "T1007", replay.Name, 10*time.Second),
			e2eTest(t, "dd-crontab-list-missing", "T1007", replay.Name, time.Second),
		)
		r := rs["dd-crontab-list"]
		if r.Status != measure.Detected {
			t.Fatalf("status %s (%s), want detected", r.Status, r.Error)
		}
		// The signal is stamped 400ms after the event, to the millisecond.
		if r.LatencyMS == nil || *r.LatencyMS > delay.Milliseconds() || *r.LatencyMS < delay.Milliseconds()-1 {
			t.Errorf("latency_ms %v, want %d", r.LatencyMS, delay.Milliseconds())
		}
		if len(r.Signals) != 1 || r.Signals[0].Rule != "Crontab Enumeration" || r.Signals[0].RuleID != "403ed92c-b7ec-4edd-9947-5b535ee12d46" {
			t.Errorf("signals %+v", r.Signals)
		}
		if !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("correlation %q", r.Correlation)
		}
		if r.IngestLatencyMS != nil {
			t.Errorf("ingest_latency_ms %d: Datadog does not say when it received a log, so nothing measures it", *r.IngestLatencyMS)
		}
		if srv.Logs() != 2 || len(srv.Archived()) != 1 || srv.Archived()[r.Signals[0].ID] != "testing_or_maintenance" {
			t.Errorf("%d logs ingested, archived %v", srv.Logs(), srv.Archived())
		}
		// A test without a recording is an error, not a miss.
		if m := rs["dd-crontab-list-missing"]; m.Status != measure.Error || !strings.Contains(m.Error, "no recording") {
			t.Errorf("missing recording: %s (%s)", m.Status, m.Error)
		}
	})
}

// The whole built-in Linux pack through the real engine: every test's
// injection makes the fake Datadog raise, after a per-test delay, the
// signal its expectations ask for (and a decoy of the same technique from
// another run). Every test is detected with its exact latency and its own
// signal, every matched signal is archived, and each poll costs the same
// few requests whatever the number of pending tests.
func TestEnginePack(t *testing.T) {
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*catalog.Test{}
	var tests []*catalog.Test
	for _, ts := range cat.Tests {
		if ts.Inject.Plugin != "exec" || ts.Safety == catalog.SafetyDestructive {
			continue
		}
		byID[ts.ID] = ts
		tests = append(tests, ts)
	}
	if len(tests) < 40 {
		t.Fatalf("%d tests in the pack", len(tests))
	}
	srv := newFake(t, ddfake.Options{})
	delayOf := func(id string) time.Duration {
		return time.Duration(200+100*(len(id)%7)) * time.Millisecond
	}
	var mu sync.Mutex
	signalsOf := map[string][]string{}
	inj := &fakeInjector{onInject: func(req plugin.InjectRequest, started time.Time) {
		ts := byID[req.TestID]
		exps := ts.Expect
		if len(exps) == 0 {
			exps = []catalog.Expectation{{Technique: ts.Technique.ID}}
		}
		for i, x := range exps {
			if x.Absent || (len(x.SIEMs) > 0 && !slices.Contains(x.SIEMs, "datadog")) {
				continue
			}
			tech := x.Technique
			if tech == "" {
				tech = ts.Technique.ID
			}
			tag := "technique:" + strings.ToLower(string(tech)) + "-vigil-pack"
			srv.AddSignal(taggedSignal(started.Add(50*time.Millisecond), "vigil-ffffffffffff", tag))
			sg := taggedSignal(started.Add(delayOf(req.TestID)), req.Marker, tag)
			sg.RuleName = fmt.Sprintf("Pack rule %s/%d", req.TestID, i)
			id := srv.AddSignal(sg)
			mu.Lock()
			signalsOf[req.TestID] = append(signalsOf[req.TestID], id)
			mu.Unlock()
		}
	}}
	// One page holds every signal of a poll: a poll is its page and the
	// empty one that ends it.
	eng, _ := engine(t, srv, "close_signals = true\npage_size = 1000", inj, "exec")
	eng.Opts.Concurrency = 16
	rs := plugintest.RunEngine(t, eng, tests...)
	if len(rs) != len(tests) {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	seen := map[string]string{}
	for id, r := range rs {
		if negative(byID[id]) {
			// A benign look-alike: no signal was raised for it.
			if r.Status != measure.Quiet {
				t.Errorf("%s: %s (%s %s), want quiet", id, r.Status, r.Error, r.Reason)
			}
			continue
		}
		if r.Status != measure.Detected {
			t.Errorf("%s: %s (%s %s), want detected", id, r.Status, r.Error, r.Reason)
			continue
		}
		if d := delayOf(id).Milliseconds(); r.LatencyMS == nil || *r.LatencyMS != d {
			t.Errorf("%s: latency_ms %v, want %d", id, r.LatencyMS, d)
		}
		if len(r.Signals) != len(signalsOf[id]) {
			t.Errorf("%s: %d signals, want %d", id, len(r.Signals), len(signalsOf[id]))
		}
		for _, sg := range r.Signals {
			if !slices.Contains(signalsOf[id], sg.ID) {
				t.Errorf("%s: credited with signal %s of another run", id, sg.ID)
			}
			if other, dup := seen[sg.ID]; dup {
				t.Errorf("signal %s credited to %s and %s", sg.ID, other, id)
			}
			seen[sg.ID] = id
		}
	}
	if archived := srv.Archived(); len(archived) != len(seen) {
		t.Errorf("%d signals archived, want %d", len(archived), len(seen))
	}
	searches, polls, _ := eng.Searches("datadog")
	if got := srv.Count(http.MethodPost, ddfake.PathSignalsSearch); int64(got) != searches+1 || searches > 2*polls {
		t.Errorf("%d search requests for %d polls (%d Search calls): want at most 2 per poll", got, polls, searches)
	}
	t.Logf("%d tests: %d polls, %d signal searches", len(tests), polls, searches)
}

// negative reports whether every expectation of ts is absent: a benign
// look-alike of the pack, which must stay quiet.
func negative(ts *catalog.Test) bool {
	if ts == nil || len(ts.Expect) == 0 {
		return false
	}
	for _, e := range ts.Expect {
		if !e.Absent {
			return false
		}
	}
	return true
}

// sigmaEngine loads the rules the local SIEM loads by default: vigil's own
// (every file must load), then SigmaHQ's, the first of a duplicate id
// winning.
func sigmaEngine(t *testing.T) []*detect.Rule {
	t.Helper()
	own, err := detect.Load(rules.Sigma, rules.SigmaOwnRoots...)
	if err != nil || len(own.Problems) > 0 {
		t.Fatalf("vigil's rules: %v %v", err, own.Problems)
	}
	hq, err := fs.Sub(rules.Sigma, rules.SigmaHQRoot)
	if err != nil {
		t.Fatal(err)
	}
	set, err := detect.LoadWithOptions(hq, detect.Options{LinkBase: detect.SigmaHQLinkBase})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []*detect.Rule
	for _, r := range append(own.Rules, set.Rules...) {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// recordingSpan returns how long the shipped recording of a test lasts.
func recordingSpan(t *testing.T, testID string) time.Duration {
	t.Helper()
	b, err := fs.ReadFile(rules.Telemetry, rules.TelemetryRoot+"/"+testID+telemetry.Ext)
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			continue // the header
		}
		var ev struct{ Time time.Time }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%s: %v", testID, err)
		}
		if first.IsZero() || ev.Time.Before(first) {
			first = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	return last.Sub(first)
}

// The whole Linux pack replayed from its shipped recordings through the
// logs intake: the fake Datadog runs the ingested logs through the same
// Sigma rules as the local SIEM and raises each signal 300ms after its
// event. Every test is detected, its latency is the delay plus where the
// detected event sits in its recording, the raw logs are found by marker,
// every matched signal is archived, and no signal counts twice.
func TestEnginePackReplay(t *testing.T) {
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	var tests []*catalog.Test
	byID := map[string]*catalog.Test{}
	for _, ts := range cat.Tests {
		// The Linux pack: the replay injector stands in for the exec target.
		if ts.Safety != catalog.SafetyDestructive && ts.Inject.Plugin == "exec" {
			tests = append(tests, ts)
			byID[ts.ID] = ts
		}
	}
	const delay = 300 * time.Millisecond
	sigma := sigmaEngine(t)
	srv := newFake(t, ddfake.Options{Detect: detect.NewEngine(sigma), SignalDelay: delay, Rules: ddfake.RulesFromSigma(sigma)})
	// One page holds every signal of a poll: a poll is its page and the
	// empty one that ends it.
	eng, _ := engine(t, srv, "close_signals = true\npage_size = 1000", new(replay.Injector), "exec")
	eng.Opts.Concurrency = 16
	rs := plugintest.RunEngine(t, eng, tests...)
	if len(rs) != len(tests) || len(tests) < 40 {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	credited := map[string]string{}
	for id, r := range rs {
		if negative(byID[id]) {
			// A benign look-alike: the same Sigma rules raise nothing on
			// its replayed logs.
			if r.Status != measure.Quiet {
				t.Errorf("%s: %s (%s%s), want quiet", id, r.Status, r.Error, r.Reason)
			}
			continue
		}
		if r.Status != measure.Detected {
			t.Errorf("%s: %s (%s%s), want detected", id, r.Status, r.Error, r.Reason)
			continue
		}
		lo, hi := delay.Milliseconds()-1, (delay + recordingSpan(t, id)).Milliseconds()
		if r.LatencyMS == nil || *r.LatencyMS < lo || *r.LatencyMS > hi {
			t.Errorf("%s: latency_ms %v, want within [%d, %d]", id, r.LatencyMS, lo, hi)
		}
		if r.ObservedLatencyMS == nil || *r.ObservedLatencyMS < *r.LatencyMS {
			t.Errorf("%s: observed_latency_ms %v below latency_ms %v", id, r.ObservedLatencyMS, r.LatencyMS)
		}
		if r.IngestLatencyMS != nil {
			t.Errorf("%s: ingest_latency_ms %d: Datadog does not say when it received a log, so nothing measures it", id, *r.IngestLatencyMS)
		}
		for _, sg := range r.Signals {
			if other, dup := credited[sg.ID]; dup {
				t.Errorf("signal %s (%s) credited to %s and %s", sg.ID, sg.Rule, other, id)
			}
			credited[sg.ID] = id
		}
	}
	archived := srv.Archived()
	for sg, id := range credited {
		if archived[sg] != "testing_or_maintenance" {
			t.Errorf("%s: signal %s not archived", id, sg)
		}
	}
	searches, polls, _ := eng.Searches("datadog")
	if got := srv.Count(http.MethodPost, ddfake.PathSignalsSearch); int64(got) != searches+1 || searches > 2*polls {
		t.Errorf("%d search requests for %d polls (%d Search calls): want at most 2 per poll", got, polls, searches)
	}
	t.Logf("%d tests replayed: %d logs ingested, %d signals raised, %d polls, %d signal searches", len(tests), srv.Logs(), srv.SignalCount(), polls, searches)
}

// The AWS pack replayed from its recordings (real Stratus Red Team
// detonations) through the logs intake as CloudTrail: the fake Datadog runs
// source:cloudtrail logs through the same Sigma rules as the local SIEM, as
// Cloud SIEM's CloudTrail rules read them. Every test is detected, tied by
// its marker.
func TestEnginePackReplayAWS(t *testing.T) {
	tests := awspack.Tests(t, 10*time.Second)
	sigma := sigmaEngine(t)
	srv := newFake(t, ddfake.Options{Detect: detect.NewEngine(sigma), SignalDelay: 300 * time.Millisecond, Rules: ddfake.RulesFromSigma(sigma)})
	eng, _ := engine(t, srv, "page_size = 1000", new(replay.Injector), "aws")
	eng.Opts.Concurrency = 11
	rs := plugintest.RunEngine(t, eng, tests...)
	if len(rs) != len(tests) || len(tests) < 10 {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	for id, r := range rs {
		if r.Status != measure.Detected || !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s: %s (%s%s), correlation %q; want detected by marker", id, r.Status, r.Error, r.Reason, r.Correlation)
		}
	}
	t.Logf("%d AWS tests replayed as CloudTrail: %d logs, %d signals", len(tests), srv.Logs(), srv.SignalCount())
}

// eventInjector replays, per injection, the events its events func gives
// (vigil's recorded event shape), and remembers when each started.
type eventInjector struct {
	fakeInjector
	events func(marker string, started time.Time) [][]byte
}

func (x *eventInjector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	r, err := x.fakeInjector.Inject(ctx, req)
	if x.events != nil {
		r.Events = x.events(req.Marker, r.StartedAt)
	}
	return r, err
}

// shellEvent is a process creation of the marked shell, as vigil records
// it.
func shellEvent(marker string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"time":%q,"host":"lab-1","logsource":{"product":"linux","category":"process_creation"},"fields":{"Image":"/bin/sh","CommandLine":"/bin/sh -c true %s"},"ancestry":["/bin/sh -c true %s"]}`,
		at.Add(2*time.Millisecond).UTC().Format(time.RFC3339Nano), marker, marker))
}

// Every class of miss the Datadog plugin can give evidence for, each set
// up in the fake exactly; and the faults that make a run prove nothing end
// in an error: a replay the intake refuses or that vigil could send only
// in part, a server that drops the paging cursor.
func TestEngineDiagnoses(t *testing.T) {
	const delay = 300 * time.Millisecond
	withEvent := func(m string, at time.Time) [][]byte { return [][]byte{shellEvent(m, at)} }
	signal := func(srv *ddfake.Server, marker, tag string, at time.Time) {
		sg := taggedSignal(at, marker, tag)
		srv.AddSignal(sg)
	}
	cases := []struct {
		name   string
		opts   ddfake.Options
		extra  string
		events func(string, time.Time) [][]byte
		signal func(srv *ddfake.Server, marker string, started time.Time)
		fault  ddfake.Fault
		status measure.Status
		class  measure.DiagnosisClass
		says   string
	}{
		{name: "telemetry, no alert", events: withEvent, status: measure.Missed, class: measure.TelemetryNoAlert,
			says: `1 event(s) carrying the marker arrived (linux; the first stamped`},
		{name: "no telemetry", status: measure.Missed, class: measure.NoTelemetry, says: `no event carrying the marker reached siem "datadog"`},
		{name: "signal for another technique", events: withEvent, signal: func(srv *ddfake.Server, m string, at time.Time) {
			signal(srv, m, "technique:t1003-os-credential-dumping", at.Add(delay))
		}, status: measure.Missed, class: measure.AlertWrongTechnique,
			says: `rule "Shell spawned with a suspicious command line" (abc-she-ll1) [T1003], not for T1059.004`},
		{name: "signal without the marker", events: withEvent, signal: func(srv *ddfake.Server, m string, at time.Time) {
			signal(srv, "no-run-marker", "technique:t1059.004-unix-shell", at.Add(delay))
		}, status: measure.Missed, class: measure.AlertWithoutMarker, says: "on host lab-1 inside the window (300ms after the injection) without the marker"},
		{name: "signal stamped 30s early, clock in sync", events: withEvent, signal: func(srv *ddfake.Server, m string, at time.Time) {
			signal(srv, m, "technique:t1059.004-unix-shell", at.Add(delay-30*time.Second))
		}, status: measure.Missed, class: measure.AlertOutsideWindow, says: "stamped 29.7s before the injection"},
		{name: "clock 30s behind, measured", opts: ddfake.Options{ClockSkew: -30 * time.Second}, events: withEvent,
			signal: func(srv *ddfake.Server, m string, at time.Time) {
				signal(srv, m, "technique:t1059.004-unix-shell", at.Add(delay-30*time.Second))
			}, status: measure.Detected},
		{name: "replay sent in part", events: func(m string, at time.Time) [][]byte {
			return [][]byte{shellEvent(m, at), []byte(`not json`)}
		}, status: measure.Error, says: `siem "datadog" rejected 1 of the 2 replayed events (1 accepted): events[1]`},
		{name: "replay refused by the intake", events: withEvent, fault: func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path == ddfake.PathIntake {
				return &ddfake.Answer{Status: http.StatusBadRequest, Body: `{"errors":[{"status":"400","title":"Bad Request","detail":"invalid log entry"}]}`}
			}
			return nil
		}, status: measure.Error, says: `siem "datadog": ingest: datadog: submit logs: 400 Bad Request`},
		{name: "paging cursor ignored", opts: ddfake.Options{IgnoreCursor: true}, extra: "page_size = 1", events: withEvent,
			signal: func(srv *ddfake.Server, m string, at time.Time) {
				signal(srv, m, "technique:t1059.004-unix-shell", at.Add(delay))
				signal(srv, "vigil-ffffffffffff", "technique:t1059.004-unix-shell", at.Add(delay))
			}, status: measure.Error, says: "returned the page token it was given"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFake(t, tc.opts)
			if tc.fault != nil {
				srv.SetFault(tc.fault)
			}
			inj := &eventInjector{events: tc.events}
			inj.onInject = func(req plugin.InjectRequest, started time.Time) {
				if tc.signal != nil {
					tc.signal(srv, req.Marker, started)
				}
			}
			eng, _ := engine(t, srv, tc.extra, inj, "fakeinj")
			eng.SIEMs[0].ClockSlack = time.Minute
			r := plugintest.RunEngine(t, eng, e2eTest(t, "x", "T1059.004", "fakeinj", time.Second))["x"]
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
				if r.LatencyMS == nil || r.ClockOffsetMS == nil || *r.LatencyMS < 0 || *r.LatencyMS > delay.Milliseconds()+1000 ||
					*r.ClockOffsetMS > -29000 || *r.ClockOffsetMS < -31000 {
					t.Errorf("latency_ms %v clock_offset_ms %v: want about %d and -30000 (+/- the Date header's second)", deref(r.LatencyMS), deref(r.ClockOffsetMS), delay.Milliseconds())
				}
			default:
				if r.Diagnosis == nil || r.Diagnosis.Class != tc.class || !strings.Contains(r.Diagnosis.Summary, tc.says) {
					t.Errorf("diagnosis %+v\nwant %s saying %q", r.Diagnosis, tc.class, tc.says)
				}
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A Datadog that keeps failing ends every test by its deadline plus one
// poll interval, whatever the plugin's retries are doing; a refused key
// or permission ends them at once and is not asked again.
func TestEngineSearchFaults(t *testing.T) {
	const within = time.Second
	always := func(a ddfake.Answer) ddfake.Fault {
		return func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path == ddfake.PathSignalsSearch {
				return &a
			}
			return nil
		}
	}
	cases := []struct {
		name  string
		extra string
		fault ddfake.Fault
		says  string
		// by bounds the run's wall time.
		by time.Duration
		// searches bounds the signals searches the fake saw, when > 0.
		searches int
	}{
		{name: "persistent 500", extra: "max_retries = 6",
			fault: always(ddfake.Answer{Status: 500, Body: `{"errors":["Internal Server Error"]}`}),
			says:  "500 Internal Server Error", by: within + time.Second},
		{name: "no answer", extra: "timeout = \"5s\"\nmax_retries = 6",
			fault: always(ddfake.Answer{Delay: time.Minute}),
			says:  "no answer", by: within + time.Second},
		{name: "429 beyond max_wait", extra: "max_wait = \"1m\"",
			fault: always(ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`, Header: http.Header{"X-Ratelimit-Reset": {"50"}}}),
			says:  "429 Too Many Requests", by: within + time.Second},
		{name: "403 missing permission",
			fault: always(ddfake.Answer{Status: 403, Body: `{"errors":["Forbidden"]}`}),
			says:  "needs the permission security_monitoring_signals_read", by: within / 2, searches: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFake(t, ddfake.Options{})
			srv.SetFault(tc.fault)
			eng, _ := engine(t, srv, tc.extra, &eventInjector{}, "fakeinj")
			var tests []*catalog.Test
			for _, id := range []string{"a", "b", "c"} {
				tests = append(tests, e2eTest(t, id, "T1059.004", "fakeinj", within))
			}
			start := time.Now()
			rs := plugintest.RunEngine(t, eng, tests...)
			took := time.Since(start)
			for id, r := range rs {
				if r.Status != measure.Error || !strings.Contains(r.Error, tc.says) {
					t.Errorf("%s: status %s error %q, want an error saying %q", id, r.Status, r.Error, tc.says)
				}
				if strings.Contains(r.Error, testAPIKey) || strings.Contains(r.Error, testAppKey) {
					t.Errorf("%s: the error shows a key: %s", id, r.Error)
				}
			}
			if took > tc.by {
				t.Errorf("the tests ended %v after the run began, want by %v (deadline %v plus a poll interval)", took.Round(time.Millisecond), tc.by, within)
			}
			if n := srv.Count(http.MethodPost, ddfake.PathSignalsSearch); tc.searches > 0 && n > tc.searches {
				t.Errorf("%d signals searches, want at most %d (the clock read and one search)", n, tc.searches)
			}
		})
	}
}

// Datadog does not say when it received a log: the plan says that
// ingest_latency_ms is not measured, rather than report the log's own
// time (which vigil stamps on a replay) as its arrival.
func TestIngestLatencyNotMeasured(t *testing.T) {
	eng, _ := engine(t, newFake(t, ddfake.Options{}), "", &eventInjector{}, "fakeinj")
	plan, err := eng.Plan([]*catalog.Test{e2eTest(t, "a", "T1059.004", "fakeinj", time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	want := `siem "datadog": ingest_latency_ms is not measured: its plugin cannot tell when the SIEM received an event`
	if !slices.Contains(plan.Notes, want) {
		t.Errorf("plan notes %q lack %q", plan.Notes, want)
	}
}
