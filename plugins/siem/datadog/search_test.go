package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/ddfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// searchAll follows the pages of one batched search, as the watcher does.
func searchAll(t *testing.T, s plugin.SIEM, req plugin.SearchRequest) ([]plugin.Signal, []time.Duration, error) {
	t.Helper()
	var (
		all    []plugin.Signal
		pauses []time.Duration
	)
	for page := 0; page < 50; page++ {
		res, err := s.Search(context.Background(), req)
		if err != nil {
			return all, pauses, err
		}
		all = append(all, res.Signals...)
		pauses = append(pauses, res.RetryAfter)
		if res.NextPageToken == "" {
			return all, pauses, nil
		}
		req.PageToken = res.NextPageToken
	}
	t.Fatal("search did not end")
	return nil, nil, nil
}

// The plugin replays the recorded paginated search exactly: same bodies
// (window, query, limit, sort, then the recorded cursors), the keys sent,
// and the recorded signals decoded.
func TestSearchRecordedCassette(t *testing.T) {
	c, err := ddfake.LoadCassette("testdata/v2_Feature_Security_Monitoring_Scenario_Get_a_list_of_security_signals_returns_OK_response_with_pagination.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := newFake(t, ddfake.Options{})
	srv.Replay(c)
	s, _ := configured(t, srv, "query = \"security:attack status:high\"\npage_size = 2", nil)
	sigs, _, err := searchAll(t, s, plugin.SearchRequest{
		Start: mustTime(t, "2022-04-13T11:17:57.080Z"), End: mustTime(t, "2022-04-13T11:32:57.080Z"),
		Expectations: []plugin.Expectation{{ID: "e1", Technique: "T1556"}},
	})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if errs, done := srv.ReplayErrors(); len(errs) > 0 || !done {
		t.Fatalf("replay: done %v, mismatches %v", done, errs)
	}
	if len(sigs) != len(recordedSignals) {
		t.Fatalf("%d signals, want %d", len(sigs), len(recordedSignals))
	}
	for i, w := range recordedSignals {
		checkSignal(t, sigs[i], w)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (two pages and the empty one)", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("DD-API-KEY") != testAPIKey || r.Header.Get("DD-APPLICATION-KEY") != testAppKey {
			t.Errorf("request %s without the keys", r.Path)
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
	}
}

// searchBody is what the tests read back of a signals search request.
type searchBody struct {
	Filter struct {
		From, To time.Time
		Query    string
	}
	Page struct {
		Cursor string
		Limit  int
	}
	Sort string
}

func bodies(t *testing.T, srv *ddfake.Server) []searchBody {
	t.Helper()
	var out []searchBody
	for _, r := range srv.Requests() {
		if r.Path != ddfake.PathSignalsSearch {
			continue
		}
		var b searchBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("request body %s: %v", r.Body, err)
		}
		out = append(out, b)
	}
	return out
}

