package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	"github.com/bradleyjkemp/sigma-go/evaluator/modifiers"
	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/core/telemetry"
)

// SigmaHQCommit is the SigmaHQ/sigma commit the rules in rules/sigma/sigmahq
// were copied from.
const SigmaHQCommit = "8eaafff1f2845a696050e05e72ba1140ee190698"

// SigmaHQLinkBase is the Options.LinkBase that links rules loaded from
// rules/sigma/sigmahq (with paths relative to that folder) to their upstream
// file, as the Detection Rule License asks.
const SigmaHQLinkBase = "https://github.com/SigmaHQ/sigma/blob/" + SigmaHQCommit + "/"

// SupportedLogsources lists the logsources the local SIEM evaluates, the
// only ones whose rules are loaded: the three the local sensor produces,
// Kubernetes audit events (replayed or ingested; see telemetry.FromAudit)
// and AWS CloudTrail records (see telemetry.FromCloudTrail).
var SupportedLogsources = []telemetry.Logsource{telemetry.Auditd, telemetry.ProcessCreation, telemetry.FileEvent, telemetry.KubernetesAudit, telemetry.AWSCloudTrail}

// NormalizeLogsource returns the logsource a rule written for ls is
// evaluated on: SigmaHQ's Kubernetes audit rules say product kubernetes,
// service audit, with or without category application, and all of them are
// telemetry.KubernetesAudit. Other logsources are returned unchanged.
func NormalizeLogsource(ls telemetry.Logsource) telemetry.Logsource {
	k := telemetry.KubernetesAudit
	if ls.Product == k.Product && ls.Service == k.Service && (ls.Category == "" || ls.Category == "application") {
		return k
	}
	return ls
}

// Rule is one loaded Sigma rule, ready for evaluation.
type Rule struct {
	// ID is the rule's Sigma id (a UUID for SigmaHQ rules).
	ID string
	// Title is the rule's title.
	Title string
	// Description is the rule's description.
	Description string
	// Level is the Sigma level (informational, low, medium, high, critical).
	Level string
	// Status is the Sigma status (stable, test, experimental).
	Status string
	// Author is the rule's author field, kept for DRL 1.1 attribution.
	Author string
	// References lists the rule's references.
	References []string
	// Logsource is the rule's logsource (one of SupportedLogsources).
	Logsource telemetry.Logsource
	// Tags are the rule's tags as written.
	Tags []string
	// Techniques are the ATT&CK technique IDs of attack.tNNNN[.NNN] tags,
	// upper-cased (e.g. "T1053.003"), in tag order, without duplicates.
	Techniques []string
	// Tactics are the ATT&CK tactic short names of attack.<tactic> tags
	// (e.g. "persistence"), in tag order, without duplicates.
	Tactics []string
	// Path is the file the rule was loaded from (slash-separated, relative to
	// the fs.FS given to Load).
	Path string
	// Link is Options.LinkBase + Path ("" when no LinkBase was given).
	Link string
	// Sigma is the parsed rule, as written (the evaluator gets a copy whose
	// wildcard values are turned into regular expressions).
	Sigma sigma.Rule

	eval *evaluator.RuleEvaluator
}

// String renders the rule as "title (id)".
func (r *Rule) String() string { return r.Title + " (" + r.ID + ")" }

// Matches reports whether ev matches the rule, evaluating it directly with
// sigma-go (no index): false when the event's logsource is not the rule's.
// It is the reference the Engine's indexed evaluation is tested against.
func (r *Rule) Matches(ev *telemetry.Event) bool {
	if ev.Source != r.Logsource {
		return false
	}
	ok, _ := r.evaluate(ev)
	return ok
}

// evaluate runs the sigma-go evaluator on ev, turning an error or a panic
// into a non-match. It returns the names of the searches that matched.
func (r *Rule) evaluate(ev *telemetry.Event) (ok bool, searches map[string]bool) {
	defer func() {
		if recover() != nil {
			ok, searches = false, nil
		}
	}()
	res, err := r.eval.Matches(context.Background(), ev.Fields)
	if err != nil {
		return false, nil
	}
	return res.Match, res.SearchResults
}

