package elastic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/plugin"
)

// obj is a JSON object of the query DSL.
type obj = map[string]any

// maxPageBytes cuts a Search page early when its alert documents add up to
// this many bytes: pages travel over gRPC, whose default message limit is
// 4 MiB.
const maxPageBytes = 2 << 20

// kibanaSearchPath is the detection engine's alert search endpoint.
const kibanaSearchPath = "/api/detection_engine/signals/search"

// ErrBadPageToken means a Search page token this plugin did not issue.
var ErrBadPageToken = errors.New("bad page token")

// Building-block alerts feed other rules and are hidden in the Security
// app; they are not detections of their own.
var buildingBlockFields = []string{"kibana.alert.building_block_type", "signal.rule.building_block_type"}

// Search returns one page of the alerts whose @timestamp is in
// [Start, End] (Start is the earliest pending injection), building-block
// alerts excluded, sorted by @timestamp then alert ID and paged with
// search_after (through Kibana, whose endpoint has no search_after, the
// same keyset is expressed as a query). An expectation's native Query (a
// query_string, or a JSON query DSL object) is sent in the same search as
// a named query: the alerts it matches carry the expectation's ID in
// MatchedExpectations. A search that timed out or lost shards is an error,
// never a silent short answer. RetryAfter is set when Elasticsearch had to
// be retried because of 429s.
func (s *SIEM) Search(ctx context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.SearchResult{}, err
	}
	st.stats.searches.Add(1)
	size := req.PageSize
	switch {
	case size <= 0:
		size = st.cfg.PageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after, err := decodePageToken(req.PageToken)
	if err != nil {
		return plugin.SearchResult{}, fmt.Errorf("elastic: search alerts: %w", err)
	}
	body, queryIDs, err := st.alertQuery(req, size, after)
	if err != nil {
		return plugin.SearchResult{}, fmt.Errorf("elastic: search alerts: %w", err)
	}
	ctx, note := withNote(ctx)
	b, err := st.searchAlerts(ctx, body)
	if err != nil {
		return plugin.SearchResult{}, fmt.Errorf("elastic: search alerts: %w", err)
	}
	res, err := st.alertPage(b, size, queryIDs)
	if err != nil {
		return plugin.SearchResult{}, fmt.Errorf("elastic: search alerts: %w", err)
	}
	if n, after := note.get(); n > 0 {
		res.RetryAfter = max(after, min(time.Duration(n)*time.Second, 30*time.Second))
	}
	st.stats.alerts.Add(res.Signals)
	return res, nil
}

// searchAlerts sends one alert search through the configured API.
func (st *state) searchAlerts(ctx context.Context, body []byte) ([]byte, error) {
	if st.cfg.SearchAPI == SearchKibana {
		return st.cl.kbDo(ctx, http.MethodPost, kibanaSearchPath, nil, body)
	}
	partial := false
	return st.cl.esDo(ctx, esapi.SearchRequest{
		Index:                     []string{st.cfg.Index},
		Body:                      bytes.NewReader(body),
		AllowPartialSearchResults: &partial,
	})
}

// tiebreak is the sort field that orders alerts of the same @timestamp:
// kibana.alert.uuid (8.x), or _id for the 7.x layout, which has no alert ID
// field.
func (st *state) tiebreak() (string, obj) {
	if st.cfg.legacy {
		return "_id", obj{"order": "asc"}
	}
	return "kibana.alert.uuid", obj{"order": "asc", "unmapped_type": "keyword"}
}

// alertQuery builds the search body and the set of expectation IDs sent as
// named queries.
func (st *state) alertQuery(req plugin.SearchRequest, size int, after []json.RawMessage) ([]byte, map[string]bool, error) {
	if req.Start.IsZero() || req.End.IsZero() {
		return nil, nil, fmt.Errorf("search window [%v, %v] is not set", req.Start, req.End)
	}
	filter := []any{obj{"range": obj{"@timestamp": obj{
		"gte":    formatTime(req.Start.Truncate(time.Millisecond)),
		"lte":    formatTime(ceilMilli(req.End)),
		"format": "strict_date_optional_time",
	}}}}
	var mustNot []any
	for _, f := range buildingBlockFields {
		mustNot = append(mustNot, obj{"exists": obj{"field": f}})
	}
	boolQ := obj{"filter": filter, "must_not": mustNot}

	queryIDs := map[string]bool{}
	var should []any
	for _, e := range req.Expectations {
		if strings.TrimSpace(e.Query) == "" || queryIDs[e.ID] {
			continue
		}
		q, err := namedQuery(e.ID, e.Query)
		if err != nil {
			return nil, nil, fmt.Errorf("expectation %s: %w", e.ID, err)
		}
		queryIDs[e.ID] = true
		should = append(should, q)
	}
	if len(should) > 0 {
		boolQ["should"] = should
		boolQ["minimum_should_match"] = 0
	}

	tbField, tbSort := st.tiebreak()
	body := obj{
		"size":             size,
		"track_total_hits": false,
		"sort":             []any{obj{"@timestamp": obj{"order": "asc"}}, obj{tbField: tbSort}},
		"query":            obj{"bool": boolQ},
	}
	if after != nil {
		if st.cfg.SearchAPI == SearchKibana {
			ks, err := keyset(after, tbField)
			if err != nil {
				return nil, nil, err
			}
			boolQ["filter"] = append(filter, ks)
		} else {
			body["search_after"] = after
		}
	}
	b, err := json.Marshal(body)
	return b, queryIDs, err
}

