// Package ddfake is an in-process fake of the parts of the Datadog API the
// datadog SIEM plugin uses, for its tests: test equipment only, never a
// code path a user's run takes.
//
// It speaks the wire format recorded in the official client's cassettes
// (testdata of the datadog package): the signals search (POST body, cursor
// paging that ends with an empty page, signals shaped like the real ones,
// with rule data under attributes.attributes), the logs search, the logs
// intake (gzip, 202 {}), the rules list and the signal state update, with
// the real error bodies (403 as text/plain, 404 {"errors":["Signal not
// found"]}), X-RateLimit-* headers on every API answer and 429s past the
// limit. Faults (5xx, slow or garbage answers) are scripted with SetFault.
// Ingested logs can go through the local SIEM's Sigma engine to raise
// signals after a configurable delay, and a go-vcr cassette can be replayed
// request by request, each request checked against the recorded one.
package ddfake

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// Paths served by the fake.
const (
	PathSignalsSearch = "/api/v2/security_monitoring/signals/search"
	PathRules         = "/api/v2/security_monitoring/rules"
	PathLogsSearch    = "/api/v2/logs/events/search"
	PathIntake        = "/api/v2/logs"
	pathSignalsPrefix = "/api/v2/security_monitoring/signals/"
)

// ForbiddenBody is a real 403 body, sent as text/plain (fixture
// v2_Feature_RUM_Remote_Config_..._Forbidden_response.yaml).
const ForbiddenBody = "{\"errors\":[{\"title\":\"Forbidden\"}]}\n"

// Options configure a fake.
type Options struct {
	// APIKey and AppKey are the keys the fake accepts (DD-API-KEY,
	// DD-APPLICATION-KEY; the intake needs only the API key).
	APIKey, AppKey string
	// RateLimit requests per RatePeriod are allowed per endpoint (default
	// 1000 per minute); every API answer carries X-RateLimit-* headers.
	RateLimit  int
	RatePeriod time.Duration
	// Detect, when set, evaluates ingested logs that carry sigma.logsource
	// and sigma.fields (as the plugin's Ingest writes them); each match
	// raises a signal stamped SignalDelay after the event, searchable from
	// then on.
	Detect      *detect.Engine
	SignalDelay time.Duration
	// Rules are served by the rules API.
	Rules []Rule
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ClockSkew is the server's clock minus Now, as its Date headers show
	// it (signals are stamped by what adds them).
	ClockSkew time.Duration
	// IgnoreCursor answers every signals search from its first signal, as
	// a server that drops page.cursor would.
	IgnoreCursor bool
}

// Rule is a detection rule of the fake.
type Rule struct {
	ID, Name, Type string
	Enabled        bool
	Deleted        bool
	Tags           []string
}

// Request is one request the fake received.
type Request struct {
	Method, Path string
	Query        map[string][]string
	Header       http.Header
	Body         []byte // decompressed
	At           time.Time
}

// Answer is what a fault makes the fake answer instead.
type Answer struct {
	Status      int
	ContentType string // default application/json
	Header      http.Header
	Body        string
	// Delay holds the answer back (slow answers, timeouts).
	Delay time.Duration
}

// Fault decides, per request (n counts the requests from 1), whether
// to answer it with a scripted Answer instead of serving it (nil: serve
// it). It runs under the fake's lock: it must not call the Server.
type Fault func(r Request, n int) *Answer

// Server is a fake Datadog. Create it with New; its methods are safe for
// concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	signals  []*signal
	groups   map[string]*signal // detection group key → signal
	logs     []*logEntry
	requests []Request
	fault    Fault
	nAPI     int
	windows  map[string]*window
	archived map[string]string // signal id → archive reason
	cassette *cassette
	seq      int
}

// New starts a fake. Close it when done.
func New(opts Options) *Server {
	if opts.RateLimit <= 0 {
		opts.RateLimit = 1000
	}
	if opts.RatePeriod <= 0 {
		opts.RatePeriod = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, groups: map[string]*signal{}, windows: map[string]*window{}, archived: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetFault installs f (nil removes it).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many requests went to path (with method, if given).
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path && (method == "" || r.Method == method) {
			n++
		}
	}
	return n
}

// Archived returns the archive reason of each archived signal.
func (s *Server) Archived() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.archived {
		out[k] = v
	}
	return out
}

// window is a fixed rate-limit window of one endpoint.
type window struct {
	start time.Time
	count int
}

