package splunk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// row is one search result: field name to a string, or a list of strings
// for a multivalue field (older servers join multivalues with "\n").
type row map[string]any

// search is one SPL run over a time window.
type search struct {
	spl      string
	earliest time.Time
	latest   time.Time
	// maxRows caps the rows; more is an error.
	maxRows int
}

// SearchError is a search Splunk ran but failed (dispatchState FAILED, or
// FATAL/ERROR messages): it names the SPL.
type SearchError struct {
	SID      string
	State    string
	Messages []Message
	SPL      string
}

// Error names the job, what Splunk said and the SPL.
func (e *SearchError) Error() string {
	var b strings.Builder
	b.WriteString("search")
	if e.SID != "" {
		b.WriteString(" job " + e.SID)
	}
	if e.State != "" {
		b.WriteString(" " + e.State)
	} else {
		b.WriteString(" failed")
	}
	for i, m := range e.Messages {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(m.String())
	}
	fmt.Fprintf(&b, " (SPL: %s)", excerpt(e.SPL, 300))
	return b.String()
}

// epoch renders t as epoch seconds for earliest_time/latest_time.
func epoch(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// window returns the earliest_time and latest_time of s: whole seconds,
// earliest rounded down and latest up past s.latest (latest is exclusive).
func (s search) window() (string, string) {
	return epoch(s.earliest), strconv.FormatInt(int64(math.Floor(float64(s.latest.UnixNano())/1e9))+1, 10)
}

// run runs s in the configured mode and returns its final rows. waited is
// how long it waited out the concurrent-search quota.
func (st *state) run(ctx context.Context, s search) (rows []row, waited time.Duration, err error) {
	if st.cfg.Mode == ModeExport {
		return st.export(ctx, s)
	}
	return st.runJob(ctx, s)
}

// createJob creates a search job, waiting out the concurrent-search quota
// (HTTP 503) for at most quota_wait. waited is the time spent waiting.
func (st *state) createJob(ctx context.Context, s search) (sid string, waited time.Duration, err error) {
	earliest, latest := s.window()
	form := url.Values{
		"search": {s.spl}, "earliest_time": {earliest}, "latest_time": {latest},
		"output_mode": {"json"}, "exec_mode": {"normal"},
		// Keep the job at most 10 minutes after it stops being used, in
		// case vigil dies before it cancels it.
		"timeout": {"600"},
	}
	wait := st.cfg.quotaBackoff
	for {
		b, _, err := st.client.do(ctx, request{method: http.MethodPost, path: st.client.jobsPath(), form: form})
		if err == nil {
			var j struct {
				SID string `json:"sid"`
			}
			if err := json.Unmarshal(b, &j); err != nil || j.SID == "" {
				return "", waited, fmt.Errorf("create search job: the answer has no sid: %s", excerpt(string(b), 200))
			}
			st.counters.jobs.Add(1)
			return j.SID, waited, nil
		}
		if !errors.Is(err, ErrBusy) {
			return "", waited, fmt.Errorf("create search job: %w", err)
		}
		st.counters.quota.Add(1)
		d := max(wait, retryAfter(err))
		if waited+d > st.cfg.QuotaWait {
			return "", waited, fmt.Errorf("create search job: still refused after waiting %s (quota_wait): %w", waited.Round(time.Millisecond), err)
		}
		if err := sleep(ctx, d); err != nil {
			return "", waited, fmt.Errorf("create search job: %w", err)
		}
		waited += d
		wait = min(2*wait, 8*time.Second)
	}
}

// jobStatus is the content of a job entry.
type jobStatus struct {
	DispatchState string   `json:"dispatchState"`
	IsDone        flexBool `json:"isDone"`
	IsFailed      flexBool `json:"isFailed"`
	ResultCount   flexInt  `json:"resultCount"`
	Messages      messages `json:"messages"`
}

// runJob creates a job for s, waits until it is done, reads all its
// results and cancels it. The job is cancelled whatever happens; one that
// cannot be cancelled now is cancelled by Close.
func (st *state) runJob(ctx context.Context, s search) ([]row, time.Duration, error) {
	sid, waited, err := st.createJob(ctx, s)
	if err != nil {
		return nil, waited, err
	}
	st.track(sid)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if st.cancelJob(cctx, sid) == nil {
			st.untrack(sid)
		}
	}()

	jctx, cancel := context.WithTimeoutCause(ctx, st.cfg.JobTimeout,
		fmt.Errorf("search job %s did not finish within %s (job_timeout)", sid, st.cfg.JobTimeout))
	defer cancel()
	status, err := st.waitJob(jctx, sid, s)
	if err != nil {
		return nil, waited, err
	}
	if int(status.ResultCount) > s.maxRows {
		return nil, waited, fmt.Errorf("search job %s returned %d rows, over max_rows %d: narrow the search (SPL: %s)",
			sid, int(status.ResultCount), s.maxRows, excerpt(s.spl, 300))
	}
	rows, err := st.readResults(jctx, sid, s, int(status.ResultCount))
	return rows, waited, err
}

