package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/plugin"
)

// maxRulePages bounds the analytics rules listing.
const maxRulePages = 1000

// Rule is an analytics rule as Sentinel describes it.
type Rule struct {
	// Name is the rule's resource name (a GUID): the "Analytic Rule Ids"
	// of its alerts.
	Name        string
	DisplayName string
	Kind        string
	Enabled     bool
	Tactics     []string
	// Techniques are its techniques and sub-techniques, upper-case.
	Techniques []string
	Query      string
}

// Rules lists the workspace's analytics rules, every kind, following the
// listing's nextLink to its end, sorted by name. A nextLink that repeats
// is an error, never a short list.
func (p *SIEM) Rules(ctx context.Context) ([]Rule, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	rules, err := st.rules(ctx)
	return rules, st.fail(err)
}

func (st *state) rules(ctx context.Context) ([]Rule, error) {
	if st.cl.rules == nil {
		return nil, errors.New("list analytics rules: set subscription_id, resource_group and workspace_name (rules are Azure resources of the workspace)")
	}
	pager := st.cl.rules.NewListPager(st.cfg.ResourceGroup, st.cfg.WorkspaceName, nil)
	var out []Rule
	seen := map[string]bool{}
	for page := 0; pager.More(); page++ {
		if page == maxRulePages {
			return nil, fmt.Errorf("list analytics rules: more than %d pages", maxRulePages)
		}
		var resp *http.Response
		pg, err := pager.NextPage(policy.WithCaptureResponse(ctx, &resp))
		if err != nil {
			return nil, fmt.Errorf("list analytics rules: %w", classify(err, roleRules))
		}
		st.stats.rulePages.Add(1)
		if next := pg.NextLink; next != nil && *next != "" {
			if seen[*next] {
				return nil, fmt.Errorf("list analytics rules: page %d links to a page already read: the nextLink does not advance, so the list would be incomplete", page+1)
			}
			seen[*next] = true
		}
		if resp == nil {
			return nil, errors.New("list analytics rules: no answer captured")
		}
		body, err := runtime.Payload(resp)
		if err != nil {
			return nil, fmt.Errorf("list analytics rules: read page %d: %w", page+1, err)
		}
		rs, err := decodeRules(body)
		if err != nil {
			return nil, fmt.Errorf("list analytics rules: page %d: %w", page+1, err)
		}
		if len(rs) != len(pg.Value) {
			return nil, fmt.Errorf("list analytics rules: page %d: %d rules read of %d", page+1, len(rs), len(pg.Value))
		}
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// decodeRules reads one page of the listing. The SDK's models (API
// 2021-10-01) have no techniques, and only three kinds; the page itself
// has every kind and, from 2022-11-01, techniques and sub-techniques.
func decodeRules(b []byte) ([]Rule, error) {
	var j struct {
		Value []struct {
			Name       string `json:"name"`
			Kind       string `json:"kind"`
			Properties struct {
				DisplayName   string   `json:"displayName"`
				Enabled       *bool    `json:"enabled"`
				Tactics       []string `json:"tactics"`
				Techniques    []string `json:"techniques"`
				SubTechniques []string `json:"subTechniques"`
				Query         string   `json:"query"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	out := make([]Rule, 0, len(j.Value))
	for _, v := range j.Value {
		p := v.Properties
		out = append(out, Rule{
			Name: v.Name, DisplayName: p.DisplayName, Kind: v.Kind, Enabled: p.Enabled != nil && *p.Enabled,
			Tactics: p.Tactics, Techniques: techniquesIn(strings.Join(p.Techniques, " "), strings.Join(p.SubTechniques, " ")), Query: p.Query,
		})
	}
	return out, nil
}

// ClaimedRules lists the analytics rules with the techniques and
// sub-techniques they claim. ID is the rule's name (its GUID), Name its
// display name, Source "analytics rule <kind> <name>"; a disabled rule is
// listed with Enabled false.
func (p *SIEM) ClaimedRules(ctx context.Context) ([]plugin.Rule, error) {
	rules, err := p.Rules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Rule, 0, len(rules))
	for _, r := range rules {
		pr := plugin.Rule{
			ID: r.Name, Name: r.DisplayName, Techniques: r.Techniques, Enabled: r.Enabled,
			Source: "analytics rule " + r.Kind + " " + r.Name, Query: r.Query,
		}
		if r.Query != "" {
			pr.Language = QueryDialect
		}
		out = append(out, pr)
	}
	return out, nil
}

// Check verifies, as problems: that a token can be had and the workspace
// answers a query (the search role), that each native query of the
// expectations is valid KQL there, and, when the workspace is named as an
// Azure resource, that the analytics rules the expectations name (rule_id:
// the rule's GUID; rule: its display name) exist and are enabled and that
// some enabled rule claims each expected technique. An error means the
// check itself could not run.
func (p *SIEM) Check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	probs := st.check(ctx, req)
	for i := range probs {
		probs[i].Message = plugin.RedactSecrets(probs[i].Message, st.cfg.secrets()...)
	}
	if ctx.Err() != nil {
		return nil, st.fail(ctx.Err())
	}
	return probs, nil
}

func (st *state) check(ctx context.Context, req plugin.CheckRequest) []plugin.Problem {
	var probs []plugin.Problem
	add := func(subject, format string, args ...any) {
		probs = append(probs, plugin.Problem{Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	now := time.Now()
	if _, err := st.runQuery(ctx, clockKQL, now.Add(-time.Minute), now); err != nil {
		var ae *APIError
		switch {
		case errors.Is(err, plugin.ErrDenied) && !errors.As(err, &ae):
			add("credentials", "%v", err)
		case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
			add("workspace_id", "the workspace refused the query: %v", err)
		default:
			add("workspace_id", "the workspace does not answer: %v", err)
		}
		return probs
	}
	// Native queries.
	byQuery := map[string][]string{}
	var named, techOnly []plugin.Expectation
	for _, e := range req.Expectations {
		switch {
		case strings.TrimSpace(e.Query) != "":
			q := strings.TrimRight(strings.TrimSpace(e.Query), ";")
			byQuery[q] = append(byQuery[q], e.ID)
		case e.RuleID != "" || e.RuleName != "":
			named = append(named, e)
		case !e.Absent && e.Technique != "":
			techOnly = append(techOnly, e)
		}
	}
	queries := make([]string, 0, len(byQuery))
	for q := range byQuery {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	for _, q := range queries {
		if _, err := st.runQuery(ctx, q+"\n| take 0", now.Add(-time.Hour), now); err != nil {
			for _, id := range byQuery[q] {
				add(id, "the native query does not run: %v", err)
			}
		}
	}
	if len(named) == 0 && len(techOnly) == 0 {
		return probs
	}
	if !st.cfg.armConfigured() {
		if len(named) > 0 {
			add("subscription_id", "tests name analytics rules, which cannot be checked without subscription_id, resource_group and workspace_name")
		}
		return probs
	}
	rules, err := st.rules(ctx)
	if err != nil {
		add("subscription_id", "%v", err)
		return probs
	}
	for _, e := range named {
		r, ok := findRule(rules, e.RuleID, e.RuleName)
		what := e.RuleID
		if what == "" {
			what = e.RuleName
		}
		switch {
		case !ok:
			add(e.ID, "analytics rule %q does not exist in %s", what, st.cfg.workspaceResource())
		case !r.Enabled:
			add(e.ID, "analytics rule %q (%s) is disabled", r.DisplayName, r.Name)
		}
	}
	var claimed []string
	for _, r := range rules {
		if r.Enabled {
			claimed = append(claimed, r.Techniques...)
		}
	}
	for _, e := range techOnly {
		if !attack.AnyCovers(claimed, e.Technique) {
			add(e.ID, "no enabled analytics rule claims %s in its techniques: its alerts would not carry the technique", e.Technique)
		}
	}
	return probs
}

// findRule finds a rule by name (GUID), else by display name.
func findRule(rules []Rule, id, name string) (Rule, bool) {
	for _, r := range rules {
		if id != "" && strings.EqualFold(r.Name, id) {
			return r, true
		}
	}
	for _, r := range rules {
		if name != "" && (strings.EqualFold(strings.TrimSpace(r.DisplayName), strings.TrimSpace(name)) || strings.EqualFold(r.Name, name)) {
			return r, true
		}
	}
	return Rule{}, false
}
