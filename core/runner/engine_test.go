package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/runner"
)

// pluginDir holds the test plugins of testdata/plugins, built once.
var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-runner-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, p := range []struct{ src, exe string }{
		{"testsiem", "vigil-plugin-siem-testsiem"},
		{"testinjector", "vigil-plugin-injector-testinjector"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p.exe), "./testdata/plugins/"+p.src)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", p.src, err, out)
			os.Exit(1)
		}
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup starts the two test plugins as real go-plugin processes.
func setup(t *testing.T, siemConfig string) (*runner.Engine, *runner.SIEM) {
	t.Helper()
	ctx := context.Background()
	host := pluginhost.New(pluginhost.Options{Dirs: []string{pluginDir}, AllowUnpinned: true})
	t.Cleanup(host.Close)
	s, _, err := host.SIEM(ctx, "testsiem")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(ctx, []byte(siemConfig)); err != nil {
		t.Fatal(err)
	}
	sd, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inj, _, err := host.Injector(ctx, "testinjector")
	if err != nil {
		t.Fatal(err)
	}
	id, err := inj.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	siem := &runner.SIEM{Name: "scripted", Plugin: "testsiem", Impl: s, Desc: sd, PollInterval: 100 * time.Millisecond, Timeout: 2 * time.Second}
	target := &runner.Target{Name: "lab", Plugin: "testinjector", Impl: inj, Desc: id, Host: "testhost", TmpRoot: t.TempDir()}
	return &runner.Engine{SIEMs: []*runner.SIEM{siem}, Targets: []*runner.Target{target}, Opts: runner.Options{Concurrency: 8}}, siem
}

func newTest(t *testing.T, id string, params map[string]any, exps ...catalog.Expectation) *catalog.Test {
	t.Helper()
	tech, err := attack.Lookup("T1059.004")
	if err != nil {
		t.Fatal(err)
	}
	if params == nil {
		params = map[string]any{}
	}
	return &catalog.Test{
		ID: id, Technique: tech, Tactics: tech.Tactics, Name: id, Safety: catalog.SafetySafe, Timeout: 5 * time.Second,
		Inject: catalog.Step{Plugin: "testinjector", Params: params}, Cleanup: &catalog.Step{Plugin: "testinjector", Params: params},
		Expect: exps,
	}
}

func byTest(rs []measure.Result) map[string]measure.Result {
	m := map[string]measure.Result{}
	for _, r := range rs {
		m[r.TestID] = r
	}
	return m
}

