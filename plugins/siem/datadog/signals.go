package datadog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// attackTag parses the ATT&CK tags of signals and rules: lower-case slugs
// on signals (technique:t1552-unsecured-credentials), upper-case IDs on
// rules (technique:T1110-brute-force), with or without a sub-technique.
var attackTag = regexp.MustCompile(`(?i)^(technique|tactic):(t\d{4}(?:\.\d{3})?|ta\d{4})(?:-.*)?$`)

// parseAttackTags returns the technique IDs (T1552, T1552.001) and the
// tactic IDs (TA0006) of tags, upper-cased, in tag order, without
// duplicates.
func parseAttackTags(tags []string) (techniques, tactics []string) {
	seen := map[string]bool{}
	for _, t := range tags {
		m := attackTag.FindStringSubmatch(strings.TrimSpace(t))
		if m == nil {
			continue
		}
		id := strings.ToUpper(m[2])
		kind := strings.ToLower(m[1])
		if seen[kind+id] {
			continue
		}
		seen[kind+id] = true
		// technique:ta0001 would be a tactic under the wrong key: keep the
		// ID's own kind.
		if strings.HasPrefix(id, "TA") {
			tactics = append(tactics, id)
		} else if kind == "technique" {
			techniques = append(techniques, id)
		}
	}
	return techniques, tactics
}

// signalsPage is the JSON of one signals list or search answer, decoded by
// vigil rather than by the client's model (see API-NOTES: the real answer
// nests rule data under attributes.attributes, which the model lacks).
type signalsPage struct {
	Data []json.RawMessage `json:"data"`
	Meta *struct {
		Page *struct {
			After string `json:"after"`
		} `json:"page"`
	} `json:"meta"`
}

// after returns the cursor of the next page ("" on the last one).
func (p signalsPage) after() string {
	if p.Meta == nil || p.Meta.Page == nil {
		return ""
	}
	return p.Meta.Page.After
}

// wireSignal is the part of a signal vigil reads.
type wireSignal struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		Timestamp  string         `json:"timestamp"`
		Tags       []string       `json:"tags"`
		Host       any            `json:"host"`
		Status     string         `json:"status"`
		Custom     map[string]any `json:"custom"`
		Attributes map[string]any `json:"attributes"`
	} `json:"attributes"`
}

// Bounds on what one signal carries back to the engine: a Search answer
// travels over gRPC, whose messages are limited to 4 MiB.
const (
	maxRawBytes      = 16 << 10
	maxMarkerValues  = 64
	maxMarkerValueSz = 4 << 10
)

// decodeSignal turns one element of "data" into a plugin.Signal.
func decodeSignal(raw json.RawMessage) (plugin.Signal, error) {
	var w wireSignal
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return plugin.Signal{}, fmt.Errorf("decode signal: %w", err)
	}
	if w.ID == "" {
		return plugin.Signal{}, fmt.Errorf("signal without id")
	}
	ts, err := parseTime(w.Attributes.Timestamp)
	if err != nil {
		return plugin.Signal{}, fmt.Errorf("signal %s: timestamp: %w", w.ID, err)
	}
	// Rule and workflow data sit under attributes.custom (signal details)
	// or attributes.attributes (list and search answers).
	custom := w.Attributes.Custom
	if custom == nil {
		custom = w.Attributes.Attributes
	} else {
		for k, v := range w.Attributes.Attributes {
			if _, ok := custom[k]; !ok {
				custom[k] = v
			}
		}
	}
	sig := plugin.Signal{
		ID:        w.ID,
		Timestamp: ts,
		Severity:  w.Attributes.Status,
	}
	sig.Techniques, _ = parseAttackTags(w.Attributes.Tags)
	sig.RuleName = str(path(custom, "workflow", "rule", "name"))
	if sig.RuleName == "" {
		sig.RuleName = str(custom["title"])
	}
	sig.RuleID = str(path(custom, "workflow", "rule", "id"))
	if first, err := parseTime(str(path(custom, "workflow", "first_seen"))); err == nil {
		sig.EventTime = first
	}
	sig.Host = hostOf(w.Attributes.Host, custom)
	sig.MarkerValues = markerValues(w, custom, sig.Host)
	sig.Raw = compactRaw(raw, w, sig)
	return sig, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("missing")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339", s)
	}
	return t, nil
}

