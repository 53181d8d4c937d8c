package datadog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// Limits of the logs intake (SubmitLog): entries per payload, bytes per
// payload (uncompressed), bytes per entry, and how far in the past an
// event may be stamped.
const (
	MaxIntakeEntries = 1000
	MaxIntakeBytes   = 5_000_000
	MaxEntryBytes    = 1_000_000
	MaxEventAge      = 18 * time.Hour
	// ageMargin keeps re-timestamped events clear of MaxEventAge.
	ageMargin = time.Hour
)

// logsPageLimit is the page size of raw-event searches.
const logsPageLimit = 1000

// rawWindowSlack widens raw-event searches on both sides (clock skew
// between the target, vigil and Datadog).
const rawWindowSlack = time.Minute

// logsPage is the JSON of a logs search answer.
type logsPage struct {
	Data []json.RawMessage `json:"data"`
	Meta *struct {
		Page *struct {
			After string `json:"after"`
		} `json:"page"`
		Status string `json:"status"`
	} `json:"meta"`
}

// wireLog is the part of a log vigil reads.
type wireLog struct {
	ID         string `json:"id"`
	Attributes struct {
		Timestamp  string         `json:"timestamp"`
		Host       string         `json:"host"`
		Service    string         `json:"service"`
		Message    string         `json:"message"`
		Tags       []string       `json:"tags"`
		Attributes map[string]any `json:"attributes"`
	} `json:"attributes"`
}

// source is the log's source (its source:<x> tag, as the ddsource of the
// intake sets it), else its service.
func (w *wireLog) source() string {
	for _, t := range w.Attributes.Tags {
		if v, ok := strings.CutPrefix(t, "source:"); ok && v != "" {
			return v
		}
	}
	return w.Attributes.Service
}

// summary is the log's key field: the command line or file path vigil's
// replays carry, else the message.
func (w *wireLog) summary() string {
	for _, path := range [][]string{{"process", "command_line"}, {"file", "path"}, {"evt", "name"}} {
		var v any = w.Attributes.Attributes
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if s, ok := v.(string); ok && s != "" {
			return s
		}
	}
	return w.Attributes.Message
}

// markersQuery returns a logs query matching any of the markers, in the
// vigil.marker attribute of replayed events or anywhere in the message.
func markersQuery(markers []string) string {
	var terms []string
	for _, m := range markers {
		m = strings.ReplaceAll(m, `"`, "")
		if m == "" {
			continue
		}
		terms = append(terms, fmt.Sprintf(`@vigil.marker:"%s"`, m), fmt.Sprintf(`"%s"`, m))
	}
	return "(" + strings.Join(terms, " OR ") + ")"
}

// SearchRawEvents finds the injected activity's own logs by marker through
// the logs search API (POST /api/v2/logs/events/search), over [Start, End]
// widened by a minute, ANDed with logs_query, in logs_indexes. Each log is
// returned once per marker its JSON holds; Datadog does not expose when it
// received a log, so IngestedAt is left zero and Timestamp is the log's own
// time.
func (s *SIEM) SearchRawEvents(ctx context.Context, req plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	if len(req.Markers) == 0 {
		return nil, nil
	}
	a := st.api
	filter := logsFilter{Query: and(st.cfg.LogsQuery, markersQuery(req.Markers))}
	if !req.Start.IsZero() {
		filter.From = req.Start.Add(-rawWindowSlack).UTC().Format(time.RFC3339Nano)
	}
	end := req.End
	if end.IsZero() {
		end = a.now()
	}
	filter.To = end.Add(rawWindowSlack).UTC().Format(time.RFC3339Nano)
	if len(st.cfg.LogsIndexes) > 0 {
		filter.Indexes = st.cfg.LogsIndexes
	}
	body := logsRequest{Filter: &filter, Page: &cursorPage{Limit: logsPageLimit}, Sort: sortTimestamp}
	var out []plugin.RawEvent
	budget := maxRawEventsBytes
	for page := 0; page < DefaultLogsPages; page++ {
		ans, err := a.call(ctx, opListLogs, "search logs", func(ctx context.Context) (*http.Response, error) {
			return a.send(ctx, epListLogs, request{body: &body})
		})
		if err != nil {
			return nil, err
		}
		evs, after, err := decodeLogsPage(ans.body, req.Markers)
		if err != nil {
			return nil, fmt.Errorf("datadog: search logs: %w", err)
		}
		for i := range evs {
			evs[i].Raw = boundRaw(evs[i].Raw, &budget)
		}
		out = append(out, evs...)
		if after == "" {
			return out, nil
		}
		if body.Page.Cursor != "" && body.Page.Cursor == after {
			return nil, fmt.Errorf("datadog: search logs: page %d returned the cursor it was given: the paging cursor does not advance", page+1)
		}
		body.Page.Cursor = after
	}
	return out, nil
}

