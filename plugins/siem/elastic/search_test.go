package elastic

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/elasticfake"
)

// t0 is the fixed injection time of the search tests.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// withFields returns doc with top-level keys set.
func withFields(t testing.TB, doc []byte, kv map[string]any) []byte {
	t.Helper()
	m, err := decodeDoc(doc)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ms(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// collect reads every page of a search.
func collect(t *testing.T, s plugin.SIEM, req plugin.SearchRequest) ([]plugin.Signal, int) {
	t.Helper()
	var all []plugin.Signal
	pages := 0
	for {
		res, err := s.Search(context.Background(), req)
		if err != nil {
			t.Fatalf("Search page %d: %v", pages+1, err)
		}
		pages++
		all = append(all, res.Signals...)
		if res.NextPageToken == "" {
			return all, pages
		}
		if pages > 20 {
			t.Fatal("endless paging")
		}
		req.PageToken = res.NextPageToken
	}
}

func ids(sigs []plugin.Signal) []string {
	out := make([]string, len(sigs))
	for i, s := range sigs {
		out[i] = s.ID
	}
	return out
}

func TestSearch8x(t *testing.T) {
	f := elasticfake.New(t)
	const idx = ".alerts-security.alerts-default"
	f.Add(idx, "alert-ok", alert8x(t, "alert-ok", t0.Add(1500*time.Millisecond), testMarker), time.Time{})
	f.Add(idx, "alert-bb", withFields(t, alert8x(t, "alert-bb", t0.Add(2*time.Second), testMarker),
		map[string]any{"kibana.alert.building_block_type": "default"}), time.Time{})
	f.Add(idx, "alert-early", alert8x(t, "alert-early", t0.Add(-5*time.Second), testMarker), time.Time{})
	f.Add(idx, "alert-late", alert8x(t, "alert-late", t0.Add(time.Minute), testMarker), time.Time{})
	s, _ := configured(t, f, esConfig(f, false))

	end := t0.Add(10*time.Second + 300*time.Microsecond)
	res, err := s.Search(context.Background(), plugin.SearchRequest{
		Start: t0, End: end,
		Expectations: []plugin.Expectation{{ID: "e1", Technique: "T1059.004", Marker: testMarker, Host: testHost, NotBefore: t0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Signals); !slices.Equal(got, []string{"alert-ok"}) || res.NextPageToken != "" {
		t.Fatalf("signals %v token %q: want only alert-ok (building block, before and after the window left out)", got, res.NextPageToken)
	}
	sig := res.Signals[0]
	want := plugin.Signal{
		ID: "alert-ok", RuleName: "Unix Shell Execution With Run Marker", RuleID: "7f3c1d2e-vigil-test-rule-0001",
		Techniques: []string{"T1059.004"}, Timestamp: t0.Add(1500 * time.Millisecond), EventTime: t0.Add(1100 * time.Millisecond),
		Host: testHost, Severity: "medium",
	}
	if sig.ID != want.ID || sig.RuleName != want.RuleName || sig.RuleID != want.RuleID || !slices.Equal(sig.Techniques, want.Techniques) ||
		!sig.Timestamp.Equal(want.Timestamp) || !sig.EventTime.Equal(want.EventTime) || sig.Host != want.Host || sig.Severity != want.Severity {
		t.Errorf("signal = %+v\nwant    %+v", sig, want)
	}
	var cmd []string
	for _, mv := range sig.MarkerValues {
		if mv.Location == plugin.MarkerCommandLine {
			cmd = append(cmd, mv.Value)
		}
	}
	wantCmd := []string{"bash -c 'echo " + testMarker + " > /tmp/" + testMarker + "/out'", "bash -c echo " + testMarker + " > /tmp/" + testMarker + "/out", "sh -c run-test"}
	if !slices.Equal(cmd, wantCmd) {
		t.Errorf("command-line marker values %q, want %q", cmd, wantCmd)
	}
	var raw map[string]any
	if err := json.Unmarshal(sig.Raw, &raw); err != nil || raw["kibana.alert.uuid"] != "alert-ok" {
		t.Errorf("Raw is not the alert document: %v %.100s", err, sig.Raw)
	}

	reqs := f.Requests("POST /.alerts-security.alerts-default/_search")
	if len(reqs) != 1 {
		t.Fatalf("%d search requests, want 1", len(reqs))
	}
	if got := reqs[0].Query.Get("allow_partial_search_results"); got != "false" {
		t.Errorf("allow_partial_search_results = %q, want false", got)
	}
	if got := reqs[0].Header.Get("Authorization"); got != "APIKey "+testKeyEncoded {
		t.Errorf("Authorization = %q", got)
	}
	jsonEqual(t, reqs[0].Body, `{
		"size": 500, "track_total_hits": false,
		"sort": [{"@timestamp": {"order": "asc"}}, {"kibana.alert.uuid": {"order": "asc", "unmapped_type": "keyword"}}],
		"query": {"bool": {
			"filter": [{"range": {"@timestamp": {"gte": "2024-05-01T12:00:00.000Z", "lte": "2024-05-01T12:00:10.001Z", "format": "strict_date_optional_time"}}}],
			"must_not": [{"exists": {"field": "kibana.alert.building_block_type"}}, {"exists": {"field": "signal.rule.building_block_type"}}]
		}}}`)
}

func TestSearch7x(t *testing.T) {
	f := elasticfake.New(t)
	const idx = ".siem-signals-default"
	doc := fixture(t, "alert-7x.json", map[string]string{
		"timestamp": ms(t0.Add(3 * time.Second)), "original_time": ms(t0.Add(time.Second)), "host": testHost, "marker": testMarker,
	})
	f.Add(idx, "7x-signal-1", doc, time.Time{})
	s, _ := configured(t, f, esConfig(f, false, `index = ".siem-signals-default"`))
	res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signals) != 1 {
		t.Fatalf("signals %v", ids(res.Signals))
	}
	sig := res.Signals[0]
	if sig.ID != "7x-signal-1" || sig.RuleName != "Shadow File Read" || sig.RuleID != "4c3d2e1f-vigil-7x-rule-0002" ||
		!slices.Equal(sig.Techniques, []string{"T1003.008"}) || !sig.Timestamp.Equal(t0.Add(3*time.Second)) ||
		!sig.EventTime.Equal(t0.Add(time.Second)) || sig.Host != testHost || sig.Severity != "high" {
		t.Errorf("signal = %+v", sig)
	}
	if !slices.Contains(sig.MarkerValues, plugin.MarkerValue{Location: plugin.MarkerCommandLine, Value: "cat /etc/shadow " + testMarker, Field: "process.args"}) ||
		!slices.Contains(sig.MarkerValues, plugin.MarkerValue{Location: plugin.MarkerFilePath, Value: "/etc/shadow", Field: "file.path"}) {
		t.Errorf("marker values %v", sig.MarkerValues)
	}
	reqs := f.Requests("/_search")
	var body struct {
		Sort []map[string]any `json:"sort"`
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || len(body.Sort) != 2 || body.Sort[1]["_id"] == nil {
		t.Errorf("7.x sort %s: want @timestamp then _id (no alert ID field in that layout)", reqs[0].Body)
	}
}

// sevenAlerts stores 7 alerts, three sharing a timestamp, in index, and
// returns their IDs in (timestamp, ID) order.
func sevenAlerts(t *testing.T, f *elasticfake.Fake, idx string) []string {
	stamps := []struct {
		id string
		at time.Duration
	}{{"c", 0}, {"a", 0}, {"b", 0}, {"e", time.Millisecond}, {"d", time.Millisecond}, {"g", 2 * time.Millisecond}, {"f", 2 * time.Millisecond}}
	for _, x := range stamps {
		f.Add(idx, x.id, alert8x(t, x.id, t0.Add(time.Second+x.at), testMarker), time.Time{})
	}
	return []string{"a", "b", "c", "d", "e", "f", "g"}
}

func TestSearchPaging(t *testing.T) {
	f := elasticfake.New(t)
	want := sevenAlerts(t, f, ".alerts-security.alerts-default")
	s, _ := configured(t, f, esConfig(f, false))
	sigs, pages := collect(t, s, plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), PageSize: 3})
	if got := ids(sigs); !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("ids %v in %d pages, want %v in 3 (each once, in order)", got, pages, want)
	}
	reqs := f.Requests("/_search")
	var second struct {
		SearchAfter []any `json:"search_after"`
		Size        int   `json:"size"`
	}
	if err := json.Unmarshal(reqs[1].Body, &second); err != nil {
		t.Fatal(err)
	}
	wantAfter := []any{float64(t0.Add(time.Second).UnixMilli()), "c"}
	if second.Size != 3 || fmt.Sprint(second.SearchAfter) != fmt.Sprint(wantAfter) {
		t.Errorf("second page: size %d search_after %v, want 3 and %v", second.Size, second.SearchAfter, wantAfter)
	}
}

func TestSearchPageCutByBytes(t *testing.T) {
	f := elasticfake.New(t)
	big := strings.Repeat("x", 1200<<10)
	for _, id := range []string{"big1", "big2"} {
		f.Add(".alerts-security.alerts-default", id, withFields(t, alert8x(t, id, t0.Add(time.Second), testMarker), map[string]any{"message": big}), time.Time{})
	}
	s, _ := configured(t, f, esConfig(f, false))
	res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signals) != 1 || res.NextPageToken == "" {
		t.Fatalf("first page: %v token %q, want one alert and a token (2 MiB per page)", ids(res.Signals), res.NextPageToken)
	}
	if !strings.Contains(string(res.Signals[0].Raw), `"truncated_bytes"`) {
		t.Errorf("Raw of a 1.2 MiB alert not cut: %.80s", res.Signals[0].Raw)
	}
	res2, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), PageToken: res.NextPageToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(append(res.Signals, res2.Signals...)); !slices.Equal(got, []string{"big1", "big2"}) || res2.NextPageToken != "" {
		t.Errorf("pages %v, last token %q", got, res2.NextPageToken)
	}
}

