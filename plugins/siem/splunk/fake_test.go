package splunk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test credentials of the fake. They are long and distinctive so that a
// leak into an error message is found by a plain substring search.
const (
	fakeToken    = "tok-7f3a9c1e5b2d4f60a8e1"
	fakeUser     = "vigil-svc"
	fakePassword = "pw-Zq8x4Lr2Vt6Np0Kd"
	fakeSession  = "sess-192e7a5c3f0b8d64"
	fakeHECToken = "hec-0c6b2e9a7d1f3e58b4a2"
)

// quotaMessage is the text Splunk answers with HTTP 503 when the role's
// concurrent-search quota is reached (quoted in hasadna/open-bus#177).
const quotaMessage = `Search not executed: The maximum number of concurrent historical searches for this user based on their role quota has been reached., concurrency_category="historical", concurrency_context="user_instance-wide", current_concurrency=3, concurrency_limit=3`

// fakeSplunk is test equipment, never a code path of a user's run: an
// in-process Splunk (TLS) answering the REST search API, the ES notable
// update endpoint and HTTP Event Collector in the documented wire formats
// (the recorded SDK fixtures in testdata for results and export streams).
// It records every request so that tests assert the SPL and the
// parameters sent. Its "search" understands exactly the SPL vigil builds:
// the base search, appended per-expectation subsearches, the raw-event
// marker search.
type fakeSplunk struct {
	t      *testing.T
	srv    *httptest.Server
	caFile string

	mu       sync.Mutex
	reqs     []fakeReq
	sessions map[string]bool
	jobs     map[string]*fakeJob
	seq      int

	// Data.
	notables []fakeNotable
	events   []fakeEvent
	queries  map[string][]row // rows of a native query, by its text
	rules    []fakeRule
	// Search behaviour.
	baseSearch     string // the base SPL answered with the notables
	quota          int    // the next N job creations/exports answer 503 (-1: all)
	fatal          string // every job FAILs with this FATAL message
	doneFatal      string // jobs end DONE with this FATAL message
	runningPolls   int    // status polls answered RUNNING before DONE
	neverDone      bool
	resultsCap     int    // rows per results answer at most (maxresultrows)
	resultsBody    []byte // answer /results with these bytes verbatim
	resultsStatus  int    // answer /results with this status (0: 200)
	cancelStatus   int    // answer job control with this status (0: 200)
	exportPreview  bool   // stream a preview set before the final rows
	exportFatal    string // an inline FATAL frame after the first row
	expireSessions int    // the next N requests with a session key get 401
	infoDelay      time.Duration
	ignoreOffset   bool          // /results answers from offset 0 whatever is asked
	clockSkew      time.Duration // the server's clock minus the real one (Date header)
	// Check data.
	version string
	caps    []string
	saved   []map[string]any
	// savedStatuses answer the saved searches listing first, in order
	// (429, 403, ...), before it succeeds.
	savedStatuses []int
	// notable_update answer.
	updateReply string
	// HEC.
	hecIndexes []string       // allowed indexes; empty: any
	hecReplies []fakeHECReply // answered first, in order, then success
	hecAck     bool
	ackPolls   int // ack polls answered false before true
	ackSeq     int64
	acks       map[int64]int
	healthCode int
}

type fakeReq struct {
	Method, Path string
	Form         url.Values // query and form merged
	Auth         string
	Header       http.Header
	Body         []byte
}

type fakeNotable struct {
	row       row
	visibleAt time.Time
}

// fakeEvent is an indexed event.
type fakeEvent struct {
	time, indexed time.Time
	host, index   string
	sourcetype    string
	raw           string
	marker        string
}

// fakeRule is a "correlation search" of the fake: every ingested event
// whose text contains Contains raises a notable Delay after the event's
// own time, visible Delay after ingestion.
type fakeRule struct {
	Contains, Name, SearchName string
	Techniques                 []string
	Delay                      time.Duration
	// Shift moves the notable's _time (a clock behind: negative);
	// NoMarker leaves the marker out of the notable's fields.
	Shift    time.Duration
	NoMarker bool
}

type fakeHECReply struct {
	Status, Code int
	Text         string
}

type fakeJob struct {
	sid, spl  string
	rows      []row
	polls     int
	cancelled bool
	fatal     string
}