func (s *Server) now() time.Time { return s.opts.Now() }

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "could not read the body: "+err.Error())
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, At: s.now()}
	intake := r.URL.Path == PathIntake && r.Method == http.MethodPost

	s.mu.Lock()
	s.requests = append(s.requests, req)
	var ans *Answer
	s.nAPI++
	if s.fault != nil {
		ans = s.fault(req, s.nAPI)
	}
	s.mu.Unlock()

	w.Header().Set("Date", s.now().Add(s.opts.ClockSkew).UTC().Format(http.TimeFormat))
	// Authentication comes first, as at Datadog.
	if r.Header.Get("DD-API-KEY") != s.opts.APIKey || (!intake && r.Header.Get("DD-APPLICATION-KEY") != s.opts.AppKey) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, ForbiddenBody)
		return
	}
	if !intake {
		if limited := s.rateLimit(w, r.URL.Path); limited {
			writeErrors(w, http.StatusTooManyRequests, "Rate limit exceeded")
			return
		}
	}
	if ans != nil {
		if ans.Delay > 0 {
			select {
			case <-time.After(ans.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if ans.Status != 0 {
			for k, vs := range ans.Header {
				w.Header()[http.CanonicalHeaderKey(k)] = vs
			}
			ct := ans.ContentType
			if ct == "" {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(ans.Status)
			io.WriteString(w, ans.Body)
			return
		}
	}
	if s.replaying() {
		s.serveCassette(w, req)
		return
	}
	switch {
	case r.URL.Path == PathSignalsSearch && r.Method == http.MethodPost:
		s.searchSignals(w, body)
	case r.URL.Path == PathLogsSearch && r.Method == http.MethodPost:
		s.searchLogs(w, body)
	case intake:
		s.intake(w, r, body)
	case r.URL.Path == PathRules && r.Method == http.MethodGet:
		s.listRules(w, r)
	case strings.HasPrefix(r.URL.Path, PathRules+"/") && r.Method == http.MethodGet:
		s.getRule(w, strings.TrimPrefix(r.URL.Path, PathRules+"/"))
	case strings.HasPrefix(r.URL.Path, pathSignalsPrefix) && strings.HasSuffix(r.URL.Path, "/state") && r.Method == http.MethodPatch:
		s.signalState(w, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, pathSignalsPrefix), "/state"), body)
	default:
		writeErrors(w, http.StatusNotFound, "Not found")
	}
}

// readBody reads a request body, decompressing gzip and deflate.
func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = zr
	case "deflate":
		rd = flate.NewReader(r.Body)
	}
	return io.ReadAll(io.LimitReader(rd, 64<<20))
}

