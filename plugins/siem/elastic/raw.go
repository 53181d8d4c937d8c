package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/plugin"
)

// MaxRawEvents caps the events SearchRawEvents returns (the earliest).
const MaxRawEvents = 500

// rawLeeway widens the raw-event window before the injection start: event
// clocks are coarser than the injector's.
const rawLeeway = time.Second

// Fields searched for a marker in raw events: wildcard (substring) queries
// on the ECS fields that hold command lines and paths (the ECS mapping of
// process.command_line is the wildcard type), a term on the field Ingest
// stamps, and a phrase in message.
var (
	rawWildcardFields = []string{"process.command_line", "process.parent.command_line", "process.args", "file.path", "process.working_directory"}
	rawPhraseFields   = []string{"message", "process.command_line"}
)

// SearchRawEvents returns the events of the configured event indices
// (default logs-*) whose @timestamp is in [Start-1s, End], that contain one
// of Markers and, when Hosts is set, come from one of Hosts (case-
// insensitive, a short name also matching its FQDN): at most MaxRawEvents,
// the earliest first; past 2 MiB of documents, Raw is left out. IngestedAt is the event's event.ingested, set by
// Elasticsearch ingest pipelines, zero when absent.
func (s *SIEM) SearchRawEvents(ctx context.Context, req plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	var markers []string
	for _, m := range req.Markers {
		if strings.TrimSpace(m) != "" {
			markers = append(markers, m)
		}
	}
	if len(markers) == 0 {
		return nil, nil
	}
	st.stats.rawSearches.Add(1)
	body, err := json.Marshal(rawEventsQuery(req, markers))
	if err != nil {
		return nil, fmt.Errorf("elastic: search raw events: %w", err)
	}
	b, err := st.cl.esDo(ctx, esapi.SearchRequest{Index: st.cfg.EventIndices, Body: bytes.NewReader(body)})
	if err != nil {
		return nil, fmt.Errorf("elastic: search raw events: %w", err)
	}
	r, err := decodeSearch(b)
	if err != nil {
		return nil, fmt.Errorf("elastic: search raw events: %w", err)
	}
	out := make([]plugin.RawEvent, 0, len(r.Hits.Hits))
	rawBytes := 0
	for _, h := range r.Hits.Hits {
		src, err := decodeDoc(h.Source)
		if err != nil {
			return nil, fmt.Errorf("elastic: search raw events: event %q: _source: %w", h.ID, err)
		}
		ev := plugin.RawEvent{
			Timestamp:  firstTime(src, "@timestamp"),
			IngestedAt: firstTime(src, "event.ingested"),
			Host:       first(src, fieldHost...),
			Raw:        h.Source,
			Source:     first(src, "data_stream.dataset", "event.dataset", "event.module"),
			Summary:    first(src, "process.command_line", "file.path", "event.action", "message"),
		}
		if ev.Source == "" {
			ev.Source = h.Index
		}
		for _, m := range markers {
			if bytes.Contains(h.Source, []byte(m)) {
				ev.Marker = m
				break
			}
		}
		// Keep the answer within one gRPC message: past maxPageBytes of
		// documents, events keep their times and host only.
		if rawBytes += len(ev.Raw); len(ev.Raw) > maxRawDoc || rawBytes > maxPageBytes {
			ev.Raw = nil
		}
		out = append(out, ev)
	}
	st.stats.rawEvents.Add(int64(len(out)))
	return out, nil
}

// rawEventsQuery builds the raw-event search body.
func rawEventsQuery(req plugin.RawEventsRequest, markers []string) obj {
	end := req.End
	if end.IsZero() {
		end = time.Now()
	}
	rng := obj{"lte": formatTime(ceilMilli(end)), "format": "strict_date_optional_time"}
	if !req.Start.IsZero() {
		rng["gte"] = formatTime(req.Start.Add(-rawLeeway).Truncate(time.Millisecond))
	}
	var byMarker []any
	for _, m := range markers {
		byMarker = append(byMarker, obj{"term": obj{MarkerField: obj{"value": m}}})
		for _, f := range rawWildcardFields {
			byMarker = append(byMarker, obj{"wildcard": obj{f: obj{"value": "*" + escapeWildcard(m) + "*"}}})
		}
		for _, f := range rawPhraseFields {
			byMarker = append(byMarker, obj{"match_phrase": obj{f: m}})
		}
	}
	filter := []any{
		obj{"range": obj{"@timestamp": rng}},
		obj{"bool": obj{"should": byMarker, "minimum_should_match": 1}},
	}
	var byHost []any
	for _, h := range req.Hosts {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		short, _, _ := strings.Cut(h, ".")
		byHost = append(byHost, obj{"term": obj{"host.name": obj{"value": h, "case_insensitive": true}}})
		if short != h {
			byHost = append(byHost, obj{"term": obj{"host.name": obj{"value": short, "case_insensitive": true}}})
		}
		byHost = append(byHost, obj{"prefix": obj{"host.name": obj{"value": short + ".", "case_insensitive": true}}})
	}
	if len(byHost) > 0 {
		filter = append(filter, obj{"bool": obj{"should": byHost, "minimum_should_match": 1}})
	}
	return obj{
		"size":             MaxRawEvents,
		"track_total_hits": false,
		"sort":             []any{obj{"@timestamp": obj{"order": "asc"}}},
		"query":            obj{"bool": obj{"filter": filter}},
	}
}

// escapeWildcard escapes the wildcard query's special characters.
func escapeWildcard(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(s)
}
