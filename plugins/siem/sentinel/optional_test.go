package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/sentinelfake"
)

// fiveRules are listed in three pages of two.
func fiveRules() []sentinelfake.Rule {
	var out []sentinelfake.Rule
	for i, tech := range [][]string{{"T1053.003"}, {"T1059", "T1059.004"}, {"T1070.003"}, {"T1548"}, {"T1003.008"}} {
		out = append(out, sentinelfake.Rule{
			ID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), Name: fmt.Sprintf("Rule %d", i),
			Contains: fmt.Sprintf("never-%d", i), Tactics: []string{"Execution"}, Techniques: tech, Disabled: i == 3,
		})
	}
	return out
}

func TestClaimedRulesPaging(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetRules(fiveRules())
	s, _ := configured(t, f, "")
	rules, err := s.ClaimedRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 5 {
		t.Fatalf("%d rules, want 5 over three pages", len(rules))
	}
	if r := rules[1]; r.Name != "Rule 1" || strings.Join(r.Techniques, ",") != "T1059,T1059.004" || !r.Enabled || r.Language != "kql" || !strings.Contains(r.Source, "Scheduled") {
		t.Errorf("rule 1: %+v", r)
	}
	if rules[3].Enabled {
		t.Errorf("rule 3 is disabled, listed enabled")
	}
	reqs := f.Requests(sentinelfake.APIARM)
	if len(reqs) != 3 {
		t.Fatalf("%d listing requests, want 3 pages", len(reqs))
	}
	if v := reqs[0].Query.Get("api-version"); v != DefaultRulesAPIVersion {
		t.Errorf("api-version %q, want %s (techniques)", v, DefaultRulesAPIVersion)
	}
	if reqs[1].Query.Get("$skipToken") != "2" || reqs[2].Query.Get("$skipToken") != "4" {
		t.Errorf("pages not followed by nextLink: %v, %v", reqs[1].Query, reqs[2].Query)
	}

	// A nextLink that does not advance is an error, not a short list.
	f.SetRulesStuck(true)
	if _, err := s.ClaimedRules(context.Background()); err == nil || !strings.Contains(err.Error(), "the nextLink does not advance") {
		t.Errorf("stuck nextLink: %v", err)
	}
	f.SetRulesStuck(false)

	// A listing refused names the role.
	f.Fail(sentinelfake.APIARM, sentinelfake.Fault{Status: 403, Code: "AuthorizationFailed", Message: "does not have authorization to perform action 'Microsoft.SecurityInsights/alertRules/read'"})
	_, err = s.ClaimedRules(context.Background())
	if err == nil || !errors.Is(err, plugin.ErrDenied) || !strings.Contains(err.Error(), "Microsoft Sentinel Reader") {
		t.Errorf("error %v, want ErrDenied naming Microsoft Sentinel Reader", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetRules(fiveRules())
	s, _ := configured(t, f, "")
	probs, err := s.Check(context.Background(), plugin.CheckRequest{Expectations: []plugin.Expectation{
		{ID: "named-ok", RuleName: "rule 0"},
		{ID: "named-disabled", RuleID: "00000000-0000-4000-8000-000000000003"},
		{ID: "named-missing", RuleName: "No Such Rule"},
		{ID: "tech-ok", Technique: "T1059.004"},
		{ID: "tech-parent", Technique: "T1003.008"},
		{ID: "tech-none", Technique: "T1105"},
		{ID: "tech-disabled-only", Technique: "T1548.001"},
		{ID: "query-ok", Query: "SecurityAlert | where AlertName has \"x\""},
		{ID: "query-bad", Query: "SecurityAlert | summarize count()"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range probs {
		got[p.Subject] = p.Message
	}
	want := map[string]string{
		"named-disabled":     `analytics rule "Rule 3" (00000000-0000-4000-8000-000000000003) is disabled`,
		"named-missing":      `analytics rule "No Such Rule" does not exist in workspace soc-sentinel (resource group soc-rg)`,
		"tech-none":          "no enabled analytics rule claims T1105",
		"tech-disabled-only": "no enabled analytics rule claims T1548.001",
		"query-bad":          "the native query does not run: HTTP 400 Bad Request (BadArgumentError)",
	}
	if len(got) != len(want) {
		t.Errorf("problems %v, want %d", probs, len(want))
	}
	for k, w := range want {
		if !strings.Contains(got[k], w) {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}

	// Refused credentials are a problem, not an error.
	f2 := sentinelfake.New(t)
	impl := new(SIEM)
	if err := impl.Configure(context.Background(), []byte(strings.Replace(f2.Params(""), sentinelfake.ClientSecret, "wrong-secret-value-0000", 1))); err != nil {
		t.Fatal(err)
	}
	probs, err = impl.Check(context.Background(), plugin.CheckRequest{})
	if err != nil || len(probs) != 1 || probs[0].Subject != "credentials" || !strings.Contains(probs[0].Message, "AADSTS7000215") {
		t.Errorf("Check with a wrong secret: %v %v", probs, err)
	}
	f2.Fail(sentinelfake.APIQuery, sentinelfake.Fault{Status: 403, Code: "InsufficientAccessError", Message: "no access"})
	impl2 := new(SIEM)
	if err := impl2.Configure(context.Background(), []byte(f2.Params(""))); err != nil {
		t.Fatal(err)
	}
	probs, _ = impl2.Check(context.Background(), plugin.CheckRequest{})
	if len(probs) != 1 || probs[0].Subject != "workspace_id" || !strings.Contains(probs[0].Message, "Log Analytics Reader") {
		t.Errorf("Check without the role: %v", probs)
	}
}

// TestIngest: rows land in the stream of their kind, gzip, in batches
// within batch_bytes; a 413 splits a batch; throttling is waited out; a
// batch refused for its data is a problem; a refused role is an error.
func TestIngest(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 10, 0, 0, 123456789, time.UTC)
	marker := "vigil-0123456789ab"
	var five [][]byte
	for i := range 5 {
		five = append(five, replayEvent(at.Add(time.Duration(i)*time.Millisecond), "lab-1", fmt.Sprintf("cmd-%d %s %s", i, strings.Repeat("x", 300), marker)))
	}
	cases := []struct {
		name         string
		setup        func(f *sentinelfake.Fake)
		extra        string
		events       [][]byte
		wantAccepted int
		wantUploads  int
		wantProblems []string
		wantErr      string
		denied       bool
	}{
		{name: "one batch, gzip", events: five, wantAccepted: 5, wantUploads: 1},
		{name: "batches within batch_bytes", extra: "batch_bytes = 3000\n", events: five, wantAccepted: 5, wantUploads: 3},
		{name: "413 splits", setup: func(f *sentinelfake.Fake) { f.SetIngestLimit(1500) }, events: five, wantAccepted: 5, wantUploads: 9}, // 5 → 2+3; 2 → 1+1; 3 → 1+2; 2 → 1+1
		{name: "429 waited out", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIIngest, sentinelfake.Fault{Status: 429, RetryAfter: "1", Code: "TooManyRequests", Message: "slow down"})
		}, events: five, wantAccepted: 5, wantUploads: 1},
		{name: "not JSON is a problem", events: append([][]byte{[]byte("not json")}, five[:2]...), wantAccepted: 2, wantUploads: 1, wantProblems: []string{"event 0: not a JSON object"}},
		{name: "unknown stream is a problem", extra: "stream = \"Custom-Nope_CL\"\n", events: five[:2], wantUploads: 1,
			wantProblems: []string{"events 0-1: HTTP 400 Bad Request (InvalidStream): Stream Custom-Nope_CL is not defined"}},
		{name: "403 names the role", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIIngest, sentinelfake.Fault{Status: 403, Code: "OperationFailed", Message: "The authentication token provided does not have access to ingest data for the data collection rule"})
		}, events: five, wantUploads: 1, denied: true, wantErr: "the identity needs Monitoring Metrics Publisher on the data collection rule"},
		{name: "5xx past the retries", extra: "max_retries = 1\n", setup: func(f *sentinelfake.Fake) {
			f.Fail(sentinelfake.APIIngest, sentinelfake.Fault{Status: 503, Code: "ServiceUnavailable", Message: "down"}, sentinelfake.Fault{Status: 503, Code: "ServiceUnavailable", Message: "down"})
		}, events: five, wantUploads: 1, wantErr: "HTTP 503 Service Unavailable (ServiceUnavailable): down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := sentinelfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			s, impl := configured(t, f, tc.extra)
			res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: tc.events, Marker: marker})
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, plugin.ErrDenied) != tc.denied {
					t.Fatalf("error %v, want %q (denied %v)", err, tc.wantErr, tc.denied)
				}
				noSecrets(t, "ingest error", err.Error())
			case err != nil:
				t.Fatal(err)
			}
			if res.Accepted != tc.wantAccepted {
				t.Errorf("accepted %d, want %d (problems %v)", res.Accepted, tc.wantAccepted, res.Problems)
			}
			var probs []string
			for _, p := range res.Problems {
				probs = append(probs, p.String())
			}
			if len(probs) != len(tc.wantProblems) {
				t.Errorf("problems %q, want %q", probs, tc.wantProblems)
			}
			for i := range min(len(probs), len(tc.wantProblems)) {
				if !strings.HasPrefix(probs[i], tc.wantProblems[i]) {
					t.Errorf("problem %q, want %q", probs[i], tc.wantProblems[i])
				}
			}
			if got := impl.st.stats.uploads.Load(); int(got) != tc.wantUploads {
				t.Errorf("%d uploads, want %d", got, tc.wantUploads)
			}
			for _, r := range f.Requests(sentinelfake.APIIngest) {
				if r.Header.Get("Content-Encoding") != "gzip" || r.Query.Get("api-version") != "2023-01-01" {
					t.Errorf("upload headers %v query %v", r.Header, r.Query)
				}
			}
			if tc.wantErr == "" && tc.wantProblems == nil {
				rows := f.Rows("VigilEvents_CL")
				if len(rows) != len(tc.events) || rows[0]["VigilMarker"] != marker || rows[0]["Computer"] != "lab-1" || rows[0]["Source"] != "linux/process_creation" {
					t.Errorf("rows %v", rows)
				}
				if tg, _ := rows[0]["TimeGenerated"].(time.Time); !tg.Equal(at) {
					t.Errorf("TimeGenerated %v, want the event's %v", rows[0]["TimeGenerated"], at)
				}
			}
		})
	}
}

