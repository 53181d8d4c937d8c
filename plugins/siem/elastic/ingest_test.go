package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/elasticfake"
)

const replayStream = "logs-vigil.replay-default"

func TestIngest(t *testing.T) {
	now := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	f := elasticfake.New(t)
	f.SetItemFail(func(doc map[string]any, attempt int) (int, string, string) {
		switch first(doc, "message") {
		case "mapping-bad":
			return 400, "document_parsing_exception", "[1:42] failed to parse field [process.pid] of type [long] in document"
		case "busy":
			if attempt <= 2 {
				return 429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
			}
		}
		return 0, "", ""
	})
	s, _ := configured(t, f, esConfig(f, false), func(x *SIEM) { x.now = func() time.Time { return now } })
	events := []string{
		`{"@timestamp":"2024-05-01T08:00:00.000Z","message":"first","process":{"command_line":"bash -c id"},"data_stream":{"type":"logs","dataset":"recorded.agent","namespace":"prod"}}`,
		`{"@timestamp":"2024-05-01T08:00:02.500Z","message":"second","vigil":{"marker":"vigil-aaaaaaaaaaaa"}}`,
		`not json`,
		`{"time":"2024-05-01T08:00:01Z","host":"lab","logsource":{"product":"linux","category":"process_creation"},"fields":{"CommandLine":"crontab -l","Image":"/usr/bin/crontab","User":"root"},"ancestry":["sh -c x"]}`,
		`{"message":"no time"}`,
		`{"@timestamp":"2024-05-01T08:00:03Z","message":"mapping-bad"}`,
		`{"@timestamp":"2024-05-01T08:00:04Z","message":"busy"}`,
	}
	var req plugin.IngestRequest
	for _, e := range events {
		req.Events = append(req.Events, []byte(e))
	}
	req.Marker = testMarker
	res, err := s.Ingest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 5 {
		t.Errorf("Accepted = %d, want 5", res.Accepted)
	}
	wantProbs := []string{
		"events[2]: not a JSON object: invalid character 'o' in literal null (expecting 'u')",
		"events[5]: HTTP 400: document_parsing_exception: [1:42] failed to parse field [process.pid] of type [long] in document",
	}
	var gotProbs []string
	for _, p := range res.Problems {
		gotProbs = append(gotProbs, p.String())
	}
	if !slices.Equal(gotProbs, wantProbs) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(gotProbs, "\n"), strings.Join(wantProbs, "\n"))
	}

	// Requests: NDJSON with create actions and a final newline; the
	// retries carry only the item rejected with 429.
	reqs := f.Requests("POST /_bulk")
	if len(reqs) != 3 {
		t.Fatalf("%d bulk requests, want 3 (all, then the 429 item twice)", len(reqs))
	}
	for i, r := range reqs {
		if r.Header.Get("Content-Type") != "application/x-ndjson" || !bytes.HasSuffix(r.Body, []byte("\n")) {
			t.Errorf("request %d: content type %q, final newline %v", i, r.Header.Get("Content-Type"), bytes.HasSuffix(r.Body, []byte("\n")))
		}
		lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
		wantDocs := 6
		if i > 0 {
			wantDocs = 1
		}
		if len(lines) != 2*wantDocs {
			t.Errorf("request %d: %d lines, want %d", i, len(lines), 2*wantDocs)
			continue
		}
		for j := 0; j < len(lines); j += 2 {
			if lines[j] != `{"create":{"_index":"logs-vigil.replay-default"}}` {
				t.Errorf("request %d action %q", i, lines[j])
			}
		}
		if i > 0 && !strings.Contains(lines[1], `"message":"busy"`) {
			t.Errorf("retry %d sends %s, want only the rejected item", i, lines[1])
		}
	}

	// Stored documents: re-timestamped (earliest = now, offsets kept),
	// marked, data stream fields set, ECS kept; the vigil event mapped.
	docs := map[string]map[string]any{}
	for _, d := range f.Docs(replayStream) {
		docs[first(d, "message", "process.command_line")] = d
	}
	checks := []struct {
		key, field, want string
	}{
		{"first", "@timestamp", "2024-06-01T10:00:00Z"},
		{"first", "vigil.original_time", "2024-05-01T08:00:00Z"},
		{"first", "vigil.marker", testMarker},
		{"first", "data_stream.dataset", "vigil.replay"},
		{"first", "data_stream.namespace", "default"},
		{"first", "process.command_line", "bash -c id"},
		{"second", "@timestamp", "2024-06-01T10:00:02.5Z"},
		{"second", "vigil.marker", "vigil-aaaaaaaaaaaa"},
		{"crontab -l", "@timestamp", "2024-06-01T10:00:01Z"},
		{"crontab -l", "host.name", "lab"},
		{"crontab -l", "process.executable", "/usr/bin/crontab"},
		{"crontab -l", "process.name", "crontab"},
		{"crontab -l", "user.name", "root"},
		{"crontab -l", "event.category", "process"},
		{"crontab -l", "vigil.fields.CommandLine", "crontab -l"},
		{"crontab -l", "vigil.marker", testMarker},
		{"no time", "@timestamp", "2024-06-01T10:00:00Z"},
		{"busy", "@timestamp", "2024-06-01T10:00:04Z"},
	}
	for _, c := range checks {
		d, ok := docs[c.key]
		if !ok {
			t.Errorf("document %q not stored (have %d)", c.key, len(docs))
			continue
		}
		if got := strings.Join(strs(d, c.field), ","); got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.key, c.field, got, c.want)
		}
	}
	if len(docs) != 5 {
		t.Errorf("%d documents stored, want 5", len(docs))
	}
	st, _ := s.Stats(context.Background())
	if st["ingested"] != 5 || st["ingest_rejected"] != 2 || st["ingest_item_retries"] != 2 {
		t.Errorf("stats %v", st)
	}
}

