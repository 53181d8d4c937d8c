package elastic

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/internal/elasticfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// replayInjector is an in-process injector that performs nothing: it
// returns one telemetry event carrying the run marker in its command line,
// for the engine to ingest into the SIEM, and remembers when each
// injection started.
type replayInjector struct {
	sdk.InjectorBase
	mu      sync.Mutex
	started map[string]time.Time // by marker
	// noEvents makes injections produce no telemetry at all.
	noEvents bool
}

func (x *replayInjector) Describe(context.Context) (plugin.Description, error) {
	// The replay injector's locations: the replayed events carry the
	// marker in vigil.marker too.
	return plugin.Description{Name: "replaytest", Kind: plugin.KindInjector, Platforms: []string{"linux"},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerLogField}}, nil
}

func (x *replayInjector) Configure(context.Context, []byte) error { return nil }

func (x *replayInjector) Inject(_ context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	start := time.Now().UTC().Truncate(time.Millisecond)
	x.mu.Lock()
	x.started[req.Marker] = start
	x.mu.Unlock()
	ev := fmt.Sprintf(`{"@timestamp":%q,"host":{"name":%q},"process":{"name":"bash","command_line":"bash -c 'echo %s'"},"event":{"category":["process"],"type":["start"]}}`,
		start.Format(time.RFC3339Nano), testHost, req.Marker)
	res := plugin.InjectResult{StartedAt: start, EndedAt: start.Add(5 * time.Millisecond), Outcome: plugin.OutcomeSucceeded,
		Host: testHost, MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerLogField}, Events: [][]byte{[]byte(ev)}}
	if x.noEvents {
		res.Events = nil
	}
	return res, nil
}

func (x *replayInjector) Cleanup(context.Context, plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

// detectionRule makes the fake raise, for each ingested event whose marker
// is in markers, an 8.x alert stamped delay after the injection start and
// searchable from then on (a rule run later writes it).
func detectionRule(t *testing.T, f *elasticfake.Fake, inj *replayInjector, delay time.Duration, only func(marker string) bool, extra map[string]any) {
	f.SetOnIngest(func(docs []map[string]any) {
		for _, d := range docs {
			marker := first(d, MarkerField)
			if only != nil && !only(marker) {
				continue
			}
			inj.mu.Lock()
			start := inj.started[marker]
			inj.mu.Unlock()
			at := start.Add(delay)
			id := "alert-" + marker
			doc := alert8x(t, id, at, marker)
			if extra != nil {
				doc = withFields(t, doc, extra)
			}
			f.Add(".alerts-security.alerts-default", id, doc, at)
		}
	})
}

// e2eEngine wires the runner to the plugin (over gRPC, against the fake)
// and the in-process injector.
func e2eEngine(t *testing.T, f *elasticfake.Fake, inj *replayInjector) *runner.Engine {
	t.Helper()
	ctx := context.Background()
	siem, _ := configured(t, f, esConfig(f, true))
	sd, err := siem.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := inj.Describe(ctx)
	return &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "elastic", Plugin: Name, Impl: siem, Desc: sd, PollInterval: 100 * time.Millisecond, Timeout: 3 * time.Second}},
		Targets: []*runner.Target{{Name: "lab", Plugin: "replaytest", Impl: inj, Desc: id, Host: testHost, TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 4, CloseSignals: true},
	}
}

func e2eTest(t *testing.T, id string, within time.Duration) *catalog.Test {
	t.Helper()
	tech, err := attack.Lookup("T1059.004")
	if err != nil {
		t.Fatal(err)
	}
	return &catalog.Test{ID: id, Name: id, Technique: tech, Tactics: tech.Tactics, Safety: catalog.SafetySafe, Timeout: 5 * time.Second,
		Inject: catalog.Step{Plugin: "replaytest", Params: map[string]any{}}, Expect: []catalog.Expectation{{Within: within}}}
}

