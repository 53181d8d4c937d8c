package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// AWSCloudTrail is the logsource of AWS CloudTrail records, as SigmaHQ's
// cloud/aws rules name it.
var AWSCloudTrail = Logsource{Product: "aws", Service: "cloudtrail"}

// FromCloudTrail turns one CloudTrail record (an item of a log file's
// Records, of a detonation log, or of LookupEvents' CloudTrailEvent) into
// a normalised event of the AWSCloudTrail logsource. Its fields are the
// record flattened with dotted keys, as Sigma rules and the SIEMs'
// CloudTrail integrations name them: "eventSource", "eventName",
// "userIdentity.arn", "requestParameters.name", "userAgent",
// "responseElements.ConsoleLogin". Arrays add no path element (see
// FromAudit). The event's time is eventTime; its host is the account that
// received the call (recipientAccountId, else userIdentity.accountId), or
// host when the record names none.
func FromCloudTrail(b []byte, host string) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return Event{}, fmt.Errorf("event: cloudtrail record: %w", err)
	}
	for _, k := range []string{"eventSource", "eventName"} {
		if s, _ := doc[k].(string); s == "" {
			return Event{}, fmt.Errorf("event: cloudtrail record: no %s", k)
		}
	}
	s, _ := doc["eventTime"].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Event{}, errors.New("event: cloudtrail record: no eventTime in RFC 3339")
	}
	ev := Event{Time: t, Host: host, Source: AWSCloudTrail, Fields: flatFields(doc)}
	for _, k := range []string{"recipientAccountId", "userIdentity.accountId"} {
		if a := ev.Get(k); a != "" {
			ev.Host = a
			break
		}
	}
	return ev, nil
}

// ReadCloudTrail reads CloudTrail records from a log file ({"Records":
// [...]}), a JSON array of records (Stratus Red Team's detonation logs),
// or one record per line. It returns each record's raw JSON.
func ReadCloudTrail(b []byte) ([]json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil, errors.New("cloudtrail: empty")
	case b[0] == '[':
		var recs []json.RawMessage
		if err := json.Unmarshal(b, &recs); err != nil {
			return nil, fmt.Errorf("cloudtrail: a JSON array of records: %w", err)
		}
		return recs, nil
	case bytes.HasPrefix(b, []byte(`{"Records"`)) || bytes.Contains(b[:min(len(b), 64)], []byte(`"Records"`)):
		var file struct {
			Records []json.RawMessage `json:"Records"`
		}
		if err := json.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("cloudtrail: a log file: %w", err)
		}
		return file.Records, nil
	}
	var recs []json.RawMessage
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("cloudtrail: line %d: not a JSON record", i+1)
		}
		recs = append(recs, json.RawMessage(line))
	}
	return recs, nil
}

// CloudTrailRecord reads raw, an event as the replay injector hands it to
// SIEM plugins, and when it is a CloudTrail record (logsource
// aws/cloudtrail) returns it with the record nested again from its dotted
// fields, as CloudTrail delivers it to SIEMs: the shape their CloudTrail
// integrations parse. Values collected below arrays stay lists; eventTime
// is the event's time (a replay's, re-timestamped).
func CloudTrailRecord(raw []byte) (Event, map[string]any, bool) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Source != AWSCloudTrail || len(ev.Fields) == 0 {
		return ev, nil, false
	}
	rec := map[string]any{}
	keys := make([]string, 0, len(ev.Fields))
	for k := range ev.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a parent before its children
	for _, k := range keys {
		parts := strings.Split(k, ".")
		m := rec
		ok := true
		for _, p := range parts[:len(parts)-1] {
			next, exists := m[p]
			switch n := next.(type) {
			case map[string]any:
				m = n
			case nil:
				if exists {
					ok = false
					break
				}
				child := map[string]any{}
				m[p] = child
				m = child
			default:
				ok = false // a leaf and a parent at once: keep the leaf
			}
			if !ok {
				break
			}
		}
		if ok {
			m[parts[len(parts)-1]] = ev.Fields[k]
		}
	}
	// A replay re-timestamps the event: the record says when it happened
	// this time.
	rec["eventTime"] = ev.Time.UTC().Format(time.RFC3339)
	return ev, rec, true
}
