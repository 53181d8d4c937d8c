package splunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/plugin"
)

// Rule is a saved search as Splunk describes it; a correlation search of
// Enterprise Security when Correlation is set.
type Rule struct {
	// Name is the stanza name: the search_name (and, in vigil, the rule ID)
	// of the notables it raises.
	Name string
	// Label is the correlation search's display name
	// (action.correlationsearch.label): the rule_name of its notables.
	Label string
	App   string
	// Enabled is false for a disabled saved search.
	Enabled bool
	// Scheduled is false for a search that never runs by itself.
	Scheduled bool
	// Correlation is set for ES correlation searches; Notable when the
	// search creates notables (action.notable).
	Correlation, Notable bool
	// Techniques are the ATT&CK IDs of its annotations (mitre_attack): the
	// coverage it claims.
	Techniques []string
}

// savedSearchFields are the content fields read from saved/searches.
var savedSearchFields = []string{
	"disabled", "is_scheduled", "action.notable", "action.correlationsearch.enabled",
	"action.correlationsearch.label", "action.correlationsearch.annotations",
}

// Rules returns the correlation searches of Enterprise Security (saved
// searches with action.correlationsearch.enabled) visible to the
// configured user, with the ATT&CK coverage their annotations claim,
// sorted by name.
func (p *SIEM) Rules(ctx context.Context) ([]Rule, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	all, err := st.savedSearches(ctx)
	if err != nil {
		return nil, st.fail(err)
	}
	var out []Rule
	for _, r := range all {
		if r.Correlation {
			out = append(out, r)
		}
	}
	return out, nil
}

// Paging of the saved searches listing.
const (
	savedSearchesPage     = 100
	maxSavedSearchesPages = 1000
)

// savedEntry is one entry of the saved searches listing.
type savedEntry struct {
	Name string `json:"name"`
	ACL  struct {
		App string `json:"app"`
	} `json:"acl"`
	Content map[string]json.RawMessage `json:"content"`
}

