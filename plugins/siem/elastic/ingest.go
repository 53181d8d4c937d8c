package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// Limits of one bulk request.
const (
	bulkMaxDocs  = 1000
	bulkMaxBytes = 5 << 20
)

// Ingest replays telemetry into the replay data stream (default
// logs-vigil.replay-default) with _bulk create actions, the only action a
// data stream accepts. Each item is a JSON object: an ECS document, or an
// event of the local SIEM's format (as `vigil record` writes them and the
// replay injector returns them), which is mapped to ECS first (see
// fromVigilEvent). Events are re-timestamped so that the earliest happens
// now, keeping their offsets (the original @timestamp goes to
// vigil.original_time), stamped with the marker in vigil.marker when they
// have none, and get the data stream's data_stream.* fields; other fields
// are kept as they are.
//
// Elasticsearch answers a bulk request with HTTP 200 even when items fail:
// items rejected with 429 are retried alone with backoff, other failed
// items are per-item problems, and Accepted counts the created documents.
// A whole request that fails after the client's retries is an error.
func (s *SIEM) Ingest(ctx context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.IngestResult{}, err
	}
	if st.cl.es == nil {
		return plugin.IngestResult{}, fmt.Errorf("elastic: ingest: %w", ErrNoElasticsearch)
	}
	var (
		res  plugin.IngestResult
		docs []bulkDoc
	)
	for i, b := range req.Events {
		if ev, rec, ok := telemetry.CloudTrailRecord(b); ok {
			docs = append(docs, bulkDoc{index: i, doc: fromCloudTrail(&ev, rec), dataset: CloudTrailDataset})
			continue
		}
		d, err := toECS(b)
		if err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: eventSubject(i), Message: err.Error()})
			continue
		}
		docs = append(docs, bulkDoc{index: i, doc: d})
	}
	st.prepare(docs, req.Marker)
	for start := 0; start < len(docs); {
		chunk, next, err := st.encodeChunk(docs, start)
		if err != nil {
			return res, fmt.Errorf("elastic: ingest: %w", err)
		}
		acc, probs, err := st.bulk(ctx, chunk)
		res.Accepted += acc
		res.Problems = append(res.Problems, probs...)
		if err != nil {
			st.stats.ingested.Add(int64(res.Accepted))
			return res, fmt.Errorf("elastic: ingest: %w", err)
		}
		start = next
	}
	st.stats.ingested.Add(int64(res.Accepted))
	st.stats.ingestRejected.Add(int64(len(res.Problems)))
	return res, nil
}

func eventSubject(i int) string { return "events[" + strconv.Itoa(i) + "]" }

// bulkDoc is one event to create, with its index in the request.
type bulkDoc struct {
	index int
	doc   map[string]any
	line  []byte // the encoded source line, with its newline
	// dataset is the data stream dataset of the document ("" for the
	// configured replay stream's).
	dataset string
}

// toECS decodes one event: a JSON object, mapped to ECS when it is an
// event of the local SIEM's format.
func toECS(b []byte) (map[string]any, error) {
	d, err := decodeDoc(b)
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	_, hasTS := d["@timestamp"]
	_, hasFields := d["fields"].(map[string]any)
	_, hasSource := d["logsource"].(map[string]any)
	if !hasTS && hasFields && hasSource {
		var ev telemetry.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, err
		}
		return fromVigilEvent(&ev), nil
	}
	return d, nil
}

// prepare re-timestamps the documents (the earliest happens now, offsets
// kept), stamps the marker and sets the data stream fields.
func (st *state) prepare(docs []bulkDoc, marker string) {
	now := st.now().UTC()
	var earliest time.Time
	times := make([]time.Time, len(docs))
	for i, d := range docs {
		if ts := firstTime(d.doc, "@timestamp"); !ts.IsZero() {
			times[i] = ts
			if earliest.IsZero() || ts.Before(earliest) {
				earliest = ts
			}
		}
	}
	shift := now.Sub(earliest)
	for i, d := range docs {
		at := now
		if !times[i].IsZero() {
			at = times[i].Add(shift)
			setPath(d.doc, "vigil.original_time", times[i].Format(time.RFC3339Nano))
		}
		deletePath(d.doc, "@timestamp")
		d.doc["@timestamp"] = at.Format(time.RFC3339Nano)
		if marker != "" && first(d.doc, MarkerField) == "" {
			setPath(d.doc, MarkerField, marker)
		}
		deletePath(d.doc, "data_stream.type")
		deletePath(d.doc, "data_stream.dataset")
		deletePath(d.doc, "data_stream.namespace")
		setPath(d.doc, "data_stream.type", st.cfg.stream.Type)
		setPath(d.doc, "data_stream.dataset", st.cfg.stream.dataset(d.dataset))
		setPath(d.doc, "data_stream.namespace", st.cfg.stream.Namespace)
	}
}