// Reason classifies why a file did not load as a rule.
type Reason string

// Reasons a file is not loaded.
const (
	// ReasonRead means the file could not be read.
	ReasonRead Reason = "read error"
	// ReasonParse means a YAML syntax error or a Sigma structure sigma-go
	// rejects.
	ReasonParse Reason = "parse error"
	// ReasonNotRule means the file is valid YAML but not a single Sigma
	// detection rule.
	ReasonNotRule Reason = "not a Sigma rule"
	// ReasonMissingMeta means the rule lacks an id or a title.
	ReasonMissingMeta Reason = "missing id or title"
	// ReasonDuplicateID means another loaded rule already has this id.
	ReasonDuplicateID Reason = "duplicate id"
	// ReasonStatus means the rule's status is deprecated or unsupported.
	ReasonStatus Reason = "skipped status"
	// ReasonCorrelation means a correlation rule or an aggregation condition
	// (count(), near, timeframe), which are not supported.
	ReasonCorrelation Reason = "correlation or aggregation"
	// ReasonLogsource means the local sensor does not produce the logsource.
	ReasonLogsource Reason = "unsupported logsource"
	// ReasonKeywords means a keyword (field-less) search, which sigma-go does
	// not evaluate.
	ReasonKeywords Reason = "keyword search"
	// ReasonModifier means a field modifier sigma-go does not implement.
	ReasonModifier Reason = "unsupported modifier"
	// ReasonValue means a value sigma-go cannot compare (null, placeholder,
	// nested map or list).
	ReasonValue Reason = "unsupported value"
	// ReasonEvaluator means building or probing the sigma-go evaluator failed.
	ReasonEvaluator Reason = "evaluator error"
	// ReasonCondition means the condition names a search the detection
	// does not define, or a selector ("1 of sel*") that matches no search:
	// the rule could never fire (or, for "all of", would always fire).
	ReasonCondition Reason = "condition error"
	// ReasonRegex means a |re value is not a valid regular expression (Go's
	// RE2 syntax: no lookaround, no backreferences): it could never match.
	ReasonRegex Reason = "invalid regular expression"
)

// Broken reports whether the problem means the rule cannot work as written
// (a parse error, missing metadata, a condition or a regular expression
// that cannot match, an evaluator failure, an unreadable file), as opposed
// to a valid rule outside what the local SIEM evaluates (its logsource,
// status, an aggregation, keywords, a modifier or value sigma-go lacks) or
// a duplicate.
func (p Problem) Broken() bool {
	switch p.Reason {
	case ReasonRead, ReasonParse, ReasonMissingMeta, ReasonEvaluator, ReasonCondition, ReasonRegex:
		return true
	}
	return false
}

// Problem is a file that did not load as a rule, with the reason.
type Problem struct {
	// Path is the file (as in Rule.Path).
	Path string
	// Line is the line of the file the problem is on, when known (0 when
	// not).
	Line int
	// Reason classifies the problem.
	Reason Reason
	// Detail is the specific message (parse error text, modifier name, ...).
	Detail string
	// ID and Title are the rule's, when they could be read.
	ID, Title string
}

// Error renders the problem as "path:line: reason: detail" (without the
// line when it is not known).
func (p Problem) Error() string {
	where := p.Path
	if p.Line > 0 {
		where += ":" + strconv.Itoa(p.Line)
	}
	return where + ": " + string(p.Reason) + ": " + p.Detail
}

// Ruleset is the result of loading rule files.
type Ruleset struct {
	// Rules are the loaded rules, in file path order.
	Rules []*Rule
	// Problems lists every file that did not load, in file path order.
	Problems []Problem
}

// Summary counts loaded rules and problems per reason.
func (s *Ruleset) Summary() map[string]int {
	m := map[string]int{"loaded": len(s.Rules)}
	for _, p := range s.Problems {
		m[string(p.Reason)]++
	}
	return m
}