func newFake(t *testing.T) *fakeSplunk {
	t.Helper()
	f := &fakeSplunk{
		t: t, sessions: map[string]bool{}, jobs: map[string]*fakeJob{}, queries: map[string][]row{},
		baseSearch: DefaultSearch, version: "9.2.1", caps: []string{"search", "edit_notable_events"},
		acks: map[int64]int{}, healthCode: 17,
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// config returns plugin params for the fake (token auth, its CA, HEC on
// the same server) followed by extra TOML lines.
func (f *fakeSplunk) config(extra string) string {
	if !strings.Contains(extra, "quota_wait") {
		extra = "quota_wait = \"0s\"\n" + extra
	}
	return fmt.Sprintf("url = %q\ntoken = %q\nca_cert = %q\nhec_url = %q\nhec_token = %q\n%s\n",
		f.srv.URL, fakeToken, f.caFile, f.srv.URL, fakeHECToken, extra)
}

// requests returns the recorded requests whose path ends with suffix.
func (f *fakeSplunk) requests(method, suffix string) []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeReq
	for _, r := range f.reqs {
		if (method == "" || r.Method == method) && strings.HasSuffix(r.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// jobCreations returns the job-creation requests.
func (f *fakeSplunk) jobCreations() []fakeReq {
	return f.requests(http.MethodPost, "/jobs")
}

func (f *fakeSplunk) addNotable(r row, visibleAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notables = append(f.notables, fakeNotable{row: r, visibleAt: visibleAt})
}

// splunkTime renders t as results render _time.
func splunkTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-07:00") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeMessages(w http.ResponseWriter, status int, typ, text string) {
	writeJSON(w, status, map[string]any{"messages": []map[string]string{{"type": typ, "text": text}}})
}

func (f *fakeSplunk) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form := url.Values{}
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		pf, err := url.ParseQuery(string(body))
		if err != nil {
			writeMessages(w, http.StatusBadRequest, "ERROR", "bad form")
			return
		}
		for k, v := range pf {
			form[k] = append(form[k], v...)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeReq{Method: r.Method, Path: r.URL.Path, Form: form, Auth: r.Header.Get("Authorization"), Header: r.Header.Clone(), Body: body})
	skew := f.clockSkew
	f.mu.Unlock()
	w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))

	p := r.URL.Path
	if strings.HasPrefix(p, "/services/collector/") {
		f.serveHEC(w, r, strings.TrimPrefix(p, "/services/collector/"), body)
		return
	}
	if p == "/services/auth/login" {
		f.login(w, form)
		return
	}
	if !f.authorised(r.Header.Get("Authorization")) {
		writeMessages(w, http.StatusUnauthorized, "WARN", "call not properly authenticated")
		return
	}
	switch {
	case p == "/services/server/info":
		if f.infoDelay > 0 {
			select {
			case <-time.After(f.infoDelay):
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": "server-info", "content": map[string]any{"version": f.version, "serverName": "fake-sh"}}}})
	case p == "/services/authentication/current-context":
		writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": "tokens", "content": map[string]any{"username": "vigil-svc", "capabilities": f.caps}}}})
	case p == "/servicesNS/-/-/saved/searches":
		f.mu.Lock()
		status := 0
		if len(f.savedStatuses) > 0 {
			status, f.savedStatuses = f.savedStatuses[0], f.savedStatuses[1:]
		}
		f.mu.Unlock()
		if status != 0 {
			writeMessages(w, status, "ERROR", http.StatusText(status))
			return
		}
		writeJSON(w, 200, map[string]any{"entry": f.saved})
	case p == "/services/notable_update":
		reply := f.updateReply
		if reply == "" {
			n := len(form["ruleUIDs"])
			reply = fmt.Sprintf(`{"success":true,"message":"%d event(s) updated successfully","details":{},"success_count":%d,"failure_count":0}`, n, n)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	default:
		rest, ok := stripNamespace(p)
		if !ok {
			writeMessages(w, http.StatusNotFound, "ERROR", "Not Found")
			return
		}
		f.serveJobs(w, r, rest, form)
	}
}

// stripNamespace returns the path after /services/ or /servicesNS/o/a/.
func stripNamespace(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, "/services/"); ok {
		return rest, true
	}
	if rest, ok := strings.CutPrefix(p, "/servicesNS/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) == 3 {
			return parts[2], true
		}
	}
	return "", false
}

func (f *fakeSplunk) authorised(h string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case h == "Bearer "+fakeToken:
		return true
	case strings.HasPrefix(h, "Splunk ") && f.sessions[strings.TrimPrefix(h, "Splunk ")]:
		if f.expireSessions > 0 {
			f.expireSessions--
			delete(f.sessions, strings.TrimPrefix(h, "Splunk "))
			return false
		}
		return true
	}
	return false
}

