package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/sentinelfake"
)

// configured returns the plugin configured against the fake, over the
// real gRPC shims, and its implementation.
func configured(t *testing.T, f *sentinelfake.Fake, extra string) (plugin.SIEM, *SIEM) {
	t.Helper()
	impl := new(SIEM)
	s := plugintest.SIEM(t, impl)
	if err := s.Configure(context.Background(), []byte(f.Params("")+extra)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, impl
}

// noSecrets fails the test when s contains the fake's client secret or a
// token it issued.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, sentinelfake.ClientSecret) || strings.Contains(s, "fake-at-") {
		t.Errorf("%s leaks a credential: %s", what, s)
	}
}

// replayEvent is a process creation event as the replay injector hands
// it to SIEM plugins.
func replayEvent(at time.Time, host, cmd string) []byte {
	b, _ := json.Marshal(map[string]any{
		"time": at.Format(time.RFC3339Nano), "host": host, "logsource": map[string]string{"product": "linux", "category": "process_creation"},
		"fields": map[string]any{"CommandLine": cmd, "Image": "/usr/bin/bash"},
	})
	return b
}

// cronRule is the fake's analytics rule: crontab listings raise an alert
// tagged T1053.003, 700ms after the event.
var cronRule = sentinelfake.Rule{
	ID: "5b7c3a1e-0f4d-4e2b-9a6c-1d2e3f4a5b6c", Name: "Linux Crontab Listing", Contains: "crontab",
	Tactics: []string{"Persistence", "Execution"}, Techniques: []string{"T1053.003"}, Delay: 700 * time.Millisecond,
}

func exp(id, marker string, start time.Time) plugin.Expectation {
	return plugin.Expectation{ID: id, TestID: id, Technique: "T1053.003", Marker: marker, NotBefore: start, Deadline: start.Add(time.Minute)}
}

