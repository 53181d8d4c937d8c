package ddfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// Signal describes a signal to add to the fake.
type Signal struct {
	// ID defaults to a generated one.
	ID string
	// Timestamp is the signal's time (attributes.timestamp).
	Timestamp time.Time
	// VisibleAt is when searches start returning it (default Timestamp).
	VisibleAt time.Time
	RuleID    string
	RuleName  string
	RuleType  string // default "Log Detection"
	Severity  string // default "high"
	Host      string
	// Tags are the signal's tags, e.g. "technique:t1552-unsecured-credentials".
	Tags []string
	// Samples are the attributes of the logs that raised it (they become
	// samples[].content.custom).
	Samples []map[string]any
}

// signal is a stored signal: its JSON in the real list/search shape and
// what searches filter on.
type signal struct {
	id        string
	at        time.Time
	visibleAt time.Time
	raw       map[string]any // the data item
	triage    string
}

func (sg *signal) render() json.RawMessage {
	if sg.triage != "" {
		if wf, ok := path(sg.raw, "attributes", "attributes", "workflow").(map[string]any); ok {
			if tr, ok := wf["triage"].(map[string]any); ok {
				tr["state"] = sg.triage
			}
		}
	}
	b, _ := json.Marshal(sg.raw)
	return b
}

func (sg *signal) doc() *doc {
	attrs, _ := path(sg.raw, "attributes").(map[string]any)
	inner, _ := attrs["attributes"].(map[string]any)
	if inner == nil {
		inner, _ = attrs["custom"].(map[string]any)
	}
	d := &doc{attrs: inner, reserved: map[string]string{}}
	d.message, _ = attrs["message"].(string)
	d.tags = append(d.tags, toStrings(attrs["tags"])...)
	d.reserved["status"], _ = attrs["status"].(string)
	d.reserved["host"], _ = attrs["host"].(string)
	return d
}

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

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = x
	}
	return out
}

// newID returns an ID shaped like Datadog's (base64 of an opaque value).
func (s *Server) newID(prefix string) string {
	s.seq++
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s-%012d-%d", prefix, s.seq, s.now().UnixNano())))
}

// AddSignal stores a signal built from sg, in the shape of the real search
// answers (rule and workflow under attributes.attributes), and returns its
// ID.
func (s *Server) AddSignal(sg Signal) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addSignalLocked(sg)
}

func (s *Server) addSignalLocked(sg Signal) string {
	if sg.ID == "" {
		sg.ID = s.newID("sig")
	}
	if sg.VisibleAt.IsZero() {
		sg.VisibleAt = sg.Timestamp
	}
	if sg.RuleType == "" {
		sg.RuleType = "Log Detection"
	}
	if sg.Severity == "" {
		sg.Severity = "high"
	}
	ts := sg.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	var samples []any
	entities := []any{}
	if sg.Host != "" {
		entities = append(entities, "host:"+sg.Host)
	}
	for i, smp := range sg.Samples {
		samples = append(samples, map[string]any{
			"eventId": fmt.Sprintf("%s-e%d", sg.ID, i),
			"content": map[string]any{
				"timestamp": ts, "host": sg.Host, "service": "", "status": "info",
				"tags":   []any{"source:vigil-fake"},
				"custom": smp,
			},
			"queryIndex": 0,
		})
	}
	tags := make([]any, len(sg.Tags))
	for i, t := range sg.Tags {
		tags[i] = t
	}
	inner := map[string]any{
		"status":   "info",
		"title":    sg.RuleName,
		"entities": entities,
		"workflow": map[string]any{
			"rule": map[string]any{
				"type": sg.RuleType, "detectionMethod": "threshold", "version": 1, "isDefaultRule": false,
				"id": sg.RuleID, "name": sg.RuleName,
			},
			"triage":         map[string]any{"state": "open", "assignee": map[string]any{"id": -1}, "incidentIds": []any{}},
			"first_seen":     ts,
			"last_seen":      ts,
			"events_matched": len(sg.Samples),
		},
		"samples": samples,
	}
	raw := map[string]any{
		"id": sg.ID, "type": "signal",
		"attributes": map[string]any{
			"status": sg.Severity, "service": []any{""}, "tags": tags, "timestamp": ts, "host": sg.Host,
			"message":    "## Goal\nvigil fake signal of " + sg.RuleName,
			"attributes": inner,
		},
	}
	s.signals = append(s.signals, &signal{id: sg.ID, at: sg.Timestamp, visibleAt: sg.VisibleAt, raw: raw})
	return sg.ID
}