// keyset expresses search_after [ts, id] as a query, for Kibana's search
// endpoint: @timestamp > ts, or @timestamp = ts and id > the last one.
func keyset(after []json.RawMessage, tbField string) (obj, error) {
	var ts json.Number
	var id string
	if len(after) != 2 || json.Unmarshal(after[0], &ts) != nil || json.Unmarshal(after[1], &id) != nil {
		return nil, ErrBadPageToken
	}
	return obj{"bool": obj{"minimum_should_match": 1, "should": []any{
		obj{"range": obj{"@timestamp": obj{"gt": ts, "format": "epoch_millis"}}},
		obj{"bool": obj{"filter": []any{
			obj{"range": obj{"@timestamp": obj{"gte": ts, "lte": ts, "format": "epoch_millis"}}},
			obj{"range": obj{tbField: obj{"gt": id}}},
		}}},
	}}}, nil
}

// namedQuery wraps an expectation's native query with its ID as the query
// name: a JSON object is query DSL, anything else a query_string (Lucene
// syntax).
func namedQuery(id, q string) (obj, error) {
	q = strings.TrimSpace(q)
	if strings.HasPrefix(q, "{") {
		dsl, err := decodeDoc([]byte(q))
		if err != nil {
			return nil, fmt.Errorf("native query: not a JSON query DSL object: %w", err)
		}
		if inner, ok := dsl["query"].(map[string]any); ok && len(dsl) == 1 {
			dsl = inner // {"query": {...}} as in a search body
		}
		return obj{"bool": obj{"filter": []any{dsl}, "_name": id}}, nil
	}
	return obj{"query_string": obj{"query": q, "_name": id}}, nil
}

// searchResponse is the part of a search answer the plugin reads.
type searchResponse struct {
	TimedOut bool `json:"timed_out"`
	Shards   *struct {
		Total    int `json:"total"`
		Failed   int `json:"failed"`
		Failures []struct {
			Index  string `json:"index"`
			Reason struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"reason"`
		} `json:"failures"`
	} `json:"_shards"`
	Hits *struct {
		Hits []hit `json:"hits"`
	} `json:"hits"`
}

// decodeSearch decodes a search answer and refuses partial ones.
func decodeSearch(b []byte) (*searchResponse, error) {
	var r searchResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	if r.Hits == nil {
		return nil, fmt.Errorf("malformed answer: no hits object")
	}
	if r.TimedOut {
		return nil, fmt.Errorf("search timed out on the server: results would be partial")
	}
	if r.Shards != nil && r.Shards.Failed > 0 {
		why := ""
		if len(r.Shards.Failures) > 0 {
			f := r.Shards.Failures[0]
			why = ": " + f.Reason.Type + ": " + f.Reason.Reason
		}
		return nil, fmt.Errorf("%d of %d shards failed%s: results would be partial", r.Shards.Failed, r.Shards.Total, why)
	}
	return &r, nil
}

// alertPage turns a search answer into a page of signals, cut early at
// maxPageBytes.
func (st *state) alertPage(b []byte, size int, queryIDs map[string]bool) (plugin.SearchResult, error) {
	r, err := decodeSearch(b)
	if err != nil {
		return plugin.SearchResult{}, err
	}
	var (
		res   plugin.SearchResult
		bytes int
		last  *hit
	)
	hits := r.Hits.Hits
	for i := range hits {
		h := &hits[i]
		if bytes += len(h.Source); bytes > maxPageBytes && len(res.Signals) > 0 {
			break
		}
		sig, err := h.signal(queryIDs)
		if err != nil {
			return plugin.SearchResult{}, err
		}
		res.Signals = append(res.Signals, sig)
		last = h
	}
	if last != nil && (len(res.Signals) < len(hits) || len(hits) >= size) {
		if len(last.Sort) == 0 {
			return plugin.SearchResult{}, fmt.Errorf("alert %q has no sort values: cannot page", last.ID)
		}
		tok, err := json.Marshal(last.Sort)
		if err != nil {
			return plugin.SearchResult{}, err
		}
		res.NextPageToken = base64.RawURLEncoding.EncodeToString(tok)
	}
	return res, nil
}

// decodePageToken returns the search_after values of a page token (nil for
// the first page).
func decodePageToken(tok string) ([]json.RawMessage, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var after []json.RawMessage
	if err != nil || json.Unmarshal(b, &after) != nil || len(after) == 0 {
		return nil, fmt.Errorf("%w %q", ErrBadPageToken, tok)
	}
	return after, nil
}

// formatTime formats t for a range query (UTC, milliseconds).
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ceilMilli rounds t up to the millisecond, so that lte covers t.
func ceilMilli(t time.Time) time.Time {
	if tt := t.Truncate(time.Millisecond); !tt.Equal(t) {
		return tt.Add(time.Millisecond)
	}
	return t
}