// waitJob polls the job until DONE (or FAILED: an error naming the SPL).
func (st *state) waitJob(ctx context.Context, sid string, s search) (jobStatus, error) {
	path := st.client.jobsPath() + "/" + url.PathEscape(sid)
	wait := 50 * time.Millisecond
	for {
		b, _, err := st.client.do(ctx, request{method: http.MethodGet, path: path, query: url.Values{"output_mode": {"json"}}, retry: true})
		if err != nil {
			return jobStatus{}, fmt.Errorf("poll search job %s: %w", sid, ctxCause(ctx, err))
		}
		var j struct {
			Entry []struct {
				Content jobStatus `json:"content"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &j); err != nil || len(j.Entry) == 0 {
			return jobStatus{}, fmt.Errorf("poll search job %s: unexpected answer: %s", sid, excerpt(string(b), 200))
		}
		c := j.Entry[0].Content
		state := strings.ToUpper(c.DispatchState)
		switch {
		case state == "FAILED" || bool(c.IsFailed):
			return c, &SearchError{SID: sid, State: "FAILED", Messages: c.Messages.failures(), SPL: s.spl}
		case state == "DONE" || (state == "" && bool(c.IsDone)):
			if f := c.Messages.failures(); len(f) > 0 {
				return c, &SearchError{SID: sid, State: "DONE with errors", Messages: f, SPL: s.spl}
			}
			return c, nil
		case state == "QUEUED", state == "PARSING", state == "RUNNING", state == "PAUSED", state == "FINALIZING":
		default:
			return c, fmt.Errorf("poll search job %s: unknown dispatchState %q", sid, c.DispatchState)
		}
		if err := sleep(ctx, wait); err != nil {
			return c, fmt.Errorf("poll search job %s (%s): %w", sid, state, err)
		}
		wait = min(2*wait, time.Second)
	}
}

// ctxCause returns the cause of ctx's end when ctx ended, else err.
func ctxCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
			return c
		}
	}
	return err
}

// resultsPage is the body of /results?output_mode=json.
type resultsPage struct {
	Preview  bool     `json:"preview"`
	Messages messages `json:"messages"`
	Results  []row    `json:"results"`
	// InitOffset is the offset of the page's first row, as splunkd
	// answers it.
	InitOffset *int `json:"init_offset"`
}

// readResults reads the total result rows of a finished job, results_page
// rows per request (count/offset). The job's resultCount, not a short page,
// says when the rows are all read: a server cap (maxresultrows) below
// results_page answers short pages that are not the last.
func (st *state) readResults(ctx context.Context, sid string, s search, total int) ([]row, error) {
	path := st.client.jobsPath() + "/" + url.PathEscape(sid) + "/results"
	rows := make([]row, 0, total)
	for len(rows) < total {
		params := url.Values{
			"output_mode": {"json"}, "count": {strconv.Itoa(st.cfg.ResultsPage)}, "offset": {strconv.Itoa(len(rows))},
		}
		// v2 reads results with POST, v1 with GET (as the Java SDK does).
		r := request{method: http.MethodPost, path: path, form: params, retry: true}
		if st.cfg.API == APIv1 {
			r = request{method: http.MethodGet, path: path, query: params, retry: true}
		}
		b, status, err := st.client.do(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("read results of search job %s: %w", sid, ctxCause(ctx, err))
		}
		st.counters.pages.Add(1)
		var page resultsPage
		if status != http.StatusNoContent && len(bytes.TrimSpace(b)) > 0 {
			if err := decodeJSON(b, &page); err != nil {
				return nil, fmt.Errorf("read results of search job %s: %w", sid, err)
			}
		}
		if f := page.Messages.failures(); len(f) > 0 {
			return nil, &SearchError{SID: sid, State: "returned errors", Messages: f, SPL: s.spl}
		}
		if page.Preview {
			return nil, fmt.Errorf("read results of search job %s: preview results of a finished job", sid)
		}
		if len(page.Results) == 0 {
			return nil, fmt.Errorf("read results of search job %s: no rows at offset %d of %d", sid, len(rows), total)
		}
		// A server (or proxy) that drops the offset answers the first rows
		// again: rows would repeat and others go missing.
		if page.InitOffset != nil && *page.InitOffset != len(rows) {
			return nil, fmt.Errorf("read results of search job %s: asked for offset %d, answered from offset %d: the paging offset is ignored, so the results would be incomplete", sid, len(rows), *page.InitOffset)
		}
		if page.InitOffset == nil && len(rows) > 0 && reflect.DeepEqual(page.Results[0], rows[0]) {
			return nil, fmt.Errorf("read results of search job %s: the page at offset %d starts with the first row again: the paging offset is ignored, so the results would be incomplete", sid, len(rows))
		}
		rows = append(rows, page.Results...)
	}
	st.counters.rows.Add(int64(len(rows)))
	return rows, nil
}

// cancelJob cancels (and so deletes) a job vigil created. A job already
// gone is not an error.
func (st *state) cancelJob(ctx context.Context, sid string) error {
	path := st.client.jobsPath() + "/" + url.PathEscape(sid) + "/control"
	_, _, err := st.client.do(ctx, request{method: http.MethodPost, path: path, form: url.Values{"action": {"cancel"}, "output_mode": {"json"}}, retry: true})
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("cancel search job %s: %w", sid, err)
	}
	st.counters.cancelled.Add(1)
	return nil
}

// exportFrame is one object of the export stream.
type exportFrame struct {
	Preview  *bool    `json:"preview"`
	Offset   int      `json:"offset"`
	LastRow  bool     `json:"lastrow"`
	Result   row      `json:"result"`
	Messages messages `json:"messages"`
}

// export streams the results of s from /search/v2/jobs/export, keeping only
// the final (non-preview) rows. The concurrent-search quota is waited out
// as for jobs.
func (st *state) export(ctx context.Context, s search) ([]row, time.Duration, error) {
	earliest, latest := s.window()
	path := st.client.jobsPath() + "/export"
	form := url.Values{"search": {s.spl}, "earliest_time": {earliest}, "latest_time": {latest}, "output_mode": {"json"}}
	jctx, cancel := context.WithTimeoutCause(ctx, st.cfg.JobTimeout,
		fmt.Errorf("export search did not finish within %s (job_timeout)", st.cfg.JobTimeout))
	defer cancel()
	var (
		body   io.ReadCloser
		waited time.Duration
		wait   = st.cfg.quotaBackoff
	)
	for {
		var err error
		body, err = st.client.stream(jctx, request{method: http.MethodPost, path: path, form: form})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBusy) {
			return nil, waited, fmt.Errorf("export search: %w", ctxCause(jctx, err))
		}
		st.counters.quota.Add(1)
		d := max(wait, retryAfter(err))
		if waited+d > st.cfg.QuotaWait {
			return nil, waited, fmt.Errorf("export search: still refused after waiting %s (quota_wait): %w", waited.Round(time.Millisecond), err)
		}
		if err := sleep(jctx, d); err != nil {
			return nil, waited, fmt.Errorf("export search: %w", err)
		}
		waited += d
		wait = min(2*wait, 8*time.Second)
	}
	defer body.Close()
	st.counters.exports.Add(1)
	rows, err := readExport(body, s)
	if err != nil {
		return nil, waited, fmt.Errorf("export search: %w", ctxCause(jctx, err))
	}
	st.counters.rows.Add(int64(len(rows)))
	return rows, waited, nil
}

// readExport decodes an export stream: JSON objects one after the other
// (a UTF-8 BOM first is skipped), result frames and message frames. Only
// rows with preview false are kept; a FATAL or ERROR message is an error
// naming the SPL.
func readExport(r io.Reader, s search) ([]row, error) {
	br := &bomSkipper{r: r}
	dec := json.NewDecoder(br)
	var rows []row
	for {
		var f exportFrame
		err := dec.Decode(&f)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode export stream after %d rows: %w", len(rows), err)
		}
		if fs := f.Messages.failures(); len(fs) > 0 {
			return nil, &SearchError{State: "returned errors", Messages: fs, SPL: s.spl}
		}
		if f.Result == nil || f.Preview == nil || *f.Preview {
			continue
		}
		rows = append(rows, f.Result)
		if len(rows) > s.maxRows {
			return nil, fmt.Errorf("export returned over max_rows %d rows: narrow the search (SPL: %s)", s.maxRows, excerpt(s.spl, 300))
		}
	}
}

// bomSkipper drops a UTF-8 byte order mark at the start of a stream.
type bomSkipper struct {
	r       io.Reader
	checked bool
	buf     []byte
}

func (b *bomSkipper) Read(p []byte) (int, error) {
	if !b.checked {
		b.checked = true
		head := make([]byte, len(utf8BOM))
		n, err := io.ReadFull(b.r, head)
		head = head[:n]
		if !bytes.Equal(head, utf8BOM) {
			b.buf = head
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	if len(b.buf) > 0 {
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	}
	return b.r.Read(p)
}

// decodeJSON decodes b, naming what was wrong with it.
func decodeJSON(b []byte, v any) error {
	b = bytes.TrimPrefix(b, utf8BOM)
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed answer (%v): %s", err, excerpt(string(b), 120))
	}
	return nil
}

// flexBool decodes true/false, "1"/"0", "true"/"false" and 1/0.
type flexBool bool

// UnmarshalJSON accepts the shapes Splunk uses for booleans.
func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1", "t", "yes":
		*f = true
	case "false", "0", "f", "no", "", "null":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", excerpt(string(b), 40))
	}
	return nil
}

// flexInt decodes 3 and "3".
type flexInt int64

// UnmarshalJSON accepts a number or a string of one.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", excerpt(string(b), 40))
	}
	*f = flexInt(n)
	return nil
}
