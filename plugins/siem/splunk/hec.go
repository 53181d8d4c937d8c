package splunk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// HECError is an HTTP Event Collector answer other than Success: its reply
// code and text (see Splunk's "Troubleshoot HTTP Event Collector").
type HECError struct {
	Status int
	Code   int
	Text   string
	// InvalidEvent is the index in the batch of the event HEC refused,
	// when it says.
	InvalidEvent *int
}

// Error renders the reply.
func (e *HECError) Error() string {
	s := fmt.Sprintf("HEC answered HTTP %d: %s (code %d)", e.Status, e.Text, e.Code)
	if e.InvalidEvent != nil {
		s += fmt.Sprintf(" at event %d of the batch", *e.InvalidEvent)
	}
	return s
}

// retryable reports replies worth sending again: internal error (8),
// server busy (9), queues full or ack service unavailable (18-20), and
// HTTP 429/5xx without a code.
func (e *HECError) retryable() bool {
	switch e.Code {
	case 8, 9, 18, 19, 20:
		return true
	case -1:
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return false
}

// Is makes errors.Is(err, plugin.ErrDenied) true for a refused token:
// token disabled (1), missing (2), invalid authorization (3) or invalid
// token (4), or HTTP 401/403 without a code.
func (e *HECError) Is(target error) bool {
	if target != plugin.ErrDenied {
		return false
	}
	switch e.Code {
	case 1, 2, 3, 4:
		return true
	case -1:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// fatal reports replies that no other batch can escape: token, index,
// channel and acknowledgement set-up problems. Others (bad data in a batch)
// only concern their batch.
func (e *HECError) fatal() bool {
	switch e.Code {
	case 1, 2, 3, 4, 7, 10, 11, 14, 16, 21, 22:
		return true
	case -1:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound
	}
	return false
}

// hecEnvelope is one event of the /services/collector/event body.
type hecEnvelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host,omitempty"`
	Source     string            `json:"source,omitempty"`
	Sourcetype string            `json:"sourcetype,omitempty"`
	Index      string            `json:"index,omitempty"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields,omitempty"`
}

// hecReply is HEC's JSON answer.
type hecReply struct {
	Text         string   `json:"text"`
	Code         *int     `json:"code"`
	AckID        *int64   `json:"ackId"`
	InvalidEvent *flexInt `json:"invalid-event-number"`
}

// Ingest sends the events (JSON objects) to the HTTP Event Collector, in
// batches of hec_batch, each event in an envelope with its own time (the
// object's "time", RFC 3339 or epoch seconds; else now) and host, the
// configured index, sourcetype and source, and the run marker as the
// indexed field vigil_marker. A busy collector (codes 8, 9, 18-20, HTTP
// 429/5xx) is retried with backoff; a refused token, index or channel is an
// error; a batch HEC refuses for its data is a problem and the others go
// on. With hec_ack, a batch counts as accepted once the indexers
// acknowledge it.
func (p *SIEM) Ingest(ctx context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	st, err := p.state()
	if err != nil {
		return plugin.IngestResult{}, err
	}
	if st.cfg.hec == nil {
		return plugin.IngestResult{}, st.fail(errors.New("ingest: no HTTP Event Collector configured (set hec_url and hec_token)"))
	}
	var (
		res   plugin.IngestResult
		envs  []hecEnvelope
		first []int // index in req.Events of each envelope
		now   = time.Now()
	)
	for i, raw := range req.Events {
		env, err := st.cfg.envelope(raw, req.Marker, now)
		if err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: fmt.Sprintf("event %d", i), Message: err.Error()})
			continue
		}
		envs = append(envs, env)
		first = append(first, i)
	}
	channel := ""
	if st.cfg.HECAck {
		channel = newChannel()
	}
	type pending struct {
		ack        int64
		start, end int
	}
	var acks []pending
	for start := 0; start < len(envs); start += st.cfg.HECBatch {
		end := min(start+st.cfg.HECBatch, len(envs))
		reply, err := st.sendBatch(ctx, envs[start:end], channel)
		var he *HECError
		switch {
		case err == nil && channel != "" && reply.AckID != nil:
			acks = append(acks, pending{*reply.AckID, start, end})
		case err == nil && channel != "":
			// Counting the batch would claim what hec_ack exists to prove.
			return res, st.fail(fmt.Errorf("ingest: batch of events %d-%d: hec_ack = true, but HEC answered without an ackId: indexer acknowledgement is not enabled on the token, so whether the indexers kept the events cannot be told (enable it on the token, or set hec_ack = false)", first[start], first[end-1]))
		case err == nil:
			res.Accepted += end - start
		case errors.As(err, &he) && !he.fatal():
			res.Problems = append(res.Problems, plugin.Problem{
				Subject: fmt.Sprintf("events %d-%d", first[start], first[end-1]), Message: st.scrub(err).Error(),
			})
		default:
			return res, st.fail(fmt.Errorf("ingest: batch of events %d-%d: %w", first[start], first[end-1], err))
		}
	}
	if len(acks) > 0 {
		ids := make([]int64, len(acks))
		for i, a := range acks {
			ids[i] = a.ack
		}
		done, err := st.waitAcks(ctx, channel, ids)
		if err != nil {
			return res, st.fail(fmt.Errorf("ingest: %w", err))
		}
		for _, a := range acks {
			if done[a.ack] {
				res.Accepted += a.end - a.start
				continue
			}
			res.Problems = append(res.Problems, plugin.Problem{
				Subject: fmt.Sprintf("events %d-%d", first[a.start], first[a.end-1]),
				Message: fmt.Sprintf("not acknowledged by the indexers within %s (hec_ack_timeout)", st.cfg.HECAckTimeout),
			})
		}
	}
	st.counters.hecEvents.Add(int64(res.Accepted))
	return res, nil
}

