package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/plugin"
)

// kibanaRulesFindPath is the detection engine's rule listing endpoint.
const kibanaRulesFindPath = "/api/detection_engine/rules/_find"

// Paging of the rule listing.
const (
	rulesPerPage = 500
	maxRulePages = 100
)

// Rule is a detection rule of Kibana's detection engine, with the ATT&CK
// techniques its threat mapping claims.
type Rule struct {
	// ID is the rule's saved-object ID (kibana.alert.rule.uuid on alerts).
	ID string `json:"id"`
	// RuleID is the stable rule ID (kibana.alert.rule.rule_id on alerts),
	// the one expectations name and signals carry.
	RuleID  string `json:"rule_id"`
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Type    string `json:"type"`
	// BuildingBlockType is set for building-block rules, whose alerts the
	// plugin does not count.
	BuildingBlockType string `json:"building_block_type,omitempty"`
	// Techniques are the techniques of the threat mapping: sub-techniques
	// where the rule names some, else techniques.
	Techniques []string `json:"techniques"`
}

// Rules lists the detection rules of the space through Kibana's rules API
// (claimed coverage). It needs kibana_url.
func (s *SIEM) Rules(ctx context.Context) ([]Rule, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	rs, err := st.rules(ctx)
	if err != nil {
		return nil, fmt.Errorf("elastic: list rules: %w", err)
	}
	return rs, nil
}

func (st *state) rules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	for page := 1; page <= maxRulePages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(rulesPerPage)}}
		b, err := st.cl.kbDo(ctx, http.MethodGet, kibanaRulesFindPath, q, nil)
		if err != nil {
			return nil, err
		}
		var r struct {
			Page  int               `json:"page"`
			Total *int              `json:"total"`
			Data  []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Total == nil {
			return nil, fmt.Errorf("malformed answer: %s", excerpt(b, 200))
		}
		for _, raw := range r.Data {
			var rule Rule
			if err := json.Unmarshal(raw, &rule); err != nil {
				return nil, fmt.Errorf("malformed rule: %w", err)
			}
			doc, err := decodeDoc(raw)
			if err != nil {
				return nil, fmt.Errorf("malformed rule: %w", err)
			}
			rule.Techniques = ruleTechniques(doc)
			out = append(out, rule)
		}
		if len(r.Data) == 0 || len(out) >= *r.Total {
			return out, nil
		}
	}
	return nil, fmt.Errorf("more than %d rules", maxRulePages*rulesPerPage)
}

// ruleTechniques reads a rule object's threat mapping (its "threat" key).
func ruleTechniques(rule map[string]any) []string {
	return techniques(map[string]any{"kibana.alert.rule.threat": rule["threat"]})
}

// Check reports, as problems: credentials refused, the alerts index (or
// Kibana's alert search) not readable, the event indices not readable, a
// native query Elasticsearch refuses and, when kibana_url is set, each
// expected rule that does not exist or is disabled, and each expected
// technique no enabled rule claims. Expectations of absence are not checked
// against rules. An error means the check could not run (no answer).
func (s *SIEM) Check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	var probs []plugin.Problem
	add := func(subject, msg string) { probs = append(probs, plugin.Problem{Subject: subject, Message: msg}) }

	// Credentials and the alerts index, in one size-0 search.
	empty, _ := json.Marshal(obj{"size": 0, "track_total_hits": false, "query": obj{"match_all": obj{}}})
	if _, err := st.searchAlerts(ctx, empty); err != nil {
		var he *HTTPError
		if !errors.As(err, &he) {
			return nil, fmt.Errorf("elastic: check: search alerts: %w", err)
		}
		subject := "alerts index " + st.cfg.Index
		if st.cfg.SearchAPI == SearchKibana {
			subject = "kibana alert search"
		}
		switch he.Status {
		case http.StatusUnauthorized:
			add("credentials", "refused: "+he.Error())
		case http.StatusNotFound:
			add(subject, fmt.Sprintf("not found (no rule has written an alert in space %q yet, or a wrong space or index): %v", st.cfg.Space, he))
		default:
			add(subject, "not readable: "+he.Error())
		}
		return probs, nil // the rest would fail the same way
	}

	if st.cl.es != nil {
		b, _ := json.Marshal(obj{"size": 0, "track_total_hits": false, "query": obj{"match_all": obj{}}})
		_, err := st.cl.esDo(ctx, esapi.SearchRequest{Index: st.cfg.EventIndices, Body: bytes.NewReader(b)})
		if err != nil {
			add("event indices "+strings.Join(st.cfg.EventIndices, ","), "not readable (raw-event search and the ingestion delay will fail): "+err.Error())
		}
	}

	for _, e := range req.Expectations {
		if strings.TrimSpace(e.Query) == "" {
			continue
		}
		if msg := st.checkQuery(ctx, e); msg != "" {
			add(subjectOf(e), msg)
		}
	}

	if st.cl.kb == nil {
		return probs, nil
	}
	rules, err := st.rules(ctx)
	if err != nil {
		var he *HTTPError
		if !errors.As(err, &he) {
			return nil, fmt.Errorf("elastic: check: list rules: %w", err)
		}
		add("kibana rules", "not readable: "+he.Error())
		return probs, nil
	}
	for _, e := range req.Expectations {
		if e.Absent || strings.TrimSpace(e.Query) != "" {
			continue
		}
		if msg := checkRules(e, rules); msg != "" {
			add(subjectOf(e), msg)
		}
	}
	return probs, nil
}