// AddRawSignal stores a signal given as the JSON of one element of a real
// answer's "data" (such as the recorded fixtures), searchable from its own
// timestamp on.
func (s *Server) AddRawSignal(raw []byte) error {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return err
	}
	id, _ := m["id"].(string)
	tsStr, _ := path(m, "attributes", "timestamp").(string)
	ts, err := time.Parse(time.RFC3339Nano, tsStr)
	if id == "" || err != nil {
		return fmt.Errorf("ddfake: signal without id or timestamp")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signals = append(s.signals, &signal{id: id, at: ts, visibleAt: ts, raw: m})
	return nil
}

// SignalCount returns how many signals the fake holds.
func (s *Server) SignalCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.signals)
}

// logEntry is a stored log.
type logEntry struct {
	id         string
	at         time.Time
	receivedAt time.Time
	host       string
	service    string
	source     string
	status     string
	message    string
	tags       []string
	attrs      map[string]any
}

func (l *logEntry) render() json.RawMessage {
	tags := append([]string{}, l.tags...)
	b, _ := json.Marshal(map[string]any{
		"id": l.id, "type": "log",
		"attributes": map[string]any{
			"timestamp": l.at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			"host":      l.host, "service": l.service, "status": l.status, "message": l.message,
			"tags": tags, "attributes": l.attrs,
		},
	})
	return b
}

func (l *logEntry) doc() *doc {
	return &doc{
		tags:     l.tags,
		reserved: map[string]string{"host": l.host, "service": l.service, "source": l.source, "status": l.status},
		attrs:    l.attrs,
		message:  l.message,
	}
}

// Logs returns the number of logs received through the intake.
func (s *Server) Logs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs)
}