// path walks nested objects.
func path(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[k]
	}
	return cur
}

// str returns a string value, the first string of an array, or "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

// strs returns the strings of a value: a string, or an array of strings
// and numbers.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		if x != "" {
			return []string{x}
		}
	case json.Number:
		return []string{x.String()}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		return out
	}
	return nil
}

// hostOf returns the signal's host: attributes.host (a string or an
// array), else the host or hostname of its custom attributes, else a
// host: entity.
func hostOf(h any, custom map[string]any) string {
	if s := str(h); s != "" {
		return s
	}
	for _, k := range []string{"host", "hostname"} {
		if s := str(custom[k]); s != "" {
			return s
		}
	}
	for _, e := range strs(custom["entities"]) {
		if rest, ok := strings.CutPrefix(e, "host:"); ok && rest != "" {
			return rest
		}
	}
	return ""
}

// markerFields are the attributes, relative to a log's or a sample's
// attributes, where each marker location can be found. Workload Protection
// events carry process.args, process.parent.args and
// process.ancestors[].args; replayed events (Ingest) carry
// process.command_line, process.ancestry, file.path and vigil.marker.
var markerFields = []struct {
	loc  plugin.MarkerLocation
	path []string
	argv bool // an array is one argv (else: one value per element)
}{
	{plugin.MarkerCommandLine, []string{"process", "command_line"}, false},
	{plugin.MarkerCommandLine, []string{"process", "cmdline"}, false},
	{plugin.MarkerCommandLine, []string{"process", "args"}, true},
	{plugin.MarkerCommandLine, []string{"process", "parent", "args"}, true},
	{plugin.MarkerCommandLine, []string{"process", "parent", "command_line"}, false},
	{plugin.MarkerCommandLine, []string{"process", "ancestry"}, false},
	{plugin.MarkerCommandLine, []string{"process", "ancestors", "args"}, true},
	{plugin.MarkerProcessName, []string{"process", "executable", "name"}, false},
	{plugin.MarkerProcessName, []string{"process", "comm"}, false},
	{plugin.MarkerFilePath, []string{"file", "path"}, false},
	{plugin.MarkerFilePath, []string{"file", "destination", "path"}, false},
	{plugin.MarkerFilePath, []string{"process", "executable", "path"}, false},
	{plugin.MarkerUserAgent, []string{"http", "useragent"}, false},
	{plugin.MarkerUserAgent, []string{"http", "user_agent"}, false},
	{plugin.MarkerUserAgent, []string{"userAgent"}, false},
	{plugin.MarkerEnvironment, []string{"process", "envs"}, false},
	{plugin.MarkerLogField, []string{"vigil", "marker"}, false},
}

