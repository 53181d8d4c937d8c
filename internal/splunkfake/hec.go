package splunkfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// hecEnvelope is one event of a /services/collector/event body.
type hecEnvelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	Sourcetype string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

// hecReply writes HEC's JSON answer: text, code and extra keys.
func hecReply(w http.ResponseWriter, status, code int, text string, extra map[string]any) {
	m := map[string]any{"text": text, "code": code}
	for k, v := range extra {
		m[k] = v
	}
	writeJSON(w, status, m)
}

// serveHEC answers the HTTP Event Collector: health (no token needed),
// then with the HEC token, ack and event.
func (f *Fake) serveHEC(w http.ResponseWriter, r *http.Request, endpoint string, body []byte) {
	if endpoint == "health" {
		f.mu.Lock()
		code := f.healthCode
		f.mu.Unlock()
		if code == 17 {
			hecReply(w, 200, 17, "HEC is healthy", nil)
		} else {
			hecReply(w, 503, code, "HEC is unhealthy, queues are full", nil)
		}
		return
	}
	switch h := r.Header.Get("Authorization"); {
	case h == "":
		hecReply(w, 401, 2, "Token is required", nil)
		return
	case !strings.HasPrefix(h, "Splunk "):
		hecReply(w, 401, 3, "Invalid authorization", nil)
		return
	case h != "Splunk "+HECToken:
		hecReply(w, 403, 4, "Invalid token", nil)
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch endpoint {
	case "ack":
		f.hecAcks(w, channel, body)
	case "event":
		f.hecEvents(w, channel, body)
	default:
		hecReply(w, 404, 404, "Not Found", nil)
	}
}

// hecAcks answers an acknowledgement poll (mu held).
func (f *Fake) hecAcks(w http.ResponseWriter, channel string, body []byte) {
	var req struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.Unmarshal(body, &req); err != nil || channel == "" {
		hecReply(w, 400, 6, "Invalid data format", nil)
		return
	}
	out := map[string]bool{}
	for _, id := range req.Acks {
		left, ok := f.acks[id]
		out[strconv.FormatInt(id, 10)] = ok && left <= 0
		if ok {
			f.acks[id] = left - 1
		}
	}
	writeJSON(w, 200, map[string]any{"acks": out})
}

// hecEvents indexes a batch of stacked envelopes, all or none (mu held).
func (f *Fake) hecEvents(w http.ResponseWriter, channel string, body []byte) {
	if len(f.hecReplies) > 0 {
		next := f.hecReplies[0]
		f.hecReplies = f.hecReplies[1:]
		hecReply(w, next.Status, next.Code, next.Text, nil)
		return
	}
	if f.hecAck && channel == "" {
		hecReply(w, 400, 10, "Data channel is missing", nil)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var envs []hecEnvelope
	for i := 0; ; i++ {
		var env hecEnvelope
		err := dec.Decode(&env)
		if err == io.EOF {
			break
		}
		switch {
		case err != nil:
			hecReply(w, 400, 6, "Invalid data format", map[string]any{"invalid-event-number": i})
			return
		case len(env.Event) == 0:
			hecReply(w, 400, 12, "Event field is required", map[string]any{"invalid-event-number": i})
			return
		case len(f.hecIndexes) > 0 && !slices.Contains(f.hecIndexes, env.Index):
			hecReply(w, 400, 7, "Incorrect index", map[string]any{"invalid-event-number": i})
			return
		}
		envs = append(envs, env)
	}
	if len(envs) == 0 {
		hecReply(w, 400, 5, "No data", nil)
		return
	}
	now := time.Now()
	for _, env := range envs {
		t, err := parseTime(string(env.Time))
		if err != nil {
			hecReply(w, 400, 6, "Invalid data format", nil)
			return
		}
		ev := event{time: t, indexed: now, host: env.Host, index: env.Index, sourcetype: env.Sourcetype, raw: string(env.Event), marker: env.Fields["vigil_marker"]}
		f.events = append(f.events, ev)
		f.raise(ev, now)
	}
	extra := map[string]any{}
	if f.hecAck {
		id := f.ackSeq
		f.ackSeq++
		f.acks[id] = f.ackPolls
		extra["ackId"] = id
	}
	hecReply(w, 200, 0, "Success", extra)
}

// raise applies the fake's correlation rules to an ingested event (mu
// held): each matching rule adds a notable shaped like Enterprise
// Security's, its process field the event's CommandLine.
func (f *Fake) raise(ev event, ingested time.Time) {
	if f.detect != nil && ev.sourcetype == "aws:cloudtrail" {
		f.raiseCloudTrail(ev, ingested)
	}
	for _, rule := range f.rules {
		if !strings.Contains(ev.raw, rule.Contains) {
			continue
		}
		var parsed struct {
			Fields map[string]any `json:"fields"`
		}
		_ = json.Unmarshal([]byte(ev.raw), &parsed)
		process, _ := parsed.Fields["CommandLine"].(string)
		if rule.NoMarker {
			process, _, _ = strings.Cut(process, " # ")
		}
		techs := make([]any, len(rule.Techniques))
		for i, t := range rule.Techniques {
			techs[i] = t
		}
		sum := sha256.Sum256([]byte(rule.SearchName + ev.raw))
		at := ev.time.Add(rule.Delay + rule.Shift)
		f.notables = append(f.notables, notable{visibleAt: ingested.Add(rule.Delay), row: Row{
			"_time":                    FormatTime(at),
			"event_id":                 fmt.Sprintf("FAKE%04d-0000-4000-8000-000000000000@@notable@@%s", len(f.notables), hex.EncodeToString(sum[:16])),
			"search_name":              rule.SearchName,
			"rule_name":                rule.Name,
			"annotations.mitre_attack": techs,
			"dest":                     ev.host,
			"process":                  process,
			"orig_time":                fmt.Sprintf("%d.%03d", ev.time.Unix(), ev.time.Nanosecond()/1e6),
			"urgency":                  "high",
		}})
	}
}

// raiseCloudTrail runs a CloudTrail record (sourcetype aws:cloudtrail, the
// record as the event) through the Sigma engine of SetDetect, as ES
// correlation searches over aws:cloudtrail read it; each match adds a
// notable with the rule's techniques and the record's user_agent (mu held).
func (f *Fake) raiseCloudTrail(ev event, ingested time.Time) {
	te, err := telemetry.FromCloudTrail([]byte(ev.raw), ev.host)
	if err != nil {
		return
	}
	for _, m := range f.detect.Match(&te) {
		techs := make([]any, len(m.Rule.Techniques))
		for i, t := range m.Rule.Techniques {
			techs[i] = strings.ToUpper(t)
		}
		sum := sha256.Sum256([]byte(m.Rule.ID + ev.raw))
		at := ev.time.Add(f.detectDelay)
		f.notables = append(f.notables, notable{visibleAt: ingested.Add(f.detectDelay), row: Row{
			"_time":                    FormatTime(at),
			"event_id":                 fmt.Sprintf("FAKE%04d-0000-4000-8000-000000000000@@notable@@%s", len(f.notables), hex.EncodeToString(sum[:16])),
			"search_name":              "Threat - " + m.Rule.Title + " - Rule",
			"rule_name":                m.Rule.Title,
			"annotations.mitre_attack": techs,
			"dest":                     ev.host,
			"user_agent":               te.Get("userAgent"),
			"signature":                te.Get("eventName"),
			"orig_time":                fmt.Sprintf("%d.%03d", ev.time.Unix(), ev.time.Nanosecond()/1e6),
			"urgency":                  "high",
		}})
	}
}
