package sentinel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
)

// techniquePattern finds ATT&CK technique and sub-technique IDs.
var techniquePattern = regexp.MustCompile(`(?i)\bT\d{4}(?:\.\d{3})?\b`)

// techniquesIn returns the technique IDs in the texts, upper-case, first
// seen first, without duplicates: SecurityAlert's Techniques and
// SubTechniques are JSON arrays in a string (["T1059"]), incidents' a
// dynamic array.
func techniquesIn(texts ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range texts {
		for _, id := range techniquePattern.FindAllString(t, -1) {
			id = strings.ToUpper(id)
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// signalOf converts one result row by its kind.
func signalOf(r row) (plugin.Signal, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return plugin.Signal{}, fmt.Errorf("encode: %w", err)
	}
	var s plugin.Signal
	switch r.str(kindColumn) {
	case kindIncident:
		s, err = incidentSignal(r)
	case kindQuery:
		s, err = querySignal(r, raw)
	default:
		s, err = alertSignal(r)
	}
	if err != nil {
		return plugin.Signal{}, err
	}
	s.Raw = raw
	return s, nil
}

// alertSignal reads a SecurityAlert row: the alert's first record.
func alertSignal(r row) (plugin.Signal, error) {
	s := plugin.Signal{ID: r.str("SystemAlertId"), Severity: strings.ToLower(r.str("AlertSeverity"))}
	if s.ID == "" {
		return s, fmt.Errorf("a SecurityAlert row without SystemAlertId")
	}
	var err error
	if s.Timestamp, err = r.time("TimeGenerated"); err != nil {
		return s, err
	}
	if s.Timestamp.IsZero() {
		return s, fmt.Errorf("alert %s has no TimeGenerated", s.ID)
	}
	if s.EventTime, err = r.time("StartTime"); err != nil {
		return s, err
	}
	props := jsonObject(r.str("ExtendedProperties"))
	s.RuleName = propString(props, "Analytic Rule Name")
	if s.RuleName == "" {
		s.RuleName = r.first("AlertName", "DisplayName")
	}
	s.RuleID = ruleID(props, r.str("AlertType"))
	s.Techniques = techniquesIn(r.str("Techniques"), r.str("SubTechniques"))
	entities := jsonArray(r.str("Entities"))
	s.Host = alertHost(r.str("CompromisedEntity"), entities)
	s.MarkerValues = append(entityMarkers(entities), propertyMarkers("ExtendedProperties", props)...)
	return s, nil
}

// ruleID is the analytics rule's ID: the first of "Analytic Rule Ids"
// (a JSON array in a string), else the GUID AlertType ends with
// (<workspace>_<rule>), else AlertType.
func ruleID(props map[string]any, alertType string) string {
	if v := propString(props, "Analytic Rule Ids"); v != "" {
		var ids []string
		if json.Unmarshal([]byte(v), &ids) == nil && len(ids) > 0 {
			return ids[0]
		}
		return v
	}
	if i := strings.LastIndexByte(alertType, '_'); i >= 0 && guidPattern.MatchString(alertType[i+1:]) {
		return alertType[i+1:]
	}
	return alertType
}

// incidentSignal reads a SecurityIncident row (incidents = true).
func incidentSignal(r row) (plugin.Signal, error) {
	name := r.str("IncidentName")
	if name == "" {
		return plugin.Signal{}, fmt.Errorf("a SecurityIncident row without IncidentName")
	}
	s := plugin.Signal{ID: "incident/" + name, RuleName: r.str("Title"), Severity: strings.ToLower(r.str("Severity"))}
	var err error
	if s.Timestamp, err = r.time("CreatedTime"); err != nil {
		return s, err
	}
	if s.Timestamp.IsZero() {
		if s.Timestamp, err = r.time("TimeGenerated"); err != nil {
			return s, err
		}
	}
	if s.EventTime, err = r.time("FirstActivityTime"); err != nil {
		return s, err
	}
	var rules []string
	_ = json.Unmarshal([]byte(r.str("RelatedAnalyticRuleIds")), &rules)
	if len(rules) > 0 {
		s.RuleID = rules[0]
		if i := strings.LastIndexByte(s.RuleID, '/'); i >= 0 {
			s.RuleID = s.RuleID[i+1:]
		}
	}
	add := jsonObject(r.str("AdditionalData"))
	tech, _ := json.Marshal(add["techniques"])
	sub, _ := json.Marshal(add["subTechniques"])
	s.Techniques = techniquesIn(string(tech), string(sub))
	return s, nil
}

// querySignal reads a row of an expectation's native query: any table;
// the ID is SystemAlertId when there is one, else a hash of the row.
func querySignal(r row, raw []byte) (plugin.Signal, error) {
	s := plugin.Signal{ID: r.str("SystemAlertId"), RuleName: r.first("AlertName", "DisplayName"), Severity: strings.ToLower(r.str("AlertSeverity"))}
	if s.ID == "" {
		sum := sha256.Sum256(raw)
		s.ID = "row/" + hex.EncodeToString(sum[:12])
	}
	var err error
	if s.Timestamp, err = r.time("TimeGenerated"); err != nil {
		return s, err
	}
	if s.Timestamp.IsZero() {
		return s, fmt.Errorf("a native query row without TimeGenerated (keep it in the query's output)")
	}
	if s.EventTime, err = r.time("StartTime"); err != nil {
		return s, err
	}
	var ids []string
	switch v := r[expectationsColumn].(type) {
	case string:
		_ = json.Unmarshal([]byte(v), &ids)
	case []any:
		for _, x := range v {
			if id, ok := x.(string); ok {
				ids = append(ids, id)
			}
		}
	}
	s.MatchedExpectations = ids
	s.Techniques = techniquesIn(r.str("Techniques"), r.str("SubTechniques"))
	entities := jsonArray(r.str("Entities"))
	s.Host = alertHost(r.first("CompromisedEntity", "Computer", "DvcHostname", "HostName"), entities)
	s.MarkerValues = entityMarkers(entities)
	cols := make([]string, 0, len(r))
	for k := range r {
		if k != kindColumn && k != expectationsColumn && k != "Entities" {
			cols = append(cols, k)
		}
	}
	sort.Strings(cols)
	for _, c := range cols {
		if v, ok := r[c].(string); ok && v != "" {
			s.MarkerValues = append(s.MarkerValues, plugin.MarkerValue{Location: locationOf(c), Value: v, Field: c})
		}
	}
	return s, nil
}

// alertHost is the compromised entity when it is a host name, else the
// first host entity's.
func alertHost(compromised string, entities []any) string {
	if compromised != "" && !strings.ContainsAny(compromised, " /@") {
		return compromised
	}
	for _, e := range entities {
		m, _ := e.(map[string]any)
		if strings.EqualFold(str(m["Type"]), "host") {
			if h := str(m["HostName"]); h != "" {
				if d := str(m["DnsDomain"]); d != "" {
					return h + "." + d
				}
				return h
			}
		}
	}
	return compromised
}

// entityMarkers are the values of the alert's entities where a marker can
// be: process command lines, file paths, host names, URLs, and every
// other string attribute as a log field. Entities nest (a process's
// ImageFile, ParentProcess); each is read once.
func entityMarkers(entities []any) []plugin.MarkerValue {
	var out []plugin.MarkerValue
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 6 {
			return
		}
		switch t := v.(type) {
		case []any:
			for _, x := range t {
				walk(x, depth+1)
			}
		case map[string]any:
			typ := strings.ToLower(str(t["Type"]))
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				val := t[k]
				s, ok := val.(string)
				if !ok {
					walk(val, depth+1)
					continue
				}
				if s == "" || k == "Type" || strings.HasPrefix(k, "$") {
					continue
				}
				loc := plugin.MarkerLogField
				switch {
				case typ == "process" && k == "CommandLine":
					loc = plugin.MarkerCommandLine
				case typ == "file" && (k == "Name" || k == "Directory"):
					loc = plugin.MarkerFilePath
					if k == "Name" {
						if d := str(t["Directory"]); d != "" {
							s = strings.TrimRight(d, "/\\") + "/" + s
						}
					}
				case typ == "host" && (k == "HostName" || k == "NetBiosName"):
					loc = plugin.MarkerHostname
				case typ == "url" && k == "Url":
					loc = plugin.MarkerLogField
				default:
					loc = locationOf(k)
				}
				out = append(out, plugin.MarkerValue{Location: loc, Value: s, Field: "Entities." + typ + "." + k})
			}
		}
	}
	walk(entities, 0)
	return out
}

