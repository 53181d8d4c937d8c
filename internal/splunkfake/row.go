package splunkfake

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Row is one search result as splunkd's JSON output renders it: field
// name to a string, or a list of strings for a multivalue field.
type Row map[string]any

// first returns the first non-blank value of a field: the field itself, a
// multivalue's first element, or a "\n"-joined value's first line.
func (r Row) first(field string) string {
	var vals []any
	switch v := r[field].(type) {
	case nil:
	case []any:
		vals = v
	default:
		vals = []any{v}
	}
	for _, v := range vals {
		if v == nil {
			continue
		}
		for _, line := range strings.Split(fmt.Sprint(v), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				return line
			}
		}
	}
	return ""
}

// FormatTime renders t as search results render _time (milliseconds, an
// offset).
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-07:00") }

// parseTime reads a _time as results render it, or epoch seconds with an
// optional fraction (HEC's time, orig_time).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseUint(sec, 10, 63)
	if err != nil || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("not a time: %q", s)
	}
	var ns uint64
	if frac != "" {
		if ns, err = strconv.ParseUint((frac + "000000000")[:9], 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("not a time: %q", s)
		}
	}
	return time.Unix(int64(n), int64(ns)), nil
}

// SavedSearch builds an entry of the saved searches listing, as Enterprise
// Security's correlation searches have them: its name, label
// (action.correlationsearch.label), whether it is disabled, scheduled and
// raises a notable, and its annotations (JSON, as ES stores them).
func SavedSearch(name, label string, disabled, scheduled, notable bool, annotations string) map[string]any {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return map[string]any{
		"name": name, "acl": map[string]any{"app": "SplunkEnterpriseSecuritySuite"},
		"content": map[string]any{
			"disabled": disabled, "is_scheduled": scheduled, "action.notable": b(notable),
			"action.correlationsearch.enabled": "1", "action.correlationsearch.label": label,
			"action.correlationsearch.annotations": annotations,
		},
	}
}
