package splunk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// expectationsField is the field vigil's per-expectation subsearches set on
// their rows: the IDs of the expectations whose query returned the row.
const expectationsField = "vigil_expectations"

// techniquePattern finds ATT&CK technique IDs in annotation values.
var techniquePattern = regexp.MustCompile(`(?i)\bT\d{4}(?:\.\d{3})?\b`)

// UnmarshalJSON decodes a result row keeping numbers as written.
func (r *row) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	m := map[string]any{}
	if err := dec.Decode(&m); err != nil {
		return err
	}
	*r = m
	return nil
}

// values returns the values of a field: a JSON array's elements, or a
// string split on "\n" (how older servers join multivalues). Empty values
// are dropped.
func (r row) values(field string) []string {
	var out []string
	add := func(s string) {
		for _, v := range strings.Split(s, "\n") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	switch v := r[field].(type) {
	case nil:
	case string:
		add(v)
	case []any:
		for _, e := range v {
			if e != nil {
				add(scalar(e))
			}
		}
	default:
		add(scalar(v))
	}
	return out
}

// text returns a field as one string, multivalues joined with "\n".
func (r row) text(field string) string {
	switch v := r[field].(type) {
	case nil:
		return ""
	case string:
		return v
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if e != nil {
				parts = append(parts, scalar(e))
			}
		}
		return strings.Join(parts, "\n")
	default:
		return scalar(v)
	}
}

// first returns the first value of the first of fields that has one.
func (r row) first(fields ...string) string {
	for _, f := range fields {
		if vs := r.values(f); len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// parseTime reads a Splunk time: ISO 8601 with an offset (how results
// render _time) or epoch seconds with an optional fraction (orig_time,
// _indextime).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("not a time: %q", excerpt(s, 40))
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err != nil || strings.ContainsAny(frac, "+-") {
			return time.Time{}, fmt.Errorf("not a time: %q", excerpt(s, 40))
		}
		ns = f
	}
	return time.Unix(n, ns), nil
}

// signal turns a result row into a signal. A row without a readable _time
// is an error: the SPL must keep _time for latency to mean anything.
func (c *config) signal(r row) (plugin.Signal, error) {
	ts, err := parseTime(r.first("_time"))
	if err != nil {
		return plugin.Signal{}, fmt.Errorf("_time: %w (the search must keep _time)", err)
	}
	s := plugin.Signal{
		Timestamp: ts,
		RuleName:  r.first("rule_name", "search_name", "savedsearch_name", "ss_name"),
		RuleID:    r.first("search_name", "savedsearch_name", "ss_name"),
		Host:      r.first(c.HostFields...),
		Severity:  r.first("urgency", "severity"),
	}
	if v := r.first("orig_time"); v != "" {
		if s.EventTime, err = parseTime(v); err != nil {
			return plugin.Signal{}, fmt.Errorf("orig_time: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, f := range c.TechniqueFields {
		for _, v := range r.values(f) {
			for _, id := range techniquePattern.FindAllString(v, -1) {
				id = strings.ToUpper(id)
				if !seen[id] {
					seen[id] = true
					s.Techniques = append(s.Techniques, id)
				}
			}
		}
	}
	for _, loc := range markerLocations {
		for _, f := range c.markers[loc] {
			if v := r.text(f); v != "" {
				s.MarkerValues = append(s.MarkerValues, plugin.MarkerValue{Location: loc, Value: v, Field: f})
			}
		}
	}
	if s.Raw, err = json.Marshal(r); err != nil {
		return plugin.Signal{}, fmt.Errorf("encode row: %w", err)
	}
	s.ID = rowID(r)
	if exps := r.values(expectationsField); len(exps) > 0 {
		sort.Strings(exps)
		s.MatchedExpectations = exps
		s.ID += "|q:" + shortHash(strings.Join(exps, "\n"))
	}
	return s, nil
}

// rowID identifies a row stably across polls: the notable's event_id, else
// the event's bucket and address (_bkt, _cd), else a hash of its fields.
func rowID(r row) string {
	if id := r.first("event_id"); id != "" {
		return id
	}
	if cd := r.first("_cd"); cd != "" {
		return "cd:" + r.first("_bkt", "index") + ":" + cd
	}
	m := make(map[string]any, len(r))
	for k, v := range r {
		if k != expectationsField {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m) // keys sorted: canonical
	return "h:" + shortHash(string(b))
}

// notableID returns the event_id of a signal ID that names a notable, or
// "" for rows that are not notables.
func notableID(id string) string {
	base, _, _ := strings.Cut(id, "|q:")
	if strings.HasPrefix(base, "cd:") || strings.HasPrefix(base, "h:") || base == "" {
		return ""
	}
	return base
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// splString quotes s as an SPL string literal.
func splString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