func TestIngestFailures(t *testing.T) {
	ev := [][]byte{[]byte(`{"@timestamp":"2024-05-01T08:00:00Z","message":"m"}`)}
	tests := []struct {
		name     string
		cfg      func(f *elasticfake.Fake) string
		setup    func(f *elasticfake.Fake)
		wantErr  string
		wantProb string
		attempts int
	}{
		{name: "whole request rejected with 429", setup: func(f *elasticfake.Fake) { f.Fail("POST /_bulk", -1, 429, elasticfake.RejectedBody) },
			wantErr: "elastic: ingest: bulk: HTTP 429 Too Many Requests: es_rejected_execution_exception", attempts: 1 + MaxRetries},
		{name: "item rejected with 429 every time", setup: func(f *elasticfake.Fake) {
			f.SetItemFail(func(map[string]any, int) (int, string, string) { return 429, "es_rejected_execution_exception", "busy" })
		}, wantProb: "events[0]: still rejected after 3 retries: HTTP 429: es_rejected_execution_exception: busy", attempts: 1 + MaxRetries},
		{name: "answer with fewer items", setup: func(f *elasticfake.Fake) { f.Fail("POST /_bulk", 1, 200, `{"took":1,"errors":false,"items":[]}`) },
			wantErr: "elastic: ingest: bulk: answer has 0 items for 1 documents", attempts: 1},
		{name: "garbage answer", setup: func(f *elasticfake.Fake) { f.Fail("POST /_bulk", 1, 200, `<html>`) },
			wantErr: "elastic: ingest: bulk: malformed answer: <html>", attempts: 1},
		{name: "recorded mixed answer", setup: func(f *elasticfake.Fake) {
			f.Fail("POST /_bulk", 1, 200, string(fixture(t, "go-elasticsearch_esutil_testdata_bulk_response_1a.json", nil)))
		}, wantProb: "events[1]: HTTP 409: version_conflict_engine_exception: [1]: version conflict, document already exists (current version [1])", attempts: 1},
		{name: "kibana alone", cfg: func(f *elasticfake.Fake) string {
			return `kibana_url = "` + f.KibanaURL() + `"` + "\n" + `api_key = "` + testKeyEncoded + `"`
		},
			wantErr: "elastic: ingest: needs Elasticsearch: set addresses or cloud_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := elasticfake.New(t)
			cfg := esConfig(f, false)
			if tc.cfg != nil {
				cfg = tc.cfg(f)
			}
			s, _ := configured(t, f, cfg)
			if tc.setup != nil {
				tc.setup(f)
			}
			events := ev
			if strings.Contains(tc.name, "recorded") {
				events = append(events, ev[0])
			}
			res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: events, Marker: testMarker})
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case len(res.Problems) != 1 || res.Problems[0].String() != tc.wantProb:
				t.Errorf("problems %v, want %q", res.Problems, tc.wantProb)
			}
			if n := len(f.Requests("POST /_bulk")); n != tc.attempts {
				t.Errorf("%d bulk requests, want %d", n, tc.attempts)
			}
		})
	}
}

