package elasticfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// decode decodes a JSON object (a _source, a request body), keeping
// numbers as written.
func decode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// values returns every value of a document at a dotted field path, as
// Elasticsearch resolves it: through literal dotted keys
// ("kibana.alert.rule.name"), nested objects ("host":{"name"}) or a mix of
// both, arrays flattened.
func values(v any, field string) []any {
	var out []any
	collect(v, strings.Split(field, "."), &out)
	return out
}

func collect(v any, parts []string, out *[]any) {
	switch x := v.(type) {
	case nil:
	case []any:
		for _, e := range x {
			collect(e, parts, out)
		}
	case map[string]any:
		if len(parts) == 0 {
			*out = append(*out, x)
			return
		}
		for n := len(parts); n > 0; n-- {
			if sub, ok := x[strings.Join(parts[:n], ".")]; ok {
				collect(sub, parts[n:], out)
			}
		}
	default:
		if len(parts) == 0 {
			*out = append(*out, x)
		}
	}
}

// strs returns the scalar values of a field as strings, in order.
func strs(v any, field string) []string {
	var out []string
	for _, x := range values(v, field) {
		switch s := x.(type) {
		case string:
			out = append(out, s)
		case json.Number:
			out = append(out, s.String())
		case bool, float64:
			out = append(out, fmt.Sprint(s))
		}
	}
	return out
}

// first returns the first value of a field that is not blank.
func first(v any, field string) string {
	for _, s := range strs(v, field) {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// parseDate reads a date field: ISO 8601 (with or without a zone, taken
// as UTC) or epoch milliseconds.
func parseDate(s string) (time.Time, error) {
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
