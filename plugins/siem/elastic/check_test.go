package elastic

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/elasticfake"
)

// loadRules gives the fake Kibana the rules of testdata/rules-find.json
// and n more synthetic ones.
func loadRules(t *testing.T, f *elasticfake.Fake, n int) {
	t.Helper()
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(fixture(t, "rules-find.json", nil), &page); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		page.Data = append(page.Data, json.RawMessage(fmt.Sprintf(
			`{"id":"syn-%d","rule_id":"syn-rule-%d","name":"Synthetic %d","enabled":true,"type":"query","threat":[]}`, i, i, i)))
	}
	f.SetRules(page.Data)
}

func TestRules(t *testing.T) {
	f := elasticfake.New(t)
	loadRules(t, f, 1200)
	_, impl := configured(t, f, esConfig(f, true))
	rules, err := impl.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1204 {
		t.Fatalf("%d rules, want 1204", len(rules))
	}
	if n := len(f.Requests("GET /api/detection_engine/rules/_find")); n != 3 {
		t.Errorf("%d rule pages read, want 3 (500 per page)", n)
	}
	want := []Rule{
		{ID: "a1b2c3d4-0000-4000-8000-000000000001", RuleID: "7f3c1d2e-vigil-test-rule-0001", Name: "Unix Shell Execution With Run Marker", Enabled: true, Type: "query", Techniques: []string{"T1059.004"}},
		{ID: "a1b2c3d4-0000-4000-8000-000000000002", RuleID: "9e8d7c6b-vigil-test-rule-0002", Name: "Cron Job Created", Enabled: false, Type: "eql", Techniques: []string{"T1053.003"}},
		{ID: "a1b2c3d4-0000-4000-8000-000000000003", RuleID: "5a4b3c2d-vigil-test-rule-0003", Name: "File Deletion", Enabled: true, Type: "query", Techniques: []string{"T1070"}},
		{ID: "a1b2c3d4-0000-4000-8000-000000000004", RuleID: "1f2e3d4c-vigil-test-rule-0004", Name: "Sudoers Building Block", Enabled: true, Type: "query", BuildingBlockType: "default", Techniques: []string{"T1548.003"}},
	}
	for i, w := range want {
		g := rules[i]
		if g.ID != w.ID || g.RuleID != w.RuleID || g.Name != w.Name || g.Enabled != w.Enabled || g.Type != w.Type ||
			g.BuildingBlockType != w.BuildingBlockType || !slices.Equal(g.Techniques, w.Techniques) {
			t.Errorf("rule %d = %+v\nwant %+v", i, g, w)
		}
	}
	if _, err := configuredNoKibana(t, f).Rules(context.Background()); err == nil || !strings.Contains(err.Error(), "elastic: list rules: needs Kibana: set kibana_url") {
		t.Errorf("Rules without Kibana: %v", err)
	}
}

func configuredNoKibana(t *testing.T, f *elasticfake.Fake) *SIEM {
	_, impl := configured(t, f, esConfig(f, false))
	return impl
}