// rateLimit counts a request against its endpoint's window, sets the
// X-RateLimit-* headers and reports whether the request is over the limit.
func (s *Server) rateLimit(w http.ResponseWriter, path string) bool {
	name := "api"
	switch {
	case path == PathSignalsSearch:
		name = "security_monitoring_signals_search"
	case path == PathLogsSearch:
		name = "logs_list"
	case strings.HasPrefix(path, PathRules):
		name = "security_monitoring_rules"
	case strings.HasPrefix(path, pathSignalsPrefix):
		name = "security_monitoring_signals_update"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	win := s.windows[name]
	if win == nil || !now.Before(win.start.Add(s.opts.RatePeriod)) {
		win = &window{start: now}
		s.windows[name] = win
	}
	win.count++
	remaining := s.opts.RateLimit - win.count
	if remaining < 0 {
		remaining = 0
	}
	reset := int(math.Ceil(win.start.Add(s.opts.RatePeriod).Sub(now).Seconds()))
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Period", strconv.Itoa(int(math.Ceil(s.opts.RatePeriod.Seconds()))))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
	h.Set("X-RateLimit-Name", name)
	return win.count > s.opts.RateLimit
}

// cursor encodes a keyset position as Datadog's cursors look:
// base64url({"after":"<id>"}).
func cursor(afterID string) string {
	b, _ := json.Marshal(map[string]string{"after": afterID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", err
	}
	var v struct {
		After string `json:"after"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.After == "" {
		return "", fmt.Errorf("not a cursor")
	}
	return v.After, nil
}

// searchRequest is the body of the signals and logs searches.
type searchRequest struct {
	Filter *struct {
		From    *string  `json:"from"`
		To      *string  `json:"to"`
		Query   *string  `json:"query"`
		Indexes []string `json:"indexes"`
	} `json:"filter"`
	Page *struct {
		Cursor *string `json:"cursor"`
		Limit  *int    `json:"limit"`
	} `json:"page"`
	Sort    *string         `json:"sort"`
	Options json.RawMessage `json:"options"`
}

// parseSearch validates a search body the way Datadog does and returns its
// window, query, limit, sort order and cursor position.
func parseSearch(body []byte, maxLimit, defLimit int, relative bool) (from, to time.Time, q node, limit int, desc bool, after string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req searchRequest
	if err = dec.Decode(&req); err != nil {
		return from, to, nil, 0, false, "", fmt.Errorf("invalid body: %v", err)
	}
	to = time.Now().Add(time.Hour)
	from = time.Unix(0, 0)
	query := ""
	if f := req.Filter; f != nil {
		if f.From != nil {
			if from, err = parseWhen(*f.From, relative); err != nil {
				return from, to, nil, 0, false, "", fmt.Errorf("filter.from: %v", err)
			}
		}
		if f.To != nil {
			if to, err = parseWhen(*f.To, relative); err != nil {
				return from, to, nil, 0, false, "", fmt.Errorf("filter.to: %v", err)
			}
		}
		if f.Query != nil {
			query = *f.Query
		}
	}
	if q, err = parseQuery(query); err != nil {
		return from, to, nil, 0, false, "", fmt.Errorf("filter.query: %v", err)
	}
	limit = defLimit
	if p := req.Page; p != nil {
		if p.Limit != nil {
			limit = *p.Limit
			if limit < 1 || limit > maxLimit {
				return from, to, nil, 0, false, "", fmt.Errorf("page.limit %d out of range (1..%d)", limit, maxLimit)
			}
		}
		if p.Cursor != nil {
			if after, err = decodeCursor(*p.Cursor); err != nil {
				return from, to, nil, 0, false, "", fmt.Errorf("page.cursor: invalid cursor")
			}
		}
	}
	if req.Sort != nil {
		switch *req.Sort {
		case "timestamp":
		case "-timestamp":
			desc = true
		default:
			return from, to, nil, 0, false, "", fmt.Errorf("sort %q: want timestamp or -timestamp", *req.Sort)
		}
	}
	return from, to, q, limit, desc, after, nil
}

// parseWhen parses an RFC 3339 time or, where relative is allowed (logs),
// "now" and "now-15m".
func parseWhen(s string, relative bool) (time.Time, error) {
	if relative && strings.HasPrefix(s, "now") {
		d := time.Duration(0)
		if rest := strings.TrimPrefix(s, "now"); rest != "" {
			var err error
			if d, err = time.ParseDuration(strings.TrimPrefix(rest, "-")); err != nil {
				return time.Time{}, err
			}
			d = -d
		}
		return time.Now().Add(d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// page cuts one page of ids out of a sorted list of positions.
func page[T any](items []T, id func(T) string, after string, limit int) ([]T, bool, error) {
	start := 0
	if after != "" {
		start = -1
		for i, it := range items {
			if id(it) == after {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, false, fmt.Errorf("page.cursor: invalid cursor")
		}
	}
	end := start + limit
	if end > len(items) {
		end = len(items)
	}
	return items[start:end], start < len(items), nil
}

func (s *Server) searchSignals(w http.ResponseWriter, body []byte) {
	from, to, q, limit, desc, after, err := parseSearch(body, 1000, 10, false)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.now()
	s.mu.Lock()
	var hits []*signal
	for _, sg := range s.signals {
		if now.Before(sg.visibleAt) || sg.at.Before(from) || sg.at.After(to) {
			continue
		}
		if q(sg.doc()) {
			hits = append(hits, sg)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool {
		if desc {
			return hits[i].at.After(hits[j].at)
		}
		return hits[i].at.Before(hits[j].at)
	})
	if s.opts.IgnoreCursor {
		after = ""
	}
	pg, more, err := page(hits, func(sg *signal) string { return sg.id }, after, limit)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	if !more || len(pg) == 0 {
		// The real last page: no meta, no links.
		writeJSON(w, http.StatusOK, map[string]any{"data": []any{}})
		return
	}
	data := make([]json.RawMessage, len(pg))
	for i, sg := range pg {
		data[i] = sg.render()
	}
	c := cursor(pg[len(pg)-1].id)
	writeJSON(w, http.StatusOK, map[string]any{
		"meta":  map[string]any{"page": map[string]any{"after": c}},
		"data":  data,
		"links": map[string]any{"next": "https://api.datadoghq.com/api/v2/security_monitoring/signals?page%5Bcursor%5D=" + c},
	})
}

func (s *Server) searchLogs(w http.ResponseWriter, body []byte) {
	from, to, q, limit, desc, after, err := parseSearch(body, 5000, 10, true)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	var hits []*logEntry
	for _, l := range s.logs {
		if l.at.Before(from) || l.at.After(to) {
			continue
		}
		if q(l.doc()) {
			hits = append(hits, l)
		}
	}
	s.seq++
	reqID := fmt.Sprintf("fake-%d", s.seq)
	s.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool {
		if desc {
			return hits[i].at.After(hits[j].at)
		}
		return hits[i].at.Before(hits[j].at)
	})
	pg, more, err := page(hits, func(l *logEntry) string { return l.id }, after, limit)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	meta := map[string]any{"elapsed": 1, "request_id": reqID, "status": "done"}
	if !more || len(pg) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"data": []any{}, "meta": meta})
		return
	}
	data := make([]json.RawMessage, len(pg))
	for i, l := range pg {
		data[i] = l.render()
	}
	c := cursor(pg[len(pg)-1].id)
	meta["page"] = map[string]any{"after": c}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": meta,
		"links": map[string]any{"next": "https://api.datadoghq.com/api/v2/logs/events?page%5Bcursor%5D=" + c}})
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	size, number := 10, 0
	if v := r.URL.Query().Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeErrors(w, http.StatusBadRequest, "page[size] must be between 1 and 100")
			return
		}
		size = n
	}
	if v := r.URL.Query().Get("page[number]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeErrors(w, http.StatusBadRequest, "invalid page[number]")
			return
		}
		number = n
	}
	rules := s.opts.Rules
	start := size * number
	if start > len(rules) {
		start = len(rules)
	}
	end := start + size
	if end > len(rules) {
		end = len(rules)
	}
	data := []any{}
	for _, rl := range rules[start:end] {
		data = append(data, renderRule(rl))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"meta": map[string]any{"page": map[string]any{"total_filtered_count": len(data), "total_count": len(rules)}},
		"data": data,
	})
}

func (s *Server) getRule(w http.ResponseWriter, id string) {
	for _, rl := range s.opts.Rules {
		if rl.ID == id {
			writeJSON(w, http.StatusOK, renderRule(rl))
			return
		}
	}
	writeErrors(w, http.StatusNotFound, "Not found")
}

func renderRule(r Rule) map[string]any {
	typ := r.Type
	if typ == "" {
		typ = "log_detection"
	}
	tags := r.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id": r.ID, "name": r.Name, "type": typ, "isEnabled": r.Enabled, "isDeleted": r.Deleted,
		"isDefault": false, "tags": tags, "version": 1, "createdAt": 1657310084964, "creationAuthorId": 0,
		"message": "", "queries": []any{}, "cases": []any{}, "options": map[string]any{"detectionMethod": "threshold"},
		"filters": []any{}, "hasExtendedTitle": false,
	}
}

// stateRequest is the body of a signal state update.
type stateRequest struct {
	Data *struct {
		Attributes *struct {
			State          string `json:"state"`
			ArchiveReason  string `json:"archive_reason"`
			ArchiveComment string `json:"archive_comment"`
			Version        *int64 `json:"version"`
		} `json:"attributes"`
		Type string `json:"type"`
		ID   any    `json:"id"`
	} `json:"data"`
}

func (s *Server) signalState(w http.ResponseWriter, id string, body []byte) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req stateRequest
	if err := dec.Decode(&req); err != nil || req.Data == nil || req.Data.Attributes == nil {
		writeErrors(w, http.StatusBadRequest, "invalid body")
		return
	}
	a := req.Data.Attributes
	switch a.State {
	case "open", "archived", "under_review":
	default:
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid state %q", a.State))
		return
	}
	switch a.ArchiveReason {
	case "", "none", "false_positive", "testing_or_maintenance", "remediated", "investigated_case_opened",
		"true_positive_benign", "true_positive_malicious", "other":
	default:
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid archive_reason %q", a.ArchiveReason))
		return
	}
	if req.Data.Type != "" && req.Data.Type != "signal_metadata" {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid type %q", req.Data.Type))
		return
	}
	s.mu.Lock()
	var sg *signal
	for _, x := range s.signals {
		if x.id == id {
			sg = x
		}
	}
	if sg != nil {
		sg.triage = a.State
		if a.State == "archived" {
			s.archived[id] = a.ArchiveReason
		} else {
			delete(s.archived, id)
		}
	}
	s.mu.Unlock()
	if sg == nil {
		writeErrors(w, http.StatusNotFound, "Signal not found")
		return
	}
	reason := a.ArchiveReason
	if reason == "" {
		reason = "none"
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"attributes": map[string]any{
			"incident_ids": []any{}, "state": a.State, "archive_reason": reason,
			"assignee":               map[string]any{"id": -1, "name": "Unassigned", "uuid": ""},
			"state_update_timestamp": s.now().UnixMilli(),
			"state_update_user":      map[string]any{"handle": "vigil@example.com", "name": nil, "id": 1},
		},
		"type": "signal_metadata", "id": id,
	}})
}
