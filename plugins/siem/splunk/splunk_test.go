package splunk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/splunkfake"
)

// configured returns the plugin over gRPC configured against the fake, and
// its implementation.
func configured(t *testing.T, f *splunkfake.Fake, extra string) (plugin.SIEM, *SIEM) {
	t.Helper()
	impl := &SIEM{warn: &bytes.Buffer{}}
	s := plugintest.SIEM(t, impl)
	if err := s.Configure(context.Background(), []byte(fakeConfig(f, extra))); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	impl.st.cfg.quotaBackoff = 20 * time.Millisecond
	return s, impl
}

// fakeConfig returns plugin params for the fake (token auth, its CA, HEC
// on the same server) followed by extra TOML lines.
func fakeConfig(f *splunkfake.Fake, extra string) string {
	if !strings.Contains(extra, "quota_wait") {
		extra = "quota_wait = \"0s\"\n" + extra
	}
	return fmt.Sprintf("url = %q\ntoken = %q\nca_cert = %q\nhec_url = %q\nhec_token = %q\n%s\n",
		f.URL(), splunkfake.Token, f.CAFile(), f.URL(), splunkfake.HECToken, extra)
}

// noSecrets fails the test when s contains a credential of the fake.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{splunkfake.Token, splunkfake.Password, splunkfake.Session, splunkfake.HECToken} {
		if strings.Contains(s, sec) {
			t.Errorf("%s leaks a credential: %s", what, s)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// loadNotables adds the rows of testdata/notables.json to the fake.
func loadNotables(t *testing.T, f *splunkfake.Fake) {
	t.Helper()
	b, err := os.ReadFile("testdata/notables.json")
	if err != nil {
		t.Fatal(err)
	}
	var page resultsPage
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Results {
		f.AddNotable(splunkfake.Row(r), time.Time{})
	}
}

// notablesWindow covers the notables of testdata/notables.json.
func notablesWindow(t *testing.T) plugin.SearchRequest {
	return plugin.SearchRequest{
		Start: mustTime(t, "2025-03-04T10:15:00.400Z"), End: mustTime(t, "2025-03-04T10:16:00.700Z"),
		Expectations: []plugin.Expectation{{ID: "e1", Technique: "T1003.008"}},
	}
}

func TestDescribe(t *testing.T) {
	d, err := plugintest.SIEM(t, new(SIEM)).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != Name || d.Kind != plugin.KindSIEM || d.QueryDialect != "spl" || !d.ReportsHost {
		t.Errorf("Describe = %+v", d)
	}
	for _, c := range []string{plugin.CapRawEvents, plugin.CapCloseSignals, plugin.CapIngest} {
		if !d.Has(c) {
			t.Errorf("capability %s missing: %v", c, d.Capabilities)
		}
	}
	if !slices.Equal(d.MarkerLocations, markerLocations) {
		t.Errorf("MarkerLocations = %v, want %v", d.MarkerLocations, markerLocations)
	}
	registered, ok := plugin.LookupSIEM(Name)
	if !ok {
		t.Fatal("splunk is not registered")
	}
	if _, ok := registered().(*SIEM); !ok {
		t.Error("the registered factory does not make a *SIEM")
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

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := splunkfake.New(t)
	base := `url = "https://sh.example.com:8089"` + "\n" + `token = "` + splunkfake.Token + `"` + "\n"
	cases := []struct {
		name, toml, wantErr string
		check               func(t *testing.T, c *config)
	}{
		{name: "empty", toml: ``, wantErr: "splunk: config: url is required"},
		{name: "unknown keys are named", toml: base + "tokn = 1\n[marker_fields]\n\"process.command_line\" = [\"x\"]\n[extra]\na = 1",
			wantErr: "splunk: config: unknown keys extra, extra.a, tokn (known: api, app,"},
		{name: "plain http refused", toml: `url = "http://sh:8089"` + "\ntoken = \"" + splunkfake.Token + "\"", wantErr: `url "http://sh:8089": want an https:// URL`},
		{name: "credentials in the url", toml: `url = "https://admin:` + splunkfake.Password + `@sh:8089"` + "\ntoken = \"x\"", wantErr: "credentials go in token/username/password"},
		{name: "token and password", toml: base + `username = "u"` + "\n" + `password = "` + splunkfake.Password + `"`, wantErr: "set token, or username and password, not both"},
		{name: "no credentials", toml: `url = "https://sh:8089"`, wantErr: "no credentials"},
		{name: "username alone", toml: `url = "https://sh:8089"` + "\nusername = \"u\"", wantErr: "username and password go together"},
		{name: "bad api", toml: base + `api = "v3"`, wantErr: `api "v3": want "v2" or "v1"`},
		{name: "bad mode", toml: base + `mode = "stream"`, wantErr: `mode "stream": want "jobs" or "export"`},
		{name: "bad marker location", toml: base + "[marker_fields]\n\"process.pid\" = [\"pid\"]", wantErr: `unknown marker location "process.pid"`},
		{name: "missing ca_cert", toml: base + `ca_cert = "` + filepath.Join(dir, "nope.pem") + `"`, wantErr: "splunk: config: ca_cert: open"},
		{name: "ca_cert not PEM", toml: base + `ca_cert = "` + notPEM + `"`, wantErr: "no PEM certificate in it"},
		{name: "hec_url without token", toml: base + `hec_url = "https://sh:8088"`, wantErr: "hec_url needs hec_token"},
		{name: "hec_ack without hec", toml: base + `hec_ack = true`, wantErr: "hec_ack needs hec_url and hec_token"},
		{name: "results_page over the cap", toml: base + `results_page = 60000`, wantErr: "results_page 60000 out of range (1..50000)"},
		{name: "request_timeout too short", toml: base + `request_timeout = "10ms"`, wantErr: "request_timeout 10ms is below 1s"},
		{name: "bad index", toml: base + `indexes = ["main", "a b"]`, wantErr: `indexes[1] "a b": not an index name`},
		{name: "namespace with a slash", toml: base + `app = "../x"`, wantErr: `app "../x": not a namespace name`},
		{name: "defaults", toml: base, check: func(t *testing.T, c *config) {
			if c.API != APIv2 || c.Mode != ModeJobs || c.Search != DefaultSearch || !c.esMode() || c.QuotaWait != DefaultQuotaWait ||
				!slices.Equal(c.Indexes, []string{"*"}) || c.Sourcetype != "_json" || c.CloseStatus != "5" || c.ResultsPage != 5000 {
				t.Errorf("defaults: %+v", c.Config)
			}
		}},
		{name: "custom search gets its search command", toml: base + `search = "index=alerts sourcetype=edr"` + "\n" + `quota_wait = "0s"`, check: func(t *testing.T, c *config) {
			if c.Search != "search index=alerts sourcetype=edr" || c.esMode() || c.QuotaWait != 0 {
				t.Errorf("search %q quota_wait %s", c.Search, c.QuotaWait)
			}
		}},
		{name: "a generating search is kept", toml: base + `search = "| inputlookup alerts.csv"`, check: func(t *testing.T, c *config) {
			if c.Search != "| inputlookup alerts.csv" {
				t.Errorf("search %q", c.Search)
			}
		}},
		{name: "marker fields replace one location", toml: base + "[marker_fields]\n\"process.command_line\" = [\"cmd\"]", check: func(t *testing.T, c *config) {
			if !slices.Equal(c.markers[plugin.MarkerCommandLine], []string{"cmd"}) || !slices.Equal(c.markers[plugin.MarkerLogField], DefaultMarkerFields[plugin.MarkerLogField]) {
				t.Errorf("markers %v", c.markers)
			}
		}},
		{name: "the fake's config", toml: fakeConfig(f, ""), check: func(t *testing.T, c *config) {
			if c.hec == nil || c.tls.RootCAs == nil {
				t.Errorf("hec %v roots %v", c.hec, c.tls.RootCAs)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			impl := &SIEM{warn: &bytes.Buffer{}}
			err := plugintest.SIEM(t, impl).Configure(context.Background(), []byte(tc.toml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Configure: %v, want an error containing %q", err, tc.wantErr)
				}
				noSecrets(t, "config error", err.Error())
				return
			}
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			tc.check(t, impl.st.cfg)
		})
	}
}

// TestTLS checks that certificates are verified unless
// insecure_skip_verify is set, which is warned about.
func TestTLS(t *testing.T) {
	f := splunkfake.New(t)
	cases := []struct {
		name      string
		toml      string
		wantErr   string
		wantWarn  bool
		wantLines int
	}{
		{name: "ca_cert", toml: fakeConfig(f, "")},
		{name: "no ca_cert: verified against the system roots", toml: strings.Replace(fakeConfig(f, ""), "ca_cert = ", "# ca_cert = ", 1), wantErr: "certificate"},
		{name: "insecure_skip_verify", toml: strings.Replace(fakeConfig(f, "insecure_skip_verify = true"), "ca_cert = ", "# ca_cert = ", 1), wantWarn: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			impl := &SIEM{warn: &warn}
			s := plugintest.SIEM(t, impl)
			ctx := context.Background()
			if err := s.Configure(ctx, []byte(tc.toml)); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			_, err := s.Search(ctx, notablesWindow(t))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Search: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Search: %v, want an error containing %q", err, tc.wantErr)
			}
			got := warn.String()
			if tc.wantWarn != strings.Contains(got, "[WARN] splunk: insecure_skip_verify = true") {
				t.Errorf("warning %q, want one: %v", got, tc.wantWarn)
			}
		})
	}
}

func TestSearchNotables(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		extra       string
		jobsPath    string // where jobs are created
		resultsVerb string
		export      bool
		running     int // status polls answered RUNNING
	}{
		{name: "v2 jobs", jobsPath: "/services/search/v2/jobs", resultsVerb: http.MethodPost},
		{name: "slow job", jobsPath: "/services/search/v2/jobs", resultsVerb: http.MethodPost, running: 4},
		{name: "v1 jobs in an app namespace", extra: "api = \"v1\"\napp = \"SplunkEnterpriseSecuritySuite\"",
			jobsPath: "/servicesNS/-/SplunkEnterpriseSecuritySuite/search/jobs", resultsVerb: http.MethodGet},
		{name: "owner and app", extra: "app = \"search\"\nowner = \"svc\"", jobsPath: "/servicesNS/svc/search/search/v2/jobs", resultsVerb: http.MethodPost},
		{name: "export", extra: `mode = "export"`, jobsPath: "/services/search/v2/jobs", export: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.SetExportPreview(true)
			f.SetRunningPolls(tc.running)
			loadNotables(t, f)
			s, _ := configured(t, f, tc.extra)
			req := notablesWindow(t)
			res, err := s.Search(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.NextPageToken != "" || res.RetryAfter != 0 || len(res.Signals) != 2 {
				t.Fatalf("Search = %d signals, next %q, retry %s", len(res.Signals), res.NextPageToken, res.RetryAfter)
			}
			a, b := res.Signals[0], res.Signals[1]
			want := plugin.Signal{
				ID: "1A082D7B-D5A1-4A2B-BB94-41C439BE3EB7@@notable@@cb87390ae72763679d3f6f8f097ebe2b", RuleName: "Linux Shadow File Read",
				RuleID: "ESCU - Linux Shadow File Read - Rule", Techniques: []string{"T1003.008", "T1003"},
				Timestamp: mustTime(t, "2025-03-04T10:15:30.250Z"), EventTime: time.Unix(1741083329, 125_000_000),
				Host: "lab-host.example.com", Severity: "high",
			}
			if a.ID != want.ID || a.RuleName != want.RuleName || a.RuleID != want.RuleID || !slices.Equal(a.Techniques, want.Techniques) ||
				!a.Timestamp.Equal(want.Timestamp) || !a.EventTime.Equal(want.EventTime) || a.Host != want.Host || a.Severity != want.Severity {
				t.Errorf("first signal\n got %+v\nwant %+v", a, want)
			}
			if !hasMarkerValue(a, plugin.MarkerCommandLine, "cat /etc/shadow # vigil-0123456789ab") || !hasMarkerValue(a, plugin.MarkerProcessName, "cat") {
				t.Errorf("first signal marker values %+v", a.MarkerValues)
			}
			// The "\n"-joined multivalue annotations of the second notable.
			if !slices.Equal(b.Techniques, []string{"T1053.003", "T1053"}) || b.Host != "lab-host" ||
				!hasMarkerValue(b, plugin.MarkerCommandLine, "bash -c 'crontab -e' vigil-ba9876543210") || !b.EventTime.IsZero() {
				t.Errorf("second signal %+v", b)
			}
			var raw map[string]any
			if err := json.Unmarshal(a.Raw, &raw); err != nil || raw["search_name"] != want.RuleID {
				t.Errorf("raw %s: %v", a.Raw, err)
			}

			// The requests: one search over the window, job polled, results
			// read, job cancelled.
			var create []splunkfake.Request
			if tc.export {
				create = f.Requests(http.MethodPost, tc.jobsPath+"/export")
			} else {
				create = f.Requests(http.MethodPost, tc.jobsPath)
			}
			if len(create) != 1 {
				t.Fatalf("%d search requests, want 1: %+v", len(create), f.Requests("", ""))
			}
			form := create[0].Form
			wantForm := map[string]string{
				"search": "search `notable`", "earliest_time": "1741083299", "latest_time": "1741083361", "output_mode": "json",
			}
			if !tc.export {
				wantForm["exec_mode"] = "normal"
			}
			for k, v := range wantForm {
				if form.Get(k) != v {
					t.Errorf("form %s = %q, want %q", k, form.Get(k), v)
				}
			}
			if create[0].Auth != "Bearer "+splunkfake.Token {
				t.Errorf("Authorization %q", create[0].Auth)
			}
			if tc.export {
				if n := len(f.JobCreations()); n != 0 {
					t.Errorf("%d jobs created in export mode", n)
				}
				return
			}
			sid := "1741083330.1_9C4E3A2B"
			if polls := f.Requests(http.MethodGet, tc.jobsPath+"/"+sid); len(polls) != 2+tc.running || polls[0].Form.Get("output_mode") != "json" {
				t.Errorf("%d status polls, want %d (QUEUED, RUNNING x%d, DONE)", len(polls), 2+tc.running, tc.running)
			}
			results := f.Requests("", tc.jobsPath+"/"+sid+"/results")
			if len(results) != 1 || results[0].Method != tc.resultsVerb || results[0].Form.Get("count") != "5000" || results[0].Form.Get("offset") != "0" {
				t.Errorf("results requests %+v", results)
			}
			ctl := f.Requests(http.MethodPost, tc.jobsPath+"/"+sid+"/control")
			if len(ctl) != 1 || ctl[0].Form.Get("action") != "cancel" {
				t.Errorf("control requests %+v, want one cancel", ctl)
			}
		})
	}
}