// Bounds on the raw logs SearchRawEvents returns: the answer travels over
// gRPC (4 MiB per message), and the engine only needs their times.
const (
	maxRawEventBytes  = 16 << 10
	maxRawEventsBytes = 2 << 20
)

// boundRaw keeps a log's JSON when it fits maxRawEventBytes and what is
// left of the budget, else a summary of it (id, timestamp, host).
func boundRaw(raw []byte, budget *int) []byte {
	if len(raw) <= maxRawEventBytes && len(raw) <= *budget {
		*budget -= len(raw)
		return raw
	}
	var w wireLog
	_ = json.Unmarshal(raw, &w)
	b, _ := json.Marshal(map[string]any{
		"id": w.ID, "type": "log", "vigil_truncated": true,
		"attributes": map[string]any{"timestamp": w.Attributes.Timestamp, "host": w.Attributes.Host},
	})
	return b
}

// decodeLogsPage decodes a logs search answer: the logs holding one of the
// markers (once per marker) and the next cursor ("" on the last page).
func decodeLogsPage(body []byte, markers []string) ([]plugin.RawEvent, string, error) {
	var p logsPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("decode answer: %w (body: %s)", err, excerpt(string(body), 120))
	}
	if p.Data == nil && !bytes.Contains(body, []byte(`"data"`)) {
		return nil, "", fmt.Errorf("decode answer: no \"data\" (body: %s)", excerpt(string(body), 120))
	}
	var out []plugin.RawEvent
	for _, raw := range p.Data {
		var w wireLog
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, "", fmt.Errorf("decode log: %w", err)
		}
		ts, err := parseTime(w.Attributes.Timestamp)
		if err != nil {
			return nil, "", fmt.Errorf("log %s: timestamp: %w", w.ID, err)
		}
		for _, m := range markers {
			if m != "" && bytes.Contains(raw, []byte(m)) {
				out = append(out, plugin.RawEvent{Marker: m, Timestamp: ts, Host: w.Attributes.Host, Raw: []byte(raw), Source: w.source(), Summary: w.summary()})
			}
		}
	}
	if len(p.Data) == 0 || p.Meta == nil || p.Meta.Page == nil {
		return out, "", nil
	}
	return out, p.Meta.Page.After, nil
}

// replayEvent is the shape of vigil's recorded telemetry (the local SIEM's
// event.Event): a Sigma logsource, its fields, the process ancestry.
type replayEvent struct {
	Time      time.Time      `json:"time"`
	Host      string         `json:"host"`
	Logsource map[string]any `json:"logsource"`
	Fields    map[string]any `json:"fields"`
	Ancestry  []string       `json:"ancestry"`
}

// pendingLog is one event on its way to the intake.
type pendingLog struct {
	index   int
	at      time.Time
	stamped bool // the event carried its own time (else it happens now)
	item    logItem
}