// propertyMarkers are the string values of an alert's ExtendedProperties,
// custom details included (a JSON object in a string, whose values are
// arrays).
func propertyMarkers(prefix string, props map[string]any) []plugin.MarkerValue {
	var out []plugin.MarkerValue
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := prefix + "." + k
		switch v := props[k].(type) {
		case string:
			if nested := jsonObject(v); nested != nil {
				out = append(out, propertyMarkers(field, nested)...)
				continue
			}
			if arr := jsonArray(v); arr != nil {
				for _, x := range arr {
					if s := str(x); s != "" {
						out = append(out, plugin.MarkerValue{Location: locationOf(k), Value: s, Field: field})
					}
				}
				continue
			}
			if v != "" {
				out = append(out, plugin.MarkerValue{Location: locationOf(k), Value: v, Field: field})
			}
		case []any:
			for _, x := range v {
				if s := str(x); s != "" {
					out = append(out, plugin.MarkerValue{Location: locationOf(k), Value: s, Field: field})
				}
			}
		case map[string]any:
			out = append(out, propertyMarkers(field, v)...)
		}
	}
	return out
}

// locationOf guesses a marker location from a field's name.
func locationOf(field string) plugin.MarkerLocation {
	f := strings.ToLower(field)
	switch {
	case strings.Contains(f, "commandline"):
		return plugin.MarkerCommandLine
	case strings.Contains(f, "useragent") || strings.Contains(f, "user_agent"):
		return plugin.MarkerUserAgent
	case strings.Contains(f, "processname") || f == "image":
		return plugin.MarkerProcessName
	case strings.Contains(f, "filepath") || strings.Contains(f, "filename") || strings.Contains(f, "targetfile"):
		return plugin.MarkerFilePath
	case f == "hostname" || f == "computer" || f == "dvchostname":
		return plugin.MarkerHostname
	}
	return plugin.MarkerLogField
}

// jsonObject parses a JSON object in a string (nil when it is not one).
func jsonObject(s string) map[string]any {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// jsonArray parses a JSON array in a string (nil when it is not one).
func jsonArray(s string) []any {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var a []any
	if json.Unmarshal([]byte(s), &a) != nil {
		return nil
	}
	return a
}

// propString is a property's value as a string.
func propString(props map[string]any, key string) string { return str(props[key]) }

// str renders a JSON value as a string ("" for null; numbers as JSON).
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}