func TestSearchBatches(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := newFake(t, ddfake.Options{})
	add := func(id, rule string, at time.Duration, tags ...string) {
		srv.AddSignal(ddfake.Signal{ID: id, Timestamp: t0.Add(at), RuleID: "rule-" + rule, RuleName: "Rule " + rule, Host: "web-1", Tags: append([]string{"env:prod"}, tags...)})
	}
	add("early", "A", -time.Minute, "technique:t1003-os-credential-dumping")
	add("s1", "A", 1*time.Second, "technique:t1003-os-credential-dumping")
	add("s2", "B", 2*time.Second, "technique:t1059.004-unix-shell")
	add("s3", "B", 3*time.Second)
	add("s4", "C", 4*time.Second)
	add("s5", "A", 5*time.Second)
	add("staging", "A", 6*time.Second)
	srv.AddSignal(ddfake.Signal{ID: "other-env", Timestamp: t0.Add(7 * time.Second), RuleName: "Rule A", Tags: []string{"env:staging"}})
	add("late", "A", time.Hour)

	s, _ := configured(t, srv, "query = \"env:prod\"\npage_size = 2", nil)
	window := plugin.SearchRequest{Start: t0, End: t0.Add(10 * time.Second)}

	t.Run("one query, cursor pages, window and base filter", func(t *testing.T) {
		before := len(bodies(t, srv))
		req := window
		for i := 0; i < 100; i++ {
			req.Expectations = append(req.Expectations, plugin.Expectation{ID: fmt.Sprintf("e%d", i), Technique: "T1003"})
		}
		sigs, _, err := searchAll(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, sg := range sigs {
			ids = append(ids, sg.ID)
			if len(sg.MatchedExpectations) != 0 {
				t.Errorf("%s tagged with %v without a native query", sg.ID, sg.MatchedExpectations)
			}
		}
		if want := []string{"s1", "s2", "s3", "s4", "s5", "staging"}; !slices.Equal(ids, want) {
			t.Errorf("signals %v, want %v (oldest first, in the window, env:prod)", ids, want)
		}
		bs := bodies(t, srv)[before:]
		// 6 signals by 2: three full pages, then the empty one.
		if len(bs) != 4 {
			t.Fatalf("%d requests for 100 expectations, want 4", len(bs))
		}
		for i, b := range bs {
			if !b.Filter.From.Equal(window.Start) || !b.Filter.To.Equal(window.End) || b.Filter.Query != "env:prod" || b.Page.Limit != 2 || b.Sort != "timestamp" {
				t.Errorf("request %d: %+v", i, b)
			}
			if (i == 0) != (b.Page.Cursor == "") {
				t.Errorf("request %d: cursor %q", i, b.Page.Cursor)
			}
		}
	})

	t.Run("requests do not depend on the number of tests", func(t *testing.T) {
		count := func(n int) int {
			before := len(bodies(t, srv))
			req := window
			for i := 0; i < n; i++ {
				req.Expectations = append(req.Expectations, plugin.Expectation{ID: fmt.Sprintf("x%d", i), Technique: "T1059", RuleName: "Rule B"})
			}
			if _, _, err := searchAll(t, s, req); err != nil {
				t.Fatal(err)
			}
			return len(bodies(t, srv)) - before
		}
		if one, many := count(1), count(1000); one != many {
			t.Errorf("%d requests for 1 expectation, %d for 1000", one, many)
		}
	})

	t.Run("native queries", func(t *testing.T) {
		before := len(bodies(t, srv))
		req := window
		req.Expectations = []plugin.Expectation{
			{ID: "plain", Technique: "T1003"},
			{ID: "q-b-1", Query: `@workflow.rule.name:"Rule B"`},
			{ID: "q-b-2", Query: ` @workflow.rule.name:"Rule B" `},
			{ID: "q-c", Query: "@workflow.rule.id:rule-C"},
		}
		sigs, _, err := searchAll(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		tagged := map[string][]string{}
		for _, sg := range sigs {
			if len(sg.MatchedExpectations) > 0 {
				tagged[sg.ID] = append(tagged[sg.ID], sg.MatchedExpectations...)
			}
		}
		want := map[string][]string{"s2": {"q-b-1", "q-b-2"}, "s3": {"q-b-1", "q-b-2"}, "s4": {"q-c"}}
		if fmt.Sprint(tagged) != fmt.Sprint(want) {
			t.Errorf("tagged %v, want %v", tagged, want)
		}
		var queries []string
		for _, b := range bodies(t, srv)[before:] {
			if b.Page.Cursor == "" {
				queries = append(queries, b.Filter.Query)
			}
		}
		wantQ := []string{"env:prod", `(env:prod) AND (@workflow.rule.id:rule-C)`, `(env:prod) AND (@workflow.rule.name:"Rule B")`}
		if !slices.Equal(queries, wantQ) {
			t.Errorf("queries %q, want %q (base, then each distinct native query once)", queries, wantQ)
		}
	})

	t.Run("a page token of another batch is refused", func(t *testing.T) {
		req := window
		req.Expectations = []plugin.Expectation{{ID: "q", Query: "status:high"}}
		res, err := s.Search(context.Background(), req)
		if err != nil || res.NextPageToken == "" {
			t.Fatalf("Search = %+v, %v", res, err)
		}
		req.Expectations = nil
		req.PageToken = res.NextPageToken
		if _, err := s.Search(context.Background(), req); err == nil || !strings.Contains(err.Error(), "datadog: search signals: page token of another search") {
			t.Errorf("err = %v", err)
		}
		req.PageToken = "%%%"
		if _, err := s.Search(context.Background(), req); err == nil || !strings.Contains(err.Error(), "bad page token") {
			t.Errorf("err = %v", err)
		}
	})
}

// errorCase scripts the fake's answers and says what Search must do.
type errorCase struct {
	name   string
	extra  string // config
	fault  ddfake.Fault
	keys   [2]string // wrong keys, when set
	waits  []time.Duration
	tries  int
	ok     bool
	errHas []string
	// denied: the error is plugin.ErrDenied (after the gRPC round trip),
	// so that the engine stops asking.
	denied bool
	stats  map[string]int64
}

func TestSearchFailures(t *testing.T) {
	t0 := newClock().now().Add(-time.Minute) // the signal is visible from the start
	firstN := func(n int, a ddfake.Answer) ddfake.Fault {
		return func(_ ddfake.Request, i int) *ddfake.Answer {
			if i <= n {
				return &a
			}
			return nil
		}
	}
	always := func(a ddfake.Answer) ddfake.Fault { return firstN(1<<30, a) }
	tests := []errorCase{
		{name: "429 waits X-RateLimit-Reset then succeeds",
			fault: firstN(1, ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`,
				Header: http.Header{"X-Ratelimit-Reset": {"7"}, "X-Ratelimit-Remaining": {"0"}}}),
			waits: []time.Duration{7 * time.Second}, tries: 2, ok: true, stats: map[string]int64{"rate_limited": 1, "retries": 1}},
		{name: "429 without reset backs off",
			fault: firstN(2, ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`,
				Header: http.Header{"X-Ratelimit-Reset": nil, "X-Ratelimit-Remaining": nil}}),
			waits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, tries: 3, ok: true},
		{name: "429 reset beyond max_wait fails", extra: `max_wait = "10s"`,
			fault: always(ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`, Header: http.Header{"X-Ratelimit-Reset": {"3600"}}}),
			tries: 1, errHas: []string{"datadog: search signals: 429 Too Many Requests: Rate limit exceeded; reset in 1h0m0s exceeds max_wait 10s"}},
		{name: "5xx retried with capped backoff",
			fault: firstN(2, ddfake.Answer{Status: 503, Body: `{"errors":["Service Unavailable"]}`}),
			waits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, tries: 3, ok: true, stats: map[string]int64{"server_errors": 2}},
		{name: "persistent 500 is an error", extra: "max_retries = 5",
			fault: always(ddfake.Answer{Status: 500, Body: `{"errors":["Internal Server Error"]}`}),
			waits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}, tries: 6,
			errHas: []string{"datadog: search signals: giving up after 6 attempts: 500 Internal Server Error: Internal Server Error"}},
		{name: "backoff is capped at 5s", extra: "max_retries = 7",
			fault: always(ddfake.Answer{Status: 502, Body: "<html>bad gateway</html>", ContentType: "text/html"}),
			waits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, tries: 8,
			errHas: []string{"502 Bad Gateway: <html>bad gateway</html>"}},
		{name: "403 text/plain is not retried, names the permission",
			fault: always(ddfake.Answer{Status: 403, Body: ddfake.ForbiddenBody, ContentType: "text/plain; charset=utf-8"}),
			tries: 1, denied: true, errHas: []string{"datadog: search signals: 403 Forbidden: Forbidden (the application key needs the permission security_monitoring_signals_read; check api_key and app_key"}},
		{name: "401 is not retried",
			fault: always(ddfake.Answer{Status: 401, Body: `{"errors":["Unauthorized"]}`}),
			tries: 1, denied: true, errHas: []string{"datadog: search signals: 401 Unauthorized: Unauthorized (check api_key and app_key"}},
		{name: "wrong keys", keys: [2]string{"wrongapikey-000000000000", "wrongappkey-11111111111"},
			tries: 1, denied: true, errHas: []string{"datadog: search signals: 403 Forbidden: Forbidden"}},
		{name: "400 names Datadog's message",
			fault: always(ddfake.Answer{Status: 400, Body: `{"errors":["invalid query: unbalanced parenthesis"]}`}),
			tries: 1, errHas: []string{"datadog: search signals: 400 Bad Request: invalid query: unbalanced parenthesis"}},
		{name: "garbage JSON is an error", fault: always(ddfake.Answer{Status: 200, Body: `{"data":[{"id":`}),
			tries: 1, errHas: []string{"datadog: search signals: decode answer"}},
		{name: "HTML with 200 is an error", fault: always(ddfake.Answer{Status: 200, Body: `<html>login</html>`, ContentType: "text/html"}),
			tries: 1, errHas: []string{"datadog: search signals: decode answer", "<html>login</html>"}},
		{name: "timeouts are retried", extra: "timeout = \"100ms\"\nmax_retries = 1",
			fault: always(ddfake.Answer{Delay: 2 * time.Second}),
			waits: []time.Duration{250 * time.Millisecond}, tries: 2,
			errHas: []string{"datadog: search signals: giving up after 2 attempts: no answer within 100ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			srv := newFake(t, ddfake.Options{Now: clk.now})
			srv.AddSignal(ddfake.Signal{ID: "s1", Timestamp: t0.Add(time.Second), RuleName: "R", Tags: []string{"technique:t1003-x"}})
			srv.SetFault(tc.fault)
			impl := &SIEM{adjust: clk.use}
			s := plugintest.SIEM(t, impl)
			cfg := testConfig(srv, tc.extra)
			if tc.keys[0] != "" {
				cfg = fmt.Sprintf("url = %q\napi_key = %q\napp_key = %q\n%s", srv.URL, tc.keys[0], tc.keys[1], tc.extra)
			}
			if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
				t.Fatal(err)
			}
			res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
			if tc.ok {
				if err != nil || len(res.Signals) != 1 {
					t.Fatalf("Search = %d signals, %v; want the signal", len(res.Signals), err)
				}
			} else {
				if err == nil {
					t.Fatal("Search succeeded, want an error")
				}
				for _, h := range tc.errHas {
					if !strings.Contains(err.Error(), h) {
						t.Errorf("error %q does not contain %q", err, h)
					}
				}
				if errors.Is(err, plugin.ErrDenied) != tc.denied {
					t.Errorf("errors.Is(%v, plugin.ErrDenied) = %v, want %v", err, !tc.denied, tc.denied)
				}
				for _, k := range []string{testAPIKey, testAppKey, tc.keys[0], tc.keys[1]} {
					if k != "" && strings.Contains(err.Error(), k) {
						t.Fatalf("error leaks a key: %v", err)
					}
				}
			}
			if got := srv.Count(http.MethodPost, ddfake.PathSignalsSearch); got != tc.tries {
				t.Errorf("%d requests, want %d", got, tc.tries)
			}
			if got := clk.waits(); !slices.Equal(got, tc.waits) {
				t.Errorf("waits %v, want %v", got, tc.waits)
			}
			stats, _ := s.Stats(context.Background())
			for k, v := range tc.stats {
				if stats[k] != v {
					t.Errorf("stats[%s] = %d, want %d (%v)", k, stats[k], v, stats)
				}
			}
		})
	}
}

// The plugin paces its searches by X-RateLimit-Remaining and -Reset, so
// that the watcher slows down before Datadog answers 429.
func TestSearchPacing(t *testing.T) {
	clk := newClock()
	t0 := clk.now()
	srv := newFake(t, ddfake.Options{Now: clk.now, RateLimit: 3, RatePeriod: time.Minute})
	s, _ := configured(t, srv, "", clk.use)
	req := plugin.SearchRequest{Start: t0.Add(-time.Minute), End: t0}
	var pauses []time.Duration
	for i := 0; i < 5; i++ {
		res, err := s.Search(context.Background(), req)
		if err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
		pauses = append(pauses, res.RetryAfter)
	}
	// Budget 3 per minute: 2 left → 20s, 1 left → 30s, none → 60s; the
	// fourth search waits for the reset (60s) and starts a new window.
	want := []time.Duration{20 * time.Second, 30 * time.Second, 60 * time.Second, 20 * time.Second, 30 * time.Second}
	if !slices.Equal(pauses, want) {
		t.Errorf("RetryAfter %v, want %v", pauses, want)
	}
	if got := clk.waits(); !slices.Equal(got, []time.Duration{time.Minute}) {
		t.Errorf("waits %v, want one wait for the reset", got)
	}
	stats, _ := s.Stats(context.Background())
	if stats["rate_limited"] != 0 || stats["requests"] != 5 || stats["throttled_ms"] != 60000 {
		t.Errorf("stats %v: want 5 requests, no 429, 60s throttled", stats)
	}
}

// The engine searches the same window every poll: signals_seen counts each
// signal once.
func TestStatsCountDistinctSignals(t *testing.T) {
	clk := newClock()
	t0 := clk.now().Add(-time.Minute)
	srv := newFake(t, ddfake.Options{Now: clk.now})
	for i, id := range []string{"s1", "s2"} {
		srv.AddSignal(ddfake.Signal{ID: id, Timestamp: t0.Add(time.Duration(i+1) * time.Second), RuleName: "R", Tags: []string{"technique:t1003-x"}})
	}
	s, _ := configured(t, srv, "", clk.use)
	for poll := 0; poll < 3; poll++ {
		if res, err := s.Search(context.Background(), plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)}); err != nil || len(res.Signals) != 2 {
			t.Fatalf("poll %d: %d signals, %v", poll, len(res.Signals), err)
		}
	}
	st, _ := s.Stats(context.Background())
	if st["signals_seen"] != 2 {
		t.Errorf("stats signals_seen = %d after 3 polls of the same 2 signals, want 2", st["signals_seen"])
	}
}
