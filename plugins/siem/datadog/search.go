package datadog

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// pageToken is the state of one batched search across its pages: which
// query is being paged (0 is the base query, i >= 1 the i-th distinct
// native query of the expectations) and Datadog's cursor within it.
type pageToken struct {
	Query  int    `json:"q"`
	Cursor string `json:"c,omitempty"`
	// Queries fingerprints the list of native queries the token was made
	// for, so that a token is never applied to another batch.
	Queries string `json:"h"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil {
		return pageToken{}, fmt.Errorf("bad page token %q", excerpt(s, 40))
	}
	return t, nil
}

// nativeQueries returns the distinct native queries of the expectations,
// sorted, with the IDs of the expectations of each.
func nativeQueries(exps []plugin.Expectation) ([]string, map[string][]string) {
	ids := map[string][]string{}
	for _, e := range exps {
		if q := strings.TrimSpace(e.Query); q != "" {
			ids[q] = append(ids[q], e.ID)
		}
	}
	qs := make([]string, 0, len(ids))
	for q := range ids {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	return qs, ids
}

func fingerprint(qs []string) string {
	h := sha256.Sum256([]byte(strings.Join(qs, "\x00")))
	return hex.EncodeToString(h[:6])
}

// and joins two Datadog search queries.
func and(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") AND (" + b + ")"
}

// Search answers one page of the batched search of a poll: one signals
// search (POST /api/v2/security_monitoring/signals/search) over [Start,
// End] with the base query, oldest first, followed through Datadog's
// cursor; then, only when some expectations carry a native query, one
// search per distinct native query (ANDed with the base query), whose
// signals are tagged with those expectations' IDs. The number of requests
// per poll therefore does not depend on the number of pending tests.
//
// Rate limits: RetryAfter spreads the remaining budget over the time to
// its reset, so the watcher slows down before Datadog answers 429; a 429 is
// waited out (X-RateLimit-Reset) and retried inside the call.
func (s *SIEM) Search(ctx context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.SearchResult{}, err
	}
	queries, ids := nativeQueries(req.Expectations)
	tok := pageToken{Queries: fingerprint(queries)}
	if req.PageToken != "" {
		if tok, err = decodePageToken(req.PageToken); err != nil {
			return plugin.SearchResult{}, fmt.Errorf("datadog: search signals: %w", err)
		}
		if tok.Queries != fingerprint(queries) || tok.Query > len(queries) || tok.Query < 0 {
			return plugin.SearchResult{}, fmt.Errorf("datadog: search signals: page token of another search")
		}
	}
	query := st.cfg.Query
	var matched []string
	if tok.Query > 0 {
		q := queries[tok.Query-1]
		query = and(st.cfg.Query, q)
		matched = ids[q]
	}
	limit := st.cfg.PageSize
	signals, after, pace, err := st.api.searchSignals(ctx, query, req, limit, tok.Cursor)
	if err != nil {
		return plugin.SearchResult{}, err
	}
	for i := range signals {
		signals[i].MatchedExpectations = matched
	}
	st.api.stats.signals.Add(signals)
	res := plugin.SearchResult{Signals: signals, RetryAfter: pace}
	// The last page of a query is the empty one (Datadog keeps a cursor on
	// a short page); then move on to the next native query, if any.
	switch {
	case len(signals) > 0 && after != "":
		res.NextPageToken = pageToken{Query: tok.Query, Cursor: after, Queries: tok.Queries}.encode()
	case tok.Query < len(queries):
		res.NextPageToken = pageToken{Query: tok.Query + 1, Queries: tok.Queries}.encode()
	}
	return res, nil
}

// searchSignals runs one signals search request through the official
// client and decodes the answer itself.
func (a *api) searchSignals(ctx context.Context, query string, req plugin.SearchRequest, limit int, cursor string) ([]plugin.Signal, string, time.Duration, error) {
	filter := signalsFilter{Query: query}
	if !req.Start.IsZero() {
		filter.From = timePtr(req.Start.UTC())
	}
	if !req.End.IsZero() {
		filter.To = timePtr(req.End.UTC())
	}
	body := signalsRequest{Filter: &filter, Page: &cursorPage{Cursor: cursor, Limit: int32(limit)}, Sort: sortTimestamp}
	ans, err := a.call(ctx, opSearchSignals, "search signals", func(ctx context.Context) (*http.Response, error) {
		return a.send(ctx, epSearchSignals, request{body: &body})
	})
	if err != nil {
		return nil, "", 0, err
	}
	signals, after, err := decodeSignalsPage(ans.body)
	if err != nil {
		return nil, "", 0, fmt.Errorf("datadog: search signals: %w", err)
	}
	return signals, after, ans.pace, nil
}

// Clock reads Datadog's clock from the Date header of a signals search
// over the last minute (one signal at most): the call the run makes, with
// the permission it needs.
func (s *SIEM) Clock(ctx context.Context) (plugin.ClockReading, error) {
	st, err := s.state()
	if err != nil {
		return plugin.ClockReading{}, err
	}
	a := st.api
	now := a.now()
	filter := signalsFilter{From: timePtr(now.Add(-time.Minute).UTC()), To: timePtr(now.UTC())}
	body := signalsRequest{Filter: &filter, Page: &cursorPage{Limit: 1}}
	ans, err := a.call(ctx, opSearchSignals, "read the clock", func(ctx context.Context) (*http.Response, error) {
		return a.send(ctx, epSearchSignals, request{body: &body})
	})
	if err != nil {
		return plugin.ClockReading{}, err
	}
	r, err := plugin.ClockFromDate(ans.header, ans.sent, ans.received, "POST /api/v2/security_monitoring/signals/search")
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("datadog: read the clock: %w", err)
	}
	return r, nil
}