func (f *fakeSplunk) login(w http.ResponseWriter, form url.Values) {
	if form.Get("username") != fakeUser || form.Get("password") != fakePassword {
		writeMessages(w, http.StatusUnauthorized, "WARN", "Login failed")
		return
	}
	f.mu.Lock()
	key := fmt.Sprintf("%s-%d", fakeSession, len(f.sessions))
	f.sessions[key] = true
	f.mu.Unlock()
	if form.Get("output_mode") == "json" {
		writeJSON(w, 200, map[string]string{"sessionKey": key, "message": "", "code": ""})
		return
	}
	_, _ = fmt.Fprintf(w, "<response>\n<sessionKey>%s</sessionKey>\n</response>\n", key)
}

func (f *fakeSplunk) serveJobs(w http.ResponseWriter, r *http.Request, rest string, form url.Values) {
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
		job := f.jobs[sid]
		f.mu.Unlock()
		if job == nil || job.cancelled {
			writeMessages(w, http.StatusNotFound, "ERROR", "Unknown sid.")
			return
		}
		switch op {
		case "":
			f.status(w, job)
		case "results":
			f.results(w, job, form)
		case "control":
			f.control(w, job, form)
		default:
			writeMessages(w, http.StatusNotFound, "ERROR", "Not Found")
		}
	}
}

// takeQuota reports whether this search is refused for the quota.
func (f *fakeSplunk) takeQuota() bool {
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

func (f *fakeSplunk) createJob(w http.ResponseWriter, form url.Values) {
	if f.takeQuota() {
		writeMessages(w, http.StatusServiceUnavailable, "FATAL", quotaMessage)
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
	f.jobs[sid] = &fakeJob{sid: sid, spl: spl, rows: rows, fatal: fatal}
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"sid": sid})
}

func (f *fakeSplunk) status(w http.ResponseWriter, job *fakeJob) {
	f.mu.Lock()
	job.polls++
	state, msgs := "DONE", any(map[string]any{})
	switch {
	case job.polls == 1:
		state = "QUEUED"
	case f.neverDone || job.polls <= 1+f.runningPolls:
		state = "RUNNING"
	case job.fatal != "":
		state, msgs = "FAILED", []map[string]string{{"type": "FATAL", "text": job.fatal}}
	case f.doneFatal != "":
		msgs = []map[string]string{{"type": "FATAL", "text": f.doneFatal}}
	}
	n := len(job.rows)
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": job.sid, "content": map[string]any{
		"sid": job.sid, "dispatchState": state, "isDone": state == "DONE" || state == "FAILED", "isFailed": state == "FAILED",
		"doneProgress": 1, "resultCount": n, "messages": msgs,
	}}}})
}

func (f *fakeSplunk) results(w http.ResponseWriter, job *fakeJob, form url.Values) {
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
	rows := job.rows
	if off > len(rows) {
		off = len(rows)
	}
	rows = rows[off:]
	if count > 0 && count < len(rows) {
		rows = rows[:count]
	}
	writeJSON(w, 200, map[string]any{"preview": false, "init_offset": off, "messages": []any{}, "results": rows})
}

func (f *fakeSplunk) control(w http.ResponseWriter, job *fakeJob, form url.Values) {
	f.mu.Lock()
	st := f.cancelStatus
	if st == 0 && form.Get("action") == "cancel" {
		job.cancelled = true
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
func (f *fakeSplunk) export(w http.ResponseWriter, form url.Values) {
	if f.takeQuota() {
		writeMessages(w, http.StatusServiceUnavailable, "FATAL", quotaMessage)
		return
	}
	earliest, _ := epochForm(form, "earliest_time")
	latest, _ := epochForm(form, "latest_time")
	rows, fatal := f.evaluate(form.Get("search"), earliest, latest)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	var b bytes.Buffer
	b.Write(utf8BOM)
	frame := func(preview bool, i int, r row, last bool) {
		m := map[string]any{"preview": preview, "offset": i, "result": r}
		if last {
			m["lastrow"] = true
		}
		line, _ := json.Marshal(m)
		b.Write(line)
		b.WriteByte('\n')
	}
	if f.exportPreview {
		for i, r := range rows {
			pr := row{}
			for k, v := range r {
				pr[k] = v
			}
			pr["event_id"] = "preview-" + strconv.Itoa(i)
			frame(true, i, pr, i == len(rows)-1)
		}
	}
	if fatal == "" {
		fatal = f.exportFatal
	}
	for i, r := range rows {
		frame(false, i, r, i == len(rows)-1)
		if i == 0 && fatal != "" {
			line, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"type": "FATAL", "text": fatal}}})
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	if len(rows) == 0 && fatal != "" {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"type": "FATAL", "text": fatal}}})
		b.Write(line)
	}
	_, _ = w.Write(b.Bytes())
}

