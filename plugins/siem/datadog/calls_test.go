package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/ddfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// testRules are the fake's rules: a few named ones among many (the
// listing takes several pages).
func testRules() []ddfake.Rule {
	rules := []ddfake.Rule{
		{ID: "abc-def-ghi", Name: "Cron Job Created", Enabled: true, Tags: []string{"tactic:TA0003-persistence", "technique:T1053-scheduled-task-job", "technique:T1053.003-cron", "source:auditd"}},
		{ID: "dis-abl-ed1", Name: "Disabled Rule", Enabled: false, Tags: []string{"technique:T1110-brute-force"}},
		{ID: "del-ete-d01", Name: "Deleted Rule", Enabled: true, Deleted: true},
	}
	for i := 0; i < 230; i++ {
		rules = append(rules, ddfake.Rule{ID: fmt.Sprintf("fil-ler-%03d", i), Name: fmt.Sprintf("Filler %d", i), Enabled: true})
	}
	rules = append(rules, ddfake.Rule{ID: "las-tpa-ge1", Name: "On The Last Page", Enabled: true, Tags: []string{"technique:t1003.008-etc-passwd-and-etc-shadow"}})
	return rules
}

func TestCheck(t *testing.T) {
	srv := newFake(t, ddfake.Options{Rules: testRules()})
	s, _ := configured(t, srv, `query = "env:prod"`, nil)
	probs, err := s.Check(context.Background(), plugin.CheckRequest{Expectations: []plugin.Expectation{
		{ID: "t1/0", Technique: "T1053.003"},
		{ID: "t2/0", RuleName: "cron job created"},
		{ID: "t3/0", RuleID: "dis-abl-ed1"},
		{ID: "t4/0", RuleName: "No Such Rule"},
		{ID: "t5/0", RuleID: "del-ete-d01"},
		{ID: "t6/0", RuleName: "On The Last Page"},
		{ID: "t7/0", RuleID: "abc-def-ghi", RuleName: "Another Name"},
		{ID: "t8/0", Query: `@workflow.rule.name:"Cron Job Created"`},
		{ID: "t9/0", Query: `@workflow.rule.name:"unterminated`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{
		`t9/0: Datadog refused the query "@workflow.rule.name:\"unterminated": 400 Bad Request: filter.query: unterminated quote in "(env:prod) AND (@workflow.rule.name:\"unterminated)"`,
		`t3/0: Datadog detection rule "dis-abl-ed1" is disabled`,
		`t4/0: no Datadog detection rule "No Such Rule"`,
		`t5/0: Datadog detection rule "del-ete-d01" is deleted`,
		`t7/0: no Datadog detection rule "abc-def-ghi (Another Name)"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Rules listed once, page by page (234 rules by 100).
	if n := srv.Count(http.MethodGet, ddfake.PathRules); n != 3 {
		t.Errorf("%d rules requests, want 3", n)
	}
}

func TestCheckKeys(t *testing.T) {
	t.Run("rejected keys are a problem without the keys", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		s := plugintest.SIEM(t, new(SIEM))
		cfg := fmt.Sprintf("url = %q\napi_key = \"wrong-api-key-123456\"\napp_key = \"wrong-app-key-654321\"", srv.URL)
		if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
			t.Fatal(err)
		}
		probs, err := s.Check(context.Background(), plugin.CheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) != 1 || probs[0].Subject != "api_key/app_key" || !strings.Contains(probs[0].Message, "403 Forbidden: Forbidden") {
			t.Fatalf("problems %v", probs)
		}
		if strings.Contains(probs[0].String(), "wrong-api-key") || strings.Contains(probs[0].String(), "wrong-app-key") {
			t.Fatalf("problem leaks a key: %v", probs[0])
		}
	})
	t.Run("a key without signals read is a problem", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		srv.SetFault(func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path == ddfake.PathSignalsSearch {
				return &ddfake.Answer{Status: 403, Body: `{"errors":["Forbidden"]}`}
			}
			return nil
		})
		s, _ := configured(t, srv, "", nil)
		probs, err := s.Check(context.Background(), plugin.CheckRequest{})
		if err != nil || len(probs) != 1 || probs[0].Subject != "app_key" || !strings.Contains(probs[0].Message, "security_monitoring_signals_read") {
			t.Fatalf("Check = %v, %v", probs, err)
		}
	})
	t.Run("an unreachable Datadog is an error", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		s, _ := configured(t, srv, "max_retries = 0", nil)
		srv.Close()
		_, err := s.Check(context.Background(), plugin.CheckRequest{})
		if err == nil || !strings.Contains(err.Error(), "datadog: list rules:") {
			t.Fatalf("Check error = %v", err)
		}
	})
}

func TestRules(t *testing.T) {
	srv := newFake(t, ddfake.Options{Rules: testRules()})
	_, impl := configured(t, srv, "", nil)
	rules, err := impl.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 234 {
		t.Fatalf("%d rules, want 234", len(rules))
	}
	byID := map[string]Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	tests := []struct {
		id                  string
		enabled             bool
		techniques, tactics []string
	}{
		{id: "abc-def-ghi", enabled: true, techniques: []string{"T1053", "T1053.003"}, tactics: []string{"TA0003"}},
		{id: "dis-abl-ed1", techniques: []string{"T1110"}},
		{id: "las-tpa-ge1", enabled: true, techniques: []string{"T1003.008"}},
	}
	for _, tc := range tests {
		r := byID[tc.id]
		if r.Enabled != tc.enabled || !slices.Equal(r.Techniques, tc.techniques) || !slices.Equal(r.Tactics, tc.tactics) {
			t.Errorf("rule %s = %+v", tc.id, r)
		}
	}
	if _, err := new(SIEM).Rules(context.Background()); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("Rules before Configure: %v", err)
	}
}

func TestCloseSignals(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	setup := func(t *testing.T, extra string) (*ddfake.Server, plugin.SIEM) {
		srv := newFake(t, ddfake.Options{})
		for _, id := range []string{"sig-1", "sig-2", "sig-3"} {
			srv.AddSignal(ddfake.Signal{ID: id, Timestamp: at, RuleName: "R"})
		}
		s, _ := configured(t, srv, extra, nil)
		return srv, s
	}
	t.Run("disabled by default", func(t *testing.T) {
		srv, s := setup(t, "")
		err := s.CloseSignals(context.Background(), plugin.CloseSignalsRequest{SignalIDs: []string{"sig-1"}})
		if err == nil || !strings.Contains(err.Error(), "datadog: close signals: archiving signals is disabled (set close_signals = true") {
			t.Fatalf("err = %v", err)
		}
		if len(srv.Archived()) != 0 {
			t.Fatal("archived while disabled")
		}
	})
	t.Run("archives with the reason", func(t *testing.T) {
		srv, s := setup(t, "close_signals = true")
		err := s.CloseSignals(context.Background(), plugin.CloseSignalsRequest{SignalIDs: []string{"sig-1", "sig-3"}, Reason: "testing or maintenance (vigil vigil-0123456789ab)"})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.Archived(); fmt.Sprint(got) != "map[sig-1:testing_or_maintenance sig-3:testing_or_maintenance]" {
			t.Fatalf("archived %v", got)
		}
		var body struct {
			Data struct {
				Attributes struct{ State, ArchiveReason, ArchiveComment string } `json:"attributes"`
				Type       string
			}
		}
		for _, r := range srv.Requests() {
			if r.Method != http.MethodPatch {
				continue
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			if r.Path != "/api/v2/security_monitoring/signals/sig-1/state" && r.Path != "/api/v2/security_monitoring/signals/sig-3/state" {
				t.Errorf("path %s", r.Path)
			}
		}
		raw := srv.Requests()[0].Body
		if !strings.Contains(string(raw), `"archive_reason":"testing_or_maintenance"`) || !strings.Contains(string(raw), `"archive_comment":"testing or maintenance (vigil vigil-0123456789ab)"`) ||
			!strings.Contains(string(raw), `"state":"archived"`) || !strings.Contains(string(raw), `"type":"signal_metadata"`) {
			t.Errorf("body %s", raw)
		}
		// Archived signals show their triage state in searches.
		res, err := s.Search(context.Background(), plugin.SearchRequest{Start: at.Add(-time.Second), End: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		archived := 0
		for _, sg := range res.Signals {
			if strings.Contains(string(sg.Raw), `"state":"archived"`) {
				archived++
			}
		}
		if archived != 2 {
			t.Errorf("%d signals archived in the search answer, want 2", archived)
		}
	})
	t.Run("an unknown signal is named, the others archived", func(t *testing.T) {
		srv, s := setup(t, "close_signals = true")
		err := s.CloseSignals(context.Background(), plugin.CloseSignalsRequest{SignalIDs: []string{"sig-1", "nope", "sig-2"}})
		if err == nil || !strings.Contains(err.Error(), "datadog: close signals: 1 of 3 not archived (nope): datadog: archive signal nope: 404 Not Found: Signal not found") {
			t.Fatalf("err = %v", err)
		}
		if len(srv.Archived()) != 2 {
			t.Fatalf("archived %v", srv.Archived())
		}
	})
}

// replayLine is one event of vigil's recorded telemetry (the local
// SIEM's format), marked with m.
func replayLine(at time.Time, host, m string) []byte {
	return []byte(fmt.Sprintf(`{"time":%q,"host":%q,"logsource":{"product":"linux","category":"process_creation"},`+
		`"fields":{"Image":"/usr/bin/crontab","CommandLine":"crontab -l","ParentCommandLine":"/bin/sh -c crontab -l; true %s"},`+
		`"ancestry":["crontab -l","/bin/sh -c crontab -l; true %s"]}`, at.UTC().Format(time.RFC3339Nano), host, m, m))
}

func TestIngest(t *testing.T) {
	const m = "vigil-00112233aabb"
	clk := newClock()
	now := clk.now()
	srv := newFake(t, ddfake.Options{Now: clk.now})
	s, _ := configured(t, srv, "ingest_tags = [\"env:lab\"]", clk.use)

	events := [][]byte{
		replayLine(now.Add(-48*time.Hour), "lab-1", m),
		replayLine(now.Add(-48*time.Hour+10*time.Second), "lab-1", m),
		[]byte(`{"message":"sshd[42]: Accepted publickey for root","host":"lab-2","ddsource":"sshd","status":"info","usr":{"name":"root"}}`),
		[]byte(`not json`),
		[]byte(`{"message":"` + strings.Repeat("x", MaxEntryBytes) + `"}`),
	}
	res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events, Marker: m})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || len(res.Problems) != 2 || res.Problems[0].Subject != "events[3]" || !strings.Contains(res.Problems[1].Message, "above the intake's 1 MB per log") {
		t.Fatalf("Ingest = %+v", res)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != ddfake.PathIntake || reqs[0].Header.Get("Content-Encoding") != "gzip" ||
		reqs[0].Header.Get("DD-API-KEY") != testAPIKey || reqs[0].Header.Get("DD-APPLICATION-KEY") != "" {
		t.Fatalf("requests %+v", reqs)
	}
	var items []map[string]any
	if err := json.Unmarshal(reqs[0].Body, &items); err != nil || len(items) != 3 {
		t.Fatalf("intake body: %v (%d items)", err, len(items))
	}
	first, second, generic := items[0], items[1], items[2]
	for k, want := range map[string]any{
		"ddsource": "linux", "service": "vigil-replay", "hostname": "lab-1", "ddtags": "vigil_marker:" + m + ",env:lab",
		"message": "linux/process_creation: crontab -l",
		// 48h old: shifted so that the latest event happens now, keeping
		// the 10s between them.
		"timestamp": now.Add(-10 * time.Second).Format(time.RFC3339Nano),
	} {
		if first[k] != want {
			t.Errorf("first[%s] = %v, want %v", k, first[k], want)
		}
	}
	if second["timestamp"] != now.Format(time.RFC3339Nano) {
		t.Errorf("second timestamp %v, want %v", second["timestamp"], now.Format(time.RFC3339Nano))
	}
	if fmt.Sprint(first["vigil"]) != "map[marker:"+m+"]" || fmt.Sprint(path(asMap(first), "process", "command_line")) != "crontab -l" ||
		fmt.Sprint(path(asMap(first), "sigma", "logsource", "category")) != "process_creation" ||
		fmt.Sprint(path(asMap(first), "sigma", "fields", "Image")) != "/usr/bin/crontab" {
		t.Errorf("first attributes %v", first)
	}
	if generic["ddsource"] != "sshd" || generic["hostname"] != "lab-2" || generic["message"] != "sshd[42]: Accepted publickey for root" ||
		fmt.Sprint(generic["usr"]) != "map[name:root]" || generic["status"] != "info" {
		t.Errorf("generic event %v", generic)
	}

	// Raw-event search finds the replayed logs by marker.
	evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: now.Add(-time.Minute), End: now, Markers: []string{m, "vigil-ffffffffffff"}})
	if err != nil {
		t.Fatal(err)
	}
	// Every event of the injection carries its marker, the generic one too.
	if len(evs) != 3 || evs[0].Marker != m || evs[0].Host != "lab-1" || !evs[0].Timestamp.Equal(now.Add(-10*time.Second)) || !evs[1].Timestamp.Equal(now) {
		for _, e := range evs {
			t.Logf("raw event %s %s %s", e.Marker, e.Host, e.Timestamp)
		}
		t.Fatalf("%d raw events, want 3", len(evs))
	}
}

func TestIngestBatches(t *testing.T) {
	tests := []struct {
		name    string
		n, size int
		batches []int
	}{
		{name: "1,000 entries per payload", n: 2500, size: 10, batches: []int{1000, 1000, 500}},
		{name: "5 MB per payload", n: 20, size: 600_000, batches: []int{8, 8, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, ddfake.Options{})
			// Directly: the payload exceeds what one gRPC message holds.
			_, s := configured(t, srv, "", nil)
			var events [][]byte
			for i := 0; i < tc.n; i++ {
				events = append(events, []byte(fmt.Sprintf(`{"message":"e%d %s"}`, i, strings.Repeat("y", tc.size))))
			}
			res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events, Marker: "vigil-0123456789ab"})
			if err != nil || res.Accepted != tc.n || len(res.Problems) != 0 {
				t.Fatalf("Ingest = %+v, %v", res, err)
			}
			var got []int
			for _, r := range srv.Requests() {
				var items []json.RawMessage
				if err := json.Unmarshal(r.Body, &items); err != nil {
					t.Fatal(err)
				}
				if len(r.Body) > MaxIntakeBytes {
					t.Errorf("payload of %d bytes", len(r.Body))
				}
				got = append(got, len(items))
			}
			if !slices.Equal(got, tc.batches) {
				t.Errorf("batches %v, want %v", got, tc.batches)
			}
			if srv.Logs() != tc.n {
				t.Errorf("fake holds %d logs", srv.Logs())
			}
		})
	}
}

func TestIngestFailures(t *testing.T) {
	events := [][]byte{[]byte(`{"message":"a"}`)}
	t.Run("a refused first batch is an error without the key", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		s := plugintest.SIEM(t, new(SIEM))
		cfg := fmt.Sprintf("url = %q\napi_key = \"bad-api-key-99999999\"\napp_key = %q", srv.URL, testAppKey)
		if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
			t.Fatal(err)
		}
		_, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events})
		if err == nil || !strings.Contains(err.Error(), "datadog: submit logs: 403 Forbidden") || strings.Contains(err.Error(), "bad-api-key") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("503 is retried", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		srv.SetFault(func(_ ddfake.Request, n int) *ddfake.Answer {
			if n == 1 {
				return &ddfake.Answer{Status: 503, Body: `{"errors":[{"status":"503","title":"Service Unavailable"}]}`}
			}
			return nil
		})
		clk := newClock()
		s, _ := configured(t, srv, "", clk.use)
		res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events})
		if err != nil || res.Accepted != 1 || srv.Logs() != 1 {
			t.Fatalf("Ingest = %+v, %v", res, err)
		}
	})
	t.Run("a later refused batch is a problem", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		srv.SetFault(func(_ ddfake.Request, n int) *ddfake.Answer {
			if n == 2 {
				return &ddfake.Answer{Status: 413, Body: `{"errors":[{"status":"413","title":"Payload Too Large"}]}`}
			}
			return nil
		})
		s, _ := configured(t, srv, "", nil)
		var many [][]byte
		for i := 0; i < 1500; i++ {
			many = append(many, []byte(`{"message":"m"}`))
		}
		res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: many})
		if err != nil || res.Accepted != 1000 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "500 events not sent: datadog: submit logs: 413 Request Entity Too Large: Payload Too Large") {
			t.Fatalf("Ingest = %+v, %v", res, err)
		}
	})
}

func TestSearchRawEventsQuery(t *testing.T) {
	srv := newFake(t, ddfake.Options{})
	s, _ := configured(t, srv, "logs_query = \"source:auditd\"\nlogs_indexes = [\"main\", \"security\"]", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: start, End: start.Add(time.Minute), Markers: []string{"vigil-aaaaaaaaaaaa", "vigil-bbbbbbbbbbbb"}}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Filter struct {
			From, To, Query string
			Indexes         []string
		}
		Page struct{ Limit int }
		Sort string
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != ddfake.PathLogsSearch {
		t.Fatalf("requests %+v", reqs)
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := `(source:auditd) AND ((@vigil.marker:"vigil-aaaaaaaaaaaa" OR "vigil-aaaaaaaaaaaa" OR @vigil.marker:"vigil-bbbbbbbbbbbb" OR "vigil-bbbbbbbbbbbb"))`
	if body.Filter.Query != want || body.Filter.From != "2026-03-01T11:59:00Z" || body.Filter.To != "2026-03-01T12:02:00Z" ||
		!slices.Equal(body.Filter.Indexes, []string{"main", "security"}) || body.Page.Limit != 1000 || body.Sort != "timestamp" {
		t.Errorf("body %+v\nquery %s", body, body.Filter.Query)
	}
}

// Raw-event search pages through Datadog's cursor.
func TestSearchRawEventsPages(t *testing.T) {
	const m = "vigil-0000000000aa"
	srv := newFake(t, ddfake.Options{})
	s, _ := configured(t, srv, "", nil)
	now := time.Now()
	var events [][]byte
	for i := 0; i < 1500; i++ {
		events = append(events, replayLine(now.Add(time.Duration(i)*time.Millisecond), "lab-1", m))
	}
	if res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events, Marker: m}); err != nil || res.Accepted != 1500 {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: now, End: now.Add(2 * time.Second), Markers: []string{m}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1500 || !sort.SliceIsSorted(evs, func(i, j int) bool { return evs[i].Timestamp.Before(evs[j].Timestamp) }) {
		t.Fatalf("%d raw events", len(evs))
	}
	if n := srv.Count(http.MethodPost, ddfake.PathLogsSearch); n != 3 {
		t.Errorf("%d logs searches, want 3 (1000, 500, empty)", n)
	}
}

// Raw events stay within what one gRPC answer carries: big logs, and logs
// past the budget, come back as summaries with their time.
func TestSearchRawEventsBounded(t *testing.T) {
	const m = "vigil-0000000000bb"
	srv := newFake(t, ddfake.Options{})
	s, impl := configured(t, srv, "", nil)
	now := time.Now()
	var events [][]byte
	events = append(events, []byte(fmt.Sprintf(`{"message":"huge %s","timestamp":%q}`, strings.Repeat("z", 100<<10), now.UTC().Format(time.RFC3339Nano))))
	for i := 1; i < 400; i++ {
		events = append(events, []byte(fmt.Sprintf(`{"message":"e%d %s","timestamp":%q}`, i, strings.Repeat("w", 10<<10), now.Add(time.Duration(i)*time.Millisecond).UTC().Format(time.RFC3339Nano))))
	}
	if res, err := impl.Ingest(context.Background(), plugin.IngestRequest{Events: events, Marker: m}); err != nil || res.Accepted != 400 {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: now, End: now.Add(time.Second), Markers: []string{m}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 400 {
		t.Fatalf("%d raw events, want 400", len(evs))
	}
	total, summaries := 0, 0
	for _, e := range evs {
		total += len(e.Raw)
		if strings.Contains(string(e.Raw), `"vigil_truncated":true`) {
			summaries++
		}
		if e.Timestamp.IsZero() {
			t.Fatal("raw event without time")
		}
	}
	if !strings.Contains(string(evs[0].Raw), `"vigil_truncated":true`) || !evs[0].Timestamp.Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("the huge log: %.200s at %s", evs[0].Raw, evs[0].Timestamp)
	}
	if total > maxRawEventsBytes+400*200 || summaries < 100 {
		t.Errorf("%d bytes of raw logs, %d summaries", total, summaries)
	}
}

// A replayed CloudTrail record goes to the logs intake as Datadog's AWS
// integration forwards it: source cloudtrail, the record's keys as
// attributes, whatever ingest_source says.
func TestIngestCloudTrail(t *testing.T) {
	raw, err := os.ReadFile("../../../core/telemetry/testdata/replayed-stop-logging.json")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Config{IngestSource: "vigil", IngestTags: []string{"env:lab"}}.toLog(raw, "vigil-0123456789ab", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	it := pl.item
	ui, _ := it.Attributes["userIdentity"].(map[string]any)
	evt, _ := it.Attributes["evt"].(map[string]any)
	if it.Source != "cloudtrail" || it.Service != "cloudtrail" || it.Hostname != "replay-host" || it.Message != "cloudtrail.amazonaws.com StopLogging" ||
		it.Attributes["eventName"] != "StopLogging" || evt["name"] != "StopLogging" || ui["arn"] != "arn:aws:iam::111122223333:user/ci" ||
		it.Tags != "vigil_marker:vigil-0123456789ab,env:lab" || !pl.stamped || !pl.at.Equal(time.Date(2026, 12, 7, 10, 0, 0, 250e6, time.UTC)) {
		t.Errorf("log %+v at %v", it, pl.at)
	}
	if _, ok := it.Attributes["sigma"]; ok {
		t.Error("a CloudTrail log carries sigma attributes: it is not vigil's format")
	}
}