// With process_stream set, process creations go to ASimProcessEventLogs.
func TestIngestProcessStream(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	s, _ := configured(t, f, "process_stream = \""+sentinelfake.ProcessStream+"\"\n")
	at := time.Now().Add(-time.Second)
	if res, err := s.Ingest(context.Background(), plugin.IngestRequest{Events: [][]byte{replayEvent(at, "lab-1", "id # vigil-0123456789ab")}}); err != nil || res.Accepted != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	rows := f.Rows("ASimProcessEventLogs")
	if len(rows) != 1 || rows[0]["TargetProcessCommandLine"] != "id # vigil-0123456789ab" || rows[0]["EventType"] != "ProcessCreated" || rows[0]["DvcHostname"] != "lab-1" {
		t.Fatalf("rows %v", rows)
	}
	evs, err := s.SearchRawEvents(context.Background(), plugin.RawEventsRequest{Start: at, End: time.Now(), Markers: []string{"vigil-0123456789ab"}})
	if err != nil || len(evs) != 1 || evs[0].Source != ProcessTable || evs[0].Summary != "id # vigil-0123456789ab" || evs[0].IngestedAt.IsZero() {
		t.Errorf("raw events %+v %v", evs, err)
	}
}

// Close sets the incidents of the alerts to Closed, BenignPositive, with
// the reason as the comment, and only with close_signals.
func TestCloseSignals(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	rule := cronRule
	rule.Delay = 0
	f.SetRules([]sentinelfake.Rule{rule})
	s, _ := configured(t, f, "close_signals = true\n")
	ctx := context.Background()
	at := time.Now().Add(-time.Second)
	if _, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{replayEvent(at, "lab-1", "crontab -l # vigil-0123456789ab")}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Search(ctx, plugin.SearchRequest{Start: at.Add(-time.Second), End: time.Now(), Expectations: []plugin.Expectation{exp("a", "vigil-0123456789ab", at)}})
	if err != nil || len(r.Signals) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if err := s.CloseSignals(ctx, plugin.CloseSignalsRequest{SignalIDs: []string{r.Signals[0].ID}, Reason: "vigil run r-1: detection test"}); err != nil {
		t.Fatal(err)
	}
	incs := f.Rows("SecurityIncident")
	name, _ := incs[0]["IncidentName"].(string)
	p := f.Incident(name)
	if p["status"] != "Closed" || p["classification"] != "BenignPositive" || p["classificationReason"] != "SuspiciousButExpected" || p["classificationComment"] != "vigil run r-1: detection test" {
		t.Errorf("incident %v", p)
	}
	st, _ := s.Stats(ctx)
	if st["incidents_closed"] != 1 {
		t.Errorf("Stats %v", st)
	}
	// Without close_signals nothing is touched.
	s2, _ := configured(t, f, "")
	if err := s2.CloseSignals(ctx, plugin.CloseSignalsRequest{SignalIDs: []string{r.Signals[0].ID}}); err == nil || !strings.Contains(err.Error(), "close_signals is not enabled") {
		t.Errorf("CloseSignals without close_signals: %v", err)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	f.SetClockSkew(-30 * time.Second)
	s, _ := configured(t, f, "")
	c, err := s.Clock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Offset + 30*time.Second; d < -c.Uncertainty-50*time.Millisecond || d > c.Uncertainty+50*time.Millisecond {
		t.Errorf("offset %v +/- %v, want -30s", c.Offset, c.Uncertainty)
	}
	if !strings.Contains(c.Source, "now()") {
		t.Errorf("source %q", c.Source)
	}
}

// With incidents = true, the poll's one query also reads SecurityIncident:
// an incident is a signal with its rule and techniques.
func TestSearchIncidents(t *testing.T) {
	t.Parallel()
	f := sentinelfake.New(t)
	rule := cronRule
	rule.Delay = 0
	f.SetRules([]sentinelfake.Rule{rule})
	s, _ := configured(t, f, "incidents = true\n")
	ctx := context.Background()
	at := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	if _, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{replayEvent(at, "lab-1", "crontab -l # vigil-0123456789ab")}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Search(ctx, plugin.SearchRequest{Start: at.Add(-time.Second), End: time.Now(), Expectations: []plugin.Expectation{exp("a", "vigil-0123456789ab", at)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Requests(sentinelfake.APIQuery)); n != 1 {
		t.Errorf("%d queries, want one", n)
	}
	var inc *plugin.Signal
	for i := range r.Signals {
		if strings.HasPrefix(r.Signals[i].ID, "incident/") {
			inc = &r.Signals[i]
		}
	}
	if len(r.Signals) != 2 || inc == nil {
		t.Fatalf("signals %+v, want the alert and its incident", r.Signals)
	}
	if inc.RuleID != rule.ID || inc.RuleName != rule.Name || strings.Join(inc.Techniques, ",") != "T1053,T1053.003" || !inc.Timestamp.Equal(at) {
		t.Errorf("incident signal %+v", inc)
	}
}