var (
	appendRE = regexp.MustCompile(`^(.*) \| eval ` + expectationsField + `=mvappend\((.*)\)$`)
	quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// evaluate runs the SPL vigil builds against the fake's data. Unknown SPL
// fails like an unknown command would.
func (f *fakeSplunk) evaluate(spl string, earliest, latest time.Time) ([]row, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inWindow := func(r row) bool {
		t, err := parseTime(r.first("_time"))
		return err == nil && !t.Before(earliest) && t.Before(latest)
	}
	parts := strings.Split(spl, " | append [")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.TrimSuffix(parts[i], "]")
	}
	var out []row
	now := time.Now()
	for _, part := range parts {
		switch {
		case appendRE.MatchString(part):
			m := appendRE.FindStringSubmatch(part)
			var ids []any
			for _, q := range quotedRE.FindAllStringSubmatch(m[2], -1) {
				ids = append(ids, q[1])
			}
			rows, ok := f.queries[m[1]]
			if !ok {
				return nil, "Error in 'search' command: unknown query in the fake: " + m[1]
			}
			for _, r := range rows {
				if !inWindow(r) {
					continue
				}
				c := row{}
				for k, v := range r {
					c[k] = v
				}
				c[expectationsField] = ids
				out = append(out, c)
			}
		case part == f.baseSearch:
			for _, n := range f.notables {
				if !n.visibleAt.After(now) && inWindow(n.row) {
					out = append(out, n.row)
				}
			}
		case strings.HasPrefix(part, "search (index="):
			var markers []string
			for _, q := range quotedRE.FindAllStringSubmatch(part, -1) {
				if strings.HasPrefix(q[1], "vigil-") {
					markers = append(markers, q[1])
				}
			}
			for _, e := range f.events {
				if e.time.Before(earliest) || !e.time.Before(latest) || e.indexed.After(now) {
					continue
				}
				for _, m := range markers {
					if strings.Contains(e.raw, m) {
						out = append(out, row{
							"_time": splunkTime(e.time), "_raw": e.raw, "host": e.host, "index": e.index, "sourcetype": e.sourcetype,
							"vigil_indextime": strconv.FormatInt(e.indexed.Unix(), 10), "vigil_marker": e.marker,
						})
						break
					}
				}
			}
		default:
			return nil, "Unknown search command in the fake: " + part
		}
	}
	return out, ""
}