func TestCheck(t *testing.T) {
	f := elasticfake.New(t)
	loadRules(t, f, 0)
	f.Add(".alerts-security.alerts-default", "x", alert8x(t, "x", t0, testMarker), time.Time{})
	s, _ := configured(t, f, esConfig(f, true))
	exps := []plugin.Expectation{
		{ID: "ok-rule", RuleID: "7f3c1d2e-vigil-test-rule-0001"},
		{ID: "ok-name", RuleName: " unix shell execution with run marker"},
		{ID: "disabled", RuleName: "Cron Job Created"},
		{ID: "missing", RuleName: "No Such Rule"},
		{ID: "saved-object", RuleID: "a1b2c3d4-0000-4000-8000-000000000001"},
		{ID: "tech-ok", Technique: "T1059.004"},
		{ID: "tech-parent", Technique: "t1070.004"},
		{ID: "tech-other-sub", Technique: "T1059.001"},
		{ID: "tech-disabled", Technique: "T1053.003"},
		{ID: "tech-bb", Technique: "T1548.003"},
		{ID: "bb-rule", RuleName: "Sudoers Building Block"},
		{ID: "absent", Technique: "T1003", Absent: true},
		{ID: "query-ok", Query: "process.name:bash"},
		{ID: "query-bad", Query: "process.name:(bash"},
		{ID: "query-dsl-bad", Query: `{"bool": `},
	}
	probs, err := s.Check(context.Background(), plugin.CheckRequest{Expectations: exps})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`disabled: detection rule "Cron Job Created" (rule_id 9e8d7c6b-vigil-test-rule-0002) is disabled`,
		`missing: no detection rule with name "No Such Rule"`,
		`saved-object: rule_id a1b2c3d4-0000-4000-8000-000000000001 is the saved-object id of rule "Unix Shell Execution With Run Marker": expect its rule_id 7f3c1d2e-vigil-test-rule-0001, which alerts carry`,
		`tech-other-sub: no detection rule claims T1059.001 in its threat mapping`,
		`tech-disabled: no enabled detection rule claims T1053.003 (disabled or building-block: "Cron Job Created")`,
		`tech-bb: no enabled detection rule claims T1548.003 (disabled or building-block: "Sudoers Building Block")`,
		`bb-rule: detection rule "Sudoers Building Block" (rule_id 1f2e3d4c-vigil-test-rule-0004) is a building-block rule: its alerts are not counted`,
	}
	queryWant := []string{
		`query-bad: native query refused: HTTP 400 Bad Request: query_shard_exception: Failed to parse query [process.name:(bash]`,
		`query-dsl-bad: native query: not a JSON query DSL object: unexpected EOF`,
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	wantAll := append(append([]string{}, queryWant...), want...)
	if !slices.Equal(got, wantAll) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantAll, "\n"))
	}
}

