package sentinel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Limits of one Search answer: it travels over gRPC, whose default message
// limit is 4 MiB.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10_000
	maxPageBytes    = 2 << 20
)

// ErrBadPageToken means a Search page token this plugin did not issue, or
// one of a poll that a newer poll replaced.
var ErrBadPageToken = errors.New("sentinel: bad page token")

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
		res, err := st.nextPage(req.PageToken, size)
		return res, st.scrub(err)
	}
	st.mu.Lock()
	clear(st.polls)
	st.mu.Unlock()
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
	res := st.firstPage(sigs, size)
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
	index := map[string]int{}
	for i, r := range rows {
		s, err := signalOf(r)
		if err != nil {
			return nil, fmt.Errorf("result row %d: %w", i, err)
		}
		if j, dup := index[s.ID]; dup {
			for _, e := range s.MatchedExpectations {
				if !contains(out[j].MatchedExpectations, e) {
					out[j].MatchedExpectations = append(out[j].MatchedExpectations, e)
				}
			}
			continue
		}
		index[s.ID] = len(out)
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Timestamp.Equal(out[j].Timestamp) {
			return out[i].Timestamp.Before(out[j].Timestamp)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// firstPage returns the first page of a poll's signals and keeps the rest
// for nextPage.
func (st *state) firstPage(sigs []plugin.Signal, size int) plugin.SearchResult {
	st.mu.Lock()
	st.pollSeq++
	id := strconv.FormatInt(st.pollSeq, 10)
	st.polls[id] = sigs
	st.mu.Unlock()
	return st.slice(id, sigs, 0, size)
}

// nextPage returns the page a token points at.
func (st *state) nextPage(tok string, size int) (plugin.SearchResult, error) {
	id, offs, ok := strings.Cut(tok, ":")
	off, err := strconv.Atoi(offs)
	if !ok || err != nil || off < 0 {
		return plugin.SearchResult{}, fmt.Errorf("%w %q", ErrBadPageToken, tok)
	}
	st.mu.Lock()
	sigs, found := st.polls[id]
	st.mu.Unlock()
	if !found || off > len(sigs) {
		return plugin.SearchResult{}, fmt.Errorf("%w %q (a newer poll replaced it)", ErrBadPageToken, tok)
	}
	return st.slice(id, sigs, off, size), nil
}

// slice cuts one page from off: at most size signals and about
// maxPageBytes of raw documents (at least one signal).
func (st *state) slice(id string, sigs []plugin.Signal, off, size int) plugin.SearchResult {
	var (
		res   plugin.SearchResult
		bytes int
		i     = off
	)
	for ; i < len(sigs) && len(res.Signals) < size; i++ {
		if bytes += len(sigs[i].Raw); bytes > maxPageBytes && len(res.Signals) > 0 {
			break
		}
		res.Signals = append(res.Signals, sigs[i])
	}
	if i < len(sigs) {
		res.NextPageToken = id + ":" + strconv.Itoa(i)
	} else {
		st.mu.Lock()
		delete(st.polls, id)
		st.mu.Unlock()
	}
	return res
}
