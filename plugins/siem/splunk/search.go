package splunk

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// Limits of one Search answer: it travels over gRPC, whose default message
// limit is 4 MiB.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10_000
	maxPageBytes    = 2 << 20
)

// windowSlack widens the search window to the past: Splunk's time bounds
// are whole seconds, and the engine accepts signals stamped a little before
// the injection (runner.ClockTolerance).
const windowSlack = time.Second

// ErrBadPageToken means a Search page token this plugin did not issue, or
// one of a poll a newer poll replaced.
var ErrBadPageToken = sdk.ErrBadPageToken

// Search runs ONE search for all the expectations over [Start, End] (one
// job, or one export) and returns its signals sorted by time, in pages of
// PageSize (default DefaultPageSize) kept in memory for the poll's later
// pages. The SPL is the base search (Config.Search, default the ES
// notables) followed by one appended subsearch per distinct native query,
// whose rows carry the IDs of the expectations that asked for it
// (MatchedExpectations); when every expectation has a query the base
// search is left out. When the concurrent-search quota made the poll wait,
// RetryAfter asks the engine to space the next polls by as much.
func (p *SIEM) Search(ctx context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	st, err := p.state()
	if err != nil {
		return plugin.SearchResult{}, err
	}
	size := req.PageSize
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if req.PageToken != "" {
		res, err := st.pages.Next(req.PageToken, size)
		if err != nil {
			return res, st.scrub(fmt.Errorf("splunk: %w", err))
		}
		return res, nil
	}
	st.pages.Reset()
	if len(req.Expectations) == 0 {
		return plugin.SearchResult{}, nil
	}
	if req.Start.IsZero() || req.End.Before(req.Start) {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: bad window [%s, %s]", req.Start, req.End))
	}
	s := search{
		spl:      st.cfg.pollSPL(req.Expectations),
		earliest: req.Start.Add(-windowSlack), latest: req.End, maxRows: st.cfg.MaxRows,
	}
	rows, waited, err := st.run(ctx, s)
	if err != nil {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: %w", err))
	}
	sigs, err := st.cfg.signals(rows)
	if err != nil {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: %w (SPL: %s)", err, excerpt(s.spl, 300)))
	}
	st.counters.signals.Add(sigs)
	res := st.pages.First(sigs, size)
	res.RetryAfter = waited
	return res, nil
}

// pollSPL builds the SPL of one poll: the base search, then one appended
// subsearch per distinct native query (expectations sharing a query share
// its subsearch), tagging its rows with their expectation IDs.
func (c *config) pollSPL(exps []plugin.Expectation) string {
	byQuery := map[string][]string{}
	base := false
	for _, e := range exps {
		if q := strings.TrimSpace(e.Query); q != "" {
			byQuery[q] = append(byQuery[q], e.ID)
		} else {
			base = true
		}
	}
	queries := make([]string, 0, len(byQuery))
	for q := range byQuery {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	var parts []string
	if base {
		parts = append(parts, c.Search)
	}
	for _, q := range queries {
		ids := byQuery[q]
		sort.Strings(ids)
		quoted := make([]string, len(ids))
		for i, id := range ids {
			quoted[i] = splString(id)
		}
		parts = append(parts, normaliseSPL(q)+" | eval "+expectationsField+"=mvappend("+strings.Join(quoted, ",")+")")
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		b.WriteString(" | append [" + p + "]")
	}
	return b.String()
}

// signals converts rows, drops duplicates (the same ID twice: their
// expectations are merged) and sorts by time then ID.
func (c *config) signals(rows []row) ([]plugin.Signal, error) {
	out := make([]plugin.Signal, 0, len(rows))
	for i, r := range rows {
		s, err := c.signal(r)
		if err != nil {
			return nil, fmt.Errorf("result row %d: %w", i, err)
		}
		out = append(out, s)
	}
	return sdk.MergeSignals(out), nil
}