func TestEngineOutcomes(t *testing.T) {
	log := filepath.Join(t.TempDir(), "injector.log")
	eng, siem := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "fast"
delay = "300ms"
name = "Fast rule"
marker = true
[[rule]]
test_id = "slow"
delay = "1s"
name = "Slow rule"
marker = true
[[rule]]
test_id = "late"
delay = "5s"
marker = true
[[rule]]
test_id = "wrong-technique"
technique = "T1003"
marker = true
[[rule]]
test_id = "no-marker"
[[rule]]
test_id = "early"
before_injection = true
marker = true
[[rule]]
test_id = "noisy"
marker = true
[[rule]]
test_id = "by-rule"
name = "Named Rule"
marker = true
`)
	logParams := map[string]any{"log": log}
	tests := []*catalog.Test{
		newTest(t, "fast", logParams),
		newTest(t, "slow", logParams),
		newTest(t, "late", logParams),
		newTest(t, "wrong-technique", logParams),
		newTest(t, "no-marker", logParams),
		newTest(t, "early", logParams),
		newTest(t, "silent", logParams),
		newTest(t, "noisy", logParams, catalog.Expectation{Absent: true, Within: time.Second}),
		newTest(t, "quiet", logParams, catalog.Expectation{Absent: true, Within: time.Second}),
		newTest(t, "by-rule", logParams, catalog.Expectation{Rule: "named rule"}),
		newTest(t, "by-other-rule", logParams, catalog.Expectation{Rule: "Fast rule", Within: time.Second}),
		newTest(t, "inject-fails", map[string]any{"log": log, "fail": "true"}),
	}
	plan, err := eng.Plan(tests)
	if err != nil {
		t.Fatal(err)
	}
	rs := byTest(eng.Run(context.Background(), plan))

	want := map[string]measure.Status{
		"fast": measure.Detected, "slow": measure.Detected, "late": measure.Missed,
		"wrong-technique": measure.Missed, "no-marker": measure.Missed, "early": measure.Missed,
		"silent": measure.Missed, "noisy": measure.Noisy, "quiet": measure.Quiet,
		"by-rule": measure.Detected, "by-other-rule": measure.Missed, "inject-fails": measure.Error,
	}
	for id, st := range want {
		r, ok := rs[id]
		if !ok {
			t.Errorf("%s: no result", id)
			continue
		}
		if r.Status != st {
			t.Errorf("%s: status %s (error %q), want %s", id, r.Status, r.Error, st)
		}
	}
	for id, lo := range map[string]int64{"fast": 300, "slow": 1000} {
		r := rs[id]
		if r.LatencyMS == nil || *r.LatencyMS != lo {
			t.Errorf("%s: latency_ms = %v, want exactly %d (signal timestamp - injection start)", id, r.LatencyMS, lo)
		}
		if r.ObservedLatencyMS == nil || *r.ObservedLatencyMS < lo || *r.ObservedLatencyMS > lo+1500 {
			t.Errorf("%s: observed_latency_ms = %v, want in [%d, %d]", id, r.ObservedLatencyMS, lo, lo+1500)
		}
		if r.Correlation != "marker:process.command_line" {
			t.Errorf("%s: correlation %q", id, r.Correlation)
		}
		if len(r.Signals) != 1 || r.InjectedAt == nil || r.DetectedAt == nil {
			t.Errorf("%s: signals %v injected %v detected %v", id, r.Signals, r.InjectedAt, r.DetectedAt)
		}
	}
	if r := rs["inject-fails"]; !strings.Contains(r.Error, "injection failed: exit code 2: scripted failure") || r.Injection == nil || r.Injection.ExitCode != 2 {
		t.Errorf("inject-fails: error %q injection %+v", r.Error, r.Injection)
	}
	if r := rs["by-rule"]; len(r.Signals) != 1 || r.Signals[0].Rule != "Named Rule" {
		t.Errorf("by-rule: signals %+v", r.Signals)
	}

	// Cleanup ran once for every test, including the failed injection.
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	injects, cleanups := strings.Count(string(b), "inject "), strings.Count(string(b), "cleanup ")
	if injects != len(tests) || cleanups != len(tests) {
		t.Errorf("injector log: %d injects, %d cleanups, want %d each:\n%s", injects, cleanups, len(tests), b)
	}
	// One batched search per poll, whatever the number of pending tests.
	searches, polls, _ := eng.Searches(siem.Name)
	if searches != polls || polls == 0 {
		t.Errorf("searches = %d, polls = %d: want one search per poll", searches, polls)
	}
}

// Without a shared marker field, two injections of the same technique can
// only be told apart by time: one signal must never count for both.
func TestEngineNoDoubleCounting(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "twin"
delay = "200ms"
once = true
`)
	eng.SIEMs[0].Desc.MarkerLocations = nil // force the time+host fallback
	twin := newTest(t, "twin", nil, catalog.Expectation{Within: 1500 * time.Millisecond})
	plan, err := eng.Plan([]*catalog.Test{twin, twin})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Notes) == 0 || !strings.Contains(plan.Notes[0], "time window and host") {
		t.Errorf("plan notes %v: want the fallback said", plan.Notes)
	}
	rs := eng.Run(context.Background(), plan)
	var detected, missed int
	for _, r := range rs {
		switch r.Status {
		case measure.Detected:
			detected++
			if r.Correlation != "time+host" {
				t.Errorf("correlation %q, want time+host", r.Correlation)
			}
		case measure.Missed:
			missed++
		}
	}
	if detected != 1 || missed != 1 {
		t.Fatalf("detected %d, missed %d: one signal must be credited once", detected, missed)
	}
}

