package elastic

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/elasticfake"
)

// TestClaimedRules lists the rules through the plugin protocol: every page
// (a 429 on the way retried), building blocks left out, techniques from
// the threat mapping.
func TestClaimedRules(t *testing.T) {
	f := elasticfake.New(t)
	loadRules(t, f, 600)
	f.Fail("GET "+kibanaRulesFindPath, 1, 429, `{"statusCode":429,"error":"Too Many Requests","message":"rate limited"}`)
	s, _ := configured(t, f, esConfig(f, true))
	d, err := s.Describe(context.Background())
	if err != nil || !d.Has(plugin.CapRules) {
		t.Fatalf("Describe = %+v, %v: want capability %q", d, err, plugin.CapRules)
	}
	rules, err := s.ClaimedRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 603 {
		t.Fatalf("%d rules, want 603 (604 less the building block)", len(rules))
	}
	if n := len(f.Requests("GET " + kibanaRulesFindPath)); n != 3 {
		t.Errorf("%d rule requests, want 3 (a 429, then 2 pages of 500)", n)
	}
	want := []plugin.Rule{
		{ID: "7f3c1d2e-vigil-test-rule-0001", Name: "Unix Shell Execution With Run Marker", Techniques: []string{"T1059.004"}, Enabled: true,
			Source: "/api/detection_engine/rules?rule_id=7f3c1d2e-vigil-test-rule-0001", Language: "query"},
		{ID: "9e8d7c6b-vigil-test-rule-0002", Name: "Cron Job Created", Techniques: []string{"T1053.003"},
			Source: "/api/detection_engine/rules?rule_id=9e8d7c6b-vigil-test-rule-0002", Language: "eql"},
		{ID: "5a4b3c2d-vigil-test-rule-0003", Name: "File Deletion", Techniques: []string{"T1070"}, Enabled: true,
			Source: "/api/detection_engine/rules?rule_id=5a4b3c2d-vigil-test-rule-0003", Language: "query"},
	}
	for i, w := range want {
		g := rules[i]
		if g.ID != w.ID || g.Name != w.Name || g.Enabled != w.Enabled || g.Source != w.Source || g.Language != w.Language || !slices.Equal(g.Techniques, w.Techniques) {
			t.Errorf("rule %d = %+v\nwant %+v", i, g, w)
		}
	}
	for _, r := range rules {
		if r.ID == "1f2e3d4c-vigil-test-rule-0004" {
			t.Errorf("the building-block rule is listed: %+v", r)
		}
	}
}

func TestClaimedRulesFailures(t *testing.T) {
	t.Run("refused credentials are an error without them", func(t *testing.T) {
		f := elasticfake.New(t)
		loadRules(t, f, 0)
		f.Fail("GET "+kibanaRulesFindPath, -1, 401, `{"statusCode":401,"error":"Unauthorized","message":"unable to authenticate with provided credentials"}`)
		s, _ := configured(t, f, esConfig(f, true))
		_, err := s.ClaimedRules(context.Background())
		if err == nil || !strings.Contains(err.Error(), "elastic: list rules:") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("error = %v", err)
		}
		assertNoSecret(t, "ClaimedRules error", err.Error())
	})
	t.Run("without kibana_url", func(t *testing.T) {
		f := elasticfake.New(t)
		s, _ := configured(t, f, esConfig(f, false))
		if _, err := s.ClaimedRules(context.Background()); err == nil || err.Error() != "elastic: list rules: needs Kibana: set kibana_url" {
			t.Fatalf("error = %v", err)
		}
	})
}
