package elastic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Alert document fields, in both layouts: 8.x keeps kibana.alert.* as
// literal dotted keys at the top of _source, 7.x nests everything under
// signal.*. The source event's ECS fields (host, process, file, ...) are
// copied into the alert in both, as nested objects or dotted keys.
var (
	fieldRuleName     = []string{"kibana.alert.rule.name", "signal.rule.name"}
	fieldRuleID       = []string{"kibana.alert.rule.rule_id", "kibana.alert.rule.parameters.rule_id", "signal.rule.rule_id"}
	fieldThreat       = []string{"kibana.alert.rule.threat", "kibana.alert.rule.parameters.threat", "signal.rule.threat"}
	fieldOriginalTime = []string{"kibana.alert.original_time", "signal.original_time"}
	fieldSeverity     = []string{"kibana.alert.severity", "signal.rule.severity"}
	fieldHost         = []string{"host.name", "host.hostname"}
)

// MarkerField is the field Ingest stamps the run marker into (the
// log.marker location), as the local SIEM does.
const MarkerField = "vigil.marker"

// markerFields are the fields read for each marker location, in order.
var markerFields = []struct {
	loc    plugin.MarkerLocation
	fields []string
}{
	{plugin.MarkerCommandLine, []string{"process.command_line", "process.args", "process.parent.command_line", "process.parent.args", "process.title"}},
	{plugin.MarkerProcessName, []string{"process.name", "process.parent.name"}},
	{plugin.MarkerFilePath, []string{"file.path", "file.target_path", "process.executable", "process.working_directory"}},
	{plugin.MarkerUserAgent, []string{"user_agent.original"}},
	{plugin.MarkerHostname, []string{"host.name", "host.hostname"}},
	{plugin.MarkerEnvironment, []string{"process.env_vars"}},
	{plugin.MarkerLogField, []string{MarkerField, "message"}},
}

// joinedFields hold argument arrays: their values form one command line.
var joinedFields = map[string]bool{"process.args": true, "process.parent.args": true}

// markerLocations are the locations Describe announces.
func markerLocations() []plugin.MarkerLocation {
	out := make([]plugin.MarkerLocation, len(markerFields))
	for i, m := range markerFields {
		out[i] = m.loc
	}
	return out
}

// decodeDoc decodes a _source object, keeping numbers exact.
func decodeDoc(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return m, nil
}

// lookup returns every value at a dotted path of v, whichever way the path
// is stored: literal dotted keys ("kibana.alert.rule.name"), nested objects
// ("host":{"name"}) or a mix ("kibana.alert.rule.parameters":{"threat"}).
// Arrays are flattened.
func lookup(v any, path string) []any {
	var out []any
	lookupParts(v, strings.Split(path, "."), &out)
	return out
}

func lookupParts(v any, parts []string, out *[]any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			lookupParts(e, parts, out)
		}
	case map[string]any:
		if len(parts) == 0 {
			*out = append(*out, x)
			return
		}
		for i := len(parts); i >= 1; i-- {
			if sub, ok := x[strings.Join(parts[:i], ".")]; ok {
				lookupParts(sub, parts[i:], out)
			}
		}
	case nil:
	default:
		if len(parts) == 0 {
			*out = append(*out, x)
		}
	}
}

// strs returns the scalar values at the paths, as strings, in order.
func strs(v any, paths ...string) []string {
	var out []string
	for _, p := range paths {
		for _, x := range lookup(v, p) {
			switch s := x.(type) {
			case string:
				out = append(out, s)
			case json.Number:
				out = append(out, s.String())
			case bool, float64:
				out = append(out, fmt.Sprint(s))
			}
		}
	}
	return out
}

// first returns the first non-empty scalar at the paths.
func first(v any, paths ...string) string {
	for _, s := range strs(v, paths...) {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// parseTime reads an Elasticsearch date: ISO 8601 (with or without zone,
// taken as UTC) or epoch milliseconds.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a date: %q", s)
}

// firstTime returns the first date at the paths (zero when none parses).
func firstTime(v any, paths ...string) time.Time {
	for _, s := range strs(v, paths...) {
		if t, err := parseTime(s); err == nil {
			return t
		}
	}
	return time.Time{}
}

var techniqueRE = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)