// The recorded go-elasticsearch bulk answers decode item by item.
func TestBulkFixtures(t *testing.T) {
	c := &clients{}
	tests := []struct {
		file  string
		want  []int
		probs []string
	}{
		{"go-elasticsearch_esutil_testdata_bulk_response_1a.json", []int{201, 409},
			[]string{"HTTP 409: version_conflict_engine_exception: [1]: version conflict, document already exists (current version [1])"}},
		{"go-elasticsearch_esutil_testdata_bulk_response_1b.json", []int{201, 404}, []string{"HTTP 404"}},
		{"go-elasticsearch_esutil_testdata_bulk_response_1c.json", []int{200, 200}, nil},
		{"go-elasticsearch_esutil_testdata_bulk_response_2.json", []int{201, 409, 404, 200},
			[]string{"HTTP 409: version_conflict_engine_exception: [1]: version conflict, document already exists (current version [1])", "HTTP 404"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			items, err := decodeBulk(b, len(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			var probs []string
			for _, it := range items {
				got = append(got, it.Status)
				if it.Status > 299 {
					probs = append(probs, it.problem(c))
				}
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(probs, tc.probs) {
				t.Errorf("statuses %v problems %q, want %v %q", got, probs, tc.want, tc.probs)
			}
			if _, err := decodeBulk(b, len(tc.want)+1); err == nil {
				t.Error("item count mismatch accepted")
			}
		})
	}
}

// keyPaths lists the object key paths of a JSON value ([] for arrays);
// values under _source are left out.
func keyPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			p := prefix + "." + k
			out[p] = true
			if k != "_source" {
				keyPaths(sub, p, out)
			}
		}
	case []any:
		for _, sub := range x {
			keyPaths(sub, prefix+"[]", out)
		}
	}
}