// TestSearchReadsAlerts: one query finds the alerts of every expectation,
// with the rule, its ID, techniques and sub-techniques, the host, the time
// and the marker where the entities and custom details carry it.
func TestSearchReadsAlerts(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetRules([]sentinelfake.Rule{cronRule})
	s, _ := configured(t, f, "")
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	m1, m2 := "vigil-0123456789ab", "vigil-ba9876543210"
	res, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{replayEvent(start, "lab-1", "crontab -l # "+m1)}, Marker: m1})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("Ingest: %+v %v", res, err)
	}
	if _, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{replayEvent(start.Add(time.Millisecond), "lab-2", "crontab -e # "+m2)}, Marker: m2}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	before := len(f.Requests(sentinelfake.APIQuery))
	r, err := s.Search(ctx, plugin.SearchRequest{Start: start.Add(-time.Second), End: time.Now().Add(time.Second),
		Expectations: []plugin.Expectation{exp("a", m1, start), exp("b", m2, start), exp("c", "vigil-000000000000", start)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Requests(sentinelfake.APIQuery)) - before; n != 1 {
		t.Errorf("%d queries for three expectations, want one", n)
	}
	if len(r.Signals) != 2 {
		t.Fatalf("%d signals, want 2: %+v", len(r.Signals), r.Signals)
	}
	sig := r.Signals[0]
	if sig.RuleName != cronRule.Name || sig.RuleID != cronRule.ID || sig.Host != "lab-1" || sig.Severity != "high" {
		t.Errorf("signal %+v", sig)
	}
	if strings.Join(sig.Techniques, ",") != "T1053,T1053.003" {
		t.Errorf("techniques %v, want T1053 and T1053.003", sig.Techniques)
	}
	if got := sig.Timestamp.Sub(start); got != 700*time.Millisecond {
		t.Errorf("alert stamped %v after the event, want exactly 700ms", got)
	}
	if !sig.EventTime.Equal(start) {
		t.Errorf("EventTime %v, want the event's %v", sig.EventTime, start)
	}
	var cmdline bool
	for _, mv := range sig.MarkerValues {
		if mv.Location == plugin.MarkerCommandLine && strings.Contains(mv.Value, m1) {
			cmdline = true
		}
	}
	if !cmdline {
		t.Errorf("no command line marker value in %+v", sig.MarkerValues)
	}
}

// Every fault of the query API ends the poll as an error naming it, or is
// waited out and reported in RetryAfter; never an empty answer.
func TestSearchFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     func(f *sentinelfake.Fake)
		extra     string
		wantErr   string
		denied    bool
		wantAfter time.Duration
		queries   int
	}{
		{name: "429 with Retry-After, then served", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 429, RetryAfter: "1", Code: "ThrottledError", Message: "Too many requests"})
		}, wantAfter: time.Second, queries: 2},
		{name: "throttled past the retries", setup: func(f *sentinelfake.Fake) {
			for range 3 {
				f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 429, RetryAfter: "1", Code: "ThrottledError", Message: "Your query was throttled"})
			}
		}, extra: "max_retries = 2\n", wantErr: "HTTP 429 Too Many Requests (ThrottledError): Your query was throttled (throttled; Retry-After 1s)", queries: 3},
		{name: "Retry-After longer than max_retry_wait fails at once", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 429, RetryAfter: "120", Code: "ThrottledError", Message: "slow down"})
		}, wantErr: "HTTP 429 Too Many Requests (ThrottledError): slow down (throttled; Retry-After 2m0s)", queries: 1},
		{name: "a 503 is retried", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 503, Code: "ServiceUnavailable", Message: "try later"})
		}, wantAfter: time.Second, queries: 2},
		{name: "5xx past the retries", setup: func(f *sentinelfake.Fake) {
			for range 4 {
				f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 500, Code: "InternalServerError", Message: "boom"})
			}
		}, wantErr: "HTTP 500 Internal Server Error (InternalServerError): boom", queries: 4},
		{name: "partial results are an error", setup: func(f *sentinelfake.Fake) { f.SetPartial("Query result set has exceeded the internal data size limit") },
			wantErr: "partial results (PartialError: There were some errors when processing your query.; Query result set has exceeded the internal data size limit)", queries: 1},
		{name: "403 names the role", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 403, Code: "InsufficientAccessError", Message: "The provided credentials have insufficient access to perform the requested operation"})
		}, denied: true, wantErr: "HTTP 403 Forbidden (InsufficientAccessError): The provided credentials have insufficient access to perform the requested operation; the identity needs Microsoft Sentinel Reader or Log Analytics Reader on the workspace", queries: 1},
		{name: "a wrong client secret is denied", extra: "", setup: nil, denied: true, wantErr: "AADSTS7000215: Invalid client secret provided", queries: 0},
		{name: "a token for another audience", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 401, Code: "InvalidAuthenticationTokenAudience", Message: "wrong audience"})
		}, denied: true, wantErr: "HTTP 401 Unauthorized (InvalidAuthenticationTokenAudience): wrong audience; the identity needs", queries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := sentinelfake.New(t)
			f.SetRules([]sentinelfake.Rule{cronRule})
			if tc.setup != nil {
				tc.setup(f)
			}
			params := f.Params("") + tc.extra
			if strings.HasPrefix(tc.name, "a wrong client secret") {
				params = strings.Replace(params, sentinelfake.ClientSecret, "wrong-secret-value-0000", 1)
			}
			impl := new(SIEM)
			s := plugintest.SIEM(t, impl)
			if err := s.Configure(context.Background(), []byte(params)); err != nil {
				t.Fatal(err)
			}
			start := time.Now().Add(-time.Minute)
			r, err := s.Search(context.Background(), plugin.SearchRequest{Start: start, End: time.Now(), Expectations: []plugin.Expectation{exp("a", "vigil-0123456789ab", start)}})
			if got := len(f.Requests(sentinelfake.APIQuery)); got != tc.queries {
				t.Errorf("%d query requests, want %d", got, tc.queries)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Search: %v", err)
				}
				if r.RetryAfter != tc.wantAfter {
					t.Errorf("RetryAfter %v, want %v", r.RetryAfter, tc.wantAfter)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Search error %v, want one saying %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "sentinel: search: ") {
				t.Errorf("error %q does not name the call", err)
			}
			if got := errors.Is(err, plugin.ErrDenied); got != tc.denied {
				t.Errorf("errors.Is(ErrDenied) = %v, want %v", got, tc.denied)
			}
			noSecrets(t, "search error", err.Error())
		})
	}
}