var (
	techniqueTag = regexp.MustCompile(`^attack\.t(\d{4})(\.\d{3})?$`)
	// attack.<tactic>: hyphenated lower-case words; excludes IDs such as
	// attack.g0020 (groups), attack.s0508 (software), attack.c0001.
	tacticTag = regexp.MustCompile(`^attack\.([a-z]+(?:[-_][a-z]+)*)$`)
)

// attackFromTags derives technique IDs and tactic names from Sigma tags.
func attackFromTags(tags []string) (techniques, tactics []string) {
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if m := techniqueTag.FindStringSubmatch(t); m != nil {
			id := "T" + m[1] + m[2]
			if !seen[id] {
				seen[id] = true
				techniques = append(techniques, id)
			}
			continue
		}
		if m := tacticTag.FindStringSubmatch(t); m != nil {
			name := strings.ReplaceAll(m[1], "_", "-")
			if !seen[name] {
				seen[name] = true
				tactics = append(tactics, name)
			}
		}
	}
	return techniques, tactics
}

// supportedModifier reports whether sigma-go implements modifier m (a
// comparator such as contains, or a value modifier such as base64).
func supportedModifier(m string) bool {
	return modifiers.Comparators[m] != nil || modifiers.ValueModifiers[m] != nil ||
		modifiers.EventValueModifiers[m] != nil
}

var skippedStatus = map[string]bool{"deprecated": true, "unsupported": true}

// ParseRule parses one rule file's content. path is recorded in the Rule or
// Problem; link is stored as Rule.Link. Exactly one of the results is non-nil.
func ParseRule(path string, data []byte, link string) (*Rule, *Problem) {
	prob := func(reason Reason, format string, args ...any) (*Rule, *Problem) {
		detail := fmt.Sprintf(format, args...)
		return nil, &Problem{Path: path, Reason: reason, Detail: detail, Line: yamlLine(detail)}
	}

	// Plain YAML first: syntax errors, multi-document files, correlation
	// rules and files that are no rules at all.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeGuarded(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return prob(ReasonNotRule, "empty file")
		}
		return prob(ReasonParse, "yaml: %v", err)
	}
	var extra yaml.Node
	if err := decodeGuarded(dec, &extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return prob(ReasonParse, "yaml: %v", err)
		}
		return prob(ReasonNotRule, "multi-document YAML (rule collections) is not supported")
	}
	top := map[string]*yaml.Node{}
	topLine := map[string]int{}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			top[m.Content[i].Value] = m.Content[i+1]
			topLine[m.Content[i].Value] = m.Content[i].Line
		}
	} else {
		return prob(ReasonNotRule, "top level is not a mapping")
	}
	scalar := func(k string) string {
		if n := top[k]; n != nil && n.Kind == yaml.ScalarNode {
			return n.Value
		}
		return ""
	}
	if top["correlation"] != nil {
		r, p := prob(ReasonCorrelation, "correlation rules are not supported")
		p.ID, p.Title = scalar("id"), scalar("title")
		return r, p
	}
	det := top["detection"]
	if det == nil {
		return prob(ReasonNotRule, "no detection section")
	}
	if det.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(det.Content); i += 2 {
			if det.Content[i].Value == "timeframe" {
				// sigma-go v0.6.6 cannot even decode timeframe; it only
				// matters to aggregations, which are not supported anyway.
				r, p := prob(ReasonCorrelation, "timeframe (%s) is not supported", det.Content[i+1].Value)
				p.ID, p.Title = scalar("id"), scalar("title")
				return r, p
			}
		}
	}

	sr, err := parseGuarded(data)
	if err != nil {
		r, p := prob(ReasonParse, "sigma: %v", err)
		p.ID, p.Title = scalar("id"), scalar("title")
		return r, p
	}
	fail := func(reason Reason, format string, args ...any) (*Rule, *Problem) {
		r, p := prob(reason, format, args...)
		p.ID, p.Title = sr.ID, sr.Title
		return r, p
	}
	switch {
	case sr.ID == "" && sr.Title == "":
		return fail(ReasonMissingMeta, "rule has neither id nor title")
	case sr.ID == "":
		return fail(ReasonMissingMeta, "rule has no id")
	case sr.Title == "":
		return fail(ReasonMissingMeta, "rule has no title")
	}
	if skippedStatus[strings.ToLower(sr.Status)] {
		r, p := fail(ReasonStatus, "status: %s", sr.Status)
		p.Line = topLine["status"]
		return r, p
	}
	if len(sr.Detection.Conditions) == 0 {
		return fail(ReasonParse, "sigma: detection has no condition")
	}
	for _, c := range sr.Detection.Conditions {
		if c.Aggregation != nil {
			return fail(ReasonCorrelation, "aggregation condition %q is not supported", conditionString(c))
		}
	}
	ls := NormalizeLogsource(telemetry.Logsource{Product: sr.Logsource.Product, Service: sr.Logsource.Service, Category: sr.Logsource.Category})
	supported := false
	for _, s := range SupportedLogsources {
		supported = supported || s == ls
	}
	if !supported {
		r, p := fail(ReasonLogsource, "%s is not produced by the local sensor", ls)
		p.Line = topLine["logsource"]
		return r, p
	}
	if err := checkSearches(sr, ruleLines{det}); err != nil {
		r, p := fail(err.reason, "%s", err.detail)
		p.Line = err.line
		return r, p
	}

	eval, err := buildEvaluator(nullAsAbsent(expandWildcards(sr)))
	if err != nil {
		return fail(ReasonEvaluator, "%v", err)
	}
	techniques, tactics := attackFromTags(sr.Tags)
	r := &Rule{
		ID: sr.ID, Title: sr.Title, Description: sr.Description, Level: sr.Level,
		Status: sr.Status, Author: sr.Author, References: sr.References,
		Logsource: ls, Tags: sr.Tags, Techniques: techniques, Tactics: tactics,
		Path: path, Link: link, Sigma: sr, eval: eval,
	}
	return r, nil
}