func TestEngineSearchFailures(t *testing.T) {
	t.Run("transient failures are retried", func(t *testing.T) {
		eng, _ := setup(t, `
hostname = "testhost"
fail_first = 2
[[rule]]
test_id = "x"
marker = true
`)
		plan, _ := eng.Plan([]*catalog.Test{newTest(t, "x", nil, catalog.Expectation{Within: 5 * time.Second})})
		rs := eng.Run(context.Background(), plan)
		if rs[0].Status != measure.Detected {
			t.Fatalf("status %s (%s), want detected after retries", rs[0].Status, rs[0].Error)
		}
	})
	t.Run("a plugin crash is an error, not a miss or a hang", func(t *testing.T) {
		eng, _ := setup(t, `
hostname = "testhost"
crash_after = 2
`)
		plan, _ := eng.Plan([]*catalog.Test{newTest(t, "x", nil, catalog.Expectation{Within: 30 * time.Second})})
		done := make(chan []measure.Result)
		go func() { done <- eng.Run(context.Background(), plan) }()
		select {
		case rs := <-done:
			if rs[0].Status != measure.Error || !strings.Contains(rs[0].Error, "plugin process is gone") {
				t.Fatalf("status %s error %q, want an error naming the gone plugin", rs[0].Status, rs[0].Error)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("engine hung on a crashed SIEM plugin")
		}
	})
	t.Run("an injector crash is an error", func(t *testing.T) {
		eng, _ := setup(t, `hostname = "testhost"`)
		plan, _ := eng.Plan([]*catalog.Test{newTest(t, "x", map[string]any{"crash": "true"})})
		rs := eng.Run(context.Background(), plan)
		if rs[0].Status != measure.Error || !strings.Contains(rs[0].Error, "inject") {
			t.Fatalf("status %s error %q, want an injection error", rs[0].Status, rs[0].Error)
		}
	})
}

// A SIEM that cannot answer ends its tests as errors by their deadline
// plus one poll interval (100ms here), whatever the search is doing: the
// plugin retrying or hanging, or the SIEM refusing the credentials, which
// is never asked again.
func TestEngineSearchNeverAnswers(t *testing.T) {
	const within = 1500 * time.Millisecond
	tests := []struct {
		name, config string
		wantErr      string
		// by bounds the run's wall time: the deadline, one interval, and
		// the plugins' start and the injections.
		by time.Duration
		// searches bounds the searches made, when > 0.
		searches int64
	}{
		// The error names the test's own deadline, not the SIEM's timeout.
		{"failing", "fail_first = 1000000", "of 1000000 (the search kept failing past the deadline, 1.5s after the injection)", within + time.Second, 0},
		{"hanging", "hang = true", "no answer", within + time.Second, 0},
		{"denied", `deny = "403 Forbidden: missing security_monitoring_signals_read"`, "missing security_monitoring_signals_read", within / 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng, siem := setup(t, "hostname = \"testhost\"\n"+tc.config)
			var cat []*catalog.Test
			for _, id := range []string{"a", "b", "c"} {
				cat = append(cat, newTest(t, id, nil, catalog.Expectation{Within: within}))
			}
			plan, err := eng.Plan(cat)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			rs := eng.Run(context.Background(), plan)
			took := time.Since(start)
			for _, r := range rs {
				if r.Status != measure.Error || !strings.Contains(r.Error, tc.wantErr) {
					t.Errorf("%s: status %s error %q, want an error with %q", r.TestID, r.Status, r.Error, tc.wantErr)
				}
			}
			if took > tc.by {
				t.Errorf("the run took %v: its tests ended long after their deadline (%v) plus one poll interval", took.Round(time.Millisecond), within)
			}
			if tc.searches > 0 {
				st, err := siem.Impl.Stats(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if st["searches"] > tc.searches {
					t.Errorf("%d searches after the SIEM refused the credentials, want at most %d", st["searches"], tc.searches)
				}
			}
		})
	}
}

// An interrupt while tests wait for signals ends the wait with errors (not
// misses), and every injection is still cleaned up.
func TestEngineInterruptCleansUp(t *testing.T) {
	log := filepath.Join(t.TempDir(), "injector.log")
	eng, _ := setup(t, `hostname = "testhost"`)
	params := map[string]any{"log": log}
	var tests []*catalog.Test
	for i := 0; i < 3; i++ {
		tests = append(tests, newTest(t, fmt.Sprintf("wait-%d", i), params, catalog.Expectation{Within: time.Minute}))
	}
	plan, _ := eng.Plan(tests)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(700*time.Millisecond, func() { cancel(errors.New("interrupt")) })
	start := time.Now()
	rs := eng.Run(ctx, plan)
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("run took %s after the interrupt", d)
	}
	for _, r := range rs {
		if r.Status != measure.Error || !strings.Contains(r.Error, "interrupt") {
			t.Errorf("%s: status %s error %q, want an interrupted error", r.TestID, r.Status, r.Error)
		}
	}
	b, _ := os.ReadFile(log)
	if c := strings.Count(string(b), "cleanup "); c != 3 {
		t.Fatalf("%d cleanups after interrupt, want 3:\n%s", c, b)
	}
}

