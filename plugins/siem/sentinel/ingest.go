package sentinel

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// ingestRow is one row to upload and the event it came from.
type ingestRow struct {
	event int
	json  []byte
}

// Ingest uploads the events (JSON objects) through the Logs Ingestion API
// to the data collection rule dcr_immutable_id, each as a row of the
// stream its kind goes to: a CloudTrail record to cloudtrail_stream (the
// AWSCloudTrail table, as Sentinel's AWS connector fills it), a process
// creation to process_stream (ASimProcessEventLogs), when those are set;
// every other event to stream (the custom table, VigilEvents_CL), with
// its time, host, logsource, the run marker (VigilMarker), its command
// line, its fields (EventData) and itself (RawData). Rows go in gzip
// batches of at most batch_bytes of JSON; a batch the API finds too large
// (413) is split in two and sent again; throttling (429) and server errors
// are retried after their Retry-After; a batch refused for its data (400)
// is a problem and the others go on; a refused token or role, a missing
// rule or stream end the replay as an error.
func (p *SIEM) Ingest(ctx context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	st, err := p.state()
	if err != nil {
		return plugin.IngestResult{}, err
	}
	if st.cl.ingest == nil {
		return plugin.IngestResult{}, st.fail(errors.New("ingest: no data collection rule configured (set ingest_endpoint and dcr_immutable_id)"))
	}
	var res plugin.IngestResult
	byStream := map[string][]ingestRow{}
	now := time.Now().UTC()
	for i, raw := range req.Events {
		stream, b, err := st.cfg.rowOf(raw, req.Marker, now)
		if err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: fmt.Sprintf("event %d", i), Message: err.Error()})
			continue
		}
		if len(b)+2 > st.cfg.BatchBytes {
			res.Problems = append(res.Problems, plugin.Problem{Subject: fmt.Sprintf("event %d", i), Message: fmt.Sprintf("%d bytes as a row: more than batch_bytes (%d)", len(b), st.cfg.BatchBytes)})
			continue
		}
		byStream[stream] = append(byStream[stream], ingestRow{event: i, json: b})
	}
	streams := make([]string, 0, len(byStream))
	for s := range byStream {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	for _, stream := range streams {
		rows := byStream[stream]
		for start := 0; start < len(rows); {
			end, size := start, 2
			for end < len(rows) && size+len(rows[end].json)+1 <= st.cfg.BatchBytes {
				size += len(rows[end].json) + 1
				end++
			}
			n, probs, err := st.upload(ctx, stream, rows[start:end])
			res.Accepted += n
			res.Problems = append(res.Problems, probs...)
			if err != nil {
				return res, st.fail(fmt.Errorf("ingest: stream %s: %w", stream, err))
			}
			start = end
		}
	}
	return res, nil
}

// upload sends one batch; a 413 splits it in two, down to single rows.
func (st *state) upload(ctx context.Context, stream string, rows []ingestRow) (int, []plugin.Problem, error) {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	_, _ = zw.Write([]byte{'['})
	for i, r := range rows {
		if i > 0 {
			_, _ = zw.Write([]byte{','})
		}
		_, _ = zw.Write(r.json)
	}
	_, _ = zw.Write([]byte{']'})
	if err := zw.Close(); err != nil {
		return 0, nil, fmt.Errorf("gzip: %w", err)
	}
	st.stats.uploads.Add(1)
	_, err := st.cl.ingest.Upload(ctx, st.cfg.DCRImmutableID, stream, body.Bytes(), &azingest.UploadOptions{ContentEncoding: ptr("gzip")})
	if err == nil {
		st.stats.uploadedRows.Add(int64(len(rows)))
		return len(rows), nil, nil
	}
	err = classify(err, roleIngest)
	subject := fmt.Sprintf("events %d-%d", rows[0].event, rows[len(rows)-1].event)
	if len(rows) == 1 {
		subject = fmt.Sprintf("event %d", rows[0].event)
	}
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusRequestEntityTooLarge && len(rows) > 1:
		st.stats.splits.Add(1)
		half := len(rows) / 2
		n1, p1, err := st.upload(ctx, stream, rows[:half])
		if err != nil {
			return n1, p1, err
		}
		n2, p2, err := st.upload(ctx, stream, rows[half:])
		return n1 + n2, append(p1, p2...), err
	case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge):
		return 0, []plugin.Problem{{Subject: subject, Message: st.scrub(err).Error()}}, nil
	}
	return 0, nil, fmt.Errorf("%s: %w", subject, err)
}

func ptr[T any](v T) *T { return &v }