// encodeChunk encodes the documents from start on until a bulk request is
// full, returning them and where the next chunk starts.
func (st *state) encodeChunk(docs []bulkDoc, start int) ([]bulkDoc, int, error) {
	size := 0
	i := start
	for ; i < len(docs) && i-start < bulkMaxDocs; i++ {
		if docs[i].line == nil {
			b, err := json.Marshal(docs[i].doc)
			if err != nil {
				return nil, 0, fmt.Errorf("encode %s: %w", eventSubject(docs[i].index), err)
			}
			docs[i].line = append(b, '\n')
		}
		if size+len(docs[i].line) > bulkMaxBytes && i > start {
			break
		}
		size += len(docs[i].line)
	}
	return docs[start:i], i, nil
}

// bulkItem is one item of a bulk answer.
type bulkItem struct {
	Index  string `json:"_index"`
	ID     string `json:"_id"`
	Status int    `json:"status"`
	Result string `json:"result"`
	Error  *struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	} `json:"error"`
}

func (it *bulkItem) problem(c *clients) string {
	s := fmt.Sprintf("HTTP %d", it.Status)
	if it.Error != nil {
		s += ": " + it.Error.Type + ": " + c.redact(excerpt([]byte(it.Error.Reason), 300))
		if cb := it.Error.CausedBy; cb != nil && cb.Reason != "" {
			s += " (caused by " + cb.Type + ": " + c.redact(excerpt([]byte(cb.Reason), 200)) + ")"
		}
	}
	return s
}

