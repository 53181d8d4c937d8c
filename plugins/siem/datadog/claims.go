package datadog

import (
	"context"

	"github.com/vigilsec/vigil/core/plugin"
)

// ClaimedRules lists the organisation's detection rules (Rules: the
// security monitoring rules API, paged, with 429 back-off) with the
// techniques of their technique: tags. Deleted rules are left out; a
// disabled rule is listed with Enabled false. Source is the rule's API
// path.
func (s *SIEM) ClaimedRules(ctx context.Context) ([]plugin.Rule, error) {
	rules, err := s.Rules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Rule, 0, len(rules))
	for _, r := range rules {
		if r.Deleted {
			continue
		}
		out = append(out, plugin.Rule{
			ID: r.ID, Name: r.Name, Techniques: r.Techniques, Enabled: r.Enabled,
			Source: "/api/v2/security_monitoring/rules/" + r.ID,
		})
	}
	return out, nil
}