func TestSearchThroughKibana(t *testing.T) {
	f := elasticfake.New(t)
	want := sevenAlerts(t, f, ".alerts-security.alerts-soc")
	f.SetAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("vigil:hunter2")))
	s, _ := configured(t, f, `kibana_url = "`+f.KibanaURL()+`/"`+"\nusername = \"vigil\"\npassword = \"hunter2\"\nspace = \"soc\"")
	sigs, pages := collect(t, s, plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), PageSize: 3})
	if got := ids(sigs); !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("ids %v in %d pages, want %v in 3", got, pages, want)
	}
	reqs := f.Requests("POST /s/soc/api/detection_engine/signals/search")
	if len(reqs) != 3 || len(f.Requests("_search")) != 0 {
		t.Fatalf("%d Kibana searches, %d direct ones", len(reqs), len(f.Requests("_search")))
	}
	for _, r := range reqs {
		if r.Header.Get("Kbn-Xsrf") != "true" || r.Header.Get("X-Elastic-Product") != "" {
			t.Errorf("headers %v", r.Header)
		}
		if strings.Contains(string(r.Body), "search_after") {
			t.Errorf("search_after sent to Kibana, which drops it: %s", r.Body)
		}
	}
	var second struct {
		Query struct {
			Bool struct {
				Filter []json.RawMessage `json:"filter"`
			} `json:"bool"`
		} `json:"query"`
	}
	if err := json.Unmarshal(reqs[1].Body, &second); err != nil || len(second.Query.Bool.Filter) != 2 {
		t.Fatalf("second page filter: %v %s", err, reqs[1].Body)
	}
	tsms := t0.Add(time.Second).UnixMilli()
	jsonEqual(t, second.Query.Bool.Filter[1], fmt.Sprintf(`{"bool": {"minimum_should_match": 1, "should": [
		{"range": {"@timestamp": {"gt": %d, "format": "epoch_millis"}}},
		{"bool": {"filter": [{"range": {"@timestamp": {"gte": %d, "lte": %d, "format": "epoch_millis"}}}, {"range": {"kibana.alert.uuid": {"gt": "c"}}}]}}]}}`, tsms, tsms, tsms))
}