func TestPlanRefusesUncorrelatable(t *testing.T) {
	eng, _ := setup(t, `hostname = "testhost"`)
	eng.SIEMs[0].Desc.MarkerLocations = nil
	eng.SIEMs[0].Desc.ReportsHost = false
	_, err := eng.Plan([]*catalog.Test{newTest(t, "x", nil)})
	if !errors.Is(err, runner.ErrNoPairing) {
		t.Fatalf("Plan error = %v, want ErrNoPairing", err)
	}
}

func TestExternalPluginPinning(t *testing.T) {
	ctx := context.Background()
	exe := filepath.Join(pluginDir, "vigil-plugin-siem-testsiem")
	sum, err := pluginhost.FileSHA256(exe)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pins    map[string]string
		allow   bool
		wantErr string
	}{
		{name: "pinned", pins: map[string]string{"vigil-plugin-siem-testsiem": sum}},
		{name: "unpinned refused", wantErr: "not pinned by sha256"},
		{name: "unpinned allowed", allow: true},
		{name: "wrong pin", pins: map[string]string{"vigil-plugin-siem-testsiem": strings.Repeat("0", 64)}, wantErr: "does not match the pin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := pluginhost.New(pluginhost.Options{Dirs: []string{pluginDir}, Pins: tc.pins, AllowUnpinned: tc.allow})
			defer host.Close()
			s, _, err := host.SIEM(ctx, "testsiem")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d, err := s.Describe(ctx); err != nil || d.Name != "testsiem" {
				t.Fatalf("Describe = %+v, %v", d, err)
			}
		})
	}
}

// hostRecorder is an in-process injector that reaches many hosts: it
// records, per host, the markers of its prerequisite, inject and cleanup
// calls and the rendered {{host}} param, and succeeds without reporting a
// host of its own.
type hostRecorder struct {
	mu    sync.Mutex
	calls map[string][]string // host → "prereq M", "inject M host=H", "cleanup M"
}

func (h *hostRecorder) record(host, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls == nil {
		h.calls = map[string][]string{}
	}
	h.calls[host] = append(h.calls[host], line)
}

