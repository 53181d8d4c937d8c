package sentinelfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// serveQuery answers POST /v1/workspaces/{id}/query: the query run over
// the workspace's tables within the timespan, as one PrimaryResult table;
// dynamic values as JSON text and datetimes in ISO 8601, as the API sends
// them.
func (f *Fake) serveQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	if !f.authorise(w, r, audienceQuery) {
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/workspaces/"+WorkspaceID+"/query" {
		writeError(w, http.StatusNotFound, "WorkspaceNotFoundError", "Workspace could not be found")
		return
	}
	var q struct {
		Query    string `json:"query"`
		Timespan string `json:"timespan"`
	}
	if err := json.Unmarshal(body, &q); err != nil || strings.TrimSpace(q.Query) == "" {
		writeError(w, http.StatusBadRequest, "BadArgumentError", "The request had some invalid properties")
		return
	}
	pl, err := parse(q.Query)
	if err != nil {
		f.queryError(w, err)
		return
	}
	f.mu.Lock()
	ctx := &evalCtx{tables: f.tables, now: time.Now().Add(f.clockSkew)}
	partial := f.partial
	if q.Timespan != "" {
		a, b, ok := strings.Cut(q.Timespan, "/")
		s, err1 := time.Parse(time.RFC3339Nano, a)
		e, err2 := time.Parse(time.RFC3339Nano, b)
		if !ok || err1 != nil || err2 != nil {
			f.mu.Unlock()
			writeError(w, http.StatusBadRequest, "BadArgumentError", "timespan "+q.Timespan+": the fake knows start/end only")
			return
		}
		ctx.start, ctx.end = s, e
	}
	rows, cols, err := ctx.run(pl)
	f.mu.Unlock()
	if err != nil {
		f.queryError(w, err)
		return
	}
	out := map[string]any{"tables": []any{table(rows, cols)}}
	if partial != "" {
		if len(rows) > 0 {
			out["tables"] = []any{table(rows[:len(rows)/2], cols)}
		}
		out["error"] = map[string]any{
			"code": "PartialError", "message": "There were some errors when processing your query.",
			"details": []any{map[string]any{"code": "EngineError", "message": partial,
				"innererror": map[string]any{"code": "-2133196797", "message": partial, "severity": 2, "severityName": "Error"}}},
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// queryError answers a query the fake cannot run as the API does: 400
// BadArgumentError with the syntax or semantic error inside.
func (f *Fake) queryError(w http.ResponseWriter, err error) {
	inner := "SyntaxError"
	var se *SemanticError
	if errors.As(err, &se) {
		inner = "SemanticError"
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
		"message": "The request had some invalid properties", "code": "BadArgumentError",
		"innererror": map[string]any{"code": inner, "message": err.Error()},
	}})
}

// table renders rows as a result table; a column's type is that of its
// first value.
func table(rows []row, cols []string) map[string]any {
	types := make([]string, len(cols))
	for i, c := range cols {
		types[i] = "string"
		for _, r := range rows {
			if v, ok := r.rec[c]; ok && v != nil {
				types[i] = typeOf(v)
				break
			}
		}
	}
	columns := make([]any, len(cols))
	for i, c := range cols {
		columns[i] = map[string]any{"name": c, "type": types[i]}
	}
	out := make([]any, 0, len(rows))
	for _, r := range rows {
		vals := make([]any, len(cols))
		for i, c := range cols {
			vals[i] = wire(r.rec[c])
		}
		out = append(out, vals)
	}
	return map[string]any{"name": "PrimaryResult", "columns": columns, "rows": out}
}

func typeOf(v any) string {
	switch v.(type) {
	case time.Time:
		return "datetime"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int64:
		return "long"
	case float64:
		return "real"
	}
	return "dynamic"
}

// wire renders a value as the query API sends it.
func wire(v any) any {
	switch t := v.(type) {
	case nil, string, bool, int, int64, float64:
		return t
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano)
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

// normalise turns TimeGenerated-like strings of a record into times, as
// the workspace's datetime columns hold them.
func normalise(rec Record) Record {
	out := make(Record, len(rec))
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := rec[k]
		if s, ok := v.(string); ok && isTimeColumn(k) {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				v = t
			}
		}
		out[k] = v
	}
	return out
}

// isTimeColumn reports the datetime columns of the fake's tables.
func isTimeColumn(k string) bool {
	switch k {
	case "TimeGenerated", "StartTime", "EndTime", "CreatedTime", "FirstActivityTime", "LastActivityTime", "ClosedTime", "EventStartTime", "EventEndTime":
		return true
	}
	return false
}

// formatTime is how alerts' datetimes are stored.
func formatTime(t time.Time) string { return fmt.Sprint(t.UTC().Format(time.RFC3339Nano)) }