func hasMarkerValue(s plugin.Signal, loc plugin.MarkerLocation, v string) bool {
	for _, mv := range s.MarkerValues {
		if mv.Location == loc && mv.Value == v {
			return true
		}
	}
	return false
}

// TestResultsPaging reads past results_page and past a server cap below
// it, and pages the signals to the engine.
func TestResultsPaging(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		extra       string
		cap         int
		wantOffsets []string
	}{
		{name: "results_page", extra: "results_page = 3", wantOffsets: []string{"0", "3", "6"}},
		{name: "server cap below results_page", extra: "results_page = 5", cap: 2, wantOffsets: []string{"0", "2", "4", "6"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.SetResultsCap(tc.cap)
			for i := 0; i < 7; i++ {
				f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(time.Duration(i) * time.Second)), "event_id": "n" + string(rune('a'+i)), "annotations.mitre_attack": "T1003"}, time.Time{})
			}
			s, _ := configured(t, f, tc.extra)
			ctx := context.Background()
			req := plugin.SearchRequest{Start: start, End: start.Add(time.Minute), PageSize: 3, Expectations: []plugin.Expectation{{ID: "e", Technique: "T1003"}}}
			var ids []string
			for page := 0; ; page++ {
				res, err := s.Search(ctx, req)
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				for _, sg := range res.Signals {
					ids = append(ids, sg.ID)
				}
				if res.NextPageToken == "" {
					break
				}
				req.PageToken = res.NextPageToken
			}
			if want := []string{"na", "nb", "nc", "nd", "ne", "nf", "ng"}; !slices.Equal(ids, want) {
				t.Errorf("signals %v, want %v", ids, want)
			}
			var offsets []string
			for _, r := range f.Requests(http.MethodPost, "/results") {
				offsets = append(offsets, r.Form.Get("offset"))
			}
			if !slices.Equal(offsets, tc.wantOffsets) {
				t.Errorf("results offsets %v, want %v", offsets, tc.wantOffsets)
			}
			if n := len(f.JobCreations()); n != 1 {
				t.Errorf("%d jobs for one poll", n)
			}
			// A finished poll's tokens are gone.
			if _, err := s.Search(ctx, req); err == nil || !strings.Contains(err.Error(), "bad page token") {
				t.Errorf("stale token: %v", err)
			}
		})
	}
}