func (h *hostRecorder) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "fleet", MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}
func (h *hostRecorder) Configure(context.Context, []byte) error { return nil }
func (h *hostRecorder) Validate(context.Context, plugin.ValidateRequest) ([]plugin.Problem, error) {
	return nil, nil
}
func (h *hostRecorder) CheckPrerequisites(_ context.Context, r plugin.PrerequisitesRequest) ([]plugin.UnmetPrerequisite, error) {
	h.record(r.Host, "prereq "+r.Marker)
	return nil, nil
}
func (h *hostRecorder) Inject(_ context.Context, r plugin.InjectRequest) (plugin.InjectResult, error) {
	h.record(r.Host, "inject "+r.Marker+" host="+r.Params.String("where"))
	now := time.Now()
	return plugin.InjectResult{StartedAt: now, EndedAt: now, Outcome: plugin.OutcomeSucceeded,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}}, nil
}
func (h *hostRecorder) Cleanup(_ context.Context, r plugin.CleanupRequest) (plugin.CleanupResult, error) {
	h.record(r.Host, "cleanup "+r.Marker)
	return plugin.CleanupResult{}, nil
}
func (h *hostRecorder) Close(context.Context) error { return nil }

// A target with several hosts runs each test once per host, through its
// one injector, with the host in every request and in {{host}}, and
// reports each host apart ("name@host"). A target runs the tests of the
// injectors its Runs lists.
func TestEngineFansOutPerHost(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "fast"
delay = "100ms"
marker = true
`)
	rec := &hostRecorder{}
	hosts := []string{"web-1", "web-2.example.com:2222", "[fd00::7]:22"}
	eng.Targets = append(eng.Targets, &runner.Target{
		Name: "fleet", Plugin: "fleet", Impl: rec, Desc: plugin.Description{MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}},
		Hosts: hosts, Runs: []string{"testinjector"}, TmpRoot: "/tmp",
	})
	test := newTest(t, "fast", map[string]any{"where": "{{host}}"})
	plan, err := eng.Plan([]*catalog.Test{test})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range plan.Jobs {
		names = append(names, j.TargetName())
	}
	if want := []string{"lab", "fleet@web-1", "fleet@web-2.example.com:2222", "fleet@[fd00::7]:22"}; !slices.Equal(names, want) {
		t.Fatalf("jobs on %q, want %q", names, want)
	}

	rs := eng.Run(context.Background(), plan)
	wantHost := map[string]string{"lab": "testhost", "fleet@web-1": "web-1", "fleet@web-2.example.com:2222": "web-2.example.com", "fleet@[fd00::7]:22": "fd00::7"}
	if len(rs) != len(wantHost) {
		t.Fatalf("%d results, want %d", len(rs), len(wantHost))
	}
	markers := map[string]bool{}
	for _, r := range rs {
		if r.Status != measure.Detected {
			t.Errorf("%s: status %s (error %q), want detected", r.Target, r.Status, r.Error)
		}
		if h, ok := wantHost[r.Target]; !ok || r.Host != h {
			t.Errorf("result target %q host %q, want host %q", r.Target, r.Host, h)
		}
		markers[r.Marker] = true
	}
	if len(markers) != len(rs) {
		t.Errorf("%d distinct markers for %d results: each host's injection needs its own", len(markers), len(rs))
	}
	for _, h := range hosts {
		calls := rec.calls[h]
		if len(calls) != 3 {
			t.Fatalf("host %s: calls %q, want prereq, inject, cleanup", h, calls)
		}
		m := strings.TrimPrefix(calls[0], "prereq ")
		want := []string{"prereq " + m, "inject " + m + " host=" + runner.HostOnly(h), "cleanup " + m}
		if !slices.Equal(calls, want) {
			t.Errorf("host %s: calls %q, want %q", h, calls, want)
		}
	}
	if _, ok := rec.calls[""]; ok {
		t.Errorf("the multi-host injector got a request without a host: %q", rec.calls[""])
	}

	// Without Runs, the fleet target does not run testinjector tests.
	eng.Targets[1].Runs = nil
	plan, err = eng.Plan([]*catalog.Test{test})
	if err != nil || len(plan.Jobs) != 1 || plan.Jobs[0].TargetName() != "lab" {
		t.Fatalf("plan without runs: %v, %d jobs", err, len(plan.Jobs))
	}
}

// Kernel audit timestamps come from a coarse clock: the event of an
// injection can be stamped a few milliseconds before the injector's start.
// Alone in the run, such a test is the earliest pending one, so the search
// window itself must reach back over the clock tolerance, not only Match.
func TestEngineCoarseClock(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "coarse-clock"
delay = "-3ms"
marker = true
`)
	plan, err := eng.Plan([]*catalog.Test{newTest(t, "coarse-clock", nil, catalog.Expectation{Within: 2 * time.Second})})
	if err != nil {
		t.Fatal(err)
	}
	r := eng.Run(context.Background(), plan)[0]
	if r.Status != measure.Detected {
		t.Fatalf("status %s (%s%s), want detected", r.Status, r.Error, r.Reason)
	}
	if r.LatencyMS == nil || *r.LatencyMS != 0 {
		t.Errorf("latency_ms = %v, want 0", r.LatencyMS)
	}
}