// bulk sends docs, then again the items rejected with 429 alone, with
// backoff, up to MaxRetries times.
func (st *state) bulk(ctx context.Context, docs []bulkDoc) (int, []plugin.Problem, error) {
	accepted := 0
	var probs []plugin.Problem
	wait := backoff(st.cl.retryBase)
	for attempt := 0; len(docs) > 0; attempt++ {
		items, err := st.bulkOnce(ctx, docs)
		if err != nil {
			return accepted, probs, err
		}
		var retry []bulkDoc
		for i, it := range items {
			switch {
			case it.Status >= 200 && it.Status <= 299:
				accepted++
			case it.Status == http.StatusTooManyRequests && attempt < MaxRetries:
				retry = append(retry, docs[i])
			case it.Status == http.StatusTooManyRequests:
				probs = append(probs, plugin.Problem{Subject: eventSubject(docs[i].index),
					Message: fmt.Sprintf("still rejected after %d retries: %s", MaxRetries, it.problem(st.cl))})
			default:
				probs = append(probs, plugin.Problem{Subject: eventSubject(docs[i].index), Message: it.problem(st.cl)})
			}
		}
		if len(retry) == 0 {
			break
		}
		st.stats.ingestItemRetries.Add(int64(len(retry)))
		t := time.NewTimer(wait(attempt + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return accepted, probs, fmt.Errorf("bulk: retry of %d rejected items: %w", len(retry), ctx.Err())
		case <-t.C:
		}
		docs = retry
	}
	return accepted, probs, nil
}

// bulkOnce sends one bulk request and returns its items, one per document
// in order.
func (st *state) bulkOnce(ctx context.Context, docs []bulkDoc) ([]bulkItem, error) {
	var buf bytes.Buffer
	for _, d := range docs {
		action, _ := json.Marshal(obj{"create": obj{"_index": st.cfg.stream.index(d.dataset)}})
		buf.Write(action)
		buf.WriteByte('\n')
		buf.Write(d.line) // ends with the final newline the bulk API requires
	}
	b, err := st.cl.esDo(ctx, esapi.BulkRequest{
		Body:   &buf,
		Header: http.Header{"Content-Type": {"application/x-ndjson"}},
	})
	if err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	return decodeBulk(b, len(docs))
}

// decodeBulk decodes a bulk answer for n documents: one item per document,
// in order, each a single-key object whose key is the operation.
func decodeBulk(b []byte, n int) ([]bulkItem, error) {
	var r struct {
		Errors *bool                 `json:"errors"`
		Items  []map[string]bulkItem `json:"items"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Errors == nil {
		return nil, fmt.Errorf("bulk: malformed answer: %s", excerpt(b, 200))
	}
	if len(r.Items) != n {
		return nil, fmt.Errorf("bulk: answer has %d items for %d documents", len(r.Items), n)
	}
	items := make([]bulkItem, len(r.Items))
	for i, m := range r.Items {
		if len(m) != 1 {
			return nil, fmt.Errorf("bulk: malformed item %d", i)
		}
		for _, it := range m {
			if it.Status == 0 {
				return nil, fmt.Errorf("bulk: item %d has no status", i)
			}
			items[i] = it
		}
	}
	return items, nil
}

// setPath sets a dotted path in nested objects, creating them (a literal
// dotted key in the way is left alone: the nested form wins).
func setPath(d map[string]any, p string, v any) {
	parts := strings.Split(p, ".")
	m := d
	for _, k := range parts[:len(parts)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

// deletePath removes a dotted path, as a literal dotted key and nested.
func deletePath(d map[string]any, p string) {
	delete(d, p)
	head, rest, ok := strings.Cut(p, ".")
	if !ok {
		return
	}
	if sub, ok := d[head].(map[string]any); ok {
		deletePath(sub, rest)
	}
}

// CloudTrailDataset is the dataset of Elastic's AWS integration for
// CloudTrail: replayed records go to logs-aws.cloudtrail-<namespace>, where
// Elastic's CloudTrail rules look.
const CloudTrailDataset = "aws.cloudtrail"

// fromCloudTrail maps a replayed CloudTrail record to the document Elastic's
// AWS integration makes of it: event.dataset aws.cloudtrail, event.provider
// (eventSource), event.action (eventName), event.outcome (failure when
// errorCode is set), cloud.*, source.address (and source.ip when it is an
// address), user_agent.original, user.*, aws.cloudtrail.* with the request
// parameters and response elements as JSON text and under
// aws.cloudtrail.flattened, and the record itself in event.original.
func fromCloudTrail(ev *telemetry.Event, rec map[string]any) map[string]any {
	d := map[string]any{"@timestamp": ev.Time.UTC().Format(time.RFC3339Nano)}
	get := func(k string) string { return ev.Get(k) }
	set := func(p, v string) {
		if v != "" {
			setPath(d, p, v)
		}
	}
	raw, _ := json.Marshal(rec)
	set("event.original", string(raw))
	set("event.kind", "event")
	set("event.module", "aws")
	set("event.dataset", CloudTrailDataset)
	set("event.provider", get("eventSource"))
	set("event.action", get("eventName"))
	set("event.id", get("eventID"))
	outcome := "success"
	if get("errorCode") != "" {
		outcome = "failure"
	}
	set("event.outcome", outcome)
	set("cloud.provider", "aws")
	set("cloud.region", get("awsRegion"))
	set("cloud.account.id", get("recipientAccountId"))
	set("source.address", get("sourceIPAddress"))
	if ip := net.ParseIP(get("sourceIPAddress")); ip != nil {
		set("source.ip", ip.String())
	}
	set("user_agent.original", get("userAgent"))
	set("host.name", ev.Host) // the replay's host, which raw-event searches filter on
	set("user.name", get("userIdentity.userName"))
	set("user.id", get("userIdentity.principalId"))
	for k, v := range map[string]string{
		"user_identity.type": "userIdentity.type", "user_identity.arn": "userIdentity.arn", "user_identity.access_key_id": "userIdentity.accessKeyId",
		"event_version": "eventVersion", "event_type": "eventType", "event_category": "eventCategory", "error_code": "errorCode",
		"error_message": "errorMessage", "recipient_account_id": "recipientAccountId", "request_id": "requestID",
	} {
		set("aws.cloudtrail."+k, get(v))
	}
	for k, v := range map[string]string{"request_parameters": "requestParameters", "response_elements": "responseElements"} {
		if m, ok := rec[v].(map[string]any); ok && len(m) > 0 {
			b, _ := json.Marshal(m)
			set("aws.cloudtrail."+k, string(b))
			setPath(d, "aws.cloudtrail.flattened."+k, m)
		}
	}
	return d
}

// fromVigilEvent maps an event of the local SIEM's format to ECS: the
// Sigma field names of its log source become the ECS fields Elastic rules
// read, and the original fields are kept under vigil.fields.
func fromVigilEvent(ev *telemetry.Event) map[string]any {
	d := map[string]any{}
	if !ev.Time.IsZero() {
		d["@timestamp"] = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	set := func(p, v string) {
		if v != "" {
			setPath(d, p, v)
		}
	}
	set("host.name", ev.Host)
	set("event.kind", "event")
	switch ev.Source.Category {
	case "process_creation":
		setPath(d, "event.category", []string{"process"})
		setPath(d, "event.type", []string{"start"})
	case "file_event":
		setPath(d, "event.category", []string{"file"})
		setPath(d, "event.type", []string{"creation"})
	}
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := ev.Get(k); v != "" {
				return v
			}
		}
		return ""
	}
	cmd := pick("CommandLine", "proctitle")
	if cmd == "" && ev.Get("type") == "EXECVE" {
		var args []string
		for i := 0; ; i++ {
			a, ok := ev.Fields["a"+strconv.Itoa(i)].(string)
			if !ok {
				break
			}
			args = append(args, a)
		}
		cmd = strings.Join(args, " ")
	}
	set("process.command_line", cmd)
	exe := pick("Image", "exe")
	set("process.executable", exe)
	name := pick("comm")
	if name == "" && exe != "" {
		name = path.Base(exe)
	}
	set("process.name", name)
	set("process.pid", pick("ProcessId", "pid"))
	set("process.working_directory", pick("CurrentDirectory", "cwd"))
	set("process.parent.executable", pick("ParentImage"))
	set("process.parent.command_line", pick("ParentCommandLine"))
	set("file.path", pick("TargetFilename"))
	set("user.name", pick("User"))
	if ls := ev.Source.String(); ls != "" {
		set("vigil.logsource", ls)
	}
	if len(ev.Fields) > 0 {
		setPath(d, "vigil.fields", ev.Fields)
	}
	if len(ev.Ancestry) > 0 {
		setPath(d, "vigil.ancestry", ev.Ancestry)
	}
	if m, ok := ev.Fields[MarkerField].(string); ok && m != "" {
		setPath(d, MarkerField, m)
	}
	return d
}
