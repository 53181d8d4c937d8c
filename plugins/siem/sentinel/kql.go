package sentinel

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
)

// kqlTimeLayout renders a KQL datetime literal's value (100ns ticks).
const kqlTimeLayout = "2006-01-02T15:04:05.0000000Z"

// kqlTime is a KQL datetime literal.
func kqlTime(t time.Time) string { return "datetime(" + t.UTC().Format(kqlTimeLayout) + ")" }

// kqlString is a KQL string literal: double quotes, backslash escapes.
func kqlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// kqlDynamic is a KQL dynamic array of strings.
func kqlDynamic(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = kqlString(s)
	}
	return "dynamic([" + strings.Join(q, ", ") + "])"
}

// row is one result row, by column name.
type row map[string]any

// str returns a column as a string ("" when absent or null); numbers and
// dynamic values are rendered as JSON.
func (r row) str(col string) string {
	switch v := r[col].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// first returns the first non-empty column of cols.
func (r row) first(cols ...string) string {
	for _, c := range cols {
		if v := r.str(c); v != "" {
			return v
		}
	}
	return ""
}

// time parses a datetime column (zero when absent).
func (r row) time(col string) (time.Time, error) {
	v := r.str(col)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not a datetime", col, v)
	}
	return t, nil
}

// PartialError is the code of a query answer whose results are incomplete
// (limits, a failing shard, a throttled part).
const PartialError = "PartialError"

// runQuery sends one KQL query over [start, end] (the timespan, whole
// seconds, is widened to hold the window; the query itself filters to the
// 100ns) and returns the primary table's rows. An answer with an error
// (PartialError included: its rows are incomplete) is an error.
func (st *state) runQuery(ctx context.Context, kql string, start, end time.Time) ([]row, error) {
	st.stats.queries.Add(1)
	ts := azquery.NewTimeInterval(start.UTC().Truncate(time.Second), end.UTC().Truncate(time.Second).Add(time.Second))
	resp, err := st.cl.query.QueryWorkspace(ctx, st.cfg.WorkspaceID, azquery.QueryBody{Query: &kql, Timespan: &ts}, nil)
	if err != nil {
		return nil, classify(err, roleSearch)
	}
	res := resp.QueryResults
	if res.Error != nil {
		code, msg := errorBody([]byte(`{"error":` + res.Error.Error() + `}`))
		if code == PartialError {
			return nil, fmt.Errorf("the workspace answered with partial results (%s: %s): they may lack alerts, so this answer proves nothing", code, msg)
		}
		return nil, fmt.Errorf("the workspace answered with an error (%s: %s)", code, msg)
	}
	if len(res.Tables) == 0 {
		return nil, fmt.Errorf("the workspace answered without a table")
	}
	t := res.Tables[0]
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		if c.Name == nil {
			return nil, fmt.Errorf("column %d has no name", i)
		}
		cols[i] = *c.Name
	}
	out := make([]row, 0, len(t.Rows))
	for i, r := range t.Rows {
		if len(r) != len(cols) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", i, len(r), len(cols))
		}
		m := make(row, len(cols))
		for j, v := range r {
			m[cols[j]] = v
		}
		out = append(out, m)
	}
	st.stats.rows.Add(int64(len(out)))
	return out, nil
}