// End to end through runner.Engine: replayed telemetry is ingested through
// the bulk API, a rule raises an alert after a delay, the watcher finds it
// in one batched search per poll and measures the latency from the alert's
// own timestamp; the matched alert is closed; failures of the SIEM are
// errors, never misses.
func TestEndToEnd(t *testing.T) {
	const delay = 700 * time.Millisecond
	const searchPath = "POST /.alerts-security.alerts-default/_search"
	t.Run("the correlation names the field that held the marker", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t)
		inj := &replayInjector{started: map[string]time.Time{}}
		f.SetOnIngest(func(docs []map[string]any) {
			for _, d := range docs {
				marker := first(d, MarkerField)
				inj.mu.Lock()
				at := inj.started[marker].Add(delay)
				inj.mu.Unlock()
				// A rule whose alert keeps the marker only in vigil.marker
				// (copied from the event), not in the command line.
				doc := withFields(t, alert8x(t, "alert-"+marker, at, marker), map[string]any{
					"process": map[string]any{"name": "bash", "command_line": "bash -c id"},
					"vigil":   map[string]any{"marker": marker},
				})
				f.Add(".alerts-security.alerts-default", "alert-"+marker, doc, at)
			}
		})
		r := plugintest.RunEngine(t, e2eEngine(t, f, inj), e2eTest(t, "shell", 3*time.Second))["shell"]
		if r.Status != measure.Detected || r.Correlation != "marker:"+MarkerField {
			t.Errorf("status %s correlation %q, want detected by marker:%s", r.Status, r.Correlation, MarkerField)
		}
	})
	t.Run("without event.ingested the ingest latency is not measured", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t) // the built-in logs-*-* template: no pipeline stamps it
		inj := &replayInjector{started: map[string]time.Time{}}
		detectionRule(t, f, inj, delay, nil, nil)
		r := plugintest.RunEngine(t, e2eEngine(t, f, inj), e2eTest(t, "shell", 3*time.Second))["shell"]
		if r.Status != measure.Detected || r.IngestLatencyMS != nil {
			t.Errorf("status %s ingest_latency_ms %v: want detected, and no ingest latency from the event's own time", r.Status, r.IngestLatencyMS)
		}
	})
	t.Run("detected with the alert's latency, closed, one search per poll", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t)
		f.SetStampIngested(true)
		inj := &replayInjector{started: map[string]time.Time{}}
		detectionRule(t, f, inj, delay, nil, nil)
		eng := e2eEngine(t, f, inj)
		start := time.Now()
		rs := plugintest.RunEngine(t, eng, e2eTest(t, "shell", 3*time.Second))
		r := rs["shell"]
		if r.Status != measure.Detected {
			t.Fatalf("status %s (error %q, reason %q), want detected", r.Status, r.Error, r.Reason)
		}
		if r.LatencyMS == nil || *r.LatencyMS != delay.Milliseconds() {
			t.Errorf("latency_ms = %v, want exactly %d (alert @timestamp - injection start)", r.LatencyMS, delay.Milliseconds())
		}
		if r.ObservedLatencyMS == nil || *r.ObservedLatencyMS < delay.Milliseconds() {
			t.Errorf("observed_latency_ms = %v, want >= %d", r.ObservedLatencyMS, delay.Milliseconds())
		}
		if r.Correlation != "marker:process.command_line" || len(r.Signals) != 1 || r.Signals[0].Rule != "Unix Shell Execution With Run Marker" {
			t.Errorf("correlation %q signals %+v", r.Correlation, r.Signals)
		}
		// event.ingested, the server's time of indexing, is within the run.
		if r.IngestLatencyMS == nil || *r.IngestLatencyMS < 0 || *r.IngestLatencyMS > time.Since(start).Milliseconds() {
			t.Errorf("ingest_latency_ms = %v, want event.ingested minus the injection", r.IngestLatencyMS)
		}
		if st := first(f.Doc(".alerts-security.alerts-default", r.Signals[0].ID), "kibana.alert.workflow_status"); st != "closed" {
			t.Errorf("matched alert status %q, want closed", st)
		}
		searches, polls, _ := eng.Searches("elastic")
		if searches != polls || polls == 0 || int64(len(f.Requests(searchPath))) != searches {
			t.Errorf("searches %d, polls %d, server saw %d: want one search per poll", searches, polls, len(f.Requests(searchPath)))
		}
	})
	t.Run("429 retried, no lost result", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t)
		inj := &replayInjector{started: map[string]time.Time{}}
		detectionRule(t, f, inj, delay, nil, nil)
		eng := e2eEngine(t, f, inj)
		// More 429s than one call retries: the first poll fails, the
		// watcher backs off and the next one gets through.
		f.Fail(searchPath, 2*(1+MaxRetries), 429, elasticfake.RejectedBody)
		rs := plugintest.RunEngine(t, eng, e2eTest(t, "shell", 4*time.Second))
		if r := rs["shell"]; r.Status != measure.Detected || r.LatencyMS == nil || *r.LatencyMS != delay.Milliseconds() {
			t.Fatalf("status %s latency %v (error %q), want detected at %d ms", r.Status, r.LatencyMS, r.Error, delay.Milliseconds())
		}
		if n := len(f.Requests(searchPath)); n <= 2*(1+MaxRetries) {
			t.Errorf("%d searches: the 429s were not all answered before detection?", n)
		}
	})
	t.Run("persistent 500 is an error, not a miss", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t)
		inj := &replayInjector{started: map[string]time.Time{}}
		detectionRule(t, f, inj, delay, nil, nil)
		eng := e2eEngine(t, f, inj)
		f.Fail(searchPath, -1, 500, elasticfake.InternalErrorBody)
		rs := plugintest.RunEngine(t, eng, e2eTest(t, "shell", time.Second))
		r := rs["shell"]
		if r.Status != measure.Error || !strings.Contains(r.Error, "elastic: search alerts: HTTP 500 Internal Server Error: null_pointer_exception") {
			t.Fatalf("status %s error %q, want an error naming the 500", r.Status, r.Error)
		}
	})
	t.Run("missed: building-block alert and another run's alert do not count", func(t *testing.T) {
		t.Parallel()
		f := elasticfake.New(t)
		inj := &replayInjector{started: map[string]time.Time{}}
		var mu sync.Mutex
		seen := 0
		// Only the first ingested marker raises an alert: the second test
		// must not be credited with it (no double count).
		detectionRule(t, f, inj, delay, func(string) bool { mu.Lock(); defer mu.Unlock(); seen++; return seen == 1 }, nil)
		eng := e2eEngine(t, f, inj)
		eng.Opts.Concurrency = 1
		rs := plugintest.RunEngine(t, eng, e2eTest(t, "first", 1500*time.Millisecond), e2eTest(t, "second", 1500*time.Millisecond))
		if rs["first"].Status != measure.Detected || rs["second"].Status != measure.Missed {
			t.Errorf("first %s, second %s (%q): want detected then missed", rs["first"].Status, rs["second"].Status, rs["second"].Error)
		}

		f2 := elasticfake.New(t)
		inj2 := &replayInjector{started: map[string]time.Time{}}
		detectionRule(t, f2, inj2, delay, nil, map[string]any{"kibana.alert.building_block_type": "default"})
		rs = plugintest.RunEngine(t, e2eEngine(t, f2, inj2), e2eTest(t, "bb", 1500*time.Millisecond))
		if r := rs["bb"]; r.Status != measure.Missed {
			t.Errorf("building-block only: status %s (%q), want missed", r.Status, r.Error)
		}
	})
}