// CloudTrailSourcetype is the sourcetype of CloudTrail records, as the
// Splunk Add-on for AWS indexes them and CloudTrail searches name it.
const CloudTrailSourcetype = "aws:cloudtrail"

// envelope wraps one event for HEC. A replayed CloudTrail record goes in
// as the Splunk Add-on for AWS indexes it: the record itself as the event,
// sourcetype aws:cloudtrail, at its eventTime, so that searches written
// for CloudTrail find it.
func (c *config) envelope(raw []byte, marker string, now time.Time) (hecEnvelope, error) {
	if ev, rec, ok := telemetry.CloudTrailRecord(raw); ok {
		b, err := json.Marshal(rec)
		if err != nil {
			return hecEnvelope{}, err
		}
		env := hecEnvelope{Time: json.Number(fmt.Sprintf("%d.%06d", ev.Time.Unix(), ev.Time.Nanosecond()/1000)), Host: ev.Host,
			Source: "aws_cloudtrail", Sourcetype: CloudTrailSourcetype, Index: c.Index, Event: b}
		if marker != "" {
			env.Fields = map[string]string{"vigil_marker": marker}
		}
		return env, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return hecEnvelope{}, errors.New("not a JSON object")
	}
	t := now
	if v, ok := obj["time"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		}
		pt, err := parseTime(s)
		if err != nil {
			return hecEnvelope{}, fmt.Errorf("time: %w", err)
		}
		t = pt
	}
	env := hecEnvelope{
		Time:       json.Number(fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)),
		Source:     c.Source,
		Sourcetype: c.Sourcetype,
		Index:      c.Index,
		Event:      json.RawMessage(raw),
	}
	if v, ok := obj["host"]; ok {
		_ = json.Unmarshal(v, &env.Host)
	}
	if marker != "" {
		env.Fields = map[string]string{"vigil_marker": marker}
	}
	return env, nil
}

// hecPath is the event endpoint on the collector URL (a URL that already
// names the collector is accepted).
func (c *config) hecPath(endpoint string) string {
	p := strings.TrimRight(c.hec.Path, "/")
	for _, suffix := range []string{"/services/collector/event/1.0", "/services/collector/event", "/services/collector"} {
		p = strings.TrimSuffix(p, suffix)
	}
	return p + "/services/collector/" + endpoint
}

// sendBatch posts one batch, retrying a busy collector with backoff (at
// most 5 tries, honouring ctx).
func (st *state) sendBatch(ctx context.Context, envs []hecEnvelope, channel string) (hecReply, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // one envelope per line, no array
	for _, e := range envs {
		if err := enc.Encode(e); err != nil {
			return hecReply{}, fmt.Errorf("encode event: %w", err)
		}
	}
	wait := st.cfg.hecBackoff
	for attempt := 1; ; attempt++ {
		st.counters.hecBatches.Add(1)
		reply, err := st.hecDo(ctx, http.MethodPost, st.cfg.hecPath("event"), body.Bytes(), channel)
		var he *HECError
		if err == nil || !errors.As(err, &he) || !he.retryable() || attempt == 5 {
			return reply, err
		}
		st.counters.hecRetries.Add(1)
		if err := sleep(ctx, wait); err != nil {
			return hecReply{}, err
		}
		wait *= 2
	}
}

