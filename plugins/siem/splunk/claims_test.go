package splunk

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/splunkfake"
)

// TestClaimedRules lists the correlation searches through the plugin
// protocol, with the techniques of their annotations.
func TestClaimedRules(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		// cap is the server's most entries per answer (0: none).
		cap int
		// ignoreOffset: the server answers every page from the first entry.
		ignoreOffset bool
		want         []plugin.Rule
		wantErr      string
		requests     int
	}{
		{name: "paged by a server that answers one entry at a time", cap: 1, requests: 4, want: []plugin.Rule{
			{ID: "A - Rule", Name: "A", Techniques: []string{"T1003.008"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/A - Rule", Language: "spl"},
			{ID: "B - Rule", Name: "B", Techniques: []string{"T1560.001", "T1560"}, Enabled: true, Source: "saved search SplunkEnterpriseSecuritySuite/B - Rule", Language: "spl"},
			{ID: "C - Unscheduled", Name: "C - Unscheduled", Techniques: []string{"T1059.004"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/C - Unscheduled", Language: "spl"},
		}},
		{name: "correlation searches", requests: 1, want: []plugin.Rule{
			{ID: "A - Rule", Name: "A", Techniques: []string{"T1003.008"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/A - Rule", Language: "spl"},
			{ID: "B - Rule", Name: "B", Techniques: []string{"T1560.001", "T1560"}, Enabled: true, Source: "saved search SplunkEnterpriseSecuritySuite/B - Rule", Language: "spl"},
			{ID: "C - Unscheduled", Name: "C - Unscheduled", Techniques: []string{"T1059.004"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/C - Unscheduled", Language: "spl"},
		}},
		{name: "429s are retried", statuses: []int{429, 429}, requests: 3, want: []plugin.Rule{
			{ID: "A - Rule", Name: "A", Techniques: []string{"T1003.008"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/A - Rule", Language: "spl"},
			{ID: "B - Rule", Name: "B", Techniques: []string{"T1560.001", "T1560"}, Enabled: true, Source: "saved search SplunkEnterpriseSecuritySuite/B - Rule", Language: "spl"},
			{ID: "C - Unscheduled", Name: "C - Unscheduled", Techniques: []string{"T1059.004"}, Enabled: false, Source: "saved search SplunkEnterpriseSecuritySuite/C - Unscheduled", Language: "spl"},
		}},
		{name: "refused", statuses: []int{403}, requests: 1, wantErr: "list saved searches: HTTP 403"},
		{name: "offset ignored", cap: 1, ignoreOffset: true, requests: 2, wantErr: "list saved searches: asked for offset 1, answered from offset 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := splunkfake.New(t)
			f.SetSavedSearches([]map[string]any{
				splunkfake.SavedSearch("B - Rule", "B", false, true, true, `{"mitre_attack":["T1560.001","T1560"],"analytic_story":["x"]}`),
				splunkfake.SavedSearch("A - Rule", "A", true, true, true, `not json T1003.008 and T1003.008`),
				splunkfake.SavedSearch("C - Unscheduled", "", false, false, true, `{"mitre_attack":["t1059.004"]}`),
				{"name": "Plain report", "acl": map[string]any{"app": "search"}, "content": map[string]any{"disabled": false, "is_scheduled": true}},
			})
			f.SetSavedStatuses(tc.statuses)
			f.SetSavedSearchesCap(tc.cap)
			f.SetIgnoreOffset(tc.ignoreOffset)
			s, _ := configured(t, f, "")
			rules, err := s.ClaimedRules(context.Background())
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one saying %q", err, tc.wantErr)
				}
				noSecrets(t, "ClaimedRules error", err.Error())
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(rules, tc.want):
				t.Errorf("ClaimedRules =\n %+v\nwant\n %+v", rules, tc.want)
			}
			if n := len(f.Requests(http.MethodGet, "/servicesNS/-/-/saved/searches")); n != tc.requests {
				t.Errorf("%d listing requests, want %d", n, tc.requests)
			}
		})
	}
}