// intake serves POST /api/v2/logs: a JSON array of log items, within the
// documented limits, answered 202 {}.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, body []byte) {
	if len(body) > 5_000_000 {
		writeErrors(w, http.StatusRequestEntityTooLarge, "Payload too large")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var items []map[string]any
	if err := dec.Decode(&items); err != nil {
		writeErrors(w, http.StatusBadRequest, "invalid payload: "+err.Error())
		return
	}
	if len(items) > 1000 {
		writeErrors(w, http.StatusBadRequest, "too many log entries (max 1000)")
		return
	}
	now := s.now()
	var stored []*logEntry
	s.mu.Lock()
	for _, it := range items {
		l := &logEntry{receivedAt: now, at: now, status: "info", attrs: map[string]any{}}
		l.id = s.newID("log")
		for k, v := range it {
			switch k {
			case "message":
				l.message, _ = v.(string)
			case "hostname":
				l.host, _ = v.(string)
			case "service":
				l.service, _ = v.(string)
			case "ddsource":
				l.source, _ = v.(string)
			case "status":
				l.status, _ = v.(string)
			case "ddtags":
				tags, _ := v.(string)
				for _, t := range strings.Split(tags, ",") {
					if t = strings.TrimSpace(t); t != "" {
						l.tags = append(l.tags, t)
					}
				}
			case "timestamp":
				if str, ok := v.(string); ok {
					if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
						l.at = t
					}
				}
				l.attrs[k] = v
			default:
				l.attrs[k] = v
			}
		}
		if l.source != "" {
			l.tags = append(l.tags, "source:"+l.source)
		}
		s.logs = append(s.logs, l)
		stored = append(stored, l)
	}
	if s.opts.Detect != nil {
		for _, l := range stored {
			s.detectLocked(l)
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write([]byte("{}"))
}

// detectLocked runs a log through the Sigma engine; each matching rule
// raises a signal grouped by (rule, run marker), stamped SignalDelay after
// the event and searchable from then on.
func (s *Server) detectLocked(l *logEntry) {
	sig, _ := l.attrs["sigma"].(map[string]any)
	if sig == nil && l.source == "cloudtrail" {
		// A CloudTrail log: its attributes are the record, as Cloud
		// SIEM's CloudTrail rules read it.
		b, _ := json.Marshal(l.attrs)
		if ev, err := telemetry.FromCloudTrail(b, l.host); err == nil {
			ev.Time = l.at
			s.raiseLocked(l, ev)
		}
		return
	}
	if sig == nil {
		return
	}
	ev := telemetry.Event{Time: l.at, Host: l.host, Fields: map[string]any{}}
	if ls, ok := sig["logsource"].(map[string]any); ok {
		ev.Source.Product, _ = ls["product"].(string)
		ev.Source.Category, _ = ls["category"].(string)
		ev.Source.Service, _ = ls["service"].(string)
	}
	if fs, ok := sig["fields"].(map[string]any); ok {
		for k, v := range fs {
			switch x := v.(type) {
			case string:
				ev.Fields[k] = x
			case []any:
				ev.Fields[k] = toStrings(x)
			default:
				ev.Fields[k] = fmt.Sprint(x)
			}
		}
	}
	ev.Ancestry = toStrings(path(l.attrs, "process", "ancestry"))
	s.raiseLocked(l, ev)
}

// raiseLocked raises a signal for each rule that matches ev, the event of
// log l: grouped by (rule, run marker), stamped SignalDelay after the
// event.
func (s *Server) raiseLocked(l *logEntry, ev telemetry.Event) {
	marker, _ := path(l.attrs, "vigil", "marker").(string)
	for _, m := range s.opts.Detect.Match(&ev) {
		key := m.Rule.ID + "|" + marker
		if marker == "" {
			key += l.id
		}
		sample := map[string]any{}
		for k, v := range l.attrs {
			sample[k] = v
		}
		if g := s.groups[key]; g != nil {
			inner, _ := path(g.raw, "attributes", "attributes").(map[string]any)
			if smp, ok := inner["samples"].([]any); ok && len(smp) < 10 {
				inner["samples"] = append(smp, map[string]any{"eventId": l.id, "content": map[string]any{
					"timestamp": l.at.UTC().Format(time.RFC3339Nano), "host": l.host, "service": l.service,
					"tags": l.tags, "message": l.message, "custom": sample}})
			}
			continue
		}
		tags := []string{"security:attack", "source:" + l.source}
		for _, t := range m.Rule.Techniques {
			tags = append(tags, "technique:"+strings.ToLower(t)+"-sigma")
		}
		at := l.at.Add(s.opts.SignalDelay)
		id := s.addSignalLocked(Signal{
			Timestamp: at, VisibleAt: at, RuleID: m.Rule.ID, RuleName: m.Rule.Title, Host: l.host,
			Severity: sigmaSeverity(m.Rule.Level), Tags: tags, Samples: []map[string]any{sample},
		})
		g := s.signals[len(s.signals)-1]
		if g.id == id {
			s.groups[key] = g
		}
	}
}

func sigmaSeverity(level string) string {
	switch level {
	case "informational":
		return "info"
	case "low", "medium", "high", "critical":
		return level
	}
	return "medium"
}

// RulesFromSigma returns the rules of a Sigma engine as Datadog detection
// rules, tagged with their techniques as Datadog tags them
// (technique:T1053.003-...).
func RulesFromSigma(rules []*detect.Rule) []Rule {
	var out []Rule
	for _, r := range rules {
		tags := []string{"security:attack"}
		for _, t := range r.Techniques {
			tags = append(tags, "technique:"+t+"-sigma")
		}
		out = append(out, Rule{ID: r.ID, Name: r.Title, Type: "log_detection", Enabled: true, Tags: tags})
	}
	return out
}