// Every missed result says why, from the evidence the SIEM gives: each
// diagnosis class is set up by the scripted SIEM, and a noisy result names
// the rule that fired.
func TestEngineDiagnoses(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "wrong-technique"
technique = "T1003"
name = "Credential Rule"
marker = true
[[rule]]
test_id = "no-marker"
name = "Staging Rule"
technique = "T1074.001"
delay = "100ms"
[[rule]]
test_id = "early"
name = "Early Rule"
delay = "-30s"
marker = true
[[rule]]
test_id = "noisy"
name = "Benign Rule"
delay = "50ms"
marker = true
[[event]]
test_id = "rule-gap"
delay = "4ms"
source = "linux/process_creation"
summary = "/bin/sh -c touch /tmp/rule-gap"
[[event]]
test_id = "rule-gap"
delay = "6ms"
source = "linux/file_event"
summary = "/tmp/rule-gap"
[[event]]
test_id = "no-marker"
delay = "4ms"
source = "linux/process_creation"
summary = "sh"
`)
	exp := catalog.Expectation{Within: time.Second}
	tests := []*catalog.Test{
		newTest(t, "wrong-technique", nil, exp),
		newTest(t, "no-marker", nil, catalog.Expectation{Technique: "T1074.001", Within: time.Second}),
		newTest(t, "early", nil, exp),
		newTest(t, "rule-gap", nil, exp),
		newTest(t, "collection-gap", nil, exp),
		newTest(t, "noisy", nil, catalog.Expectation{Absent: true, Within: time.Second}),
	}
	plan, err := eng.Plan(tests)
	if err != nil {
		t.Fatal(err)
	}
	eng.SIEMs[0].ClockSlack = time.Minute
	rs := byTest(eng.Run(context.Background(), plan))
	cases := []struct {
		test   string
		status measure.Status
		class  measure.DiagnosisClass
		says   []string
	}{
		{"wrong-technique", measure.Missed, measure.AlertWrongTechnique, []string{`rule "Credential Rule" (rule-0) [T1003]`, "not for T1059.004"}},
		{"no-marker", measure.Missed, measure.AlertWithoutMarker, []string{`rule "Staging Rule" (rule-1) [T1074.001]`, "on host testhost", "100ms after the injection", "without the marker"}},
		{"early", measure.Missed, measure.AlertOutsideWindow, []string{`rule "Early Rule"`, "30s before the injection"}},
		{"rule-gap", measure.Missed, measure.TelemetryNoAlert, []string{"2 event(s)", "linux/process_creation, linux/file_event", "4ms after the injection", `"/bin/sh -c touch /tmp/rule-gap"`, "no rule fired for T1059.004"}},
		{"collection-gap", measure.Missed, measure.NoTelemetry, []string{`no event carrying the marker reached siem "scripted" by the deadline (1s)`}},
		{"noisy", measure.Noisy, measure.RuleFired, []string{`rule "Benign Rule"`, "50ms after it"}},
	}
	for _, tc := range cases {
		t.Run(tc.test, func(t *testing.T) {
			r := rs[tc.test]
			if r.Status != tc.status {
				t.Fatalf("status %s (%s%s), want %s", r.Status, r.Error, r.Reason, tc.status)
			}
			if r.Diagnosis == nil || r.Diagnosis.Class != tc.class {
				t.Fatalf("diagnosis %+v, want class %s", r.Diagnosis, tc.class)
			}
			if !strings.HasPrefix(r.Reason, string(tc.class)+": ") {
				t.Errorf("reason %q does not start with the class", r.Reason)
			}
			for _, s := range tc.says {
				if !strings.Contains(r.Diagnosis.Summary, s) {
					t.Errorf("summary %q does not say %q", r.Diagnosis.Summary, s)
				}
			}
			if len(r.Expectations) != 1 || r.Expectations[0].Diagnosis == nil || r.Expectations[0].Diagnosis.Class != tc.class {
				t.Errorf("the expectation does not carry the diagnosis: %+v", r.Expectations)
			}
		})
	}
	if ev := rs["rule-gap"].Diagnosis.Events; ev == nil || ev.Count != 2 || ev.FirstIngestedAt == nil || ev.Excerpt != "/bin/sh -c touch /tmp/rule-gap" {
		t.Errorf("rule-gap events evidence %+v", ev)
	}
	if r := rs["rule-gap"]; r.IngestLatencyMS == nil || *r.IngestLatencyMS != 5 {
		t.Errorf("rule-gap ingest_latency_ms = %v, want 5 (the first event's ingestion)", r.IngestLatencyMS)
	}
	if s := rs["early"].Diagnosis.Signals; len(s) != 1 || !s[0].Marker || s[0].OffsetMS != -30000 {
		t.Errorf("early signal evidence %+v, want the marker-tied signal at -30000ms", s)
	}
	if s := rs["noisy"].Diagnosis.Signals; len(s) != 1 || s[0].Rule != "Benign Rule" {
		t.Errorf("noisy evidence %+v", s)
	}

	t.Run("unknown without a raw-event search", func(t *testing.T) {
		eng, _ := setup(t, `hostname = "testhost"`)
		eng.SIEMs[0].Desc.Capabilities = nil
		plan, _ := eng.Plan([]*catalog.Test{newTest(t, "silent", nil, exp)})
		r := eng.Run(context.Background(), plan)[0]
		if r.Status != measure.Missed || r.Diagnosis == nil || r.Diagnosis.Class != measure.Unknown ||
			!strings.Contains(r.Diagnosis.Summary, `plugin (testsiem) has no raw-event search (the SearchRawEvents call, capability "raw_events")`) {
			t.Fatalf("status %s diagnosis %+v", r.Status, r.Diagnosis)
		}
	})
}

// A SIEM whose clock is 30s behind stamps its signals 30s before the
// injection: with its clock offset measured, the signal is credited with
// the right latency; without it, the miss says alert_outside_window with
// the offset. Never a bare miss.
func TestEngineClockSkew(t *testing.T) {
	cfg := `
hostname = "testhost"
clock_offset = "-30s"
%s
[[rule]]
test_id = "skewed"
name = "Skewed Rule"
delay = "200ms"
skewed = true
marker = true
`
	for _, tc := range []struct {
		name      string
		extra     string
		status    measure.Status
		latencyMS int64
	}{
		{name: "offset measured", status: measure.Detected, latencyMS: 200},
		{name: "offset unknown", extra: "no_clock = true", status: measure.Missed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, siem := setup(t, fmt.Sprintf(cfg, tc.extra))
			siem.ClockSlack = time.Minute
			plan, _ := eng.Plan([]*catalog.Test{newTest(t, "skewed", nil, catalog.Expectation{Within: time.Second})})
			r := eng.Run(context.Background(), plan)[0]
			if r.Status != tc.status {
				t.Fatalf("status %s (%s%s), want %s", r.Status, r.Error, r.Reason, tc.status)
			}
			if tc.status == measure.Detected {
				if r.LatencyMS == nil || *r.LatencyMS != tc.latencyMS || r.ClockOffsetMS == nil || *r.ClockOffsetMS != -30000 {
					t.Errorf("latency_ms %v clock_offset_ms %v, want %d and -30000", r.LatencyMS, r.ClockOffsetMS, tc.latencyMS)
				}
				return
			}
			if r.Diagnosis == nil || r.Diagnosis.Class != measure.AlertOutsideWindow || !strings.Contains(r.Diagnosis.Summary, "29.8s before the injection") {
				t.Errorf("diagnosis %+v, want alert_outside_window 29.8s before", r.Diagnosis)
			}
		})
	}
}

// A replay the SIEM accepts only in part is an error that says how many
// events were rejected and why, never a miss; the result counts them.
func TestEngineRejectedIngest(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
reject = 2
[[rule]]
test_id = "replayed"
marker = true
`)
	plan, _ := eng.Plan([]*catalog.Test{newTest(t, "replayed", map[string]any{"events": "5"})})
	r := eng.Run(context.Background(), plan)[0]
	if r.Status != measure.Error || !strings.Contains(r.Error, `siem "scripted" rejected 2 of the 5 replayed events (3 accepted): events[3]: mapper_parsing_exception`) {
		t.Fatalf("status %s error %q", r.Status, r.Error)
	}
	if r.Ingest == nil || r.Ingest.Sent != 5 || r.Ingest.Accepted != 3 || r.Ingest.Rejected != 2 || len(r.Ingest.Reasons) != 2 {
		t.Errorf("ingest %+v", r.Ingest)
	}
}