// Ingest replays events through the logs intake (SubmitLog, API key only),
// gzip-compressed, in batches within the intake's limits (1,000 entries,
// 5 MB, 1 MB per entry). Each event becomes a log with ddsource (config
// ingest_source, else the event's logsource service or product), service
// (ingest_service), hostname (the event's host), ddtags (vigil_marker:<m>
// and ingest_tags) and the attributes: timestamp, vigil.marker,
// process.command_line, process.ancestry, file.path and sigma.{logsource,
// fields}. Events older than the intake accepts (18 hours) are shifted
// forward together, keeping their spacing, so that the latest one happens
// now. Events that cannot be sent are problems; an intake that refuses the
// first batch is an error.
func (s *SIEM) Ingest(ctx context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.IngestResult{}, err
	}
	a := st.api
	var res plugin.IngestResult
	now := a.now()
	logs := make([]pendingLog, 0, len(req.Events))
	for i, b := range req.Events {
		l, err := st.cfg.toLog(b, req.Marker, now)
		if err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: "events[" + strconv.Itoa(i) + "]", Message: err.Error()})
			continue
		}
		l.index = i
		logs = append(logs, l)
	}
	logs = retimestamp(logs, now, &res)

	// Batch within the intake's limits.
	var batches [][]pendingLog
	var cur []pendingLog
	size := 2 // the brackets
	for _, l := range logs {
		b, err := json.Marshal(l.item)
		if err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: "events[" + strconv.Itoa(l.index) + "]", Message: err.Error()})
			continue
		}
		if len(b) > MaxEntryBytes {
			res.Problems = append(res.Problems, plugin.Problem{Subject: "events[" + strconv.Itoa(l.index) + "]", Message: fmt.Sprintf("%d bytes: above the intake's 1 MB per log", len(b))})
			continue
		}
		if len(cur) == MaxIntakeEntries || size+len(b)+1 > MaxIntakeBytes {
			batches = append(batches, cur)
			cur, size = nil, 2
		}
		cur = append(cur, l)
		size += len(b) + 1
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	a.stats.logsRejected.Add(int64(len(res.Problems)))

	for bi, batch := range batches {
		items := make([]logItem, len(batch))
		for i, l := range batch {
			items[i] = l.item
		}
		_, err := a.call(ctx, opSubmitLog, "submit logs", func(ctx context.Context) (*http.Response, error) {
			return a.send(ctx, epSubmitLog, request{body: items, header: map[string]string{"Content-Encoding": "gzip"}})
		})
		if err != nil {
			if res.Accepted == 0 {
				return res, err
			}
			unsent := 0
			for _, b := range batches[bi:] {
				unsent += len(b)
			}
			res.Problems = append(res.Problems, plugin.Problem{Subject: "events", Message: fmt.Sprintf("%d events not sent: %v", unsent, err)})
			a.stats.logsRejected.Add(int64(unsent))
			return res, nil
		}
		res.Accepted += len(batch)
		a.stats.logsSent.Add(int64(len(batch)))
	}
	return res, nil
}

// retimestamp shifts all events forward together, keeping their spacing,
// when the oldest would be refused by the intake, so that the latest one
// happens now; events still too old are dropped as problems. It sets each
// log's timestamp attribute.
func retimestamp(logs []pendingLog, now time.Time, res *plugin.IngestResult) []pendingLog {
	var oldest, latest time.Time
	for _, l := range logs {
		if !l.stamped {
			continue
		}
		if oldest.IsZero() || l.at.Before(oldest) {
			oldest = l.at
		}
		if latest.IsZero() || l.at.After(latest) {
			latest = l.at
		}
	}
	limit := now.Add(-(MaxEventAge - ageMargin))
	var shift time.Duration
	if !oldest.IsZero() && oldest.Before(limit) && latest.Before(now) {
		shift = now.Sub(latest)
	}
	out := logs[:0]
	for _, l := range logs {
		if l.stamped {
			l.at = l.at.Add(shift)
		}
		if l.at.Before(limit) {
			res.Problems = append(res.Problems, plugin.Problem{Subject: "events[" + strconv.Itoa(l.index) + "]",
				Message: fmt.Sprintf("stamped %s, older than the intake accepts (%s) even after re-timestamping", l.at.UTC().Format(time.RFC3339), MaxEventAge)})
			continue
		}
		l.item.Attributes["timestamp"] = l.at.UTC().Format(time.RFC3339Nano)
		out = append(out, l)
	}
	return out
}