// yamlErrLine finds the line a YAML error message names.
var yamlErrLine = regexp.MustCompile(`\bline (\d+)\b`)

// yamlLine returns the line a YAML or Sigma parse error names (0 if none).
func yamlLine(msg string) int {
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// conditionString renders a condition for a problem message.
func conditionString(c sigma.Condition) string {
	out, err := c.MarshalYAML()
	if err != nil {
		return "?"
	}
	return fmt.Sprint(out)
}

// decodeGuarded decodes the next YAML document, turning a panic of the YAML
// library into an error.
func decodeGuarded(dec *yaml.Decoder, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return dec.Decode(v)
}

// parseGuarded runs sigma.ParseRule, turning a panic into an error.
func parseGuarded(data []byte) (r sigma.Rule, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return sigma.ParseRule(data)
}

type searchProblem struct {
	reason Reason
	detail string
	line   int
}

// checkSearches rejects conditions that cannot work (a search they name
// is not defined, a selector matches no search), invalid regular
// expressions, and searches the sigma-go evaluator cannot evaluate
// faithfully: keywords, unknown modifiers and unsupported values.
func checkSearches(r sigma.Rule, lines ruleLines) *searchProblem {
	for _, c := range r.Detection.Conditions {
		if bad := unevaluable(c.Search); bad != "" {
			return &searchProblem{ReasonEvaluator, fmt.Sprintf("condition %q: sigma-go cannot evaluate %q", conditionString(c), bad), lines.condition()}
		}
		if bad := undefined(c.Search, r.Detection.Searches); bad != "" {
			return &searchProblem{ReasonCondition, fmt.Sprintf("condition %q: %s (the detection defines: %s)", conditionString(c), bad, strings.Join(searchNames(r), ", ")), lines.condition()}
		}
	}
	if p := checkMatchers(r, lines); p != nil {
		return p
	}
	return nil
}

// checkMatchers checks each search's field matchers.
func checkMatchers(r sigma.Rule, lines ruleLines) *searchProblem {
	for _, name := range searchNames(r) {
		s := r.Detection.Searches[name]
		if len(s.Keywords) > 0 {
			return &searchProblem{ReasonKeywords, fmt.Sprintf("search %q is a keyword list", name), lines.search(name)}
		}
		for _, em := range s.EventMatchers {
			for _, fm := range em {
				key := strings.Join(append([]string{fm.Field}, fm.Modifiers...), "|")
				line := lines.field(name, key)
				if fm.Field == "" {
					return &searchProblem{ReasonKeywords, fmt.Sprintf("search %q has a field-less keyword matcher %q", name, key), line}
				}
				for i, m := range fm.Modifiers {
					if m == "all" {
						if i != len(fm.Modifiers)-1 {
							return &searchProblem{ReasonModifier, fmt.Sprintf("modifier all must come last (%s in search %q)", key, name), line}
						}
						continue
					}
					if !supportedModifier(m) {
						return &searchProblem{ReasonModifier, fmt.Sprintf("modifier %s (%s in search %q)", m, key, name), line}
					}
				}
				isRe := slices.Contains(fm.Modifiers, "re")
				for _, v := range fm.Values {
					switch v := v.(type) {
					case nil:
						// Sigma's null: the field is absent (see nullAsAbsent).
						if len(fm.Modifiers) > 0 {
							return &searchProblem{ReasonValue, fmt.Sprintf("null value with modifiers for %s in search %q", key, name), line}
						}
					case string:
						if isRe {
							if _, err := regexp.Compile(v); err != nil {
								return &searchProblem{ReasonRegex, fmt.Sprintf("%s in search %q: %v", key, name, err), line}
							}
						}
						if strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%") {
							return &searchProblem{ReasonValue, fmt.Sprintf("placeholder %s for %s in search %q", v, key, name), line}
						}
						// A lone '*' stands for "the field exists" (SigmaHQ's
						// Kubernetes rules say so in a comment): sigma-go
						// compares a missing field as "", which '*' matches,
						// so the rule would fire on every event.
						if v == "*" && len(fm.Values) == 1 && len(fm.Modifiers) == 0 {
							return &searchProblem{ReasonValue, fmt.Sprintf("value '*' for %s in search %q means the field exists, which a missing field would match here", key, name), line}
						}
					case int, float32, float64, bool:
					default:
						return &searchProblem{ReasonValue, fmt.Sprintf("non-scalar value (%T) for %s in search %q", v, key, name), line}
					}
				}
			}
		}
	}
	return nil
}