// Paging that does not advance is an error naming the SIEM and the call,
// never a silent stop: a cursor the SIEM hands back unchanged, and a page
// the SIEM repeats under a new cursor.
func TestEnginePagingErrors(t *testing.T) {
	for _, tc := range []struct{ paging, says string }{
		{"stuck", `siem "scripted": search: page 2 returned the page token it was given`},
		{"repeat", `siem "scripted": search: page 2 repeats signals of an earlier page`},
	} {
		t.Run(tc.paging, func(t *testing.T) {
			eng, _ := setup(t, `
hostname = "testhost"
paging = "`+tc.paging+`"
[[rule]]
test_id = "paged"
marker = true
`)
			plan, _ := eng.Plan([]*catalog.Test{newTest(t, "paged", nil, catalog.Expectation{Within: 300 * time.Millisecond})})
			r := eng.Run(context.Background(), plan)[0]
			if r.Status != measure.Error || !strings.Contains(r.Error, tc.says) {
				t.Fatalf("status %s error %q, want an error saying %q", r.Status, r.Error, tc.says)
			}
		})
	}
}

// HostStep brackets each step of a job that may change its target
// (prerequisites, injection, cleanup), in order, so that the
// host-integrity check reads the host after each; a refused destructive
// test has no step.
func TestEngineHostSteps(t *testing.T) {
	eng, _ := setup(t, `
hostname = "testhost"
[[rule]]
test_id = "fast"
delay = "50ms"
marker = true
`)
	rec := &hostRecorder{}
	eng.Targets = []*runner.Target{{
		Name: "fleet", Plugin: "fleet", Impl: rec, Desc: plugin.Description{MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine}},
		Hosts: []string{"web-1"}, Runs: []string{"testinjector"}, TmpRoot: "/tmp",
	}}
	eng.Opts.HostStep = func(j *runner.Job, begin bool) {
		rec.record(j.Host, map[bool]string{true: "begin " + j.Test.ID, false: "end " + j.Test.ID}[begin])
	}
	destructive := newTest(t, "wiper", nil)
	destructive.Safety = catalog.SafetyDestructive
	plan, err := eng.Plan([]*catalog.Test{newTest(t, "fast", nil), destructive})
	if err != nil {
		t.Fatal(err)
	}
	eng.Run(context.Background(), plan)
	var got []string
	for _, c := range rec.calls["web-1"] {
		if f := strings.Fields(c); len(f) >= 2 && strings.HasPrefix(f[1], "vigil-") {
			c = f[0] // the injector's own calls, without the marker
		}
		got = append(got, c)
	}
	want := []string{"begin fast", "prereq", "end fast", "begin fast", "inject", "end fast", "begin fast", "cleanup", "end fast"}
	if !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}