func TestSearchNativeQueries(t *testing.T) {
	f := elasticfake.New(t)
	f.Add(".alerts-security.alerts-default", "q1", alert8x(t, "q1", t0.Add(time.Second), testMarker), time.Time{})
	s, _ := configured(t, f, esConfig(f, false))
	res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), Expectations: []plugin.Expectation{
		{ID: "m/0/elastic", Query: `process.name:bash`},
		{ID: "m/1/elastic", Query: `{"query": {"term": {"host.name": "` + testHost + `"}}}`},
		{ID: "m/2/elastic", Query: `process.name:python`},
		{ID: "m/3/elastic", Technique: "T1059"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signals) != 1 {
		t.Fatalf("signals %v", ids(res.Signals))
	}
	got := res.Signals[0].MatchedExpectations
	sort.Strings(got)
	if !slices.Equal(got, []string{"m/0/elastic", "m/1/elastic"}) {
		t.Errorf("MatchedExpectations = %v", got)
	}
	var body struct {
		Query struct {
			Bool map[string]json.RawMessage `json:"bool"`
		} `json:"query"`
	}
	reqs := f.Requests("/_search")
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, body.Query.Bool["should"], `[
		{"query_string": {"query": "process.name:bash", "_name": "m/0/elastic"}},
		{"bool": {"filter": [{"term": {"host.name": "`+testHost+`"}}], "_name": "m/1/elastic"}},
		{"query_string": {"query": "process.name:python", "_name": "m/2/elastic"}}]`)
	jsonEqual(t, body.Query.Bool["minimum_should_match"], `0`)

	if _, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute),
		Expectations: []plugin.Expectation{{ID: "bad", Query: `{"term": `}}}); err == nil || !strings.Contains(err.Error(), "expectation bad: native query: not a JSON query DSL object") {
		t.Errorf("malformed DSL: %v", err)
	}
}