func subjectOf(e plugin.Expectation) string {
	if e.ID != "" {
		return e.ID
	}
	return e.TestID
}

// checkQuery runs an expectation's native query in a size-0 alert search:
// Elasticsearch refusing it (400) is the problem returned.
func (st *state) checkQuery(ctx context.Context, e plugin.Expectation) string {
	q, err := namedQuery(e.ID, e.Query)
	if err != nil {
		return err.Error()
	}
	b, _ := json.Marshal(obj{"size": 0, "track_total_hits": false, "query": q})
	if _, err := st.searchAlerts(ctx, b); err != nil {
		if isStatus(err, http.StatusBadRequest) {
			return "native query refused: " + err.Error()
		}
		return "native query not checked: " + err.Error()
	}
	return ""
}

// checkRules says what is wrong with an expectation's rule or technique
// given the space's rules ("" when nothing is).
func checkRules(e plugin.Expectation, rules []Rule) string {
	switch {
	case e.RuleID != "" || e.RuleName != "":
		var found *Rule
		for i := range rules {
			r := &rules[i]
			if (e.RuleID == "" || strings.EqualFold(r.RuleID, e.RuleID)) &&
				(e.RuleName == "" || strings.EqualFold(strings.TrimSpace(r.Name), strings.TrimSpace(e.RuleName))) {
				if found == nil || (!found.Enabled && r.Enabled) {
					found = r
				}
			}
		}
		if found == nil {
			for _, r := range rules {
				if e.RuleID != "" && strings.EqualFold(r.ID, e.RuleID) {
					return fmt.Sprintf("rule_id %s is the saved-object id of rule %q: expect its rule_id %s, which alerts carry", e.RuleID, r.Name, r.RuleID)
				}
			}
			return "no detection rule with " + ruleRef(e.RuleID, e.RuleName)
		}
		if !found.Enabled {
			return fmt.Sprintf("detection rule %q (rule_id %s) is disabled", found.Name, found.RuleID)
		}
		if found.BuildingBlockType != "" {
			return fmt.Sprintf("detection rule %q (rule_id %s) is a building-block rule: its alerts are not counted", found.Name, found.RuleID)
		}
	case e.Technique != "":
		want := attack.TechniqueID(strings.ToUpper(e.Technique))
		disabled := ""
		for _, r := range rules {
			for _, t := range r.Techniques {
				if !attack.TechniqueID(t).Covers(want) {
					continue
				}
				if r.Enabled && r.BuildingBlockType == "" {
					return ""
				}
				if disabled == "" {
					disabled = r.Name
				}
			}
		}
		if disabled != "" {
			return fmt.Sprintf("no enabled detection rule claims %s (disabled or building-block: %q)", want, disabled)
		}
		return fmt.Sprintf("no detection rule claims %s in its threat mapping", want)
	}
	return ""
}

func ruleRef(id, name string) string {
	switch {
	case id != "" && name != "":
		return fmt.Sprintf("rule_id %s and name %q", id, name)
	case id != "":
		return "rule_id " + id
	default:
		return fmt.Sprintf("name %q", name)
	}
}