// TestRecordedResultFormats feeds the recorded /results answers of the
// Java SDK to the plugin verbatim.
func TestRecordedResultFormats(t *testing.T) {
	cases := []struct {
		file    string
		wantErr string
	}{
		{file: "splunk-sdk-java_results_resultsMV5.json"},
		{file: "splunk-sdk-java_results_resultsMVFuture.json"},
		{file: "splunk-sdk-java_results_results5.json", wantErr: "result row 0: _time: empty (the search must keep _time)"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var page resultsPage
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			f := splunkfake.New(t)
			f.SetResultsBody(body)
			start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
			for range page.Results { // the job's resultCount
				f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start)}, time.Time{})
			}
			s, _ := configured(t, f, "")
			res, err := s.Search(context.Background(), plugin.SearchRequest{Start: start, End: start.Add(time.Second), Expectations: []plugin.Expectation{{ID: "e"}}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "(SPL: search `notable`)") {
					t.Fatalf("Search: %v, want %q naming the SPL", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Signals) != 1 {
				t.Fatalf("%d signals", len(res.Signals))
			}
			sg := res.Signals[0]
			if sg.ID != "cd:_internal~115~BC509B13-C34D-4A69-B216-488806E9EA63:115:5186" || sg.Host != "dfoster-mbp17.local" ||
				!sg.Timestamp.Equal(mustTime(t, "2012-11-27T16:44:22.581-08:00")) {
				t.Errorf("signal %+v", sg)
			}
			// Both multivalue shapes read the same.
			if got := page.Results[0].values("_si"); !slices.Equal(got, []string{"dfoster-mbp17.local", "_internal"}) {
				t.Errorf("_si = %q", got)
			}
		})
	}
}