func TestSearchFailures(t *testing.T) {
	const path = "POST /.alerts-security.alerts-default/_search"
	tests := []struct {
		name     string
		setup    func(f *elasticfake.Fake)
		cfg      string
		token    string
		wantErr  []string
		attempts int
		// denied: the error is plugin.ErrDenied, so the engine stops asking.
		denied bool
	}{
		{name: "429 persists", setup: func(f *elasticfake.Fake) { f.Fail(path, -1, 429, elasticfake.RejectedBody) },
			wantErr: []string{"elastic: search alerts: HTTP 429 Too Many Requests: es_rejected_execution_exception: rejected execution of coordinating operation"}, attempts: 1 + MaxRetries},
		{name: "500 persists", setup: func(f *elasticfake.Fake) { f.Fail(path, -1, 500, elasticfake.InternalErrorBody) },
			wantErr: []string{"elastic: search alerts: HTTP 500 Internal Server Error: null_pointer_exception"}, attempts: 1 + MaxRetries},
		{name: "503 with an HTML body", setup: func(f *elasticfake.Fake) { f.Fail(path, -1, 503, "<html><body>Service Unavailable</body></html>") },
			wantErr: []string{"HTTP 503 Service Unavailable: <html><body>Service Unavailable</body></html>"}, attempts: 1 + MaxRetries},
		{name: "garbage JSON", setup: func(f *elasticfake.Fake) { f.Fail(path, -1, 200, `{"took": 1, "hits": [`) },
			wantErr: []string{"elastic: search alerts: malformed answer"}, attempts: 1},
		{name: "no hits", setup: func(f *elasticfake.Fake) { f.Fail(path, -1, 200, `{"took": 1}`) },
			wantErr: []string{"malformed answer: no hits object"}, attempts: 1},
		{name: "shard failure", setup: func(f *elasticfake.Fake) {
			f.Fail(path, -1, 200, `{"took":3,"timed_out":false,"_shards":{"total":5,"successful":4,"skipped":0,"failed":1,"failures":[{"shard":2,"index":".internal.alerts-security.alerts-default-000001","reason":{"type":"illegal_state_exception","reason":"shard closed"}}]},"hits":{"hits":[]}}`)
		}, wantErr: []string{"1 of 5 shards failed: illegal_state_exception: shard closed: results would be partial"}, attempts: 1},
		{name: "timed out", setup: func(f *elasticfake.Fake) {
			f.Fail(path, -1, 200, `{"took":30000,"timed_out":true,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"hits":[]}}`)
		}, wantErr: []string{"search timed out on the server"}, attempts: 1},
		{name: "not Elasticsearch", setup: func(f *elasticfake.Fake) {
			f.FailWith(elasticfake.Failure{Match: path, N: -1, Status: 200, Body: `{"hits":{"hits":[]}}`, NoProduct: true})
		}, wantErr: []string{"server is not Elasticsearch"}, attempts: 1},
		{name: "index missing", cfg: `space = "nope"`,
			wantErr: []string{"HTTP 404 Not Found: index_not_found_exception: no such index [.alerts-security.alerts-nope]"}, attempts: 1},
		{name: "credentials refused, key echoed", setup: func(f *elasticfake.Fake) { f.SetAuth("ApiKey c29tZW9uZTplbHNl"); f.SetEchoAuth(true) },
			wantErr: []string{"HTTP 401 Unauthorized: security_exception", "[REDACTED]", "check api_key"}, attempts: 1, denied: true},
		{name: "no answer in time", cfg: `timeout = "1s"`, setup: func(f *elasticfake.Fake) {
			f.FailWith(elasticfake.Failure{Match: path, N: -1, Status: 200, Body: `{}`, Delay: 5 * time.Second})
		}, wantErr: []string{"elastic: search alerts:", "deadline exceeded"}, attempts: 1},
		{name: "bad page token", token: "not-a-token!", wantErr: []string{"elastic: search alerts: bad page token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := elasticfake.New(t)
			f.Add(".alerts-security.alerts-default", "x", alert8x(t, "x", t0.Add(time.Second), testMarker), time.Time{})
			s, _ := configured(t, f, esConfig(f, false, tc.cfg))
			if tc.setup != nil {
				tc.setup(f)
			}
			_, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), PageToken: tc.token})
			if err == nil {
				t.Fatal("Search succeeded")
			}
			if errors.Is(err, plugin.ErrDenied) != tc.denied {
				t.Errorf("errors.Is(%v, plugin.ErrDenied) = %v, want %v", err, !tc.denied, tc.denied)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			assertNoSecret(t, "search error", err.Error())
			if n := len(f.Requests("/_search")); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
		})
	}
}