// An expired token is replaced before it is sent again: the fake takes no
// token past its expiry, and every poll still succeeds.
func TestTokenRefreshed(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetTokenTTL(time.Second)
	s, _ := configured(t, f, "")
	start := time.Now().Add(-time.Minute)
	for i := range 3 {
		if i > 0 {
			time.Sleep(1300 * time.Millisecond)
		}
		if _, err := s.Search(context.Background(), plugin.SearchRequest{Start: start, End: time.Now(), Expectations: []plugin.Expectation{exp("a", "m", start)}}); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	if n := f.TokensIssued(); n < 3 {
		t.Errorf("%d tokens issued over three polls 1.3s apart with 1s tokens, want one per poll", n)
	}
}

// A native query (KQL) runs in the same query as the alerts; its rows
// carry the expectation's ID. A query the workspace cannot parse is an
// error quoting the KQL.
func TestSearchNativeQuery(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	s, _ := configured(t, f, "")
	now := time.Now()
	f.AddRow("Syslog", sentinelfake.Record{"TimeGenerated": now.Add(-time.Second).UTC().Format(time.RFC3339Nano), "Computer": "lab-1", "SyslogMessage": "sudo: vigil-0123456789ab"})
	start := now.Add(-time.Minute)
	e1 := exp("q1", "vigil-0123456789ab", start)
	e1.Query = `Syslog | where SyslogMessage has "sudo"`
	e2 := exp("q2", "vigil-0123456789ab", start)
	e2.Query = e1.Query
	r, err := s.Search(context.Background(), plugin.SearchRequest{Start: start, End: now, Expectations: []plugin.Expectation{e1, e2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Signals) != 1 || strings.Join(r.Signals[0].MatchedExpectations, ",") != "q1,q2" || r.Signals[0].Host != "lab-1" {
		t.Fatalf("signals %+v", r.Signals)
	}
	q := f.Requests(sentinelfake.APIQuery)[0].KQL
	if strings.Contains(q, "SecurityAlert") {
		t.Errorf("every expectation has a query, yet the poll reads SecurityAlert:\n%s", q)
	}
	e1.Query = "Syslog | summarize count() by Computer"
	_, err = s.Search(context.Background(), plugin.SearchRequest{Start: start, End: now, Expectations: []plugin.Expectation{e1}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request (BadArgumentError)") || !strings.Contains(err.Error(), "KQL: Syslog | summarize count()") {
		t.Errorf("error %v, want the 400 and the KQL", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	base := `tenant_id = "7a1b2c3d-0000-4000-8000-00000000f00d"
client_id = "c0ffee00-1111-4222-8333-444455556666"
workspace_id = "9f8e7d6c-5b4a-4321-8765-0123456789ab"
`
	cases := []struct{ name, cfg, want string }{
		{"no workspace", strings.Replace(base, "workspace_id", "# workspace_id", 1) + `client_secret = "s3cr3t-value"`, "workspace_id is required"},
		{"workspace not a GUID", strings.Replace(base, "9f8e7d6c-5b4a-4321-8765-0123456789ab", "soc", 1) + `client_secret = "s3cr3t-value"`, `workspace_id "soc": not a GUID`},
		{"secret without ids", `workspace_id = "9f8e7d6c-5b4a-4321-8765-0123456789ab"` + "\nclient_secret = \"s3cr3t-value\"", `auth "client_secret" needs tenant_id and client_id`},
		{"http endpoint", base + `client_secret = "s3cr3t-value"` + "\nquery_endpoint = \"http://example.com\"", "want an https:// URL"},
		{"half the ARM name", base + `client_secret = "s3cr3t-value"` + "\nresource_group = \"rg\"", "go together"},
		{"close without ARM", base + `client_secret = "s3cr3t-value"` + "\nclose_signals = true", "close_signals needs subscription_id"},
		{"endpoint without rule", base + `client_secret = "s3cr3t-value"` + "\ningest_endpoint = \"https://dce.example.com\"", "ingest_endpoint needs dcr_immutable_id"},
		{"bad stream", base + `client_secret = "s3cr3t-value"` + "\nstream = \"VigilEvents\"", "not a DCR stream name"},
		{"unknown key", base + `client_secret = "s3cr3t-value"` + "\nworkspace = \"x\"", "unknown keys workspace"},
		{"secret with managed identity", base + `client_secret = "s3cr3t-value"` + "\nauth = \"managed_identity\"", "client_secret is only used with auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			noSecrets(t, "config error", err.Error())
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("config error quotes the secret: %v", err)
			}
		})
	}
	cfg, err := parseConfig([]byte(base + `client_secret = "s3cr3t-value"`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth != AuthClientSecret || cfg.MaxRows != DefaultMaxRows || cfg.Stream != DefaultStream || cfg.MaxRetries != DefaultMaxRetries {
		t.Errorf("defaults %+v", cfg.Config)
	}
	if got := fmt.Sprintf("%v %+v", cfg.ClientSecret, cfg.Config); strings.Contains(got, "s3cr3t-value") {
		t.Errorf("the secret shows: %s", got)
	}
	_ = http.StatusOK
}