// TestExportStream reads the recorded export stream: BOM first, preview
// result sets re-streamed before the final one.
func TestExportStream(t *testing.T) {
	b, err := os.ReadFile("testdata/splunk-sdk-java_results_resultsExport.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, utf8BOM) {
		t.Fatal("the recorded export stream should start with a BOM")
	}
	var probe map[string]any
	if json.NewDecoder(bytes.NewReader(b)).Decode(&probe) == nil {
		t.Fatal("a JSON decoder should choke on the BOM: the test would prove nothing")
	}
	rows, err := readExport(bytes.NewReader(b), search{spl: "search x", maxRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.first("host")+"="+r.first("count"))
	}
	want := []string{"172.16.35.130=16", "ANDY-PC=29732", "Andy-PC=36185", "andy-pc=135", "three.four.com=35994"}
	if !slices.Equal(got, want) {
		t.Errorf("final rows %v, want %v", got, want)
	}
	if _, err := readExport(bytes.NewReader(b), search{spl: "search x", maxRows: 4}); err == nil || !strings.Contains(err.Error(), "over max_rows 4") {
		t.Errorf("max_rows: %v", err)
	}
	cases := []struct{ name, stream, wantErr string }{
		{"inline FATAL", "{\"preview\":false,\"offset\":0,\"result\":{\"_time\":\"1\"}}\n{\"messages\":[{\"type\":\"FATAL\",\"text\":\"Search process did not exit cleanly\"}]}\n",
			"search returned errors: FATAL: Search process did not exit cleanly (SPL: search x)"},
		{"garbage", "\xEF\xBB\xBF{\"preview\":false,\"result\":{}}\n<html>", "decode export stream after 1 rows"},
		{"cut mid-object", "{\"preview\":false,\"result\":{\"a\":", "decode export stream after 0 rows: unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readExport(strings.NewReader(tc.stream), search{spl: "search x", maxRows: 100})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("readExport: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMessagesShapes(t *testing.T) {
	cases := []struct {
		in   string
		want []Message
	}{
		{`[{"type":"FATAL","text":"a"},{"type":"INFO","text":"b"}]`, []Message{{"FATAL", "a"}}},
		{`{"fatal":["a"],"warn":["w"]}`, []Message{{"FATAL", "a"}}},
		{`{"error":"e"}`, []Message{{"ERROR", "e"}}},
		{`{}`, nil},
		{`null`, nil},
	}
	for _, tc := range cases {
		var ms messages
		if err := json.Unmarshal([]byte(tc.in), &ms); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := ms.failures(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: failures %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		setup   func(f *splunkfake.Fake)
		extra   string
		token   string
		wantErr []string
		check   func(t *testing.T, f *splunkfake.Fake)
	}{
		{name: "job FAILED with a FATAL message", setup: func(f *splunkfake.Fake) { f.SetFatal("Unknown search command 'nosuchcmd'.") },
			wantErr: []string{"splunk: search: search job 1741083330.1_9C4E3A2B FAILED: FATAL: Unknown search command 'nosuchcmd'. (SPL: search `notable`)"}},
		{name: "job DONE with a FATAL message", setup: func(f *splunkfake.Fake) { f.SetDoneFatal("Error in 'lookup' command") },
			wantErr: []string{"DONE with errors: FATAL: Error in 'lookup' command (SPL: search `notable`)"}},
		{name: "garbage results", setup: func(f *splunkfake.Fake) {
			f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start)}, time.Time{})
			f.SetResultsBody([]byte("<html>proxy error</html>"))
		},
			wantErr: []string{"splunk: search: read results of search job", "malformed answer", "<html>proxy error</html>"}},
		{name: "results 500", setup: func(f *splunkfake.Fake) {
			f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start)}, time.Time{})
			f.SetResultsStatus(500)
		},
			wantErr: []string{"read results of search job 1741083330.1_9C4E3A2B: HTTP 500 Internal Server Error: ERROR: results unavailable"}},
		{name: "token rejected", token: "tok-wrong-1234567",
			wantErr: []string{"splunk: search: create search job: HTTP 401 Unauthorized: WARN: call not properly authenticated"}},
		{name: "quota, no wait", setup: func(f *splunkfake.Fake) { f.SetQuota(-1) },
			wantErr: []string{"create search job: still refused after waiting 0s (quota_wait): HTTP 503 Service Unavailable: FATAL: Search not executed: The maximum number of concurrent historical searches"}},
		{name: "quota outlasts quota_wait", setup: func(f *splunkfake.Fake) { f.SetQuota(-1) }, extra: `quota_wait = "50ms"`,
			wantErr: []string{"still refused after waiting 20ms (quota_wait)"}},
		{name: "job never finishes", setup: func(f *splunkfake.Fake) { f.SetNeverDone(true) }, extra: `job_timeout = "1s"`,
			wantErr: []string{"search job 1741083330.1_9C4E3A2B did not finish within 1s (job_timeout)"},
			check: func(t *testing.T, f *splunkfake.Fake) {
				if n := len(f.Requests(http.MethodPost, "/control")); n != 1 {
					t.Errorf("%d cancel requests for the timed-out job, want 1", n)
				}
			}},
		{name: "over max_rows", extra: "max_rows = 2", setup: func(f *splunkfake.Fake) {
			for i := 0; i < 3; i++ {
				f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start)}, time.Time{})
			}
		}, wantErr: []string{"returned 3 rows, over max_rows 2: narrow the search (SPL: search `notable`)"}},
		{name: "unreadable _time", setup: func(f *splunkfake.Fake) {
			f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start)}, time.Time{})
			f.SetResultsBody([]byte(`{"preview":false,"results":[{"_time":"yesterday"}]}`))
		},
			wantErr: []string{`search: result row 0: _time: not a time: "yesterday"`}},
		{name: "unknown SPL in a native query", setup: func(f *splunkfake.Fake) {}, extra: "",
			wantErr: []string{"FATAL: Error in 'search' command: unknown query in the fake"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := fakeConfig(f, tc.extra)
			if tc.token != "" {
				cfg = strings.Replace(cfg, splunkfake.Token, tc.token, 1)
			}
			impl := &SIEM{warn: &bytes.Buffer{}}
			s := plugintest.SIEM(t, impl)
			ctx := context.Background()
			if err := s.Configure(ctx, []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			impl.st.cfg.quotaBackoff = 20 * time.Millisecond
			exps := []plugin.Expectation{{ID: "e"}}
			if tc.name == "unknown SPL in a native query" {
				exps = []plugin.Expectation{{ID: "e", Query: "index=nowhere"}}
			}
			_, err := s.Search(ctx, plugin.SearchRequest{Start: start, End: start.Add(time.Minute), Expectations: exps})
			if err == nil {
				t.Fatal("Search succeeded")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			noSecrets(t, "search error", err.Error())
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error leaks the token: %v", err)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

// TestQuotaBackoff: the concurrent-search quota is waited out within the
// poll, then RetryAfter spaces the next polls.
func TestQuotaBackoff(t *testing.T) {
	f := splunkfake.New(t)
	f.SetQuota(2)
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(time.Second)), "event_id": "n1", "annotations.mitre_attack": "T1003"}, time.Time{})
	s, _ := configured(t, f, `quota_wait = "5s"`)
	ctx := context.Background()
	res, err := s.Search(ctx, plugin.SearchRequest{Start: start, End: start.Add(time.Minute), Expectations: []plugin.Expectation{{ID: "e"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signals) != 1 || res.RetryAfter != 60*time.Millisecond {
		t.Errorf("Search = %d signals, RetryAfter %s; want 1 and 60ms (20ms + 40ms of backoff)", len(res.Signals), res.RetryAfter)
	}
	if n := len(f.JobCreations()); n != 3 {
		t.Errorf("%d job creation attempts, want 3", n)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st["quota_refusals"] != 2 || st["jobs"] != 1 || st["jobs_cancelled"] != 1 || st["jobs_live"] != 0 || st["signals"] != 1 {
		t.Errorf("Stats = %v", st)
	}
}

// TestSessionAuth logs in with username and password, uses the session
// key, and logs in again when it expires.
func TestSessionAuth(t *testing.T) {
	f := splunkfake.New(t)
	loadNotables(t, f)
	userCfg := strings.Replace(fakeConfig(f, ""), `token = "`+splunkfake.Token+`"`, `username = "`+splunkfake.User+`"`+"\n"+`password = "`+splunkfake.Password+`"`, 1)
	impl := &SIEM{warn: &bytes.Buffer{}}
	s := plugintest.SIEM(t, impl)
	ctx := context.Background()
	if err := s.Configure(ctx, []byte(userCfg)); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if _, err := s.Search(ctx, notablesWindow(t)); err != nil {
		t.Fatal(err)
	}
	logins := f.Requests(http.MethodPost, "/services/auth/login")
	if len(logins) != 1 || logins[0].Form.Get("username") != splunkfake.User || logins[0].Form.Get("password") != splunkfake.Password {
		t.Fatalf("logins %+v", logins)
	}
	if c := f.JobCreations(); len(c) != 1 || c[0].Auth != "Splunk "+splunkfake.Session+"-0" {
		t.Errorf("job creation auth %+v", c)
	}
	f.ExpireSessions(1)
	if _, err := s.Search(ctx, notablesWindow(t)); err != nil {
		t.Fatalf("Search after the session expired: %v", err)
	}
	st, _ := s.Stats(ctx)
	if st["logins"] != 2 {
		t.Errorf("logins = %d, want 2", st["logins"])
	}

	// A wrong password is an error that names the user, not the password.
	bad := strings.Replace(userCfg, splunkfake.Password, "pw-wrong-Zq8x4Lr2Vt", 1)
	s2 := plugintest.SIEM(t, &SIEM{})
	if err := s2.Configure(ctx, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	_, err := s2.Search(ctx, notablesWindow(t))
	if err == nil || !strings.Contains(err.Error(), `login as "vigil-svc": HTTP 401 Unauthorized: WARN: Login failed`) {
		t.Errorf("Search with a wrong password: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "pw-wrong") {
		t.Errorf("the error leaks the password: %v", err)
	}
}

func TestScrub(t *testing.T) {
	err := scrub(errors.New("a "+splunkfake.Token+" b"), []string{splunkfake.Token, ""})
	if err.Error() != "a [redacted] b" {
		t.Errorf("scrub = %q", err)
	}
	cfg := Config{Token: splunkfake.Token}
	for _, s := range []string{cfg.Token.String(), (&cfg).Token.GoString()} {
		noSecrets(t, "secret formatting", s)
	}
	if s := strings.Join([]string{string(cfg.Token)}, ""); s != splunkfake.Token {
		t.Error("string(secret) must give the value")
	}
}

// TestPerExpectationQueries: native queries become appended subsearches in
// the same job; their rows carry the expectations that asked for them.
func TestPerExpectationQueries(t *testing.T) {
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	qa := `index=edr process="*vigil-aaaaaaaaaaaa*"`
	qb := `| tstats count from datamodel=Endpoint.Processes by _time`
	cases := []struct {
		name    string
		exps    []plugin.Expectation
		wantSPL string
		want    map[string][]string // signal ID prefix → matched expectations
	}{
		{
			name: "base and queries",
			exps: []plugin.Expectation{{ID: "e1", Technique: "T1003"}, {ID: "e2", Query: qa}, {ID: "e3", Query: qa}, {ID: "e4", Query: qb}},
			wantSPL: "search `notable` | append [search " + qa + ` | eval vigil_expectations=mvappend("e2","e3")]` +
				" | append [" + qb + ` | eval vigil_expectations=mvappend("e4")]`,
			want: map[string][]string{"n1": nil, "q1|q:": {"e2", "e3"}, "q2|q:": {"e4"}},
		},
		{
			name:    "queries only: no base search",
			exps:    []plugin.Expectation{{ID: "e4", Query: qb}},
			wantSPL: qb + ` | eval vigil_expectations=mvappend("e4")`,
			want:    map[string][]string{"q2|q:": {"e4"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(time.Second)), "event_id": "n1"}, time.Time{})
			f.AddQuery("search "+qa, splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(2 * time.Second)), "event_id": "q1", "process": "x vigil-aaaaaaaaaaaa"})
			f.AddQuery(qb, splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(3 * time.Second)), "event_id": "q2"})
			s, _ := configured(t, f, "")
			res, err := s.Search(context.Background(), plugin.SearchRequest{Start: start, End: start.Add(time.Minute), Expectations: tc.exps})
			if err != nil {
				t.Fatal(err)
			}
			c := f.JobCreations()
			if len(c) != 1 || c[0].Form.Get("search") != tc.wantSPL {
				t.Fatalf("SPL sent:\n %q\nwant\n %q", c[0].Form.Get("search"), tc.wantSPL)
			}
			got := map[string][]string{}
			for _, sg := range res.Signals {
				key := sg.ID
				if i := strings.Index(key, "|q:"); i >= 0 {
					key = key[:i+3]
				}
				got[key] = sg.MatchedExpectations
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("signals %v, want %v", got, tc.want)
			}
		})
	}
}

// TestResultsWithBOM: an answer starting with a UTF-8 BOM decodes.
func TestResultsWithBOM(t *testing.T) {
	b, err := os.ReadFile("testdata/notables.json")
	if err != nil {
		t.Fatal(err)
	}
	f := splunkfake.New(t)
	loadNotables(t, f)
	f.SetResultsBody(append(append([]byte{}, utf8BOM...), b...))
	s, _ := configured(t, f, "")
	res, err := s.Search(context.Background(), notablesWindow(t))
	if err != nil || len(res.Signals) != 2 {
		t.Fatalf("Search = %d signals, %v", len(res.Signals), err)
	}
}

func TestHTTPError(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		want     string
		busy     bool
		auth     bool
		retryAft time.Duration
	}{
		{name: "JSON messages", status: 503, body: jsonMessages("FATAL", splunkfake.QuotaMessage),
			want: "HTTP 503 Service Unavailable: FATAL: " + splunkfake.QuotaMessage, busy: true},
		{name: "XML messages", status: 400, body: `<?xml version="1.0" encoding="UTF-8"?>
<response>
  <messages>
    <msg type="ERROR">Unknown search command 'nosuchcmd'.</msg>
  </messages>
</response>`, want: "HTTP 400 Bad Request: ERROR: Unknown search command 'nosuchcmd'."},
		{name: "HTML page", status: 502, body: "<html><body>\nBad gateway\x00</body></html>", want: "HTTP 502 Bad Gateway: <html><body> Bad gateway</body></html>"},
		{name: "rate limited", status: 429, header: map[string]string{"Retry-After": "7"}, body: "", want: "HTTP 429 Too Many Requests", busy: true, retryAft: 7 * time.Second},
		{name: "unauthorised", status: 401, body: `{"messages":[{"type":"WARN","text":"call not properly authenticated"}]}`,
			want: "HTTP 401 Unauthorized: WARN: call not properly authenticated", auth: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			for k, v := range tc.header {
				resp.Header.Set(k, v)
			}
			e := httpError(resp, []byte(tc.body))
			if e.Error() != tc.want || errors.Is(e, ErrBusy) != tc.busy || errors.Is(e, ErrAuth) != tc.auth || e.RetryAfter != tc.retryAft {
				t.Errorf("httpError = %q busy %v auth %v retry %s", e, errors.Is(e, ErrBusy), errors.Is(e, ErrAuth), e.RetryAfter)
			}
		})
	}
}

func jsonMessages(typ, text string) string {
	b, _ := json.Marshal(map[string]any{"messages": []Message{{Type: typ, Text: text}}})
	return string(b)
}

// The engine searches the same window every poll: the signals stat counts
// each notable once.
func TestStatsCountDistinctSignals(t *testing.T) {
	f := splunkfake.New(t)
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"n1", "n2"} {
		f.AddNotable(splunkfake.Row{"_time": splunkfake.FormatTime(start.Add(time.Duration(i) * time.Second)), "event_id": id}, time.Time{})
	}
	s, _ := configured(t, f, "")
	req := plugin.SearchRequest{Start: start, End: start.Add(time.Minute), Expectations: []plugin.Expectation{{ID: "e"}}}
	for poll := 0; poll < 3; poll++ {
		if res, err := s.Search(context.Background(), req); err != nil || len(res.Signals) != 2 {
			t.Fatalf("poll %d: %d signals, %v", poll, len(res.Signals), err)
		}
	}
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st["signals"] != 2 {
		t.Errorf("stats signals = %d after 3 polls of the same 2 notables, want 2", st["signals"])
	}
}