// techniques returns the ATT&CK technique IDs of a rule's threat mapping:
// for each technique, its sub-techniques when it lists some (a rule mapped
// to T1110.001 only must not count for T1110.003 through the parent it has
// to name), else the technique itself. Entries of other frameworks are
// skipped.
func techniques(src any) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		id = strings.ToUpper(strings.TrimSpace(id))
		if techniqueRE.MatchString(id) && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, f := range fieldThreat {
		threats := lookup(src, f)
		for _, th := range threats {
			if fw := first(th, "framework"); fw != "" && !strings.Contains(strings.ToUpper(fw), "ATT&CK") {
				continue
			}
			for _, tech := range lookup(th, "technique") {
				if subs := strs(tech, "subtechnique.id"); len(subs) > 0 {
					for _, s := range subs {
						add(s)
					}
					continue
				}
				add(first(tech, "id"))
			}
		}
		if len(threats) > 0 {
			break // kibana.alert.rule.parameters.threat repeats kibana.alert.rule.threat
		}
	}
	return out
}

// markerValues lists the values of the marker-capable fields of a
// document, by location.
func markerValues(src any) []plugin.MarkerValue {
	var out []plugin.MarkerValue
	seen := map[plugin.MarkerValue]bool{}
	for _, m := range markerFields {
		for _, f := range m.fields {
			vals := strs(src, f)
			if joinedFields[f] && len(vals) > 0 {
				vals = []string{strings.Join(vals, " ")}
			}
			for _, v := range vals {
				// One value per location: the first field that held it
				// names it.
				key := plugin.MarkerValue{Location: m.loc, Value: v}
				if v != "" && !seen[key] {
					seen[key] = true
					out = append(out, plugin.MarkerValue{Location: m.loc, Value: v, Field: f})
				}
			}
		}
	}
	return out
}

// hit is one search hit.
type hit struct {
	Index  string            `json:"_index"`
	ID     string            `json:"_id"`
	Source json.RawMessage   `json:"_source"`
	Sort   []json.RawMessage `json:"sort"`
	// MatchedQueries is an array of query names, or an object of names to
	// scores when include_named_queries_score is set.
	MatchedQueries json.RawMessage `json:"matched_queries"`
}

// matchedQueries returns the names of the named queries the hit matched.
func (h *hit) matchedQueries() []string {
	if len(h.MatchedQueries) == 0 {
		return nil
	}
	var names []string
	if json.Unmarshal(h.MatchedQueries, &names) == nil {
		return names
	}
	var scores map[string]json.RawMessage
	if json.Unmarshal(h.MatchedQueries, &scores) == nil {
		for n := range scores {
			names = append(names, n)
		}
	}
	return names
}

// maxRawDoc bounds the Raw document of one signal; a larger alert keeps its
// identity only.
const maxRawDoc = 1 << 20

// signal turns an alert hit into a plugin.Signal. queryIDs are the
// expectation IDs that had a native query in the search.
func (h *hit) signal(queryIDs map[string]bool) (plugin.Signal, error) {
	src, err := decodeDoc(h.Source)
	if err != nil {
		return plugin.Signal{}, fmt.Errorf("alert %q: _source: %w", h.ID, err)
	}
	ts := firstTime(src, "@timestamp")
	if ts.IsZero() {
		return plugin.Signal{}, fmt.Errorf("alert %q: no valid @timestamp", h.ID)
	}
	id := h.ID
	if id == "" {
		id = first(src, "kibana.alert.uuid")
	}
	sig := plugin.Signal{
		ID:           id,
		RuleName:     first(src, fieldRuleName...),
		RuleID:       first(src, fieldRuleID...),
		Techniques:   techniques(src),
		Timestamp:    ts,
		EventTime:    firstTime(src, fieldOriginalTime...),
		Host:         first(src, fieldHost...),
		Severity:     first(src, fieldSeverity...),
		MarkerValues: markerValues(src),
		Raw:          h.Source,
	}
	if len(sig.Raw) > maxRawDoc {
		sig.Raw, _ = json.Marshal(map[string]any{"_id": h.ID, "_index": h.Index, "truncated_bytes": len(h.Source)})
	}
	for _, q := range h.matchedQueries() {
		if queryIDs[q] {
			sig.MatchedExpectations = append(sig.MatchedExpectations, q)
		}
	}
	return sig, nil
}
