package local

import (
	"context"

	"github.com/vigilsec/vigil/core/plugin"
)

// ClaimedRules lists every loaded Sigma rule (vigil's own, SigmaHQ's and
// those of the extra directories) with the techniques of its attack.tNNNN
// tags, upper-cased ("attack.t1059.004" claims T1059.004); tactic tags
// (attack.execution) claim no technique. Source is the rule's file
// (sigma/linux/... for vigil's own, embedded, rules; the path under an
// extra directory) or, for SigmaHQ's, its link to the SigmaHQ repository.
// Every loaded rule runs, so all are enabled. Platforms come from the
// rule's logsource (Linux, Containers, IaaS). The files that did not load
// follow, refused with the reason and line (never enabled, claiming
// nothing): Broken when the rule cannot work as written.
func (s *SIEM) ClaimedRules(context.Context) ([]plugin.Rule, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	rules := st.engine.Rules()
	out := make([]plugin.Rule, 0, len(rules))
	for _, r := range rules {
		src := r.Path
		if r.Link != "" {
			src = r.Link
		}
		out = append(out, plugin.Rule{
			ID: r.ID, Name: r.Title, Techniques: append([]string(nil), r.Techniques...),
			Enabled: true, Source: src, Language: QueryDialect, Platforms: r.Logsource.Platforms(),
		})
	}
	for _, p := range st.problems {
		out = append(out, plugin.Rule{
			ID: p.ID, Name: p.Title, Source: p.Path, Language: QueryDialect, Refused: p.Error(), Broken: p.Broken(),
		})
	}
	return out, nil
}
