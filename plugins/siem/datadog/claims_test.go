package datadog

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/ddfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// TestClaimedRules lists the rules through the plugin protocol: every page,
// deleted rules left out, techniques from technique: tags.
func TestClaimedRules(t *testing.T) {
	srv := newFake(t, ddfake.Options{Rules: testRules()})
	s, _ := configured(t, srv, "", nil)
	d, err := s.Describe(context.Background())
	if err != nil || !d.Has(plugin.CapRules) {
		t.Fatalf("Describe = %+v, %v: want capability %q", d, err, plugin.CapRules)
	}
	rules, err := s.ClaimedRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 233 {
		t.Fatalf("%d rules, want 233 (234 less the deleted one)", len(rules))
	}
	byID := map[string]plugin.Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	want := []plugin.Rule{
		{ID: "abc-def-ghi", Name: "Cron Job Created", Techniques: []string{"T1053", "T1053.003"}, Enabled: true, Source: "/api/v2/security_monitoring/rules/abc-def-ghi"},
		{ID: "dis-abl-ed1", Name: "Disabled Rule", Techniques: []string{"T1110"}, Source: "/api/v2/security_monitoring/rules/dis-abl-ed1"},
		{ID: "las-tpa-ge1", Name: "On The Last Page", Techniques: []string{"T1003.008"}, Enabled: true, Source: "/api/v2/security_monitoring/rules/las-tpa-ge1"},
		{ID: "fil-ler-007", Name: "Filler 7", Enabled: true, Source: "/api/v2/security_monitoring/rules/fil-ler-007"},
	}
	for _, w := range want {
		g := byID[w.ID]
		if g.Name != w.Name || g.Enabled != w.Enabled || g.Source != w.Source || !slices.Equal(g.Techniques, w.Techniques) {
			t.Errorf("rule %s = %+v\nwant %+v", w.ID, g, w)
		}
	}
	if _, ok := byID["del-ete-d01"]; ok {
		t.Error("the deleted rule is listed")
	}
	if n := srv.Count(http.MethodGet, ddfake.PathRules); n != 3 {
		t.Errorf("%d rules requests, want 3 (234 rules by 100)", n)
	}
}

func TestClaimedRulesFailures(t *testing.T) {
	t.Run("a 429 is waited out", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{Rules: testRules()})
		var n atomic.Int32
		srv.SetFault(func(r ddfake.Request, _ int) *ddfake.Answer {
			if r.Path != ddfake.PathRules || n.Add(1) != 2 {
				return nil
			}
			return &ddfake.Answer{Status: 429, Body: `{"errors":["Rate limit exceeded"]}`,
				Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"2"}}}
		})
		clk := newClock()
		s, _ := configured(t, srv, "", clk.use)
		rules, err := s.ClaimedRules(context.Background())
		if err != nil || len(rules) != 233 {
			t.Fatalf("ClaimedRules = %d rules, %v", len(rules), err)
		}
		if w := clk.waits(); len(w) == 0 || w[0].Seconds() < 2 {
			t.Errorf("waits %v: want the 429's 2s reset waited out", w)
		}
	})
	t.Run("refused keys are an error without the keys", func(t *testing.T) {
		srv := newFake(t, ddfake.Options{})
		srv.SetFault(func(r ddfake.Request, _ int) *ddfake.Answer {
			return &ddfake.Answer{Status: 403, Body: `{"errors":["Forbidden"]}`}
		})
		s, _ := configured(t, srv, "", nil)
		_, err := s.ClaimedRules(context.Background())
		if err == nil || !strings.Contains(err.Error(), "datadog: list rules: 403 Forbidden") {
			t.Fatalf("error = %v", err)
		}
		if strings.Contains(err.Error(), testAPIKey) || strings.Contains(err.Error(), testAppKey) {
			t.Fatalf("error leaks a key: %v", err)
		}
	})
	t.Run("before Configure", func(t *testing.T) {
		if _, err := plugintest.SIEM(t, new(SIEM)).ClaimedRules(context.Background()); err == nil || !strings.Contains(err.Error(), ErrNotConfigured.Error()) {
			t.Fatalf("error = %v", err)
		}
	})
}