// The fake's answers have every key of the recorded real ones (but the
// _type of 7.x hits, gone in 8.x).
func TestFakeAnswersLikeRecorded(t *testing.T) {
	f := elasticfake.New(t)
	f.Add("articles", "1", []byte(`{"title":"Test One","published":"2019-03-24T15:01:10.871907+01:00"}`), time.Time{})
	post := func(path, contentType, body string) []byte {
		t.Helper()
		resp, err := http.Post(f.ESURL()+path, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v %s", path, resp.StatusCode, err, b)
		}
		return b
	}
	res := post("/articles/_search", "application/json", `{"query":{"match_all":{}}}`)
	bulkBody := `{"create":{"_index":"logs-a.b-c"}}` + "\n" + `{"@timestamp":"2024-05-01T00:00:00Z"}` + "\n"
	bulkRes := post("/_bulk", "application/x-ndjson", bulkBody)
	tests := []struct {
		fixture string
		fake    func() []byte
		skip    map[string]bool
	}{
		{"go-elasticsearch__examples_encoding_testdata_response_search.json", func() []byte { return res },
			map[string]bool{".hits.hits[]._type": true}},
		{"go-elasticsearch_esutil_testdata_bulk_response_1b.json", func() []byte { return bulkRes }, map[string]bool{".items[].delete": true}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			var want, got any
			if err := json.Unmarshal(fixture(t, tc.fixture, nil), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(tc.fake(), &got); err != nil {
				t.Fatal(err)
			}
			wp, gp := map[string]bool{}, map[string]bool{}
			keyPaths(want, "", wp)
			keyPaths(got, "", gp)
			var missing []string
			for p := range wp {
				skip := false
				for s := range tc.skip {
					skip = skip || strings.HasPrefix(p, s)
				}
				if !gp[p] && !skip {
					missing = append(missing, p)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("the fake's answer lacks %v", missing)
			}
		})
	}
}

func TestRawEvents(t *testing.T) {
	f := elasticfake.New(t)
	add := func(id string, at time.Duration, extra string) {
		doc := fmt.Sprintf(`{"@timestamp":%q%s}`, ms(t0.Add(at)), extra)
		f.Add(replayStream, id, []byte(doc), time.Time{})
	}
	add("e1", 200*time.Millisecond, `,"event":{"ingested":"`+ms(t0.Add(900*time.Millisecond))+`"},"host":{"name":"VIGIL-LAB-01.example.com"},"process":{"command_line":"bash -c 'touch /tmp/`+testMarker+`'"}`)
	add("e2", 300*time.Millisecond, `,"host":{"name":"vigil-lab-01"},"process":{"command_line":"bash -c vigil-ffffffffffff"}`)
	add("e3", 400*time.Millisecond, `,"host":{"name":"elsewhere"},"process":{"command_line":"`+testMarker+`"}`)
	add("e4", -5*time.Second, `,"host":{"name":"vigil-lab-01"},"process":{"command_line":"`+testMarker+`"}`)
	add("e5", 100*time.Millisecond, `,"host.name":"vigil-lab-01","vigil.marker":"`+testMarker+`"`)
	s, _ := configured(t, f, esConfig(f, false))
	evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{
		Start: t0, End: t0.Add(time.Minute), Markers: []string{testMarker}, Hosts: []string{testHost},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Marker, e.Timestamp.Format(time.StampMilli), e.IngestedAt.Format(time.StampMilli), e.Host))
	}
	want := []string{
		testMarker + " May  1 12:00:00.100 Jan  1 00:00:00.000 vigil-lab-01",
		testMarker + " May  1 12:00:00.200 May  1 12:00:00.900 VIGIL-LAB-01.example.com",
	}
	if !slices.Equal(got, want) {
		t.Errorf("raw events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	reqs := f.Requests("POST /logs-*/_search")
	if len(reqs) != 1 {
		t.Fatalf("%d raw searches", len(reqs))
	}
	m := testMarker
	jsonEqual(t, reqs[0].Body, `{"size": 500, "track_total_hits": false, "sort": [{"@timestamp": {"order": "asc"}}],
		"query": {"bool": {"filter": [
			{"range": {"@timestamp": {"gte": "2024-05-01T11:59:59.000Z", "lte": "2024-05-01T12:01:00.000Z", "format": "strict_date_optional_time"}}},
			{"bool": {"minimum_should_match": 1, "should": [
				{"term": {"vigil.marker": {"value": "`+m+`"}}},
				{"wildcard": {"process.command_line": {"value": "*`+m+`*"}}},
				{"wildcard": {"process.parent.command_line": {"value": "*`+m+`*"}}},
				{"wildcard": {"process.args": {"value": "*`+m+`*"}}},
				{"wildcard": {"file.path": {"value": "*`+m+`*"}}},
				{"wildcard": {"process.working_directory": {"value": "*`+m+`*"}}},
				{"match_phrase": {"message": "`+m+`"}},
				{"match_phrase": {"process.command_line": "`+m+`"}}]}},
			{"bool": {"minimum_should_match": 1, "should": [
				{"term": {"host.name": {"value": "vigil-lab-01", "case_insensitive": true}}},
				{"prefix": {"host.name": {"value": "vigil-lab-01.", "case_insensitive": true}}}]}}]}}}`)

	// A recorded real search answer decodes as raw events.
	f.Fail("POST /logs-*/_search", 1, 200, string(fixture(t, "go-elasticsearch__examples_encoding_testdata_response_search.json", nil)))
	evs, err = s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: t0, End: t0.Add(time.Minute), Markers: []string{testMarker}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || !strings.Contains(string(evs[4].Raw), `"Test Five"`) || evs[0].Marker != "" {
		t.Errorf("fixture answer: %d events, last %s", len(evs), evs[len(evs)-1].Raw)
	}
	// Large events: Raw is dropped past 2 MiB so the answer fits gRPC.
	big := strings.Repeat("y", 900<<10)
	for i := 0; i < 3; i++ {
		add(fmt.Sprintf("big%d", i), time.Duration(i+1)*time.Second, `,"message":"`+testMarker+` `+big+`"`)
	}
	evs, err = s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: t0, End: t0.Add(time.Minute), Markers: []string{testMarker}})
	if err != nil {
		t.Fatal(err)
	}
	var withRaw []bool
	for _, e := range evs[len(evs)-3:] {
		withRaw = append(withRaw, e.Raw != nil)
	}
	if !slices.Equal(withRaw, []bool{true, true, false}) || evs[len(evs)-1].Marker != testMarker {
		t.Errorf("large events keep Raw %v, want [true true false]", withRaw)
	}
	if evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: t0, End: t0.Add(time.Minute)}); err != nil || evs != nil {
		t.Errorf("no marker: %v %v, want nothing and no request", evs, err)
	}
}