// Every class of miss the Elastic plugin can give evidence for, each set
// up in the fake exactly; and the faults that make a run prove nothing end
// in an error: a replay the bulk API rejects in part, a server that drops
// the paging cursor.
func TestEndToEndDiagnoses(t *testing.T) {
	const delay = 400 * time.Millisecond
	// alertRule raises, for each ingested marker, an alert stamped at
	// (start + delay + shift) whose marker fields hold mark(marker).
	alertRule := func(f *elasticfake.Fake, inj *replayInjector, shift time.Duration, mark func(string) string) {
		f.SetOnIngest(func(docs []map[string]any) {
			for _, d := range docs {
				marker := first(d, MarkerField)
				inj.mu.Lock()
				at := inj.started[marker].Add(delay + shift)
				inj.mu.Unlock()
				f.Add(".alerts-security.alerts-default", "alert-"+marker, alert8x(t, "alert-"+marker, at, mark(marker)), at)
			}
		})
	}
	same := func(m string) string { return m }
	withTech := func(tech string) *catalog.Test {
		ts := e2eTest(t, "x", time.Second)
		ts.Expect[0].Technique = attack.TechniqueID(tech)
		return ts
	}
	cases := []struct {
		name   string
		setup  func(f *elasticfake.Fake, inj *replayInjector)
		test   *catalog.Test
		status measure.Status
		class  measure.DiagnosisClass
		says   string
	}{
		{name: "telemetry, no alert", test: e2eTest(t, "x", time.Second), status: measure.Missed, class: measure.TelemetryNoAlert,
			says: `1 event(s) carrying the marker arrived`},
		{name: "no telemetry", setup: func(f *elasticfake.Fake, inj *replayInjector) { inj.noEvents = true },
			test: e2eTest(t, "x", time.Second), status: measure.Missed, class: measure.NoTelemetry, says: `no event carrying the marker reached siem "elastic"`},
		{name: "alert for another technique", setup: func(f *elasticfake.Fake, inj *replayInjector) { alertRule(f, inj, 0, same) },
			test: withTech("T1003.008"), status: measure.Missed, class: measure.AlertWrongTechnique,
			says: `rule "Unix Shell Execution With Run Marker" (7f3c1d2e-vigil-test-rule-0001) [T1059.004], not for T1003.008`},
		{name: "alert without the marker", setup: func(f *elasticfake.Fake, inj *replayInjector) {
			alertRule(f, inj, 0, func(string) string { return "no-run-marker" })
		}, test: e2eTest(t, "x", time.Second), status: measure.Missed, class: measure.AlertWithoutMarker, says: "on host vigil-lab-01 inside the window (400ms after the injection) without the marker"},
		{name: "clock 30s behind, not measurable", setup: func(f *elasticfake.Fake, inj *replayInjector) {
			alertRule(f, inj, -30*time.Second, same)
			f.Fail("_simulate", -1, 403, `{"error":{"type":"security_exception","reason":"action [cluster:admin/ingest/pipeline/simulate] is unauthorized"},"status":403}`)
		}, test: e2eTest(t, "x", time.Second), status: measure.Missed, class: measure.AlertOutsideWindow, says: "stamped 29.6s before the injection"},
		{name: "clock 30s behind, measured", setup: func(f *elasticfake.Fake, inj *replayInjector) {
			alertRule(f, inj, -30*time.Second, same)
			f.SetClockSkew(-30 * time.Second)
		}, test: e2eTest(t, "x", time.Second), status: measure.Detected},
		{name: "replay rejected in part", setup: func(f *elasticfake.Fake, inj *replayInjector) {
			f.SetItemFail(func(map[string]any, int) (int, string, string) {
				return 400, "mapper_parsing_exception", "failed to parse field [process.pid] of type [long]"
			})
		}, test: e2eTest(t, "x", time.Second), status: measure.Error, says: `siem "elastic" rejected 1 of the 1 replayed events (0 accepted)`},
		{name: "paging cursor ignored", setup: func(f *elasticfake.Fake, inj *replayInjector) {
			alertRule(f, inj, 0, same)
			f.SetIgnoreSearchAfter(true)
			now := time.Now()
			for i := 0; i < 3; i++ {
				id := fmt.Sprintf("noise-%d", i)
				f.Add(".alerts-security.alerts-default", id, alert8x(t, id, now.Add(time.Duration(i)*time.Millisecond), "vigil-00000000000"+fmt.Sprint(i)), now)
			}
		}, test: e2eTest(t, "x", time.Second), status: measure.Error, says: "returned the page token it was given"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := elasticfake.New(t)
			inj := &replayInjector{started: map[string]time.Time{}}
			// The alerts index exists, as soon as any rule ever fired.
			old := time.Now().Add(-24 * time.Hour)
			f.Add(".alerts-security.alerts-default", "old", alert8x(t, "old", old, "vigil-0000000000ff"), old)
			if tc.setup != nil {
				tc.setup(f, inj)
			}
			cfg := esConfig(f, false)
			if tc.name == "paging cursor ignored" {
				cfg += "\npage_size = 2"
			}
			siem, _ := configured(t, f, cfg)
			sd, _ := siem.Describe(context.Background())
			id, _ := inj.Describe(context.Background())
			eng := &runner.Engine{
				SIEMs:   []*runner.SIEM{{Name: "elastic", Plugin: Name, Impl: siem, Desc: sd, PollInterval: 100 * time.Millisecond, Timeout: time.Second, ClockSlack: time.Minute}},
				Targets: []*runner.Target{{Name: "lab", Plugin: "replaytest", Impl: inj, Desc: id, Host: testHost, TmpRoot: t.TempDir()}},
			}
			r := plugintest.RunEngine(t, eng, tc.test)["x"]
			if r.Status != tc.status {
				t.Fatalf("status %s (error %q, reason %q), want %s", r.Status, r.Error, r.Reason, tc.status)
			}
			switch tc.status {
			case measure.Error:
				if !strings.Contains(r.Error, tc.says) {
					t.Errorf("error %q does not say %q", r.Error, tc.says)
				}
			case measure.Detected:
				if r.LatencyMS == nil || r.ClockOffsetMS == nil {
					t.Fatalf("latency_ms %v clock_offset_ms %v", r.LatencyMS, r.ClockOffsetMS)
				}
				// The offset read from the simulated pipeline is good to
				// the round trip: a few milliseconds here.
				if lat, off := *r.LatencyMS, *r.ClockOffsetMS; lat < delay.Milliseconds()-20 || lat > delay.Milliseconds()+20 || off > -29980 || off < -30020 {
					t.Errorf("latency_ms %d clock_offset_ms %d: want %d and -30000 (+/- 20ms)", lat, off, delay.Milliseconds())
				}
			default:
				if r.Diagnosis == nil || r.Diagnosis.Class != tc.class || !strings.Contains(r.Diagnosis.Summary, tc.says) {
					t.Errorf("diagnosis %+v\nwant %s saying %q", r.Diagnosis, tc.class, tc.says)
				}
			}
			if tc.class == measure.TelemetryNoAlert {
				if ev := r.Diagnosis.Events; ev == nil || !strings.Contains(ev.Excerpt, "bash -c 'echo vigil-") {
					t.Errorf("events evidence %+v: want the command line", ev)
				}
			}
		})
	}
}