// searchNames returns the names of the rule's searches, sorted.
func searchNames(r sigma.Rule) []string {
	names := make([]string, 0, len(r.Detection.Searches))
	for n := range r.Detection.Searches {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// undefined returns what of e cannot refer to a search: a search name the
// detection does not define, a selector ("1 of sel*", "all of sel*") that
// matches no search, "them" in a detection without searches; "" when every
// reference resolves.
func undefined(e sigma.SearchExpr, searches map[string]sigma.Search) string {
	matchesAny := func(pattern string) bool {
		for name := range searches {
			if ok, _ := path.Match(pattern, name); ok {
				return true
			}
		}
		return false
	}
	switch e := e.(type) {
	case sigma.And:
		for _, s := range e {
			if bad := undefined(s, searches); bad != "" {
				return bad
			}
		}
	case sigma.Or:
		for _, s := range e {
			if bad := undefined(s, searches); bad != "" {
				return bad
			}
		}
	case sigma.Not:
		return undefined(e.Expr, searches)
	case sigma.SearchIdentifier:
		if _, ok := searches[e.Name]; !ok {
			return fmt.Sprintf("search %q is not defined", e.Name)
		}
	case sigma.OneOfPattern:
		if !matchesAny(e.Pattern) {
			return fmt.Sprintf("selector \"1 of %s\" matches no search", e.Pattern)
		}
	case sigma.AllOfPattern:
		if !matchesAny(e.Pattern) {
			return fmt.Sprintf("selector \"all of %s\" matches no search", e.Pattern)
		}
	case sigma.OneOfThem, sigma.AllOfThem:
		if len(searches) == 0 {
			return "\"them\" with no search defined"
		}
	}
	return ""
}

// ruleLines finds the lines of a rule's detection parts in its YAML.
type ruleLines struct{ det *yaml.Node }

// value returns the value node of key in mapping m, and the key's line.
func mappingValue(m *yaml.Node, key string) (*yaml.Node, int) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], m.Content[i].Line
		}
	}
	return nil, 0
}

