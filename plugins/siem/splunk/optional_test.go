package splunk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/splunkfake"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	shadow := splunkfake.SavedSearch("ESCU - Linux Shadow File Read - Rule", "Linux Shadow File Read", false, true, true, `{"mitre_attack":["T1003"],"analytic_story":["Linux Privilege Escalation"]}`)
	cron := splunkfake.SavedSearch("ESCU - Linux Cron Edit - Rule", "Linux Cron Edit", false, true, true, `{"mitre_attack":["T1053.003"]}`)
	off := splunkfake.SavedSearch("ESCU - Disabled - Rule", "Disabled", true, true, true, `{"mitre_attack":["T1059"]}`)
	adhoc := splunkfake.SavedSearch("Ad hoc - Rule", "Ad hoc", false, false, true, `{}`)
	quiet := splunkfake.SavedSearch("No Notable - Rule", "No Notable", false, true, false, `{"mitre_attack":["T1070"]}`)
	all := []map[string]any{shadow, cron, off, adhoc, quiet}
	cases := []struct {
		name  string
		setup func(f *splunkfake.Fake)
		extra string
		token string
		url   string
		exps  []plugin.Expectation
		want  []string // "subject: message" prefixes, in order
	}{
		{name: "all good", extra: `correlation_searches = ["ESCU - Linux Shadow File Read - Rule"]`,
			exps: []plugin.Expectation{
				{ID: "t1/0", Technique: "T1003.008"},                              // claimed by its parent
				{ID: "t2/0", Technique: "T1053.003", RuleName: "linux cron edit"}, // by label
				{ID: "t3/0", Technique: "T1059", RuleID: "ESCU - Linux Cron Edit - Rule"},
				{ID: "t4/0", Technique: "T1070", Query: "index=edr"}, // a query: nothing to check
				{ID: "t5/0", Technique: "T1098", Absent: true},       // negative: nothing to claim
			}},
		{name: "token rejected", token: "tok-wrong-1234567",
			want: []string{"credentials: splunk rejected them: server info: HTTP 401 Unauthorized: WARN: call not properly authenticated"}},
		{name: "search head down", url: "https://127.0.0.1:1",
			want: []string{"url: the search head does not answer: server info: Get \"https://127.0.0.1:1/services/server/info?output_mode=json\": dial tcp 127.0.0.1:1:"}},
		{name: "slow search head", setup: func(f *splunkfake.Fake) { f.SetInfoDelay(3 * time.Second) }, extra: `request_timeout = "1s"`,
			want: []string{"url: the search head does not answer: server info:"}},
		{name: "old server", setup: func(f *splunkfake.Fake) { f.SetVersion("8.2.6") },
			want: []string{`api: Splunk 8.2.6 has no /search/v2 endpoints (9.0.1 or later): set api = "v1"`}},
		{name: "cloud version is new enough", setup: func(f *splunkfake.Fake) { f.SetVersion("9.0.2208.4") }},
		{name: "missing capabilities", setup: func(f *splunkfake.Fake) { f.SetCapabilities([]string{"rest_properties_get"}) }, extra: "close_notables = true",
			want: []string{"credentials: the user's roles lack the search capability", "close_notables: the user's roles lack edit_notable_events"}},
		{name: "correlation searches", extra: `correlation_searches = ["Nope - Rule", "ESCU - Disabled - Rule", "Ad hoc - Rule", "No Notable - Rule"]`,
			want: []string{
				`correlation_searches: correlation search "Nope - Rule" does not exist`,
				`correlation_searches: correlation search "ESCU - Disabled - Rule" is disabled`,
				`correlation_searches: correlation search "Ad hoc - Rule" is not scheduled: it never runs`,
				`correlation_searches: correlation search "No Notable - Rule" raises no notable (action.notable is off)`,
			}},
		{name: "custom search: notables not required", extra: "search = \"index=alerts\"\ncorrelation_searches = [\"No Notable - Rule\"]",
			exps: []plugin.Expectation{{ID: "t1/0", Technique: "T1547"}}},
		{name: "expectations", exps: []plugin.Expectation{
			{ID: "t1/0", Technique: "T1547"},
			{ID: "t2/0", Technique: "T1059"}, // only a disabled search claims it
			{ID: "t3/0", RuleID: "Missing - Rule"},
			{ID: "t4/0", RuleName: "Disabled"},
		}, want: []string{
			`t3/0: correlation search "Missing - Rule" does not exist`,
			`t4/0: correlation search "ESCU - Disabled - Rule" is disabled`,
			"t1/0: no enabled correlation search claims T1547 in its annotations (mitre_attack)",
			"t2/0: no enabled correlation search claims T1059",
		}},
		{name: "HEC unhealthy", setup: func(f *splunkfake.Fake) { f.SetHECHealth(18) },
			want: []string{"hec_url: the HTTP Event Collector is not healthy: HEC answered HTTP 503: HEC is unhealthy, queues are full (code 18)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.SetSavedSearches(all)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := fakeConfig(f, tc.extra)
			if tc.token != "" {
				cfg = strings.Replace(cfg, splunkfake.Token, tc.token, 1)
			}
			if tc.url != "" {
				cfg = strings.Replace(cfg, `url = "`+f.URL()+`"`, `url = "`+tc.url+`"`, 1)
			}
			s := plugintest.SIEM(t, &SIEM{})
			ctx := context.Background()
			if err := s.Configure(ctx, []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			probs, err := s.Check(ctx, plugin.CheckRequest{Expectations: tc.exps})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			var got []string
			for _, p := range probs {
				got = append(got, p.String())
				noSecrets(t, "problem", p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n %s\nwant:\n %s", strings.Join(got, "\n "), strings.Join(tc.want, "\n "))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n %s\nwant a prefix\n %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestRules(t *testing.T) {
	f := splunkfake.New(t)
	f.SetSavedSearches([]map[string]any{
		splunkfake.SavedSearch("B - Rule", "B", false, true, true, `{"mitre_attack":["T1560.001","T1560"],"analytic_story":["x"]}`),
		splunkfake.SavedSearch("A - Rule", "A", true, true, true, `not json T1003.008 and T1003.008`),
		{"name": "Plain report", "acl": map[string]any{"app": "search"}, "content": map[string]any{"disabled": false, "is_scheduled": true}},
	})
	impl := &SIEM{}
	s := plugintest.SIEM(t, impl)
	ctx := context.Background()
	if err := s.Configure(ctx, []byte(fakeConfig(f, ""))); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	rules, err := impl.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Name: "A - Rule", Label: "A", App: "SplunkEnterpriseSecuritySuite", Enabled: false, Scheduled: true, Correlation: true, Notable: true, Techniques: []string{"T1003.008"}},
		{Name: "B - Rule", Label: "B", App: "SplunkEnterpriseSecuritySuite", Enabled: true, Scheduled: true, Correlation: true, Notable: true, Techniques: []string{"T1560.001", "T1560"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("Rules =\n %+v\nwant\n %+v", rules, want)
	}
	list := f.Requests(http.MethodGet, "/servicesNS/-/-/saved/searches")
	if len(list) != 1 || list[0].Form.Get("count") != "100" || list[0].Form.Get("offset") != "0" || !slices.Contains(list[0].Form["f"], "action.correlationsearch.annotations") {
		t.Errorf("saved searches request %+v", list)
	}
}

// replayEvent is an event as the replay injector produces it.
func replayEvent(t time.Time, host, cmd string) []byte {
	b, _ := json.Marshal(map[string]any{
		"time": t.Format(time.RFC3339Nano), "host": host, "logsource": map[string]string{"product": "linux", "category": "process_creation"},
		"fields": map[string]any{"CommandLine": cmd, "Image": "/usr/bin/bash"},
	})
	return b
}

func TestIngest(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 10, 0, 0, 123456789, time.UTC)
	marker := "vigil-0123456789ab"
	five := [][]byte{
		replayEvent(at, "lab-1", "id "+marker), replayEvent(at.Add(time.Millisecond), "lab-1", "uname -a "+marker),
		replayEvent(at.Add(2*time.Millisecond), "lab-1", "whoami"), replayEvent(at.Add(3*time.Millisecond), "lab-1", "ls"),
		replayEvent(at.Add(4*time.Millisecond), "lab-1", "crontab -l"),
	}
	cases := []struct {
		name         string
		setup        func(f *splunkfake.Fake)
		extra        string
		events       [][]byte
		hecToken     string
		wantAccepted int
		wantProblems []string
		wantErr      string
		wantBatches  int // requests to /event
	}{
		{name: "batched", extra: "hec_batch = 2\nindex = \"vigil\"", events: five, wantAccepted: 5, wantBatches: 3},
		{name: "busy collector is retried", extra: "hec_batch = 5", events: five, wantAccepted: 5, wantBatches: 3, setup: func(f *splunkfake.Fake) {
			f.SetHECReplies([]splunkfake.HECReply{{Status: 503, Code: 9, Text: "Server is busy"}, {Status: 500, Code: 8, Text: "Internal server error"}})
		}},
		{name: "bad events are problems", extra: "hec_batch = 5", events: [][]byte{five[0], []byte(`[1,2]`), []byte(`{"time":"soon"}`), five[1]},
			wantAccepted: 2, wantBatches: 1, wantProblems: []string{"event 1: not a JSON object", `event 2: time: not a time: "soon"`}},
		{name: "a batch refused for its data", extra: "hec_batch = 2", events: five, wantAccepted: 3, wantBatches: 3, setup: func(f *splunkfake.Fake) {
			f.SetHECReplies([]splunkfake.HECReply{{Status: 400, Code: 6, Text: "Invalid data format"}})
		}, wantProblems: []string{"events 0-1: HEC answered HTTP 400: Invalid data format (code 6)"}},
		{name: "incorrect index", extra: "index = \"secret\"", events: five, setup: func(f *splunkfake.Fake) { f.SetHECIndexes([]string{"vigil"}) },
			wantErr: "splunk: ingest: batch of events 0-4: HEC answered HTTP 400: Incorrect index (code 7) at event 0 of the batch"},
		{name: "invalid token", events: five, hecToken: "hec-wrong-000000000000",
			wantErr: "splunk: ingest: batch of events 0-4: HEC answered HTTP 403: Invalid token (code 4)"},
		{name: "indexer acknowledgement", extra: "hec_ack = true\nhec_batch = 2", events: five, wantAccepted: 5, wantBatches: 3,
			setup: func(f *splunkfake.Fake) { f.EnableHECAck(2) }},
		{name: "hec_ack on a token without acknowledgement", extra: "hec_ack = true", events: five, wantBatches: 1,
			wantErr: "splunk: ingest: batch of events 0-4: hec_ack = true, but HEC answered without an ackId"},
		{name: "acknowledgement times out", extra: "hec_ack = true\nhec_ack_timeout = \"1s\"", events: five[:1], wantAccepted: 0, wantBatches: 1,
			setup:        func(f *splunkfake.Fake) { f.EnableHECAck(1000) },
			wantProblems: []string{"events 0-0: not acknowledged by the indexers within 1s (hec_ack_timeout)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := fakeConfig(f, tc.extra)
			if tc.hecToken != "" {
				cfg = strings.Replace(cfg, splunkfake.HECToken, tc.hecToken, 1)
			}
			impl := &SIEM{}
			s := plugintest.SIEM(t, impl)
			ctx := context.Background()
			if err := s.Configure(ctx, []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			impl.st.cfg.hecBackoff = 20 * time.Millisecond
			res, err := s.Ingest(ctx, plugin.IngestRequest{Events: tc.events, Marker: marker})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Ingest: %v, want %q", err, tc.wantErr)
				}
				noSecrets(t, "ingest error", err.Error())
				if tc.hecToken != "" && !errors.Is(err, plugin.ErrDenied) {
					t.Errorf("a refused HEC token is not plugin.ErrDenied: %v", err)
				}
				if tc.hecToken != "" && strings.Contains(err.Error(), tc.hecToken) {
					t.Errorf("the error leaks the HEC token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var probs []string
			for _, p := range res.Problems {
				probs = append(probs, p.String())
			}
			if res.Accepted != tc.wantAccepted || !slices.Equal(probs, tc.wantProblems) {
				t.Errorf("Ingest = accepted %d problems %q; want %d %q", res.Accepted, probs, tc.wantAccepted, tc.wantProblems)
			}
			batches := f.Requests(http.MethodPost, "/services/collector/event")
			if len(batches) != tc.wantBatches {
				t.Errorf("%d HEC requests, want %d", len(batches), tc.wantBatches)
			}
			for _, b := range batches {
				if b.Auth != "Splunk "+splunkfake.HECToken {
					t.Errorf("HEC Authorization %q", b.Auth)
				}
				if f.HECAck() && b.Header.Get("X-Splunk-Request-Channel") == "" {
					t.Error("no request channel with hec_ack")
				}
			}
			if tc.name == "batched" {
				// The envelopes: event time as epoch seconds, host, index,
				// sourcetype, source, marker as an indexed field; several
				// envelopes stacked in one body.
				dec := json.NewDecoder(bytes.NewReader(batches[0].Body))
				var envs []map[string]any
				for dec.More() {
					var m map[string]any
					if err := dec.Decode(&m); err != nil {
						t.Fatal(err)
					}
					envs = append(envs, m)
				}
				if len(envs) != 2 {
					t.Fatalf("first batch has %d envelopes", len(envs))
				}
				e := envs[0]
				if e["time"] != 1741082400.123456 || e["host"] != "lab-1" || e["index"] != "vigil" || e["sourcetype"] != "_json" || e["source"] != "vigil" {
					t.Errorf("envelope %v", e)
				}
				if fields, _ := e["fields"].(map[string]any); fields["vigil_marker"] != marker {
					t.Errorf("fields %v", e["fields"])
				}
				if ev, _ := e["event"].(map[string]any); ev["host"] != "lab-1" {
					t.Errorf("event %v", e["event"])
				}
			}
		})
	}
}

func TestIngestWithoutHEC(t *testing.T) {
	f := splunkfake.New(t)
	cfg := strings.NewReplacer(`hec_url = "`+f.URL()+`"`, "", `hec_token = "`+splunkfake.HECToken+`"`, "").Replace(fakeConfig(f, ""))
	s := plugintest.SIEM(t, &SIEM{})
	ctx := context.Background()
	if err := s.Configure(ctx, []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	_, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{[]byte(`{}`)}})
	if err == nil || !strings.Contains(err.Error(), "splunk: ingest: no HTTP Event Collector configured (set hec_url and hec_token)") {
		t.Errorf("Ingest: %v", err)
	}
}

func TestSearchRawEvents(t *testing.T) {
	f := splunkfake.New(t)
	s, _ := configured(t, f, `indexes = ["vigil", "main"]`+"\nindex = \"vigil\"")
	ctx := context.Background()
	at := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	m1, m2 := "vigil-0123456789ab", "vigil-ba9876543210"
	evs := [][]byte{replayEvent(at, "lab-1", "id "+m1), replayEvent(at.Add(time.Millisecond), "other-host", "id "+m1), replayEvent(at, "lab-1", "id "+m2)}
	if res, err := s.Ingest(ctx, plugin.IngestRequest{Events: evs, Marker: m1}); err != nil || res.Accepted != 3 {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	got, err := s.SearchRawEvents(ctx, plugin.RawEventsRequest{Start: at, End: time.Now(), Markers: []string{m1}, Hosts: []string{"LAB-1.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("SearchRawEvents = %d events, want 1 (the other host's and the other marker's left out): %+v", len(got), got)
	}
	e := got[0]
	if e.Marker != m1 || e.Host != "lab-1" || !e.Timestamp.Equal(at) || e.IngestedAt.IsZero() || e.IngestedAt.Nanosecond() != 0 ||
		e.IngestedAt.Before(at.Truncate(time.Second)) || !bytes.Equal(e.Raw, evs[0]) {
		t.Errorf("raw event %+v (raw %s)", e, e.Raw)
	}
	c := f.JobCreations()
	if len(c) != 1 {
		t.Fatalf("%d jobs", len(c))
	}
	wantSPL := `search (index="vigil" OR index="main") ("` + m1 + `") | eval vigil_indextime=_indextime | sort 1000 _time`
	if got := c[0].Form.Get("search"); got != wantSPL {
		t.Errorf("SPL %q\nwant %q", got, wantSPL)
	}
	if got, _ := s.SearchRawEvents(ctx, plugin.RawEventsRequest{Start: at, End: time.Now()}); got != nil {
		t.Errorf("no markers: %v", got)
	}
}

func TestCloseSignals(t *testing.T) {
	n1 := "1A082D7B-D5A1-4A2B-BB94-41C439BE3EB7@@notable@@cb87390ae72763679d3f6f8f097ebe2b"
	n2 := "77C1B0AA-0B61-4A0F-8C55-2B0E9F0D5A11@@notable@@4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d"
	cases := []struct {
		name      string
		extra     string
		reply     string
		ids       []string
		wantErr   string
		wantUIDs  []string
		wantClose int64
	}{
		{name: "not enabled", ids: []string{n1}, wantErr: "splunk: close signals: close_notables is not enabled"},
		{name: "notables", extra: "close_notables = true", ids: []string{n1, n2 + "|q:abc", n1 + "|q:def"}, wantUIDs: []string{n1, n2}, wantClose: 2},
		{name: "custom status", extra: "close_notables = true\nclose_status = \"4\"", ids: []string{n1}, wantUIDs: []string{n1}, wantClose: 1},
		{name: "rows that are not notables", extra: "close_notables = true", ids: []string{n1, "cd:main:1:2", "h:abc"}, wantUIDs: []string{n1}, wantClose: 1,
			wantErr: "splunk: close signals: 2 signal(s) are not ES notables (no event_id) and were left as they are"},
		{name: "refused", extra: "close_notables = true", ids: []string{n1, n2}, wantUIDs: []string{n1, n2},
			reply:   `{"success":false,"message":"ruleUIDs: permission denied","success_count":0,"failure_count":2}`,
			wantErr: "splunk: close signals: notable update: 2 of 2 notables not updated: ruleUIDs: permission denied"},
		{name: "garbage answer", extra: "close_notables = true", ids: []string{n1}, wantUIDs: []string{n1}, reply: "\xEF\xBB\xBFnope",
			wantErr: "notable update: malformed answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.SetUpdateReply(tc.reply)
			s, _ := configured(t, f, tc.extra)
			ctx := context.Background()
			err := s.CloseSignals(ctx, plugin.CloseSignalsRequest{SignalIDs: tc.ids, Reason: "testing or maintenance (vigil vigil-0123456789ab)"})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("CloseSignals: %v, want error %q", err, tc.wantErr)
			}
			upd := f.Requests(http.MethodPost, "/services/notable_update")
			if len(tc.wantUIDs) == 0 {
				if len(upd) != 0 {
					t.Errorf("notable_update called: %+v", upd)
				}
				return
			}
			if len(upd) != 1 {
				t.Fatalf("%d notable_update requests", len(upd))
			}
			form := upd[0].Form
			wantStatus := "5"
			if strings.Contains(tc.extra, "close_status") {
				wantStatus = "4"
			}
			if !slices.Equal(form["ruleUIDs"], tc.wantUIDs) || form.Get("status") != wantStatus || form.Get("comment") != "testing or maintenance (vigil vigil-0123456789ab)" {
				t.Errorf("notable_update form %v", form)
			}
			st, _ := s.Stats(ctx)
			if st["notables_closed"] != tc.wantClose {
				t.Errorf("notables_closed = %d, want %d", st["notables_closed"], tc.wantClose)
			}
		})
	}
}

// TestCloseCancelsJobs: a job whose cancel failed during the poll is
// cancelled on Close.
func TestCloseCancelsJobs(t *testing.T) {
	f := splunkfake.New(t)
	f.SetCancelStatus(http.StatusInternalServerError)
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	s, _ := configured(t, f, "")
	ctx := context.Background()
	if _, err := s.Search(ctx, plugin.SearchRequest{Start: start, End: start.Add(time.Minute), Expectations: []plugin.Expectation{{ID: "e"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if st["jobs_live"] != 1 || st["jobs_cancelled"] != 0 {
		t.Fatalf("Stats after a failed cancel: %v", st)
	}
	f.SetCancelStatus(0)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ctl := f.Requests(http.MethodPost, "/control")
	if len(ctl) != 2 || ctl[1].Path != "/services/search/v2/jobs/1741083330.1_9C4E3A2B/control" || ctl[1].Form.Get("action") != "cancel" {
		t.Errorf("control requests %+v", ctl)
	}
	cancelled := f.JobCancelled("1741083330.1_9C4E3A2B")
	if !cancelled {
		t.Error("the job is still there after Close")
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestVersionBefore(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{{"8.2.6", true}, {"9.0.0", true}, {"9.0.1", false}, {"9.0.2208.4", false}, {"10.0.0", false}, {"9.1", false}, {"weird", false}} {
		if got := versionBefore(tc.v, 9, 0, 1); got != tc.want {
			t.Errorf("versionBefore(%q) = %v", tc.v, got)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2012-11-27T16:44:22.581-08:00", want: time.Date(2012, 11, 28, 0, 44, 22, 581e6, time.UTC)},
		{in: "1741083329.125", want: time.Unix(1741083329, 125e6)},
		{in: "1354063462", want: time.Unix(1354063462, 0)},
		{in: "1354063462.1234567891", bad: true},
		{in: "-5", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseTime(tc.in)
		if tc.bad != (err != nil) || !tc.bad && !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// A replayed CloudTrail record goes to HEC as the Splunk Add-on for AWS
// indexes it: the record itself, sourcetype aws:cloudtrail, at its time.
func TestIngestCloudTrail(t *testing.T) {
	raw, err := os.ReadFile("../../../core/telemetry/testdata/replayed-stop-logging.json")
	if err != nil {
		t.Fatal(err)
	}
	c := &config{Config: Config{Index: "aws", Sourcetype: "_json"}}
	env, err := c.envelope(raw, "vigil-0123456789ab", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(env.Event, &rec); err != nil {
		t.Fatal(err)
	}
	ui, _ := rec["userIdentity"].(map[string]any)
	if env.Sourcetype != "aws:cloudtrail" || env.Index != "aws" || env.Host != "replay-host" || env.Time != "1796637600.250000" ||
		rec["eventName"] != "StopLogging" || rec["eventTime"] != "2026-12-07T10:00:00Z" || ui["arn"] != "arn:aws:iam::111122223333:user/ci" ||
		env.Fields["vigil_marker"] != "vigil-0123456789ab" {
		t.Errorf("envelope %+v, record %v", env, rec)
	}
}
