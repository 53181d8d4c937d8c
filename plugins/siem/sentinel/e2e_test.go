package sentinel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/internal/awspack"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/sentinelfake"
	"github.com/vigilsec/vigil/plugins/injector/replay"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
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
	start := time.Now().Truncate(time.Millisecond)
	res := plugin.InjectResult{
		StartedAt: start, EndedAt: start.Add(5 * time.Millisecond), Outcome: plugin.OutcomeSucceeded, Host: r.host,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
		Events:          [][]byte{replayEvent(start, r.host, req.Params.String("cmd")+" # "+req.Marker)},
	}
	if req.Params.String("events") == "none" {
		res.Events = nil
	}
	return res, nil
}

func (r *replayInjector) Cleanup(context.Context, plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

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

func e2eEngine(t *testing.T, f *sentinelfake.Fake, extra string, timeout time.Duration) (*runner.Engine, plugin.SIEM) {
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
		SIEMs:   []*runner.SIEM{{Name: "sentinel", Plugin: Name, Impl: s, Desc: d, PollInterval: 200 * time.Millisecond, Timeout: timeout}},
		Targets: []*runner.Target{{Name: "lab", Plugin: "replaytest", Impl: inj, Desc: id, Host: "lab-host", TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 4, CloseSignals: true},
	}, s
}

// TestEndToEnd runs the engine with the plugin against the fake: telemetry
// replayed through the Logs Ingestion API, alerts raised by the fake's
// analytics rule after 700ms, found by one query per poll whatever the
// number of tests, latency exact to the alert's TimeGenerated, incidents
// closed.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetRules([]sentinelfake.Rule{cronRule})
	eng, s := e2eEngine(t, f, "close_signals = true\n", 3*time.Second)
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
			t.Errorf("%s: latency %v, want exactly 700ms (the alert's TimeGenerated)", id, r.LatencyMS)
		}
		if !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s: correlation %q, want by marker", id, r.Correlation)
		}
		if r.IngestLatencyMS == nil {
			t.Errorf("%s: no ingest latency (raw events with ingestion_time())", id)
		}
	}
	if r := rs["quiet"]; r.Status != measure.Missed || r.Diagnosis == nil || r.Diagnosis.Class != measure.TelemetryNoAlert {
		t.Errorf("quiet: %s %+v, want missed with its telemetry found", r.Status, r.Diagnosis)
	}
	searches, polls, raw := eng.Searches("sentinel")
	var pollQueries, rawQueries int
	for _, r := range f.Requests(sentinelfake.APIQuery) {
		switch {
		case strings.HasPrefix(r.KQL, "SecurityAlert\n"):
			pollQueries++
		case strings.HasPrefix(r.KQL, "union isfuzzy=true withsource=vigil_table"):
			rawQueries++
		case strings.HasPrefix(r.KQL, "SecurityIncident\n"), r.KQL == clockKQL:
		default:
			t.Errorf("unexpected KQL %q", r.KQL)
		}
	}
	if polls == 0 || int64(pollQueries) != polls || searches != polls {
		t.Errorf("%d poll queries, %d Search calls for %d polls: want one query and one call per poll", pollQueries, searches, polls)
	}
	if rawQueries == 0 || int64(rawQueries) != raw {
		t.Errorf("%d raw-event queries for %d calls", rawQueries, raw)
	}
	closed := 0
	for _, rec := range f.Rows("SecurityIncident") {
		if rec["Status"] == "Closed" {
			closed++
		}
	}
	if closed != 2 {
		t.Errorf("%d incidents closed, want the 2 detected", closed)
	}
	st, _ := s.Stats(context.Background())
	if st["uploaded_rows"] != 3 || st["incidents_closed"] != 2 || st["signals"] != 2 {
		t.Errorf("Stats %v", st)
	}
}

// Faults that persist end the tests as errors by their deadline, never as
// misses; a refused role ends them at once.
func TestEngineSearchFaults(t *testing.T) {
	t.Parallel()
	const within = 1500 * time.Millisecond
	cases := []struct {
		name  string
		setup func(f *sentinelfake.Fake)
		says  string
		by    time.Duration
	}{
		{"partial results", func(f *sentinelfake.Fake) { f.SetPartial("Query result set has exceeded the internal data size limit") },
			"partial results (PartialError", within + time.Second},
		{"throttled", func(f *sentinelfake.Fake) {
			for range 200 {
				f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 429, RetryAfter: "120", Code: "ThrottledError", Message: "throttled"})
			}
		}, "HTTP 429 Too Many Requests (ThrottledError)", within + time.Second},
		{"403", func(f *sentinelfake.Fake) {
			for range 200 {
				f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 403, Code: "InsufficientAccessError", Message: "no access"})
			}
		}, "Microsoft Sentinel Reader or Log Analytics Reader", within / 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := sentinelfake.New(t)
			f.SetRules([]sentinelfake.Rule{cronRule})
			tc.setup(f)
			eng, _ := e2eEngine(t, f, "", within)
			eng.Opts.CloseSignals = false
			start := time.Now()
			rs := plugintest.RunEngine(t, eng, e2eTest(t, "a", "T1053.003", "crontab -l"), e2eTest(t, "b", "T1053.003", "crontab -e"))
			took := time.Since(start)
			for name, r := range rs {
				if r.Status != measure.Error || !strings.Contains(r.Error, tc.says) {
					t.Errorf("%s: %s error %q, want an error saying %q", name, r.Status, r.Error, tc.says)
				}
				noSecrets(t, name, r.Error)
			}
			if took > tc.by {
				t.Errorf("ended after %v, want by %v", took.Round(time.Millisecond), tc.by)
			}
		})
	}
}

// The AWS pack replayed from its recordings into AWSCloudTrail (the
// cloudtrail_stream): the fake's analytics rules (the local SIEM's Sigma
// rules over the table's columns) raise alerts. Every test is detected,
// tied by the marker in the user agent.
func TestEndToEndAWSPackReplay(t *testing.T) {
	t.Parallel()
	tests := awspack.Tests(t, 10*time.Second)
	f := sentinelfake.New(t)
	f.SetDetect(detect.NewEngine(awspack.Rules(t)), 500*time.Millisecond)
	s, _ := configured(t, f, "cloudtrail_stream = \""+sentinelfake.CloudTrailStream+"\"\n")
	ctx := t.Context()
	d, _ := s.Describe(ctx)
	inj := new(replay.Injector)
	id, _ := inj.Describe(ctx)
	e := &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "sentinel", Plugin: Name, Impl: s, Desc: d, PollInterval: 200 * time.Millisecond, Timeout: 5 * time.Second}},
		Targets: []*runner.Target{{Name: "replay", Plugin: "aws", Impl: inj, Desc: id, TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 11},
	}
	rs := plugintest.RunEngine(t, e, tests...)
	if len(rs) != len(tests) {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	for tid, r := range rs {
		if r.Status != measure.Detected || !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s: %s (%s%s), correlation %q; want detected by marker", tid, r.Status, r.Error, r.Reason, r.Correlation)
		}
	}
	if n := len(f.Rows("AWSCloudTrail")); n < len(tests) {
		t.Errorf("%d AWSCloudTrail rows for %d tests", n, len(tests))
	}
	if n := len(f.Rows("VigilEvents_CL")); n != 0 {
		t.Errorf("%d CloudTrail records in the custom table, want them all in AWSCloudTrail", n)
	}
}