// condition is the line of the condition.
func (l ruleLines) condition() int {
	v, line := mappingValue(l.det, "condition")
	if v != nil && v.Line > 0 {
		return v.Line
	}
	return line
}

// search is the line of a search's name.
func (l ruleLines) search(name string) int {
	_, line := mappingValue(l.det, name)
	return line
}

// field is the line of a field matcher (its "Field|mod" key) of a search:
// in its map, or in the first map of its list that has it; else the
// search's line.
func (l ruleLines) field(name, key string) int {
	v, line := mappingValue(l.det, name)
	if v == nil {
		return line
	}
	maps := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		maps = v.Content
	}
	for _, m := range maps {
		if _, fl := mappingValue(m, key); fl > 0 {
			return fl
		}
	}
	return line
}

// unevaluable returns the first sub-expression sigma-go's evaluator panics
// on ("1 of x" / "all of x" with a plain identifier), or "".
func unevaluable(e sigma.SearchExpr) string {
	switch e := e.(type) {
	case sigma.And:
		for _, s := range e {
			if bad := unevaluable(s); bad != "" {
				return bad
			}
		}
	case sigma.Or:
		for _, s := range e {
			if bad := unevaluable(s); bad != "" {
				return bad
			}
		}
	case sigma.Not:
		return unevaluable(e.Expr)
	case sigma.OneOfIdentifier:
		return "1 of " + e.Ident.Name
	case sigma.AllOfIdentifier:
		return "all of " + e.Ident.Name
	}
	return ""
}

// fieldConfig is a sigma-go config mapping every field of the rule to
// itself. With a field mapping in place, sigma-go expands list values
// ([]string) into their elements instead of comparing their fmt.Sprint form.
func fieldConfig(r sigma.Rule) sigma.Config {
	fm := map[string]sigma.FieldMapping{}
	for _, s := range r.Detection.Searches {
		for _, em := range s.EventMatchers {
			for _, m := range em {
				if !strings.HasPrefix(m.Field, "$") { // "$." and "$[" would turn into JSONPath
					fm[m.Field] = sigma.FieldMapping{TargetNames: []string{m.Field}}
				}
			}
		}
	}
	return sigma.Config{Title: "vigil local identity mapping", FieldMappings: fm}
}

// nullAsAbsent returns r with Sigma's null values written as "null", which
// sigma-go's comparator matches exactly when the field is absent (CloudTrail
// records leave errorCode out on success; the normalised events drop JSON
// nulls). The engine's index builds its shadow from the rule as written,
// where a null value is not modelled ("maybe").
func nullAsAbsent(r sigma.Rule) sigma.Rule {
	return rewriteMatchers(r, func(fm sigma.FieldMatcher) bool { return slices.Contains(fm.Values, any(nil)) },
		func(fm sigma.FieldMatcher) sigma.FieldMatcher {
			nfm := fm
			nfm.Values = make([]any, len(fm.Values))
			for k, v := range fm.Values {
				if v == nil {
					v = "null"
				}
				nfm.Values[k] = v
			}
			return nfm
		})
}

// buildEvaluator constructs the sigma-go evaluator and probes it once on an
// empty event: evaluation errors in sigma-go come from the rule (unknown
// modifier, bad value), not from the event, so the probe finds them at load
// time. Panics become errors.
func buildEvaluator(r sigma.Rule) (e *evaluator.RuleEvaluator, err error) {
	defer func() {
		if p := recover(); p != nil {
			e, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	e = evaluator.ForRule(r, evaluator.WithConfig(fieldConfig(r)))
	if _, err := e.Matches(context.Background(), map[string]any{}); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return e, nil
}