func TestCloseSignals(t *testing.T) {
	now := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		kibana  bool
		index   string
		ids     []string
		wantErr string
	}{
		{name: "update by query, 8.x", index: ".alerts-security.alerts-default", ids: []string{"a1", "a2"}},
		{name: "update by query, 7.x", index: ".siem-signals-default", ids: []string{"a1"}},
		{name: "through Kibana", kibana: true, index: ".alerts-security.alerts-default", ids: []string{"a1", "a2"}},
		{name: "one not found", index: ".alerts-security.alerts-default", ids: []string{"a1", "gone"},
			wantErr: "elastic: close alerts: 1 of 2 closed; the others were not found"},
		{name: "one not found through Kibana", kibana: true, index: ".alerts-security.alerts-default", ids: []string{"gone", "a2"},
			wantErr: "elastic: close alerts: 1 of 2 closed; the others were not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := elasticfake.New(t)
			legacy := strings.HasPrefix(tc.index, ".siem")
			for _, id := range []string{"a1", "a2", "a3"} {
				doc := alert8x(t, id, t0.Add(time.Second), testMarker)
				if legacy {
					doc = fixture(t, "alert-7x.json", map[string]string{"timestamp": ms(t0), "original_time": ms(t0), "host": testHost, "marker": testMarker})
				}
				f.Add(tc.index, id, doc, time.Time{})
			}
			extra := []string{}
			if legacy {
				extra = append(extra, `index = "`+tc.index+`"`)
			}
			s, _ := configured(t, f, esConfig(f, tc.kibana, extra...), func(x *SIEM) { x.now = func() time.Time { return now } })
			err := s.CloseSignals(context.Background(), plugin.CloseSignalsRequest{SignalIDs: tc.ids, Reason: "vigil test"})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a1", "a2", "a3"} {
				d := f.Doc(tc.index, id)
				status := first(d, "kibana.alert.workflow_status", "signal.status")
				want := "open"
				if slices.Contains(tc.ids, id) {
					want = "closed"
				}
				if status != want {
					t.Errorf("%s: status %q, want %q", id, status, want)
				}
			}
			ubq, kb := f.Requests("_update_by_query"), f.Requests("POST /api/detection_engine/signals/status")
			if tc.kibana {
				if len(ubq) != 0 || len(kb) != 1 {
					t.Fatalf("%d update-by-query, %d Kibana status requests", len(ubq), len(kb))
				}
				jsonEqual(t, kb[0].Body, `{"signal_ids": `+mustJSON(tc.ids)+`, "status": "closed"}`)
				return
			}
			if len(ubq) != 1 || len(kb) != 0 {
				t.Fatalf("%d update-by-query, %d Kibana status requests", len(ubq), len(kb))
			}
			if q := ubq[0].Query; q.Get("conflicts") != "proceed" || q.Get("refresh") != "true" || ubq[0].Path != "/"+tc.index+"/_update_by_query" {
				t.Errorf("update by query %s?%s", ubq[0].Path, q.Encode())
			}
			jsonEqual(t, ubq[0].Body, `{"query": {"ids": {"values": `+mustJSON(tc.ids)+`}},
				"script": {"lang": "painless", "source": `+mustJSON(closeScript)+`, "params": {"status": "closed", "at": "2024-06-01T10:00:00Z"}}}`)
		})
	}
	t.Run("nothing to close", func(t *testing.T) {
		f := elasticfake.New(t)
		s, _ := configured(t, f, esConfig(f, true))
		if err := s.CloseSignals(context.Background(), plugin.CloseSignalsRequest{}); err != nil || len(f.Requests("")) != 0 {
			t.Errorf("err %v, %d requests", err, len(f.Requests("")))
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A replayed CloudTrail record goes to logs-aws.cloudtrail-<namespace> as
// Elastic's AWS integration indexes it, where Elastic's CloudTrail rules
// look (event.dataset, event.provider, event.action, event.outcome).
func TestIngestCloudTrail(t *testing.T) {
	raw, err := os.ReadFile("../../../core/telemetry/testdata/replayed-stop-logging.json")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	f := elasticfake.New(t)
	s, _ := configured(t, f, esConfig(f, false), func(x *SIEM) { x.now = func() time.Time { return now } })
	res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: [][]byte{raw}, Marker: testMarker})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("ingest: %v, %+v", err, res)
	}
	docs := f.Docs("logs-aws.cloudtrail-default")
	if len(docs) != 1 || len(f.Docs(replayStream)) != 0 {
		t.Fatalf("%d CloudTrail documents, %d in the replay stream", len(docs), len(f.Docs(replayStream)))
	}
	d := docs[0]
	for field, want := range map[string]string{
		"@timestamp": "2026-12-07T11:00:00Z", "event.dataset": "aws.cloudtrail", "event.provider": "cloudtrail.amazonaws.com",
		"event.action": "StopLogging", "event.outcome": "success", "cloud.account.id": "111122223333", "cloud.region": "eu-west-1",
		"source.ip": "86.245.153.234", "user.name": "ci", "aws.cloudtrail.user_identity.arn": "arn:aws:iam::111122223333:user/ci",
		"aws.cloudtrail.request_parameters": `{"name":"vigil-0123456789ab-trail"}`, "aws.cloudtrail.flattened.request_parameters.name": "vigil-0123456789ab-trail",
		"user_agent.original": "aws-sdk-go-v2/1.48.0 m/E app/vigil-0123456789ab", "data_stream.dataset": "aws.cloudtrail", "vigil.marker": testMarker,
		"host.name": "replay-host",
	} {
		if got := first(d, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if !strings.Contains(first(d, "event.original"), `"eventName":"StopLogging"`) {
		t.Errorf("event.original %q", first(d, "event.original"))
	}
}