// markerValues collects the values of marker-capable fields of a signal:
// its own attributes and the log samples that raised it
// (samples[].content.custom, or the content itself), the hosts, and the
// vigil_marker tags of replayed events.
func markerValues(w wireSignal, custom map[string]any, host string) []plugin.MarkerValue {
	var out []plugin.MarkerValue
	seen := map[plugin.MarkerValue]bool{}
	add := func(loc plugin.MarkerLocation, v, field string) {
		if v == "" || len(out) >= maxMarkerValues {
			return
		}
		if len(v) > maxMarkerValueSz {
			v = v[:maxMarkerValueSz]
		}
		// One value per location: the first field that held it names it.
		key := plugin.MarkerValue{Location: loc, Value: v}
		if !seen[key] {
			seen[key] = true
			out = append(out, plugin.MarkerValue{Location: loc, Value: v, Field: field})
		}
	}
	scan := func(attrs map[string]any) {
		for _, f := range markerFields {
			for _, v := range collect(attrs, f.path, f.argv) {
				add(f.loc, v, strings.Join(f.path, "."))
			}
		}
	}
	add(plugin.MarkerHostname, host, "host")
	scan(custom)
	samples, _ := custom["samples"].([]any)
	for _, s := range samples {
		content, _ := path(asMap(s), "content").(map[string]any)
		if content == nil {
			continue
		}
		if c, ok := content["custom"].(map[string]any); ok {
			scan(c)
		}
		if c, ok := content["attributes"].(map[string]any); ok {
			scan(c)
		}
		scan(content)
		add(plugin.MarkerHostname, str(content["host"]), "host")
		for _, t := range strs(content["tags"]) {
			if m, ok := strings.CutPrefix(t, "vigil_marker:"); ok {
				add(plugin.MarkerLogField, m, "tags:vigil_marker")
			}
		}
	}
	for _, t := range w.Attributes.Tags {
		if m, ok := strings.CutPrefix(t, "vigil_marker:"); ok {
			add(plugin.MarkerLogField, m, "tags:vigil_marker")
		}
	}
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// collect returns the string values at a path, descending into arrays of
// objects (process.ancestors[].args). An array of strings at the end is
// one value per element, or one space-joined command line when argv is set
// (process.args).
func collect(v any, keys []string, argv bool) []string {
	if len(keys) == 0 {
		if x, ok := v.([]any); ok && argv {
			parts := strs(x)
			if len(parts) == 0 {
				return nil
			}
			return []string{strings.Join(parts, " ")}
		}
		return strs(v)
	}
	switch x := v.(type) {
	case map[string]any:
		return collect(x[keys[0]], keys[1:], argv)
	case []any:
		var out []string
		for _, e := range x {
			if _, ok := e.(map[string]any); ok {
				out = append(out, collect(e, keys, argv)...)
			}
		}
		return out
	}
	return nil
}

// compactRaw returns the signal's JSON without its samples (their marker
// values are kept apart) and, when that is still too big, a summary.
func compactRaw(raw json.RawMessage, w wireSignal, sig plugin.Signal) []byte {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&doc) == nil {
		if attrs, ok := doc["attributes"].(map[string]any); ok {
			for _, k := range []string{"custom", "attributes"} {
				if inner, ok := attrs[k].(map[string]any); ok {
					delete(inner, "samples")
				}
			}
		}
		if b, err := json.Marshal(doc); err == nil && len(b) <= maxRawBytes {
			return b
		}
	}
	summary := map[string]any{
		"id": w.ID, "type": w.Type,
		"attributes": map[string]any{
			"timestamp": w.Attributes.Timestamp, "tags": w.Attributes.Tags, "status": w.Attributes.Status,
			"host": sig.Host, "workflow": map[string]any{"rule": map[string]any{"id": sig.RuleID, "name": sig.RuleName}},
		},
		"vigil_truncated": true,
	}
	b, _ := json.Marshal(summary)
	return b
}

// decodeSignalsPage decodes a search answer into signals and the next
// cursor.
func decodeSignalsPage(body []byte) ([]plugin.Signal, string, error) {
	var p signalsPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("decode answer: %w (body: %s)", err, excerpt(string(body), 120))
	}
	if p.Data == nil && !bytes.Contains(body, []byte(`"data"`)) {
		return nil, "", fmt.Errorf("decode answer: no \"data\" (body: %s)", excerpt(string(body), 120))
	}
	out := make([]plugin.Signal, 0, len(p.Data))
	for _, raw := range p.Data {
		s, err := decodeSignal(raw)
		if err != nil {
			return nil, "", err
		}
		out = append(out, s)
	}
	return out, p.after(), nil
}