func (f *fakeSplunk) serveHEC(w http.ResponseWriter, r *http.Request, endpoint string, body []byte) {
	reply := func(status, code int, text string, extra map[string]any) {
		m := map[string]any{"text": text, "code": code}
		for k, v := range extra {
			m[k] = v
		}
		writeJSON(w, status, m)
	}
	if endpoint == "health" {
		f.mu.Lock()
		code := f.healthCode
		f.mu.Unlock()
		if code == 17 {
			reply(200, 17, "HEC is healthy", nil)
		} else {
			reply(503, code, "HEC is unhealthy, queues are full", nil)
		}
		return
	}
	switch h := r.Header.Get("Authorization"); {
	case h == "":
		reply(401, 2, "Token is required", nil)
		return
	case !strings.HasPrefix(h, "Splunk "):
		reply(401, 3, "Invalid authorization", nil)
		return
	case h != "Splunk "+fakeHECToken:
		reply(403, 4, "Invalid token", nil)
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	f.mu.Lock()
	defer f.mu.Unlock()
	if endpoint == "ack" {
		var req struct {
			Acks []int64 `json:"acks"`
		}
		if err := json.Unmarshal(body, &req); err != nil || channel == "" {
			reply(400, 6, "Invalid data format", nil)
			return
		}
		out := map[string]bool{}
		for _, id := range req.Acks {
			left, ok := f.acks[id]
			out[strconv.FormatInt(id, 10)] = ok && left <= 0
			if ok {
				f.acks[id] = left - 1
			}
		}
		writeJSON(w, 200, map[string]any{"acks": out})
		return
	}
	if endpoint != "event" {
		reply(404, 404, "Not Found", nil)
		return
	}
	if len(f.hecReplies) > 0 {
		next := f.hecReplies[0]
		f.hecReplies = f.hecReplies[1:]
		reply(next.Status, next.Code, next.Text, nil)
		return
	}
	if f.hecAck && channel == "" {
		reply(400, 10, "Data channel is missing", nil)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var envs []hecEnvelope
	for i := 0; ; i++ {
		var env hecEnvelope
		err := dec.Decode(&env)
		if err == io.EOF {
			break
		}
		switch {
		case err != nil:
			reply(400, 6, "Invalid data format", map[string]any{"invalid-event-number": i})
			return
		case len(env.Event) == 0:
			reply(400, 12, "Event field is required", map[string]any{"invalid-event-number": i})
			return
		case len(f.hecIndexes) > 0 && !contains(f.hecIndexes, env.Index):
			reply(400, 7, "Incorrect index", map[string]any{"invalid-event-number": i})
			return
		}
		envs = append(envs, env)
	}
	if len(envs) == 0 {
		reply(400, 5, "No data", nil)
		return
	}
	now := time.Now()
	for _, env := range envs {
		t, err := parseTime(string(env.Time))
		if err != nil {
			reply(400, 6, "Invalid data format", nil)
			return
		}
		ev := fakeEvent{time: t, indexed: now, host: env.Host, index: env.Index, sourcetype: env.Sourcetype, raw: string(env.Event), marker: env.Fields["vigil_marker"]}
		f.events = append(f.events, ev)
		f.raise(ev, now)
	}
	extra := map[string]any{}
	if f.hecAck {
		id := f.ackSeq
		f.ackSeq++
		f.acks[id] = f.ackPolls
		extra["ackId"] = id
	}
	reply(200, 0, "Success", extra)
}

// raise applies the fake's correlation rules to an ingested event (mu
// held).
func (f *fakeSplunk) raise(ev fakeEvent, ingested time.Time) {
	for _, rule := range f.rules {
		if !strings.Contains(ev.raw, rule.Contains) {
			continue
		}
		var parsed struct {
			Fields map[string]any `json:"fields"`
		}
		_ = json.Unmarshal([]byte(ev.raw), &parsed)
		process, _ := parsed.Fields["CommandLine"].(string)
		if rule.NoMarker {
			process, _, _ = strings.Cut(process, " # ")
		}
		techs := make([]any, len(rule.Techniques))
		for i, t := range rule.Techniques {
			techs[i] = t
		}
		sum := sha256.Sum256([]byte(rule.SearchName + ev.raw))
		at := ev.time.Add(rule.Delay + rule.Shift)
		f.notables = append(f.notables, fakeNotable{visibleAt: ingested.Add(rule.Delay), row: row{
			"_time":                    splunkTime(at),
			"event_id":                 fmt.Sprintf("FAKE%04d-0000-4000-8000-000000000000@@notable@@%s", len(f.notables), hex.EncodeToString(sum[:16])),
			"search_name":              rule.SearchName,
			"rule_name":                rule.Name,
			"annotations.mitre_attack": techs,
			"dest":                     ev.host,
			"process":                  process,
			"orig_time":                fmt.Sprintf("%d.%03d", ev.time.Unix(), ev.time.Nanosecond()/1e6),
			"urgency":                  "high",
		}})
	}
}

// savedSearch builds a saved/searches entry.
func savedSearch(name, label string, disabled, scheduled, notable bool, annotations string) map[string]any {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return map[string]any{
		"name": name, "acl": map[string]any{"app": "SplunkEnterpriseSecuritySuite"},
		"content": map[string]any{
			"disabled": disabled, "is_scheduled": scheduled, "action.notable": b(notable),
			"action.correlationsearch.enabled": "1", "action.correlationsearch.label": label,
			"action.correlationsearch.annotations": annotations,
		},
	}
}