// hecDo sends one request to the collector with the HEC token and decodes
// its reply; a reply other than Success (code 0) is a *HECError.
func (st *state) hecDo(ctx context.Context, method, path string, body []byte, channel string) (hecReply, error) {
	u := *st.cfg.hec
	u.Path = path
	u.RawPath = ""
	rctx, cancel := context.WithTimeout(ctx, st.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return hecReply{}, err
	}
	req.Header.Set("Authorization", "Splunk "+st.cfg.HECToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	if channel != "" {
		req.Header.Set("X-Splunk-Request-Channel", channel)
	}
	resp, err := st.client.http.Do(req)
	if err != nil {
		return hecReply{}, fmt.Errorf("HEC: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return hecReply{}, fmt.Errorf("HEC: read answer: %w", err)
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	var r hecReply
	jerr := json.Unmarshal(b, &r)
	switch {
	case jerr == nil && r.Code != nil && *r.Code == 0 && resp.StatusCode/100 == 2:
		return r, nil
	case jerr == nil && r.Code != nil:
		he := &HECError{Status: resp.StatusCode, Code: *r.Code, Text: r.Text}
		if r.InvalidEvent != nil {
			n := int(*r.InvalidEvent)
			he.InvalidEvent = &n
		}
		return r, he
	case resp.StatusCode/100 == 2 && jerr == nil:
		return r, nil // answers without a code (ack, health)
	default:
		return r, &HECError{Status: resp.StatusCode, Code: -1, Text: "unexpected answer: " + excerpt(string(b), 160)}
	}
}

// waitAcks polls /services/collector/ack until every ack ID is
// acknowledged or hec_ack_timeout passes; it returns those acknowledged.
func (st *state) waitAcks(ctx context.Context, channel string, ids []int64) (map[int64]bool, error) {
	done := map[int64]bool{}
	actx, cancel := context.WithTimeout(ctx, st.cfg.HECAckTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		var todo []int64
		for _, id := range ids {
			if !done[id] {
				todo = append(todo, id)
			}
		}
		if len(todo) == 0 {
			return done, nil
		}
		body, _ := json.Marshal(map[string][]int64{"acks": todo})
		r, err := st.ackOnce(actx, st.cfg.hecPath("ack"), body, channel)
		switch {
		case err != nil && actx.Err() != nil && ctx.Err() == nil:
			return done, nil // timed out: the rest are not acknowledged
		case err != nil:
			return done, fmt.Errorf("indexer acknowledgement: %w", err)
		}
		for k, ok := range r {
			if n, err := strconv.ParseInt(k, 10, 64); err == nil && ok {
				done[n] = true
			}
		}
		if err := sleep(actx, wait); err != nil {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			return done, nil
		}
		wait = min(2*wait, time.Second)
	}
}

func (st *state) ackOnce(ctx context.Context, path string, body []byte, channel string) (map[string]bool, error) {
	u := *st.cfg.hec
	u.Path = path
	rctx, cancel := context.WithTimeout(ctx, st.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Splunk "+st.cfg.HECToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Splunk-Request-Channel", channel)
	resp, err := st.client.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var j struct {
		Acks map[string]bool `json:"acks"`
		Text string          `json:"text"`
		Code *int            `json:"code"`
	}
	if err := json.Unmarshal(bytes.TrimPrefix(b, utf8BOM), &j); err != nil || resp.StatusCode/100 != 2 {
		if err == nil && j.Code != nil {
			return nil, &HECError{Status: resp.StatusCode, Code: *j.Code, Text: j.Text}
		}
		return nil, &HECError{Status: resp.StatusCode, Code: -1, Text: "unexpected answer: " + excerpt(string(b), 160)}
	}
	return j.Acks, nil
}

// checkHEC asks the collector's health endpoint, when HEC is configured.
func (st *state) checkHEC(ctx context.Context) []plugin.Problem {
	if st.cfg.hec == nil {
		return nil
	}
	_, err := st.hecDo(ctx, http.MethodGet, st.cfg.hecPath("health"), nil, "")
	var he *HECError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he) && he.Code == 17:
		return nil // "HEC is healthy"
	default:
		return []plugin.Problem{{Subject: "hec_url", Message: "the HTTP Event Collector is not healthy: " + st.scrub(err).Error()}}
	}
}

// newChannel returns a random GUID for X-Splunk-Request-Channel.
func newChannel() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