func TestSearchRetriesThenSucceeds(t *testing.T) {
	const path = "POST /.alerts-security.alerts-default/_search"
	tests := []struct {
		name      string
		fail      elasticfake.Failure
		wantRetry time.Duration
		// wantWaits are the waits before the retries of a 429.
		wantWaits []time.Duration
	}{
		{name: "429 twice", fail: elasticfake.Failure{Match: path, N: 2, Status: 429, Body: elasticfake.RejectedBody}, wantRetry: 2 * time.Second,
			wantWaits: []time.Duration{time.Millisecond, 2 * time.Millisecond}},
		{name: "429 with Retry-After", fail: elasticfake.Failure{Match: path, N: 1, Status: 429, Body: elasticfake.RejectedBody, Header: http.Header{"Retry-After": {"7"}}}, wantRetry: 7 * time.Second,
			wantWaits: []time.Duration{7 * time.Second}},
		{name: "429 with Retry-After twice", fail: elasticfake.Failure{Match: path, N: 2, Status: 429, Body: elasticfake.RejectedBody, Header: http.Header{"Retry-After": {"2"}}}, wantRetry: 2 * time.Second,
			wantWaits: []time.Duration{2 * time.Second, 2 * time.Second}},
		{name: "502 once", fail: elasticfake.Failure{Match: path, N: 1, Status: 502, Body: "Bad Gateway"}, wantRetry: 0},
		{name: "500 three times", fail: elasticfake.Failure{Match: path, N: 3, Status: 500, Body: elasticfake.InternalErrorBody}, wantRetry: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := elasticfake.New(t)
			f.Add(".alerts-security.alerts-default", "x", alert8x(t, "x", t0.Add(time.Second), testMarker), time.Time{})
			var waits []time.Duration
			s, _ := configured(t, f, esConfig(f, false), func(s *SIEM) {
				s.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			})
			f.FailWith(tc.fail)
			res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if len(res.Signals) != 1 || res.RetryAfter != tc.wantRetry {
				t.Errorf("signals %v RetryAfter %s, want 1 signal and %s", ids(res.Signals), res.RetryAfter, tc.wantRetry)
			}
			if !slices.Equal(waits, tc.wantWaits) {
				t.Errorf("waits before the retries %v, want %v (Retry-After when the answer has one)", waits, tc.wantWaits)
			}
			st, _ := s.Stats(context.Background())
			if st["throttled"]+st["server_errors"] != int64(tc.fail.N+0) && tc.fail.N > 0 {
				t.Errorf("stats %v: want %d throttled or server errors", st, tc.fail.N)
			}
		})
	}
}

// The engine searches the same window every poll: the alerts stat counts
// each alert once.
func TestStatsCountDistinctAlerts(t *testing.T) {
	f := elasticfake.New(t)
	for i, id := range []string{"a1", "a2"} {
		f.Add(".alerts-security.alerts-default", id, alert8x(t, id, t0.Add(time.Duration(i+1)*time.Second), testMarker), time.Time{})
	}
	s, _ := configured(t, f, esConfig(f, false))
	for poll := 0; poll < 3; poll++ {
		if res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)}); err != nil || len(res.Signals) != 2 {
			t.Fatalf("poll %d: %d signals, %v", poll, len(res.Signals), err)
		}
	}
	st, _ := s.Stats(context.Background())
	if st["alerts"] != 2 {
		t.Errorf("stats alerts = %d after 3 polls of the same 2 alerts, want 2", st["alerts"])
	}
}