// rowTime renders a row's TimeGenerated.
func rowTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// rowOf turns one replayed event into the row of the stream it goes to.
func (c *config) rowOf(raw []byte, marker string, now time.Time) (string, []byte, error) {
	if ev, rec, ok := telemetry.CloudTrailRecord(raw); ok && c.CloudTrailStream != "" {
		b, err := json.Marshal(cloudTrailRow(ev, rec))
		return c.CloudTrailStream, b, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", nil, errors.New("not a JSON object")
	}
	var ev telemetry.Event
	if _, isEvent := obj["fields"]; isEvent {
		if err := json.Unmarshal(raw, &ev); err != nil {
			return "", nil, fmt.Errorf("not a vigil event: %w", err)
		}
	} else if v, ok := obj["time"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		}
		t, err := parseEventTime(s)
		if err != nil {
			return "", nil, fmt.Errorf("time: %w", err)
		}
		ev.Time = t
		_ = json.Unmarshal(obj["host"], &ev.Host)
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.Source == telemetry.ProcessCreation && c.ProcessStream != "" {
		b, err := json.Marshal(processRow(ev))
		return c.ProcessStream, b, err
	}
	row := map[string]any{
		"TimeGenerated": rowTime(ev.Time),
		"Computer":      ev.Host,
		"Source":        ev.Source.String(),
		"VigilMarker":   marker,
		"RawData":       string(raw),
	}
	if row["Source"] == "" {
		row["Source"] = "vigil"
	}
	if cl := ev.Get("CommandLine"); cl != "" {
		row["CommandLine"] = cl
	}
	if _, rec, ok := telemetry.CloudTrailRecord(raw); ok {
		row["EventData"] = rec
	} else if len(ev.Fields) > 0 {
		row["EventData"] = ev.Fields
	}
	b, err := json.Marshal(row)
	return c.Stream, b, err
}

// parseEventTime reads an event's own time: RFC 3339 or epoch seconds.
func parseEventTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: neither RFC 3339 nor epoch seconds", s)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// cloudTrailRow is a CloudTrail record as Sentinel's AWS S3 connector
// writes it to AWSCloudTrail: the record's fields in the table's columns,
// request parameters and response elements as JSON text.
func cloudTrailRow(ev telemetry.Event, rec map[string]any) map[string]any {
	get := func(path ...string) any {
		var v any = rec
		for _, k := range path {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	}
	text := func(path ...string) string {
		switch v := get(path...).(type) {
		case nil:
			return ""
		case string:
			return v
		default:
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	row := map[string]any{
		"TimeGenerated":           rowTime(ev.Time),
		"EventVersion":            text("eventVersion"),
		"EventSource":             text("eventSource"),
		"EventName":               text("eventName"),
		"EventTypeName":           text("eventType"),
		"AwsEventId":              text("eventID"),
		"AwsRequestId":            text("requestID"),
		"AWSRegion":               text("awsRegion"),
		"SourceIpAddress":         text("sourceIPAddress"),
		"UserAgent":               text("userAgent"),
		"UserIdentityType":        text("userIdentity", "type"),
		"UserIdentityPrincipalid": text("userIdentity", "principalId"),
		"UserIdentityArn":         text("userIdentity", "arn"),
		"UserIdentityAccountId":   text("userIdentity", "accountId"),
		"UserIdentityAccessKeyId": text("userIdentity", "accessKeyId"),
		"UserIdentityUserName":    text("userIdentity", "userName"),
		"SessionIssuerArn":        text("userIdentity", "sessionContext", "sessionIssuer", "arn"),
		"SessionIssuerUserName":   text("userIdentity", "sessionContext", "sessionIssuer", "userName"),
		"RecipientAccountId":      text("recipientAccountId"),
		"ErrorCode":               text("errorCode"),
		"ErrorMessage":            text("errorMessage"),
		"RequestParameters":       text("requestParameters"),
		"ResponseElements":        text("responseElements"),
		"AdditionalEventData":     text("additionalEventData"),
		"Resources":               text("resources"),
	}
	if v, ok := get("readOnly").(bool); ok {
		row["ReadOnly"] = v
	} else if s := text("readOnly"); s != "" {
		row["ReadOnly"] = strings.EqualFold(s, "true")
	}
	if v, ok := get("managementEvent").(bool); ok {
		row["ManagementEvent"] = v
	}
	for k, v := range row {
		if v == "" {
			delete(row, k)
		}
	}
	return row
}

// processRow is a process creation event as an ASimProcessEventLogs row
// (the ASIM process event schema).
func processRow(ev telemetry.Event) map[string]any {
	row := map[string]any{
		"TimeGenerated":      rowTime(ev.Time),
		"EventStartTime":     rowTime(ev.Time),
		"EventEndTime":       rowTime(ev.Time),
		"EventCount":         1,
		"EventType":          "ProcessCreated",
		"EventResult":        "Success",
		"EventProduct":       "vigil",
		"EventVendor":        "vigil",
		"EventSchema":        "ProcessEvent",
		"EventSchemaVersion": "0.1.4",
		"Dvc":                ev.Host,
		"DvcHostname":        ev.Host,
		"DvcOs":              "Linux",
	}
	for col, field := range map[string]string{
		"TargetProcessCommandLine": "CommandLine", "TargetProcessName": "Image", "TargetProcessId": "ProcessId",
		"ActingProcessName": "ParentImage", "ActingProcessCommandLine": "ParentCommandLine", "ActingProcessId": "ParentProcessId",
		"TargetUsername": "User", "TargetProcessCurrentDirectory": "CurrentDirectory",
	} {
		if v := ev.Get(field); v != "" {
			row[col] = v
		}
	}
	return row
}