// savedSearches lists every saved search visible to the user, in all apps,
// following the listing's paging to its total: a server answers at most
// its own maximum per request, whatever count asks. An offset the server
// ignores, or a total it never reaches, is an error, never a short list.
func (st *state) savedSearches(ctx context.Context) ([]Rule, error) {
	var entries []savedEntry
	for page := 0; ; page++ {
		if page == maxSavedSearchesPages {
			return nil, fmt.Errorf("list saved searches: more than %d pages", maxSavedSearchesPages)
		}
		q := url.Values{"output_mode": {"json"}, "count": {strconv.Itoa(savedSearchesPage)}, "offset": {strconv.Itoa(len(entries))}, "f": savedSearchFields}
		b, _, err := st.client.do(ctx, request{method: http.MethodGet, path: "/servicesNS/-/-/saved/searches", query: q, retry: true})
		if err != nil {
			return nil, fmt.Errorf("list saved searches: %w", err)
		}
		var j struct {
			Entry  []savedEntry `json:"entry"`
			Paging *struct {
				Total  int `json:"total"`
				Offset int `json:"offset"`
			} `json:"paging"`
		}
		if err := decodeJSON(b, &j); err != nil {
			return nil, fmt.Errorf("list saved searches: %w", err)
		}
		if j.Paging == nil { // an answer without paging is the whole list
			entries = append(entries, j.Entry...)
			break
		}
		switch {
		case j.Paging.Offset != len(entries):
			return nil, fmt.Errorf("list saved searches: asked for offset %d, answered from offset %d: the paging offset is ignored, so the list would be incomplete", len(entries), j.Paging.Offset)
		case len(j.Entry) == 0 && len(entries) < j.Paging.Total:
			return nil, fmt.Errorf("list saved searches: no entries at offset %d of %d", len(entries), j.Paging.Total)
		}
		entries = append(entries, j.Entry...)
		if len(entries) >= j.Paging.Total {
			break
		}
	}
	out := make([]Rule, 0, len(entries))
	for _, e := range entries {
		boolean := func(k string) bool {
			var f flexBool
			if raw, ok := e.Content[k]; ok && json.Unmarshal(raw, &f) == nil {
				return bool(f)
			}
			return false
		}
		str := func(k string) string {
			var s string
			if raw, ok := e.Content[k]; ok && json.Unmarshal(raw, &s) == nil {
				return s
			}
			return ""
		}
		out = append(out, Rule{
			Name: e.Name, Label: str("action.correlationsearch.label"), App: e.ACL.App,
			Enabled: !boolean("disabled"), Scheduled: boolean("is_scheduled"),
			Correlation: boolean("action.correlationsearch.enabled"), Notable: boolean("action.notable"),
			Techniques: annotatedTechniques(str("action.correlationsearch.annotations")),
		})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// annotatedTechniques reads the mitre_attack list of a correlation search's
// annotations (JSON); text that is not JSON is scanned for technique IDs.
func annotatedTechniques(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var a struct {
		MitreAttack json.RawMessage `json:"mitre_attack"`
	}
	text := s
	if json.Unmarshal([]byte(s), &a) == nil {
		text = string(a.MitreAttack)
	}
	var out []string
	seen := map[string]bool{}
	for _, id := range techniquePattern.FindAllString(text, -1) {
		id = strings.ToUpper(id)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// Check verifies, as problems: that the search head answers and accepts
// the credentials (a server 9.0.1 or later for api v2), that the user may
// search (and edit notables when close_notables is set), that the
// correlation searches named in correlation_searches and by expectations
// (rule_id: the search name; rule: its label or name) exist, are enabled
// and scheduled (and raise notables, for the ES search), that with the ES
// search some enabled correlation search claims each expected technique
// in its annotations, and that HEC, when configured, is healthy. An error
// means the check itself could not run.
func (p *SIEM) Check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	probs, err := st.check(ctx, req)
	if err != nil {
		return nil, st.fail(err)
	}
	for i := range probs {
		probs[i].Message = st.scrub(errors.New(probs[i].Message)).Error()
	}
	return probs, nil
}

func (st *state) check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	var probs []plugin.Problem
	add := func(subject, format string, args ...any) {
		probs = append(probs, plugin.Problem{Subject: subject, Message: fmt.Sprintf(format, args...)})
	}

	// The search head and the credentials.
	version, err := st.serverVersion(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		var he *HTTPError
		switch {
		case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden):
			add("credentials", "splunk rejected them: %v", err)
		default:
			add("url", "the search head does not answer: %v", err)
		}
		return probs, nil
	}
	if st.cfg.API == APIv2 && versionBefore(version, 9, 0, 1) {
		add("api", "Splunk %s has no /search/v2 endpoints (9.0.1 or later): set api = %q", version, APIv1)
	}
	if caps, err := st.capabilities(ctx); err != nil {
		add("credentials", "cannot read the user's capabilities: %v", err)
	} else {
		if !caps["search"] {
			add("credentials", "the user's roles lack the search capability")
		}
		if st.cfg.CloseNotables && !caps["edit_notable_events"] {
			add("close_notables", "the user's roles lack edit_notable_events (ES's ess_analyst role has it): notables cannot be closed")
		}
	}

	// Correlation searches.
	type wanted struct{ subject, name, label string }
	var want []wanted
	for _, n := range st.cfg.CorrelationSearches {
		want = append(want, wanted{subject: "correlation_searches", name: n})
	}
	var techOnly []plugin.Expectation
	for _, e := range req.Expectations {
		switch {
		case e.Query != "":
		case e.RuleID != "" || e.RuleName != "":
			want = append(want, wanted{subject: e.ID, name: e.RuleID, label: e.RuleName})
		case !e.Absent && e.Technique != "":
			techOnly = append(techOnly, e)
		}
	}
	if len(want) == 0 && (!st.cfg.esMode() || len(techOnly) == 0) {
		return append(probs, st.checkHEC(ctx)...), nil
	}
	rules, err := st.savedSearches(ctx)
	if err != nil {
		add("correlation_searches", "%v", err)
		return append(probs, st.checkHEC(ctx)...), nil
	}
	for _, w := range want {
		r, ok := findRule(rules, w.name, w.label)
		what := w.name
		if what == "" {
			what = w.label
		}
		switch {
		case !ok:
			add(w.subject, "correlation search %q does not exist (or the user cannot see it)", what)
		case !r.Enabled:
			add(w.subject, "correlation search %q is disabled", r.Name)
		case !r.Scheduled:
			add(w.subject, "correlation search %q is not scheduled: it never runs", r.Name)
		case st.cfg.esMode() && !r.Notable:
			add(w.subject, "correlation search %q raises no notable (action.notable is off): the ES search cannot see it", r.Name)
		}
	}
	if st.cfg.esMode() {
		var claimed []string
		for _, r := range rules {
			if r.Correlation && r.Enabled {
				claimed = append(claimed, r.Techniques...)
			}
		}
		for _, e := range techOnly {
			if !attack.AnyCovers(claimed, e.Technique) {
				add(e.ID, "no enabled correlation search claims %s in its annotations (mitre_attack): its notables would not carry the technique", e.Technique)
			}
		}
	}
	return append(probs, st.checkHEC(ctx)...), nil
}

// findRule finds a saved search by stanza name, else by label or name.
func findRule(rules []Rule, name, label string) (Rule, bool) {
	for _, r := range rules {
		if name != "" && strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	for _, r := range rules {
		if label != "" && (strings.EqualFold(strings.TrimSpace(r.Label), strings.TrimSpace(label)) || strings.EqualFold(r.Name, label)) {
			return r, true
		}
	}
	return Rule{}, false
}

// serverVersion asks /services/server/info for the Splunk version.
func (st *state) serverVersion(ctx context.Context) (string, error) {
	b, _, err := st.client.do(ctx, request{method: http.MethodGet, path: "/services/server/info", query: url.Values{"output_mode": {"json"}}, retry: true})
	if err != nil {
		return "", fmt.Errorf("server info: %w", err)
	}
	var j struct {
		Entry []struct {
			Content struct {
				Version string `json:"version"`
			} `json:"content"`
		} `json:"entry"`
	}
	if err := decodeJSON(b, &j); err != nil {
		return "", fmt.Errorf("server info: %w", err)
	}
	if len(j.Entry) == 0 {
		return "", fmt.Errorf("server info: no entry in the answer")
	}
	return j.Entry[0].Content.Version, nil
}

// capabilities returns the capabilities of the authenticated user.
func (st *state) capabilities(ctx context.Context) (map[string]bool, error) {
	b, _, err := st.client.do(ctx, request{method: http.MethodGet, path: "/services/authentication/current-context", query: url.Values{"output_mode": {"json"}}, retry: true})
	if err != nil {
		return nil, fmt.Errorf("current context: %w", err)
	}
	var j struct {
		Entry []struct {
			Content struct {
				Capabilities []string `json:"capabilities"`
			} `json:"content"`
		} `json:"entry"`
	}
	if err := decodeJSON(b, &j); err != nil {
		return nil, fmt.Errorf("current context: %w", err)
	}
	if len(j.Entry) == 0 {
		return nil, fmt.Errorf("current context: no entry in the answer")
	}
	caps := map[string]bool{}
	for _, c := range j.Entry[0].Content.Capabilities {
		caps[c] = true
	}
	return caps, nil
}

// versionBefore reports whether version v is below major.minor.patch; an
// unreadable version is not.
func versionBefore(v string, major, minor, patch int) bool {
	parts := strings.SplitN(v, ".", 4)
	want := []int{major, minor, patch}
	for i := 0; i < 3; i++ {
		if i >= len(parts) {
			return false
		}
		n, err := strconv.Atoi(strings.TrimFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' }))
		if err != nil {
			return false
		}
		if n != want[i] {
			return n < want[i]
		}
	}
	return false
}
