package splunkfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// utf8BOM starts the export stream, as splunkd sends it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// serveJobs answers the search jobs API, v1 (search/jobs) or v2
// (search/v2/jobs), under any namespace.
func (f *Fake) serveJobs(w http.ResponseWriter, r *http.Request, rest string, form url.Values) {
	var tail string
	switch {
	case strings.HasPrefix(rest, "search/v2/jobs"):
		tail = strings.TrimPrefix(rest, "search/v2/jobs")
	case strings.HasPrefix(rest, "search/jobs"):
		tail = strings.TrimPrefix(rest, "search/jobs")
	default:
		writeMessages(w, http.StatusNotFound, "ERROR", "Not Found")
		return
	}
	tail = strings.TrimPrefix(tail, "/")
	switch {
	case tail == "" && r.Method == http.MethodPost:
		f.createJob(w, form)
	case tail == "export":
		f.export(w, form)
	default:
		sid, op, _ := strings.Cut(tail, "/")
		f.mu.Lock()
		j := f.jobs[sid]
		f.mu.Unlock()
		if j == nil || j.cancelled {
			writeMessages(w, http.StatusNotFound, "ERROR", "Unknown sid.")
			return
		}
		switch op {
		case "":
			f.status(w, j)
		case "results":
			f.results(w, j, form)
		case "control":
			f.control(w, j, form)
		default:
			writeMessages(w, http.StatusNotFound, "ERROR", "Not Found")
		}
	}
}

// takeQuota reports whether this search is refused for the quota.
func (f *Fake) takeQuota() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.quota < 0:
		return true
	case f.quota > 0:
		f.quota--
		return true
	}
	return false
}

func epochForm(form url.Values, key string) (time.Time, error) {
	n, err := strconv.ParseInt(form.Get(key), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not epoch seconds", key, form.Get(key))
	}
	return time.Unix(n, 0), nil
}

func (f *Fake) createJob(w http.ResponseWriter, form url.Values) {
	if f.takeQuota() {
		writeMessages(w, http.StatusServiceUnavailable, "FATAL", QuotaMessage)
		return
	}
	spl := form.Get("search")
	if !strings.HasPrefix(spl, "search ") && !strings.HasPrefix(spl, "|") {
		writeMessages(w, http.StatusBadRequest, "FATAL", "Unknown search command '"+strings.Fields(spl + " x")[0]+"'.")
		return
	}
	earliest, err1 := epochForm(form, "earliest_time")
	latest, err2 := epochForm(form, "latest_time")
	if err1 != nil || err2 != nil {
		writeMessages(w, http.StatusBadRequest, "FATAL", fmt.Sprint(err1, err2))
		return
	}
	rows, fatal := f.evaluate(spl, earliest, latest)
	f.mu.Lock()
	f.seq++
	sid := fmt.Sprintf("1741083330.%d_9C4E3A2B", f.seq)
	if f.fatal != "" {
		fatal = f.fatal
	}
	f.jobs[sid] = &job{sid: sid, spl: spl, rows: rows, fatal: fatal}
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"sid": sid})
}

// status answers a job's status: QUEUED on the first poll, RUNNING for
// the scripted polls, then DONE or FAILED.
func (f *Fake) status(w http.ResponseWriter, j *job) {
	f.mu.Lock()
	j.polls++
	state, msgs := "DONE", any(map[string]any{})
	switch {
	case j.polls == 1:
		state = "QUEUED"
	case f.neverDone || j.polls <= 1+f.runningPolls:
		state = "RUNNING"
	case j.fatal != "":
		state, msgs = "FAILED", []map[string]string{{"type": "FATAL", "text": j.fatal}}
	case f.doneFatal != "":
		msgs = []map[string]string{{"type": "FATAL", "text": f.doneFatal}}
	}
	n := len(j.rows)
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": j.sid, "content": map[string]any{
		"sid": j.sid, "dispatchState": state, "isDone": state == "DONE" || state == "FAILED", "isFailed": state == "FAILED",
		"doneProgress": 1, "resultCount": n, "messages": msgs,
	}}}})
}

// results answers a page of a job's rows (offset, count, capped by the
// server's maximum).
func (f *Fake) results(w http.ResponseWriter, j *job, form url.Values) {
	f.mu.Lock()
	body, status, limit, ignoreOffset := f.resultsBody, f.resultsStatus, f.resultsCap, f.ignoreOffset
	f.mu.Unlock()
	if status != 0 {
		writeMessages(w, status, "ERROR", "results unavailable")
		return
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	off, _ := strconv.Atoi(form.Get("offset"))
	if ignoreOffset {
		off = 0
	}
	count, _ := strconv.Atoi(form.Get("count"))
	if count == 0 || (limit > 0 && count > limit) {
		count = limit
	}
	rows := j.rows
	if off > len(rows) {
		off = len(rows)
	}
	rows = rows[off:]
	if count > 0 && count < len(rows) {
		rows = rows[:count]
	}
	writeJSON(w, 200, map[string]any{"preview": false, "init_offset": off, "messages": []any{}, "results": rows})
}

// control answers job control; cancel forgets the job.
func (f *Fake) control(w http.ResponseWriter, j *job, form url.Values) {
	f.mu.Lock()
	st := f.cancelStatus
	if st == 0 && form.Get("action") == "cancel" {
		j.cancelled = true
	}
	f.mu.Unlock()
	if st != 0 {
		writeMessages(w, st, "ERROR", "control failed")
		return
	}
	writeMessages(w, 200, "INFO", "Search job cancelled.")
}

// export streams the search's rows as the export endpoint does: a BOM,
// optionally a preview result set, the final rows with lastrow on the
// last one, optionally an inline FATAL frame.
func (f *Fake) export(w http.ResponseWriter, form url.Values) {
	if f.takeQuota() {
		writeMessages(w, http.StatusServiceUnavailable, "FATAL", QuotaMessage)
		return
	}
	earliest, _ := epochForm(form, "earliest_time")
	latest, _ := epochForm(form, "latest_time")
	rows, fatal := f.evaluate(form.Get("search"), earliest, latest)
	f.mu.Lock()
	preview := f.exportPreview
	if fatal == "" {
		fatal = f.exportFatal
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	var b bytes.Buffer
	b.Write(utf8BOM)
	frame := func(v any) {
		line, _ := json.Marshal(v)
		b.Write(line)
		b.WriteByte('\n')
	}
	result := func(preview bool, i int, r Row) {
		m := map[string]any{"preview": preview, "offset": i, "result": r}
		if i == len(rows)-1 {
			m["lastrow"] = true
		}
		frame(m)
	}
	if preview {
		for i, r := range rows {
			pr := Row{}
			for k, v := range r {
				pr[k] = v
			}
			pr["event_id"] = "preview-" + strconv.Itoa(i)
			result(true, i, pr)
		}
	}
	fatalFrame := map[string]any{"messages": []map[string]string{{"type": "FATAL", "text": fatal}}}
	for i, r := range rows {
		result(false, i, r)
		if i == 0 && fatal != "" {
			frame(fatalFrame)
		}
	}
	if len(rows) == 0 && fatal != "" {
		line, _ := json.Marshal(fatalFrame)
		b.Write(line)
	}
	_, _ = w.Write(b.Bytes())
}