func TestCheckFailures(t *testing.T) {
	tests := []struct {
		name    string
		kibana  bool
		cfg     []string
		setup   func(f *elasticfake.Fake)
		want    []string
		wantErr string
	}{
		{name: "all well", kibana: true},
		{name: "credentials refused", kibana: true, setup: func(f *elasticfake.Fake) { f.SetAuth("ApiKey b3RoZXI6a2V5"); f.SetEchoAuth(true) },
			want: []string{"credentials: refused: HTTP 401 Unauthorized: security_exception: unable to authenticate with provided credentials and anonymous access is not allowed for this request [APIKey [REDACTED]] (check api_key or username/password)"}},
		{name: "wrong space", cfg: []string{`space = "nope"`},
			want: []string{`alerts index .alerts-security.alerts-nope: not found (no rule has written an alert in space "nope" yet, or a wrong space or index): HTTP 404 Not Found: index_not_found_exception: no such index [.alerts-security.alerts-nope]`}},
		{name: "alerts not readable", setup: func(f *elasticfake.Fake) {
			f.Fail("POST /.alerts-security.alerts-default/_search", -1, 403, `{"error":{"root_cause":[{"type":"security_exception","reason":"action [indices:data/read/search] is unauthorized for API key id [VuaCfGcBCdbkQm-e5aOx] of user [vigil] on indices [.alerts-security.alerts-default]"}],"type":"security_exception","reason":"action [indices:data/read/search] is unauthorized for API key id [VuaCfGcBCdbkQm-e5aOx] of user [vigil] on indices [.alerts-security.alerts-default]"},"status":403}`)
		}, want: []string{"alerts index .alerts-security.alerts-default: not readable: HTTP 403 Forbidden: security_exception: action [indices:data/read/search] is unauthorized for API key id [VuaCfGcBCdbkQm-e5aOx] of user [vigil] on indices [.alerts-security.alerts-default] (the credentials lack a privilege: see the plugin's README)"}},
		{name: "event indices not readable", setup: func(f *elasticfake.Fake) {
			f.Fail("POST /logs-*/_search", -1, 403, `{"error":{"type":"security_exception","reason":"no read on [logs-*]"},"status":403}`)
		}, want: []string{"event indices logs-*: not readable (raw-event search and the ingestion delay will fail): HTTP 403 Forbidden: security_exception: no read on [logs-*] (the credentials lack a privilege: see the plugin's README)"}},
		{name: "kibana rules not readable", kibana: true, setup: func(f *elasticfake.Fake) {
			f.Fail("GET /api/detection_engine/rules/_find", -1, 403, `{"statusCode":403,"error":"Forbidden","message":"API [GET /api/detection_engine/rules/_find] is unauthorized for user, this action is granted by the Kibana privileges [securitySolution]"}`)
		}, want: []string{"kibana rules: not readable: HTTP 403 Forbidden: Forbidden: API [GET /api/detection_engine/rules/_find] is unauthorized for user, this action is granted by the Kibana privileges [securitySolution] (the credentials lack a privilege: see the plugin's README)"}},
		{name: "kibana search without kbn-xsrf would be refused", kibana: true, cfg: []string{`search_api = "kibana"`}},
		{name: "no answer", setup: func(f *elasticfake.Fake) { f.CloseES() }, wantErr: "elastic: check: search alerts:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := elasticfake.New(t)
			loadRules(t, f, 0)
			f.Add(".alerts-security.alerts-default", "x", alert8x(t, "x", t0, testMarker), time.Time{})
			s, _ := configured(t, f, esConfig(f, tc.kibana, tc.cfg...))
			if tc.setup != nil {
				tc.setup(f)
			}
			probs, err := s.Check(context.Background(), plugin.CheckRequest{Expectations: []plugin.Expectation{{ID: "e", Technique: "T1059.004"}}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range probs {
				got = append(got, p.String())
				assertNoSecret(t, "problem", p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// No call of the plugin lets a credential through, even from a server that
// echoes the Authorization header it received.
func TestSecretsNeverLeak(t *testing.T) {
	f := elasticfake.New(t)
	s, _ := configured(t, f, esConfig(f, true))
	f.SetAuth("ApiKey b3RoZXI6a2V5")
	f.SetEchoAuth(true)
	ctx := context.Background()
	var errs []error
	_, err := s.Search(ctx, plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
	errs = append(errs, err)
	_, err = s.SearchRawEvents(ctx, plugin.RawEventsRequest{Start: t0, End: t0.Add(time.Minute), Markers: []string{testMarker}})
	errs = append(errs, err)
	errs = append(errs, s.CloseSignals(ctx, plugin.CloseSignalsRequest{SignalIDs: []string{"x"}}))
	_, err = s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{[]byte(`{"message":"m"}`)}})
	errs = append(errs, err)
	probs, err := s.Check(ctx, plugin.CheckRequest{})
	if err != nil {
		t.Errorf("Check: %v, want the refusal as a problem", err)
	}
	errs = append(errs, plugin.Problems(probs).Err())
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error against a server refusing the credentials", i)
			continue
		}
		if !strings.Contains(err.Error(), "401") {
			t.Errorf("call %d: %v, want the 401 said", i, err)
		}
		assertNoSecret(t, fmt.Sprintf("call %d", i), err.Error())
	}

	// Basic auth: the password and its base64 form are redacted too.
	f2 := elasticfake.New(t)
	f2.SetAuth("Basic c29tZW9uZTplbHNl")
	f2.SetEchoAuth(true)
	s2, _ := configured(t, f2, `addresses = ["`+f2.ESURL()+`"]`+"\nusername = \"vigil\"\npassword = \"hunter2\"")
	_, err = s2.Search(ctx, plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "[Basic [REDACTED]]") {
		t.Errorf("basic auth error %v, want the echoed credentials redacted", err)
	}
	assertNoSecret(t, "basic auth error", fmt.Sprint(err))
}
