package sentinel

import (
	"context"
	"fmt"
	"sort"
	"strconv"
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

// ErrBadPageToken means a Search page token this plugin did not issue, or
// one of a poll a newer poll replaced.
var ErrBadPageToken = sdk.ErrBadPageToken

// Columns vigil adds to the rows of a poll.
const (
	kindColumn         = "vigil_kind"
	expectationsColumn = "vigil_expectations"
)

// Row kinds (kindColumn).
const (
	kindAlert    = "alert"
	kindIncident = "incident"
	kindQuery    = "query"
)

// Search runs ONE query for all the expectations over [Start, End] and
// returns its signals sorted by time, in pages of PageSize (default
// DefaultPageSize) kept in memory for the poll's later pages. The query
// is SecurityAlert's first record of each alert in the window, unioned
// with SecurityIncident (incidents = true) and with each distinct native
// query, whose rows carry the IDs of the expectations that asked for it
// (MatchedExpectations); when every expectation has a query, SecurityAlert
// is left out. When the workspace throttled the call, RetryAfter asks the
// engine to space the next polls by its Retry-After.
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
			return res, st.scrub(fmt.Errorf("sentinel: %w", err))
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
	st.stats.polls.Add(1)
	kql, err := st.cfg.pollKQL(req.Expectations, req.Start, req.End)
	if err != nil {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: %w", err))
	}
	ctx, n := withNote(ctx)
	rows, err := st.runQuery(ctx, kql, req.Start, req.End)
	if err != nil {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: %w (KQL: %s)", err, excerpt(oneLine(kql), 300)))
	}
	if len(rows) > st.cfg.MaxRows {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: more than max_rows (%d) rows in the window: narrow the native queries or raise max_rows (the answer would be cut)", st.cfg.MaxRows))
	}
	sigs, err := signals(rows)
	if err != nil {
		return plugin.SearchResult{}, st.fail(fmt.Errorf("search: %w", err))
	}
	st.signals.Add(sigs)
	res := st.pages.First(sigs, size)
	res.RetryAfter = n.wait()
	return res, nil
}

// oneLine joins a multi-line query for messages.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// pollKQL builds the KQL of one poll: SecurityAlert's alerts (unless every
// expectation has a native query), SecurityIncident's incidents when
// asked, and one branch per distinct native query (expectations sharing a
// query share its branch), each filtered to the window and tagged with
// its kind, the whole sorted by time and cut at max_rows + 1.
func (c *config) pollKQL(exps []plugin.Expectation, start, end time.Time) (string, error) {
	byQuery := map[string][]string{}
	base := false
	for _, e := range exps {
		if q := strings.TrimSpace(e.Query); q != "" {
			byQuery[q] = append(byQuery[q], e.ID)
		} else {
			base = true
		}
	}
	if len(byQuery) > maxNativeQueriesPerPoll {
		return "", fmt.Errorf("%d distinct native queries pending: at most %d per poll", len(byQuery), maxNativeQueriesPerPoll)
	}
	window := "between (" + kqlTime(start) + " .. " + kqlTime(end) + ")"
	var branches []string
	if base {
		branches = append(branches, securityAlertTable+
			"\n| where TimeGenerated "+window+
			"\n| summarize arg_min(TimeGenerated, *) by SystemAlertId"+
			"\n| extend "+kindColumn+" = "+kqlString(kindAlert))
		if c.Incidents {
			branches = append(branches, securityIncidentTable+
				"\n| where TimeGenerated "+window+
				"\n| summarize arg_min(TimeGenerated, *) by IncidentName"+
				"\n| extend "+kindColumn+" = "+kqlString(kindIncident))
		}
	}
	queries := make([]string, 0, len(byQuery))
	for q := range byQuery {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	for _, q := range queries {
		ids := byQuery[q]
		sort.Strings(ids)
		branches = append(branches, strings.TrimRight(strings.TrimSpace(q), ";")+
			"\n| where TimeGenerated "+window+
			"\n| extend "+kindColumn+" = "+kqlString(kindQuery)+", "+expectationsColumn+" = "+kqlDynamic(ids))
	}
	tail := "\n| sort by TimeGenerated asc\n| take " + strconv.Itoa(c.MaxRows+1)
	if len(branches) == 1 {
		return branches[0] + tail, nil
	}
	parts := make([]string, len(branches))
	for i, b := range branches {
		parts[i] = "(" + b + ")"
	}
	return "union\n" + strings.Join(parts, ",\n") + tail, nil
}

// signals converts rows, drops duplicates (the same ID twice: their
// expectations are merged) and sorts by time then ID.
func signals(rows []row) ([]plugin.Signal, error) {
	out := make([]plugin.Signal, 0, len(rows))
	for i, r := range rows {
		s, err := signalOf(r)
		if err != nil {
			return nil, fmt.Errorf("result row %d: %w", i, err)
		}
		out = append(out, s)
	}
	return sdk.MergeSignals(out), nil
}
