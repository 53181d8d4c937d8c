package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Rule is a Datadog detection rule, as Rules lists it.
type Rule struct {
	ID      string
	Name    string
	Type    string // "log_detection", "workload_security", ...
	Enabled bool
	Deleted bool
	// Techniques and Tactics are the ATT&CK IDs of the rule's
	// technique:/tactic: tags (T1110, TA0006), upper-cased, without
	// duplicates: what the rule claims to detect.
	Techniques []string
	Tactics    []string
	Tags       []string
}

// rulesPageSize is the page size of the rules API (its maximum).
const rulesPageSize = 100

// maxRulePages bounds the rules listing (100,000 rules).
const maxRulePages = 1000

// rulesPage is the JSON of a rules list answer.
type rulesPage struct {
	Data []struct {
		ID        string   `json:"id"`
		Name      string   `json:"name"`
		Type      string   `json:"type"`
		IsEnabled *bool    `json:"isEnabled"`
		IsDeleted bool     `json:"isDeleted"`
		Tags      []string `json:"tags"`
	} `json:"data"`
	Meta struct {
		Page struct {
			TotalCount *int64 `json:"total_count"`
		} `json:"page"`
	} `json:"meta"`
}

// Rules lists the organisation's detection rules with the ATT&CK
// techniques their tags claim (GET /api/v2/security_monitoring/rules,
// paged). It is what claimed-versus-proven coverage reads; the plugin
// protocol has no rules call yet, so it is a Go method of the plugin.
func (s *SIEM) Rules(ctx context.Context) ([]Rule, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	return st.api.listRules(ctx, 0)
}

// listRules pages through the rules; max > 0 stops after that many.
func (a *api) listRules(ctx context.Context, max int) ([]Rule, error) {
	var out []Rule
	size := int64(rulesPageSize)
	if max > 0 && max < rulesPageSize {
		size = int64(max)
	}
	for page := int64(0); page < maxRulePages; page++ {
		query := url.Values{"page[size]": {strconv.FormatInt(size, 10)}, "page[number]": {strconv.FormatInt(page, 10)}}
		ans, err := a.call(ctx, opListRules, "list rules", func(ctx context.Context) (*http.Response, error) {
			return a.send(ctx, epListRules, request{query: query})
		})
		if err != nil {
			return nil, err
		}
		var p rulesPage
		if err := json.Unmarshal(ans.body, &p); err != nil {
			return nil, fmt.Errorf("datadog: list rules: decode answer: %w (body: %s)", err, excerpt(string(ans.body), 120))
		}
		for _, r := range p.Data {
			rule := Rule{ID: r.ID, Name: r.Name, Type: r.Type, Enabled: r.IsEnabled == nil || *r.IsEnabled, Deleted: r.IsDeleted, Tags: r.Tags}
			rule.Techniques, rule.Tactics = parseAttackTags(r.Tags)
			out = append(out, rule)
		}
		if max > 0 && len(out) >= max {
			return out[:max], nil
		}
		total := p.Meta.Page.TotalCount
		if len(p.Data) < int(size) || (total != nil && int64(len(out)) >= *total) {
			return out, nil
		}
	}
	return out, fmt.Errorf("datadog: list rules: more than %d pages", maxRulePages)
}

// Check validates the keys and their permissions (a one-rule listing and a
// one-signal search), each expectation's native query (Datadog must accept
// it), and that every rule an expectation names exists and is enabled.
// Rejected keys and missing rules are problems; an unreachable Datadog is
// an error.
func (s *SIEM) Check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	var probs []plugin.Problem
	denied := func(err error) bool {
		var ae *apiError
		return errors.As(err, &ae) && (ae.status == http.StatusUnauthorized || ae.status == http.StatusForbidden)
	}
	badRequest := func(err error) bool {
		var ae *apiError
		return errors.As(err, &ae) && ae.status >= 400 && ae.status < 500 && ae.status != http.StatusTooManyRequests
	}

	needRules := false
	for _, e := range req.Expectations {
		if e.RuleName != "" || e.RuleID != "" {
			needRules = true
		}
	}
	var rules []Rule
	if needRules {
		rules, err = st.api.listRules(ctx, 0)
	} else {
		_, err = st.api.listRules(ctx, 1)
	}
	switch {
	case denied(err):
		return append(probs, plugin.Problem{Subject: "api_key/app_key", Message: "Datadog refused the rules listing (security_monitoring_rules_read): " + causeOf(err)}), nil
	case err != nil:
		return nil, err
	}

	now := st.api.now()
	window := plugin.SearchRequest{Start: now.Add(-5 * time.Minute), End: now}
	if _, _, _, err := st.api.searchSignals(ctx, st.cfg.Query, window, 1, ""); err != nil {
		switch {
		case denied(err):
			probs = append(probs, plugin.Problem{Subject: "app_key", Message: "Datadog refused the signals search (security_monitoring_signals_read): " + causeOf(err)})
		case badRequest(err):
			probs = append(probs, plugin.Problem{Subject: "query", Message: fmt.Sprintf("Datadog refused the base query %q: %s", st.cfg.Query, causeOf(err))})
		default:
			return nil, err
		}
	}
	queries, ids := nativeQueries(req.Expectations)
	for _, q := range queries {
		if _, _, _, err := st.api.searchSignals(ctx, and(st.cfg.Query, q), window, 1, ""); err != nil {
			if !badRequest(err) {
				return nil, err
			}
			for _, id := range ids[q] {
				probs = append(probs, plugin.Problem{Subject: id, Message: fmt.Sprintf("Datadog refused the query %q: %s", q, causeOf(err))})
			}
		}
	}

	for _, e := range req.Expectations {
		if e.RuleName == "" && e.RuleID == "" {
			continue
		}
		r, found := findRule(rules, e.RuleID, e.RuleName)
		name := e.RuleName
		if e.RuleID != "" {
			name = e.RuleID
			if e.RuleName != "" {
				name = fmt.Sprintf("%s (%s)", e.RuleID, e.RuleName)
			}
		}
		switch {
		case !found:
			probs = append(probs, plugin.Problem{Subject: e.ID, Message: fmt.Sprintf("no Datadog detection rule %q", name)})
		case r.Deleted:
			probs = append(probs, plugin.Problem{Subject: e.ID, Message: fmt.Sprintf("Datadog detection rule %q is deleted", name)})
		case !r.Enabled:
			probs = append(probs, plugin.Problem{Subject: e.ID, Message: fmt.Sprintf("Datadog detection rule %q is disabled", name)})
		}
	}
	return probs, nil
}

// findRule finds a rule by ID (exact) and/or name (case-insensitive, as the
// engine matches signals).
func findRule(rules []Rule, id, name string) (Rule, bool) {
	for _, r := range rules {
		if id != "" && !strings.EqualFold(r.ID, id) {
			continue
		}
		if name != "" && !strings.EqualFold(strings.TrimSpace(r.Name), strings.TrimSpace(name)) {
			continue
		}
		return r, true
	}
	return Rule{}, false
}

// causeOf returns the message of an error without the "datadog: <call>: "
// prefix.
func causeOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return err.Error()
}