// toLog maps one event (vigil's recorded telemetry, or any JSON object) to
// an intake item.
func (c Config) toLog(b []byte, marker string, now time.Time) (pendingLog, error) {
	if ev, rec, ok := telemetry.CloudTrailRecord(b); ok {
		return c.cloudTrailLog(ev, rec, marker), nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return pendingLog{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return pendingLog{}, fmt.Errorf("not a JSON object")
	}
	attrs := map[string]any{}
	var (
		at                         time.Time
		host, source, msg, cmdline string
		filePath                   string
	)
	if _, isReplay := obj["logsource"]; isReplay || obj["fields"] != nil {
		var ev replayEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			return pendingLog{}, fmt.Errorf("decode event: %w", err)
		}
		at, host = ev.Time, ev.Host
		ls := map[string]string{}
		for _, k := range []string{"product", "category", "service"} {
			if v, ok := ev.Logsource[k].(string); ok && v != "" {
				ls[k] = v
			}
		}
		source = ls["service"]
		if source == "" {
			source = ls["product"]
		}
		cmdline, filePath = commandLine(ev), filePathOf(ev)
		attrs["sigma"] = map[string]any{"logsource": ls, "fields": ev.Fields}
		if len(ev.Ancestry) > 0 {
			setPath(attrs, []string{"process", "ancestry"}, ev.Ancestry)
		}
		name := strings.Trim(ls["product"]+"/"+ls["category"]+ls["service"], "/")
		switch {
		case cmdline != "":
			msg = name + ": " + cmdline
		case filePath != "":
			msg = name + ": " + filePath
		default:
			fb, _ := json.Marshal(ev.Fields)
			msg = name + ": " + string(fb)
		}
	} else {
		for k, v := range obj {
			attrs[k] = v
		}
		for _, k := range []string{"timestamp", "@timestamp", "date", "time"} {
			if t, err := parseTime(str(obj[k])); err == nil {
				at = t
				break
			}
		}
		host = str(obj["host"])
		if host == "" {
			host = str(obj["hostname"])
		}
		source = str(obj["ddsource"])
		msg = str(obj["message"])
		if msg == "" {
			msg = string(b)
		}
		for _, k := range []string{"message", "host", "hostname", "ddsource", "ddtags", "service", "@timestamp", "date", "time"} {
			delete(attrs, k)
		}
	}
	stamped := !at.IsZero()
	if !stamped {
		at = now
	}
	if c.IngestSource != "" {
		source = c.IngestSource
	}
	if source == "" {
		source = "vigil"
	}
	if cmdline != "" {
		setPath(attrs, []string{"process", "command_line"}, cmdline)
	}
	if filePath != "" {
		setPath(attrs, []string{"file", "path"}, filePath)
	}
	tags := append([]string(nil), c.IngestTags...)
	if marker != "" {
		setPath(attrs, []string{"vigil", "marker"}, marker)
		tags = append([]string{"vigil_marker:" + marker}, tags...)
	}
	item := logItem{Message: msg, Source: source, Service: c.IngestService, Hostname: host, Tags: strings.Join(tags, ","), Attributes: attrs}
	return pendingLog{at: at, stamped: stamped, item: item}, nil
}

// CloudTrailSource is the ddsource of CloudTrail logs, as Datadog's AWS
// integration sends them and Cloud SIEM's CloudTrail rules query them
// (source:cloudtrail).
const CloudTrailSource = "cloudtrail"

// cloudTrailLog is a replayed CloudTrail record as Datadog's AWS
// integration forwards it: the record's keys as the log's attributes
// (which the CloudTrail pipeline remaps: eventName to evt.name, and so on;
// evt.name is set here too), ddsource and service cloudtrail whatever
// ingest_source says, hostname the account, the run marker as for every
// replay.
func (c Config) cloudTrailLog(ev telemetry.Event, rec map[string]any, marker string) pendingLog {
	attrs := rec
	setPath(attrs, []string{"evt", "name"}, rec["eventName"])
	tags := append([]string(nil), c.IngestTags...)
	if marker != "" {
		setPath(attrs, []string{"vigil", "marker"}, marker)
		tags = append([]string{"vigil_marker:" + marker}, tags...)
	}
	msg := fmt.Sprintf("%v %v", rec["eventSource"], rec["eventName"])
	item := logItem{Message: msg, Source: CloudTrailSource, Service: CloudTrailSource, Hostname: ev.Host, Tags: strings.Join(tags, ","), Attributes: attrs}
	return pendingLog{at: ev.Time, stamped: !ev.Time.IsZero(), item: item}
}

// commandLine returns the command line of a recorded event: the
// process_creation CommandLine, the argv of an auditd EXECVE record, else
// the nearest command line of the ancestry.
func commandLine(ev replayEvent) string {
	if s := str(ev.Fields["CommandLine"]); s != "" {
		return s
	}
	if str(ev.Fields["type"]) == "EXECVE" {
		var args []string
		keys := make([]int, 0)
		for k := range ev.Fields {
			if n, err := strconv.Atoi(strings.TrimPrefix(k, "a")); err == nil && strings.HasPrefix(k, "a") {
				keys = append(keys, n)
			}
		}
		sort.Ints(keys)
		for _, n := range keys {
			args = append(args, str(ev.Fields["a"+strconv.Itoa(n)]))
		}
		if len(args) > 0 {
			return strings.Join(args, " ")
		}
	}
	if len(ev.Ancestry) > 0 {
		return ev.Ancestry[0]
	}
	return ""
}

// filePathOf returns the file a recorded event is about, if any.
func filePathOf(ev replayEvent) string {
	if s := str(ev.Fields["TargetFilename"]); s != "" {
		return s
	}
	if str(ev.Fields["type"]) == "PATH" {
		return str(ev.Fields["name"])
	}
	return ""
}

// setPath sets a nested attribute, creating the objects on the way.
func setPath(m map[string]any, keys []string, v any) {
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}
