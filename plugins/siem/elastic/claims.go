package elastic

import (
	"context"
	"net/url"

	"github.com/vigilsec/vigil/core/plugin"
)

// ClaimedRules lists the space's detection rules (Rules: Kibana's rules
// API, paged; it needs kibana_url) with the techniques of their threat
// mapping. Building-block rules are left out: their alerts are not counted,
// so they can prove nothing. ID is the stable rule_id, the one signals
// carry; Language is the rule type (query, eql, esql, threshold, ...).
func (s *SIEM) ClaimedRules(ctx context.Context) ([]plugin.Rule, error) {
	rules, err := s.Rules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Rule, 0, len(rules))
	for _, r := range rules {
		if r.BuildingBlockType != "" {
			continue
		}
		id := r.RuleID
		if id == "" {
			id = r.ID
		}
		out = append(out, plugin.Rule{
			ID: id, Name: r.Name, Techniques: r.Techniques, Enabled: r.Enabled,
			Source: "/api/detection_engine/rules?rule_id=" + url.QueryEscape(id), Language: r.Type,
		})
	}
	return out, nil
}
