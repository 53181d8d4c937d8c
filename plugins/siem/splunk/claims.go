package splunk

import (
	"context"

	"github.com/vigilsec/vigil/core/plugin"
)

// ClaimedRules lists Enterprise Security's correlation searches (Rules:
// saved searches with action.correlationsearch.enabled) with the techniques
// of the mitre_attack list of their action.correlationsearch.annotations.
// ID is the stanza name (the notables' search_name), Name the display label
// where there is one, Source "saved search APP/NAME". A search that is
// disabled or not scheduled never runs, so it is listed with Enabled false.
func (p *SIEM) ClaimedRules(ctx context.Context) ([]plugin.Rule, error) {
	rules, err := p.Rules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Rule, 0, len(rules))
	for _, r := range rules {
		name := r.Label
		if name == "" {
			name = r.Name
		}
		out = append(out, plugin.Rule{
			ID: r.Name, Name: name, Techniques: r.Techniques, Enabled: r.Enabled && r.Scheduled,
			Source: "saved search " + r.App + "/" + r.Name, Language: "spl",
		})
	}
	return out, nil
}
