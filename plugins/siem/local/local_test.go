package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/plugins/siem/local/sensor"
)

// testMarker is the run marker planted in testdata/ingest.jsonl.
const testMarker = "vigil-test-0a1b2c"

// Rules of the shipped SigmaHQ pack the ingest fixture triggers.
const (
	crontabRuleID    = "403ed92c-b7ec-4edd-9947-5b535ee12d46"
	crontabRuleTitle = "Crontab Enumeration"
	shellCfgRuleID   = "a94cdd87-6c54-4678-a6cc-2814ffe5a13d"
	shellCfgTitle    = "Unix Shell Configuration Modification"
)

// fixtureEvents returns the lines of testdata/ingest.jsonl.
func fixtureEvents(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/ingest.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// configured returns a replay-mode local SIEM over gRPC, with the events of
// testdata/ingest.jsonl ingested under testMarker, and its implementation.
func configured(t *testing.T, cfg string) (plugin.SIEM, *SIEM) {
	t.Helper()
	impl := new(SIEM)
	s := plugintest.SIEM(t, impl)
	ctx := context.Background()
	if err := s.Configure(ctx, []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	res, err := s.Ingest(ctx, plugin.IngestRequest{Events: fixtureEvents(t), Marker: testMarker})
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if res.Accepted != 5 || len(res.Problems) != 0 {
		t.Fatalf("Ingest = %+v, want 5 accepted and no problem", res)
	}
	return s, impl
}

func TestDescribe(t *testing.T) {
	d, err := plugintest.SIEM(t, new(SIEM)).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "local" || d.Kind != plugin.KindSIEM || d.QueryDialect != "sigma" || !d.ReportsHost {
		t.Errorf("Describe = %+v", d)
	}
	wantLocs := []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField, plugin.MarkerUserAgent}
	if !slices.Equal(d.MarkerLocations, wantLocs) {
		t.Errorf("MarkerLocations = %v, want %v", d.MarkerLocations, wantLocs)
	}
	if !d.Has(plugin.CapRawEvents) || !d.Has(plugin.CapIngest) || d.Has(plugin.CapCloseSignals) {
		t.Errorf("Capabilities = %v", d.Capabilities)
	}
}

func TestNotConfigured(t *testing.T) {
	s := plugintest.SIEM(t, new(SIEM))
	ctx := context.Background()
	if _, err := s.Search(ctx, plugin.SearchRequest{}); err == nil || err.Error() != ErrNotConfigured.Error() {
		t.Errorf("Search before Configure: %v, want %v", err, ErrNotConfigured)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close before Configure: %v", err)
	}
}

func TestReplaySearch(t *testing.T) {
	s, _ := configured(t, `mode = "replay"`)
	ctx := context.Background()
	res, err := s.Search(ctx, plugin.SearchRequest{
		Start: mustTime(t, "2026-08-20T10:00:00Z"), End: mustTime(t, "2026-08-20T10:01:00Z"),
	})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if res.NextPageToken != "" {
		t.Errorf("NextPageToken = %q for a single page", res.NextPageToken)
	}
	byRule := map[string]plugin.Signal{}
	for _, sg := range res.Signals {
		byRule[sg.RuleID] = sg
	}
	tests := []struct {
		name       string
		ruleID     string
		title      string
		techniques []string
		severity   string
		at         string
		wantMarks  []plugin.MarkerValue
	}{
		{
			name: "crontab process_creation", ruleID: crontabRuleID, title: crontabRuleTitle,
			techniques: []string{"T1007"}, severity: "low", at: "2026-08-20T10:00:00.5Z",
			wantMarks: []plugin.MarkerValue{
				{Location: plugin.MarkerCommandLine, Value: "crontab -l"},
				{Location: plugin.MarkerCommandLine, Value: "/bin/sh -c crontab -l 2>/dev/null; true " + testMarker},
				{Location: plugin.MarkerLogField, Value: testMarker},
			},
		},
		{
			name: "auditd PATH record", ruleID: shellCfgRuleID, title: shellCfgTitle,
			techniques: []string{"T1546.004"}, severity: "medium", at: "2026-08-20T10:00:01Z",
			wantMarks: []plugin.MarkerValue{
				{Location: plugin.MarkerFilePath, Value: "/etc/profile"},
				{Location: plugin.MarkerCommandLine, Value: "/bin/sh -c tee -a /etc/profile </dev/null " + testMarker},
				{Location: plugin.MarkerLogField, Value: testMarker},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sg, ok := byRule[tc.ruleID]
			if !ok {
				t.Fatalf("no signal of rule %s among %d signals", tc.ruleID, len(res.Signals))
			}
			if sg.RuleName != tc.title {
				t.Errorf("RuleName = %q, want %q", sg.RuleName, tc.title)
			}
			if !slices.Equal(sg.Techniques, tc.techniques) {
				t.Errorf("Techniques = %v, want %v", sg.Techniques, tc.techniques)
			}
			at := mustTime(t, tc.at)
			if !sg.Timestamp.Equal(at) || !sg.EventTime.Equal(at) {
				t.Errorf("Timestamp, EventTime = %s, %s, want the event's time %s", sg.Timestamp, sg.EventTime, at)
			}
			if sg.Host != "testhost" || sg.Severity != tc.severity {
				t.Errorf("Host, Severity = %q, %q", sg.Host, sg.Severity)
			}
			if !strings.HasPrefix(sg.ID, "local-") || len(sg.MatchedExpectations) != 0 {
				t.Errorf("ID = %q, MatchedExpectations = %v", sg.ID, sg.MatchedExpectations)
			}
			for _, want := range tc.wantMarks {
				if !slices.Contains(sg.MarkerValues, want) {
					t.Errorf("MarkerValues %v lack %v", sg.MarkerValues, want)
				}
			}
			var raw struct {
				Rule  struct{ Title, ID, Level, Author, Link string }
				Event telemetry.Event
			}
			if err := json.Unmarshal(sg.Raw, &raw); err != nil {
				t.Fatalf("Raw: %v", err)
			}
			if raw.Rule.ID != tc.ruleID || raw.Rule.Author == "" || !strings.HasPrefix(raw.Rule.Link, "https://github.com/SigmaHQ/sigma/blob/") {
				t.Errorf("Raw rule = %+v: want the id and the DRL attribution (author, link)", raw.Rule)
			}
			if !raw.Event.Time.Equal(at) || raw.Event.Host != "testhost" {
				t.Errorf("Raw event = %+v", raw.Event)
			}
		})
	}

	// The window bounds the signals by the event's own time.
	res, err = s.Search(ctx, plugin.SearchRequest{
		Start: mustTime(t, "2026-08-20T10:00:00.6Z"), End: mustTime(t, "2026-08-20T10:01:00Z"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range res.Signals {
		if sg.RuleID == crontabRuleID {
			t.Errorf("signal at %s returned for a window starting at 10:00:00.6", sg.Timestamp)
		}
	}
	if _, ok := byRule[shellCfgRuleID]; !ok {
		t.Error("window cut the later signal")
	}
}

func TestReplayPaging(t *testing.T) {
	s, _ := configured(t, `mode = "replay"`)
	ctx := context.Background()
	window := plugin.SearchRequest{Start: mustTime(t, "2026-08-20T10:00:00Z"), End: mustTime(t, "2026-08-20T11:00:00Z")}
	all, err := s.Search(ctx, window)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Signals) < 2 {
		t.Fatalf("%d signals, want at least 2 for paging", len(all.Signals))
	}
	var paged []plugin.Signal
	req := window
	req.PageSize = 1
	for pages := 0; ; pages++ {
		if pages > len(all.Signals) {
			t.Fatalf("more than %d pages of one signal", len(all.Signals))
		}
		res, err := s.Search(ctx, req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(res.Signals) != 1 {
			t.Fatalf("page %d has %d signals, want 1", pages, len(res.Signals))
		}
		paged = append(paged, res.Signals...)
		if res.NextPageToken == "" {
			break
		}
		req.PageToken = res.NextPageToken
	}
	ids := func(ss []plugin.Signal) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	if !slices.Equal(ids(paged), ids(all.Signals)) {
		t.Errorf("paged IDs %v, want %v", ids(paged), ids(all.Signals))
	}
	if !slices.IsSortedFunc(all.Signals, func(a, b plugin.Signal) int { return a.Timestamp.Compare(b.Timestamp) }) {
		t.Error("signals not sorted by time")
	}

	req.PageToken = "garbage"
	if _, err := s.Search(ctx, req); err == nil || !strings.Contains(err.Error(), "bad page token") {
		t.Errorf("bad token: %v", err)
	}
}

func TestReplayRawEventsAndStats(t *testing.T) {
	s, _ := configured(t, `mode = "replay"`)
	ctx := context.Background()
	// A second batch from another run.
	other := []byte(`{"time":"2026-08-20T10:00:02Z","host":"testhost","logsource":{"product":"linux","category":"process_creation"},"fields":{"Image":"/usr/bin/id","CommandLine":"id"}}`)
	res, err := s.Ingest(ctx, plugin.IngestRequest{
		Events: [][]byte{other, []byte(`not json`), []byte(`{"fields":{"a":"b"}}`), []byte(`[1,2]`)},
		Marker: "vigil-otherrun0001",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 {
		t.Errorf("Accepted = %d, want 1", res.Accepted)
	}
	var subjects []string
	for _, p := range res.Problems {
		subjects = append(subjects, p.Subject)
	}
	if want := []string{"events[1]", "events[2]", "events[3]"}; !slices.Equal(subjects, want) {
		t.Errorf("problem subjects %v, want %v (%v)", subjects, want, res.Problems)
	}
	if msg := res.Problems[1].Message; msg != "event has no time" {
		t.Errorf("problem of an event without time: %q", msg)
	}

	window := func(req plugin.RawEventsRequest) plugin.RawEventsRequest {
		req.Start, req.End = mustTime(t, "2026-08-20T10:00:00Z"), mustTime(t, "2026-08-20T10:01:00Z")
		return req
	}
	tests := []struct {
		name string
		req  plugin.RawEventsRequest
		want int
	}{
		{"marker of the first run", window(plugin.RawEventsRequest{Markers: []string{testMarker}}), 5},
		{"marker of the second run", window(plugin.RawEventsRequest{Markers: []string{"vigil-otherrun0001"}}), 1},
		{"both markers", window(plugin.RawEventsRequest{Markers: []string{testMarker, "vigil-otherrun0001"}}), 6},
		{"host filter, short name", window(plugin.RawEventsRequest{Markers: []string{testMarker}, Hosts: []string{"TESTHOST.example.com"}}), 5},
		{"other host", window(plugin.RawEventsRequest{Markers: []string{testMarker}, Hosts: []string{"elsewhere"}}), 0},
		{"unknown marker", window(plugin.RawEventsRequest{Markers: []string{"vigil-nope"}}), 0},
		{"window before", plugin.RawEventsRequest{Markers: []string{testMarker}, Start: mustTime(t, "2026-08-20T09:00:00Z"), End: mustTime(t, "2026-08-20T09:59:00Z")}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.SearchRawEvents(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.want {
				t.Fatalf("%d events, want %d", len(evs), tc.want)
			}
			for i, e := range evs {
				if e.IngestedAt.IsZero() || e.Host != "testhost" || !slices.Contains(tc.req.Markers, e.Marker) {
					t.Errorf("event %d: %+v", i, e)
				}
				var ev telemetry.Event
				if err := json.Unmarshal(e.Raw, &ev); err != nil || !ev.Time.Equal(e.Timestamp) {
					t.Errorf("event %d: Raw %s does not decode to an event at %s: %v", i, e.Raw, e.Timestamp, err)
				}
				if i > 0 && e.Timestamp.Before(evs[i-1].Timestamp) {
					t.Errorf("events not sorted by time")
				}
			}
		})
	}

	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"events": 6, "ingested": 6, "ingest_rejected": 3, "stored_events": 6} {
		if stats[k] != want {
			t.Errorf("stats[%s] = %d, want %d", k, stats[k], want)
		}
	}
	if stats["signals"] < 2 || stats["rules_loaded"] < 100 || stats["rules_skipped"] == 0 {
		t.Errorf("stats = %v: want signals >= 2, the SigmaHQ rules loaded and some skipped", stats)
	}
	if _, ok := stats["lost"]; ok {
		t.Errorf("replay mode reports sensor counters: %v", stats)
	}
}

func TestNativeQuery(t *testing.T) {
	s, _ := configured(t, `mode = "replay"`+"\n"+`sigmahq = false`)
	ctx := context.Background()
	exp := plugin.Expectation{
		ID: "m/0/local", Technique: "T1053.003", Marker: testMarker,
		Query: `
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: /crontab
        CommandLine|contains: '-l'
    condition: selection
`,
	}
	bad := plugin.Expectation{ID: "m/1/local", Technique: "T1007", Query: "logsource: {product: linux}\n"}
	res, err := s.Search(ctx, plugin.SearchRequest{
		Start: mustTime(t, "2026-08-20T10:00:00Z"), End: mustTime(t, "2026-08-20T10:01:00Z"),
		Expectations: []plugin.Expectation{exp, bad},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signals) != 1 {
		t.Fatalf("%d signals, want the query's one: %+v", len(res.Signals), res.Signals)
	}
	sg := res.Signals[0]
	if !slices.Equal(sg.MatchedExpectations, []string{exp.ID}) || sg.RuleID != exp.ID ||
		!sg.Timestamp.Equal(mustTime(t, "2026-08-20T10:00:00.5Z")) || !slices.Equal(sg.Techniques, []string{"T1053.003"}) {
		t.Errorf("query signal = %+v", sg)
	}
	if !slices.Contains(sg.MarkerValues, plugin.MarkerValue{Location: plugin.MarkerLogField, Value: testMarker}) {
		t.Errorf("query signal lacks the marker: %v", sg.MarkerValues)
	}

	probs, err := s.Check(ctx, plugin.CheckRequest{Expectations: []plugin.Expectation{
		exp, bad,
		{ID: "m/2/local", RuleID: "no-such-rule"},
		{ID: "m/3/local", Technique: "T1115"},                      // only SigmaHQ tags it: not loaded here
		{ID: "m/4/local", Technique: "T1115", Absent: true},        // absences are not checked
		{ID: "m/5/local", RuleName: "Crontab Enumeration"},         // not loaded
		{ID: "m/6/local", Query: "detection: [unclosed\n"},         // YAML error
		{ID: "m/7/local", Query: "- a\n- b\n"},                     // not a mapping
		{ID: "m/8/local", Query: "logsource: {}\ndetection: {}\n"}, // no condition
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range probs {
		got[p.Subject] = p.Message
	}
	want := map[string]string{
		"m/1/local": "query: no detection",
		"m/2/local": "no loaded Sigma rule has id no-such-rule",
		"m/3/local": "no loaded Sigma rule is tagged with T1115",
		"m/5/local": `no loaded Sigma rule has title "Crontab Enumeration"`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("problem of %s = %q, want %q", k, got[k], w)
		}
	}
	for _, k := range []string{"m/6/local", "m/7/local", "m/8/local"} {
		if !strings.HasPrefix(got[k], "query: ") {
			t.Errorf("problem of %s = %q, want a query problem", k, got[k])
		}
	}
	if _, ok := got["m/0/local"]; ok {
		t.Errorf("good query reported: %q", got["m/0/local"])
	}
	if _, ok := got["m/4/local"]; ok {
		t.Error("absence checked")
	}
}

func TestConfigure(t *testing.T) {
	abs, err := filepath.Abs("testdata/badrules")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     string
		wantErr string
	}{
		{"defaults in replay mode", `mode = "replay"`, ""},
		{"unknown keys", "mode = \"replay\"\nsigma_dir = []\nretension = \"1h\"", "local: config: unknown keys retension, sigma_dir (known: kubernetes_audit_logs, kubernetes_cluster, max_events, mode, record, retention, rules, sigma_dirs, sigmahq)"},
		{"bad mode", `mode = "offline"`, `local: config: mode "offline": want "live", "logs" or "replay"`},
		{"bad retention", "mode = \"replay\"\nretention = \"10ms\"", "local: config: retention 10ms is below 1s"},
		{"retention not a duration", "mode = \"replay\"\nretention = \"soon\"", "local: decode config: line 2: invalid duration"},
		{"max_events too large", "mode = \"replay\"\nmax_events = 20000000", "local: config: max_events 20000000 out of range (1..10000000)"},
		{"empty sigma dir", "mode = \"replay\"\nsigma_dirs = [\"\"]", "local: config: sigma_dirs[0] is empty"},
		{"own rules with a bad file", "mode = \"replay\"\nrules = \"testdata/badrules\"",
			"local: vigil's own Sigma rules: 1 files did not load: " + filepath.ToSlash(abs) + "/no_id.yml: missing id or title: rule has no id"},
		{"own rules dir missing", "mode = \"replay\"\nrules = \"testdata/nope\"", "local: vigil's own Sigma rules: sigma dir: stat "},
		{"record dir missing", "mode = \"replay\"\nrecord = \"/nonexistent/dir/rec.jsonl\"", "local: record: open /nonexistent/dir/rec.jsonl: no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := plugintest.SIEM(t, new(SIEM)).Configure(context.Background(), []byte(tc.cfg))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Configure: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Fatalf("Configure error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadProblemsAreNotFatal(t *testing.T) {
	s := new(SIEM)
	cfg := "mode = \"replay\"\nrules = \"none\"\nsigmahq = false\nsigma_dirs = [\"testdata/rules\", \"testdata/badrules\", \"testdata/missing\"]"
	if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	var got []string
	for _, p := range s.LoadProblems() {
		got = append(got, filepath.Base(p.Path)+": "+string(p.Reason))
	}
	want := []string{"not_a_rule.yml: not a Sigma rule", "no_id.yml: missing id or title", "missing: read error"}
	if !slices.Equal(got, want) {
		t.Errorf("LoadProblems = %v, want %v", got, want)
	}
	if n := len(s.Rules()); n != 2 {
		t.Errorf("%d rules loaded, want 2 (uname_probe, good)", n)
	}
	stats, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats["rules_loaded"] != 2 || stats["rules_skipped"] != 3 {
		t.Errorf("stats = %v", stats)
	}
}

func TestDuplicateRuleIDs(t *testing.T) {
	// vigil's own rules win over an extra directory's rule with the same id.
	dir := filepath.Join(t.TempDir(), "own")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/rules/uname_probe.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uname_probe.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := new(SIEM)
	cfg := "mode = \"replay\"\nsigmahq = false\nrules = \"" + dir + "\"\nsigma_dirs = [\"testdata/rules\"]"
	if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	var dup int
	for _, p := range s.LoadProblems() {
		if p.Reason == "duplicate id" {
			dup++
			if !strings.Contains(p.Detail, dir) {
				t.Errorf("duplicate detail %q does not name the own rule's file", p.Detail)
			}
		}
	}
	if dup != 1 || len(s.Rules()) != 1 {
		t.Errorf("%d duplicates and %d rules, want 1 and 1", dup, len(s.Rules()))
	}
}

func TestRecordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "record.jsonl")
	s, _ := configured(t, "mode = \"replay\"\nsigmahq = false\nrecord = \""+path+"\"")
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) != 5 {
		t.Fatalf("%d lines recorded, want 5", len(lines))
	}
	var ev telemetry.Event
	if err := json.Unmarshal(lines[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Get("CommandLine") != "crontab -l" || ev.Get(MarkerField) != testMarker || !ev.Time.Equal(mustTime(t, "2026-08-20T10:00:00.5Z")) {
		t.Errorf("first recorded event = %+v", ev)
	}
	// Signals stay searchable after Close.
	res, err := s.Search(context.Background(), plugin.SearchRequest{})
	if err != nil {
		t.Fatalf("Search after Close: %v", err)
	}
	_ = res
}

func TestSensorUnavailableIsReturnedUnchanged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("needs a non-root user: as root the sensor can start")
	}
	err := new(SIEM).Configure(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "vigil run --replay") {
		t.Fatalf("Configure as non-root: %v, want the sensor's ErrUnavailable pointing to vigil run --replay", err)
	}
	if !errors.Is(err, sensor.ErrUnavailable) {
		t.Errorf("error %v does not wrap sensor.ErrUnavailable", err)
	}
}
