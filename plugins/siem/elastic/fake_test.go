package elastic

// An in-process fake Elasticsearch and Kibana: TEST EQUIPMENT ONLY, never
// a code path of a user's run. It answers the subset of the APIs the plugin
// uses the way the real servers do (the X-Elastic-Product header the v8
// client checks, search answers shaped like the recorded ones, bulk answers
// like the go-elasticsearch fixtures, Kibana's kbn-xsrf rule and its
// dropping of body keys it does not know), records every request so that
// tests assert the exact query DSL sent, and can be scripted to fail.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one request the fake received.
type recorded struct {
	Server string // "es" or "kibana"
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// fakeDoc is one stored document.
type fakeDoc struct {
	id        string
	src       map[string]any
	raw       []byte
	visibleAt time.Time // searchable from then on (refresh, rule delay)
}

// failure scripts answers: the next n requests (n < 0: all) whose
// "METHOD path" contains match get status and body instead.
type failure struct {
	match  string
	n      int
	status int
	body   string
	header http.Header
	// noProduct leaves out the X-Elastic-Product header (a proxy or a
	// server that is not Elasticsearch).
	noProduct bool
	// delay holds the answer back (until the client gives up).
	delay time.Duration
}

// itemFailure decides the fate of one bulk item: status 0 means created.
type itemFailure func(doc map[string]any, attempt int) (status int, errType, reason string)

// fakeElastic is the fake Elasticsearch (es) and Kibana (kb) pair.
type fakeElastic struct {
	t  testing.TB
	es *httptest.Server
	kb *httptest.Server

	mu       sync.Mutex
	auth     string // the Authorization header to require ("" for none)
	indices  map[string][]*fakeDoc
	requests []recorded
	failures []*failure
	rules    []json.RawMessage
	seq      int
	// itemFail, when set, decides bulk items; attempts counts per document
	// how often it was sent (by its vigil.original_time and message).
	itemFail itemFailure
	attempts map[string]int
	// onIngest is called (without the lock) with the documents created by
	// a bulk request: tests raise alerts from them.
	onIngest func(docs []map[string]any)
	// echoAuth makes 401 answers quote the Authorization header received:
	// an adversarial server, to prove secrets are redacted.
	echoAuth bool
	// clockSkew is the server's clock minus the real one, as the ingest
	// timestamp of a simulated pipeline shows it.
	clockSkew time.Duration
	// ignoreSearchAfter answers every search from its first hit, as a
	// server (or proxy) that drops the paging cursor would.
	ignoreSearchAfter bool
}

func newFakeElastic(t testing.TB) *fakeElastic {
	t.Helper()
	f := &fakeElastic{t: t, indices: map[string][]*fakeDoc{}, attempts: map[string]int{}}
	f.es = httptest.NewServer(http.HandlerFunc(f.serveES))
	f.kb = httptest.NewServer(http.HandlerFunc(f.serveKibana))
	t.Cleanup(func() { f.es.Close(); f.kb.Close() })
	return f
}

// add stores a document, searchable at visibleAt.
func (f *fakeElastic) add(index, id string, src []byte, visibleAt time.Time) {
	f.t.Helper()
	m, err := decodeDoc(src)
	if err != nil {
		f.t.Fatalf("fake: add %s/%s: %v", index, id, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.indices[index] = append(f.indices[index], &fakeDoc{id: id, src: m, raw: append([]byte(nil), src...), visibleAt: visibleAt})
}

// doc returns a stored document's source, decoded again.
func (f *fakeElastic) doc(index, id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.indices[index] {
		if d.id == id {
			m, _ := decodeDoc(d.raw)
			return m
		}
	}
	return nil
}

// docs returns the sources of an index's documents, in insertion order.
func (f *fakeElastic) docs(index string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, d := range f.indices[index] {
		m, _ := decodeDoc(d.raw)
		out = append(out, m)
	}
	return out
}

func (f *fakeElastic) fail(match string, n, status int, body string) {
	f.failWith(&failure{match: match, n: n, status: status, body: body})
}

func (f *fakeElastic) failWith(fl *failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fl)
}

// recordedRequests returns the requests received whose "METHOD path"
// contains match.
func (f *fakeElastic) recordedRequests(match string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.requests {
		if strings.Contains(r.Method+" "+r.Path, match) {
			out = append(out, r)
		}
	}
	return out
}

// Real error bodies.
const (
	esRejectedBody = `{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, max_coordinating_and_primary_bytes=107374182]"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, max_coordinating_and_primary_bytes=107374182]"},"status":429}`
	esInternalBody = `{"error":{"root_cause":[{"type":"null_pointer_exception","reason":"Cannot invoke \"Object.toString()\" because \"x\" is null"}],"type":"null_pointer_exception","reason":"Cannot invoke \"Object.toString()\" because \"x\" is null"},"status":500}`
)

func (f *fakeElastic) record(server string, r *http.Request) ([]byte, *failure) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		f.t.Errorf("fake: unexpected gzip request body")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, recorded{Server: server, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	for _, fl := range f.failures {
		if fl.n != 0 && strings.Contains(r.Method+" "+r.URL.Path, fl.match) {
			if fl.n > 0 {
				fl.n--
			}
			return body, fl
		}
	}
	return body, nil
}

// esJSON writes an Elasticsearch answer: every answer carries the product
// header, as real Elasticsearch 7.14+ does.
func esJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	switch b := v.(type) {
	case string:
		io.WriteString(w, b)
	case []byte:
		w.Write(b)
	default:
		json.NewEncoder(w).Encode(v)
	}
}

// esError writes Elasticsearch's error shape.
func esError(w http.ResponseWriter, status int, typ, reason string) {
	cause := map[string]any{"type": typ, "reason": reason}
	esJSON(w, status, map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason}, "status": status})
}

func (f *fakeElastic) authorized(w http.ResponseWriter, r *http.Request, es bool) bool {
	f.mu.Lock()
	want, echo := f.auth, f.echoAuth
	f.mu.Unlock()
	got := r.Header.Get("Authorization")
	if want == "" || strings.EqualFold(got, want) {
		return true
	}
	reason := "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
	if echo {
		reason += " [" + got + "]"
	}
	if es {
		w.Header().Set("WWW-Authenticate", `ApiKey`)
		esError(w, http.StatusUnauthorized, "security_exception", reason)
		return false
	}
	kbJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "error": "Unauthorized", "message": reason})
	return false
}

func (f *fakeElastic) serveES(w http.ResponseWriter, r *http.Request) {
	body, fl := f.record("es", r)
	if fl != nil {
		if fl.delay > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(fl.delay):
			}
		}
		if !fl.noProduct {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		for k, v := range fl.header {
			w.Header()[k] = v
		}
		w.WriteHeader(fl.status)
		io.WriteString(w, fl.body)
		return
	}
	if !f.authorized(w, r, true) {
		return
	}
	p := strings.Trim(r.URL.Path, "/")
	switch {
	case p == "_bulk" && r.Method == http.MethodPost:
		f.bulk(w, body)
	case strings.HasSuffix(p, "/_search") && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		idx := strings.TrimSuffix(p, "/_search")
		res, status, err := f.search(idx, body, false)
		if err != nil {
			esError(w, status, err.typ, err.reason)
			return
		}
		esJSON(w, http.StatusOK, res)
	case strings.HasSuffix(p, "/_update_by_query") && r.Method == http.MethodPost:
		f.updateByQuery(w, strings.TrimSuffix(p, "/_update_by_query"), body)
	case p == "_ingest/pipeline/_simulate" && r.Method == http.MethodPost:
		f.simulate(w, body)
	default:
		esError(w, http.StatusBadRequest, "illegal_argument_exception", "fake: unsupported request ["+r.Method+" "+r.URL.Path+"]")
	}
}

// kbJSON writes a Kibana answer (no Elasticsearch product header).
func kbJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Kbn-Name", "kibana")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var spacePath = regexp.MustCompile(`^/s/([a-z0-9_-]+)(/api/.*)$`)

func (f *fakeElastic) serveKibana(w http.ResponseWriter, r *http.Request) {
	body, fl := f.record("kibana", r)
	if fl != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(fl.status)
		io.WriteString(w, fl.body)
		return
	}
	if r.Method != http.MethodGet && r.Header.Get("Kbn-Xsrf") == "" && r.Header.Get("Kbn-Version") == "" {
		kbJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."})
		return
	}
	if !f.authorized(w, r, false) {
		return
	}
	space, p := "default", r.URL.Path
	if m := spacePath.FindStringSubmatch(p); m != nil {
		space, p = m[1], m[2]
	}
	index := ".alerts-security.alerts-" + space
	switch {
	case p == kibanaSearchPath && r.Method == http.MethodPost:
		res, status, err := f.search(index, body, true)
		if err != nil {
			kbJSON(w, status, map[string]any{"message": err.typ + ": " + err.reason, "status_code": status})
			return
		}
		kbJSON(w, http.StatusOK, res)
	case p == kibanaStatusPath && r.Method == http.MethodPost:
		var req struct {
			SignalIDs []string `json:"signal_ids"`
			Status    string   `json:"status"`
		}
		if json.Unmarshal(body, &req) != nil || len(req.SignalIDs) == 0 || req.Status == "" {
			kbJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "[request body]: signal_ids or query is required"})
			return
		}
		kbJSON(w, http.StatusOK, f.setStatus(index, req.SignalIDs, req.Status))
	case p == kibanaRulesFindPath && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if page < 1 {
			page = 1
		}
		if per < 1 {
			per = 20
		}
		f.mu.Lock()
		rules := f.rules
		f.mu.Unlock()
		lo, hi := min((page-1)*per, len(rules)), min(page*per, len(rules))
		kbJSON(w, http.StatusOK, map[string]any{"page": page, "perPage": per, "total": len(rules), "data": rules[lo:hi]})
	default:
		kbJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "Not Found"})
	}
}

// qerr is a query the fake refuses, as Elasticsearch would.
type qerr struct{ typ, reason string }

// kibanaSearchKeys are the body keys Kibana's alert search accepts; it
// drops the others silently (so a search_after sent to Kibana is lost).
var kibanaSearchKeys = map[string]bool{"query": true, "aggs": true, "size": true, "track_total_hits": true,
	"_source": true, "fields": true, "runtime_mappings": true, "sort": true}

// search runs a search body over the indices matching pattern.
func (f *fakeElastic) search(pattern string, body []byte, kibana bool) (map[string]any, int, *qerr) {
	req := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		m, err := decodeDoc(body)
		if err != nil {
			return nil, 400, &qerr{"parsing_exception", "request body is not a JSON object"}
		}
		req = m
	}
	if kibana {
		for k := range req {
			if !kibanaSearchKeys[k] {
				delete(req, k)
			}
		}
	}
	f.mu.Lock()
	var docs []*fakeDoc
	var names []string
	for _, pat := range strings.Split(pattern, ",") {
		found := false
		for name, ds := range f.indices {
			if ok, _ := path.Match(pat, name); ok || name == pat {
				found = true
				names = append(names, name)
				docs = append(docs, ds...)
			}
		}
		if !found && !strings.ContainsAny(pat, "*?") {
			f.mu.Unlock()
			return nil, 404, &qerr{"index_not_found_exception", "no such index [" + pat + "]"}
		}
	}
	f.mu.Unlock()
	now := time.Now()
	type match struct {
		d     *fakeDoc
		named []string
		keys  []any
	}
	var ms []match
	for _, d := range docs {
		if now.Before(d.visibleAt) {
			continue
		}
		var named []string
		ok := true
		if q, has := req["query"]; has {
			var err *qerr
			ok, err = evalQuery(q, d, &named)
			if err != nil {
				return nil, 400, err
			}
		}
		if ok {
			ms = append(ms, match{d: d, named: named})
		}
	}
	// Sort.
	sorts, _ := req["sort"].([]any)
	type sortKey struct {
		field string
		desc  bool
	}
	var keys []sortKey
	for _, s := range sorts {
		for field, spec := range s.(map[string]any) {
			sk := sortKey{field: field}
			unmapped := false
			if sm, ok := spec.(map[string]any); ok {
				sk.desc = sm["order"] == "desc"
				_, unmapped = sm["unmapped_type"]
			}
			if field != "_id" && !unmapped {
				seen := false
				for _, m := range ms {
					seen = seen || len(lookup(m.d.src, field)) > 0
				}
				if !seen && len(ms) > 0 {
					return nil, 400, &qerr{"query_shard_exception", "No mapping found for [" + field + "] in order to sort on"}
				}
			}
			keys = append(keys, sk)
		}
	}
	for i := range ms {
		for _, k := range keys {
			ms[i].keys = append(ms[i].keys, sortValue(ms[i].d, k.field))
		}
	}
	sort.SliceStable(ms, func(i, j int) bool {
		for n, k := range keys {
			c := compareAny(ms[i].keys[n], ms[j].keys[n])
			if c != 0 {
				return (c < 0) != k.desc
			}
		}
		return false
	})
	f.mu.Lock()
	ignoreAfter := f.ignoreSearchAfter
	f.mu.Unlock()
	if after, ok := req["search_after"].([]any); ok && !ignoreAfter {
		if len(after) != len(keys) {
			return nil, 400, &qerr{"illegal_argument_exception", "search_after has " + strconv.Itoa(len(after)) + " value(s) but sort has " + strconv.Itoa(len(keys))}
		}
		var rest []match
		for _, m := range ms {
			c := 0
			for n := range keys {
				if c = compareAny(m.keys[n], normalize(after[n])); c != 0 {
					if keys[n].desc {
						c = -c
					}
					break
				}
			}
			if c > 0 {
				rest = append(rest, m)
			}
		}
		ms = rest
	}
	size := 10
	if n, ok := req["size"].(json.Number); ok {
		v, _ := n.Int64()
		size = int(v)
	}
	if len(ms) > size {
		ms = ms[:size]
	}
	hits := []any{}
	for _, m := range ms {
		h := map[string]any{"_index": indexOf(f, m.d), "_id": m.d.id, "_score": nil, "_source": json.RawMessage(m.d.raw)}
		if len(keys) > 0 {
			h["sort"] = m.keys
		}
		if len(m.named) > 0 {
			h["matched_queries"] = m.named
		}
		hits = append(hits, h)
	}
	return map[string]any{
		"took": 2, "timed_out": false,
		"_shards": map[string]any{"total": max(1, len(names)), "successful": max(1, len(names)), "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": len(hits), "relation": "eq"}, "max_score": nil, "hits": hits},
	}, 200, nil
}

// simulate answers a simulated pipeline of set processors whose value is
// {{_ingest.timestamp}}, as Elasticsearch does: the document with each
// field set to the node's time (here: the real time plus clockSkew).
func (f *fakeElastic) simulate(w http.ResponseWriter, body []byte) {
	var req struct {
		Pipeline struct {
			Processors []struct {
				Set *struct {
					Field string `json:"field"`
					Value string `json:"value"`
				} `json:"set"`
			} `json:"processors"`
		} `json:"pipeline"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		esError(w, http.StatusBadRequest, "parse_exception", "request body is required")
		return
	}
	f.mu.Lock()
	now := time.Now().Add(f.clockSkew).UTC()
	f.mu.Unlock()
	src := map[string]any{}
	for _, p := range req.Pipeline.Processors {
		if p.Set != nil && p.Set.Value == "{{_ingest.timestamp}}" {
			src[p.Set.Field] = now.Format("2006-01-02T15:04:05.000000000Z")
		}
	}
	esJSON(w, http.StatusOK, map[string]any{"docs": []any{map[string]any{"doc": map[string]any{
		"_index": "_index", "_id": "_id", "_version": "-3", "_source": src,
		"_ingest": map[string]any{"timestamp": now.Format("2006-01-02T15:04:05.000000000Z")},
	}}}})
}

func indexOf(f *fakeElastic, d *fakeDoc) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, ds := range f.indices {
		for _, x := range ds {
			if x == d {
				if strings.HasPrefix(name, ".alerts-security.alerts-") {
					return ".internal" + name + "-000001"
				}
				return name
			}
		}
	}
	return ""
}

// sortValue is a document's sort value for field: epoch milliseconds for
// dates, else the string.
func sortValue(d *fakeDoc, field string) any {
	if field == "_id" {
		return d.id
	}
	s := first(d.src, field)
	if field == "@timestamp" {
		if t, err := parseTime(s); err == nil {
			return t.UnixMilli()
		}
	}
	return s
}

func normalize(v any) any {
	if n, ok := v.(json.Number); ok {
		i, err := n.Int64()
		if err == nil {
			return i
		}
	}
	return v
}

func compareAny(a, b any) int {
	ai, aok := a.(int64)
	bi, bok := b.(int64)
	if aok && bok {
		switch {
		case ai < bi:
			return -1
		case ai > bi:
			return 1
		}
		return 0
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// evalQuery evaluates the query DSL subset the plugin sends, collecting
// the names of the named queries that match. An unknown clause is refused
// as Elasticsearch refuses it.
func evalQuery(q any, d *fakeDoc, named *[]string) (bool, *qerr) {
	qm, ok := q.(map[string]any)
	if !ok || len(qm) != 1 {
		return false, &qerr{"parsing_exception", "query malformed, must start with start_object"}
	}
	for kind, body := range qm {
		bm, _ := body.(map[string]any)
		name, _ := bm["_name"].(string)
		ok, err := evalClause(kind, bm, d, named)
		if err != nil {
			return false, err
		}
		if ok && name != "" {
			*named = append(*named, name)
		}
		return ok, nil
	}
	return false, nil
}

// fieldSpec splits a leaf clause {"field": value-or-object} (ignoring
// _name).
func fieldSpec(bm map[string]any) (string, any) {
	for k, v := range bm {
		if k != "_name" {
			return k, v
		}
	}
	return "", nil
}

func evalClause(kind string, bm map[string]any, d *fakeDoc, named *[]string) (bool, *qerr) {
	switch kind {
	case "match_all":
		return true, nil
	case "bool":
		all := func(key string) (bool, *qerr) {
			res := true
			for _, c := range asList(bm[key]) {
				ok, err := evalQuery(c, d, named)
				if err != nil {
					return false, err
				}
				res = res && ok
			}
			return res, nil
		}
		for _, key := range []string{"filter", "must"} {
			if ok, err := all(key); err != nil || !ok {
				return false, err
			}
		}
		for _, c := range asList(bm["must_not"]) {
			var ignore []string
			ok, err := evalQuery(c, d, &ignore)
			if err != nil || ok {
				return false, err
			}
		}
		should := asList(bm["should"])
		msm := 0
		if len(should) > 0 && bm["filter"] == nil && bm["must"] == nil {
			msm = 1
		}
		if n, ok := bm["minimum_should_match"].(json.Number); ok {
			v, _ := n.Int64()
			msm = int(v)
		}
		hits := 0
		for _, c := range should {
			ok, err := evalQuery(c, d, named)
			if err != nil {
				return false, err
			}
			if ok {
				hits++
			}
		}
		return hits >= msm, nil
	case "range":
		field, spec := fieldSpec(bm)
		sm, _ := spec.(map[string]any)
		format, _ := sm["format"].(string)
		for _, v := range strs(d.src, field) {
			if rangeOK(field, v, sm, format) {
				return true, nil
			}
		}
		return false, nil
	case "term":
		field, spec := fieldSpec(bm)
		want, ci := fmt.Sprint(spec), false
		if sm, ok := spec.(map[string]any); ok {
			want, ci = fmt.Sprint(sm["value"]), sm["case_insensitive"] == true
		}
		for _, v := range strs(d.src, field) {
			if v == want || (ci && strings.EqualFold(v, want)) {
				return true, nil
			}
		}
		return false, nil
	case "prefix":
		field, spec := fieldSpec(bm)
		sm, _ := spec.(map[string]any)
		want, ci := fmt.Sprint(sm["value"]), sm["case_insensitive"] == true
		for _, v := range strs(d.src, field) {
			if strings.HasPrefix(v, want) || (ci && strings.HasPrefix(strings.ToLower(v), strings.ToLower(want))) {
				return true, nil
			}
		}
		return false, nil
	case "wildcard":
		field, spec := fieldSpec(bm)
		sm, _ := spec.(map[string]any)
		re := wildcardRE(fmt.Sprint(sm["value"]))
		for _, v := range strs(d.src, field) {
			if re.MatchString(v) {
				return true, nil
			}
		}
		return false, nil
	case "match_phrase":
		field, spec := fieldSpec(bm)
		for _, v := range strs(d.src, field) {
			if strings.Contains(strings.ToLower(v), strings.ToLower(fmt.Sprint(spec))) {
				return true, nil
			}
		}
		return false, nil
	case "exists":
		return len(lookup(d.src, fmt.Sprint(bm["field"]))) > 0, nil
	case "ids":
		for _, v := range asList(bm["values"]) {
			if v == d.id {
				return true, nil
			}
		}
		return false, nil
	case "query_string":
		return queryString(fmt.Sprint(bm["query"]), d)
	}
	return false, &qerr{"parsing_exception", "unknown query [" + kind + "]"}
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

func rangeOK(field, v string, sm map[string]any, format string) bool {
	cmp := func(bound any) int {
		b := fmt.Sprint(bound)
		if field == "@timestamp" || strings.HasSuffix(field, "_time") {
			dv, err1 := parseTime(v)
			var db time.Time
			var err2 error
			if format == "epoch_millis" {
				ms, err := strconv.ParseInt(b, 10, 64)
				db, err2 = time.UnixMilli(ms), err
			} else {
				db, err2 = parseTime(b)
			}
			if err1 == nil && err2 == nil {
				// Elasticsearch dates have millisecond precision.
				return compareAny(dv.UnixMilli(), db.UnixMilli())
			}
		}
		return strings.Compare(v, b)
	}
	for op, bound := range sm {
		c := 0
		switch op {
		case "gt", "gte", "lt", "lte":
			c = cmp(bound)
		default:
			continue
		}
		if (op == "gt" && c <= 0) || (op == "gte" && c < 0) || (op == "lt" && c >= 0) || (op == "lte" && c > 0) {
			return false
		}
	}
	return true
}

func wildcardRE(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
				b.WriteString(regexp.QuoteMeta(string(pat[i])))
			}
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

var qsField = regexp.MustCompile(`^([A-Za-z0-9_.@]+):(?:"([^"]*)"|(\S+))$`)

// queryString evaluates a tiny query_string subset: field:value,
// field:"phrase" (with * wildcards), joined by AND. Unbalanced quotes or
// parentheses are refused as Elasticsearch refuses them.
func queryString(q string, d *fakeDoc) (bool, *qerr) {
	if strings.Count(q, `"`)%2 != 0 || strings.Count(q, "(") != strings.Count(q, ")") || strings.TrimSpace(q) == "" {
		return false, &qerr{"query_shard_exception", "Failed to parse query [" + q + "]"}
	}
	for _, part := range strings.Split(q, " AND ") {
		m := qsField.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return false, &qerr{"query_shard_exception", "Failed to parse query [" + q + "] (fake: only field:value AND ...)"}
		}
		val := m[2] + m[3]
		re := wildcardRE(val)
		ok := false
		for _, v := range strs(d.src, m[1]) {
			ok = ok || re.MatchString(v) || (m[2] != "" && strings.Contains(v, val))
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// bulk runs a bulk request on data streams.
func (f *fakeElastic) bulk(w http.ResponseWriter, body []byte) {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		esError(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines)%2 != 0 {
		esError(w, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(len(lines))+"], expected a simple value for field [_index] but found [END_OBJECT]")
		return
	}
	var (
		items   []any
		errs    bool
		created []map[string]any
	)
	for i := 0; i < len(lines); i += 2 {
		var action map[string]map[string]any
		if err := json.Unmarshal(lines[i], &action); err != nil || len(action) != 1 {
			esError(w, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(i+1)+"]")
			return
		}
		var op string
		var meta map[string]any
		for op, meta = range action {
		}
		index, _ := meta["_index"].(string)
		src, err := decodeDoc(lines[i+1])
		item := map[string]any{"_index": index}
		fail := func(status int, typ, reason string) {
			errs = true
			item["status"] = status
			item["error"] = map[string]any{"type": typ, "reason": reason, "index": index}
		}
		switch {
		case err != nil:
			fail(400, "document_parsing_exception", "[1:2] failed to parse: "+err.Error())
		case op != "create":
			fail(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
		case first(src, "@timestamp") == "":
			fail(400, "document_parsing_exception", "[1:2] data stream timestamp field [@timestamp] is missing")
		default:
			status := 0
			var typ, reason string
			if f.itemFail != nil {
				key := first(src, "message") + "|" + first(src, "vigil.original_time")
				f.mu.Lock()
				f.attempts[key]++
				n := f.attempts[key]
				f.mu.Unlock()
				status, typ, reason = f.itemFail(src, n)
			}
			if status != 0 {
				fail(status, typ, reason)
				break
			}
			f.mu.Lock()
			f.seq++
			id := fmt.Sprintf("fakeid%06d", f.seq)
			seq := f.seq
			f.indices[index] = append(f.indices[index], &fakeDoc{id: id, src: src, raw: append([]byte(nil), lines[i+1]...)})
			f.mu.Unlock()
			item["_index"] = ".ds-" + index + "-2024.05.01-000001"
			item["_id"] = id
			item["_version"] = 1
			item["result"] = "created"
			item["_shards"] = map[string]any{"total": 2, "successful": 1, "failed": 0}
			item["_seq_no"] = seq
			item["_primary_term"] = 1
			item["status"] = 201
			created = append(created, src)
		}
		items = append(items, map[string]any{op: item})
	}
	esJSON(w, 200, map[string]any{"took": 30, "errors": errs, "items": items})
	if f.onIngest != nil && len(created) > 0 {
		f.onIngest(created)
	}
}

func (f *fakeElastic) updateByQuery(w http.ResponseWriter, index string, body []byte) {
	req, err := decodeDoc(body)
	if err != nil {
		esError(w, 400, "parsing_exception", "request body is required")
		return
	}
	script, _ := req["script"].(map[string]any)
	params, _ := script["params"].(map[string]any)
	status, _ := params["status"].(string)
	if status == "" || !strings.Contains(fmt.Sprint(script["source"]), "params.status") {
		esError(w, 400, "illegal_argument_exception", "fake: only the close-alerts script is supported")
		return
	}
	var ids []string
	f.mu.Lock()
	for _, d := range f.indices[index] {
		var ignore []string
		if ok, _ := evalQuery(req["query"], d, &ignore); ok {
			ids = append(ids, d.id)
		}
	}
	f.mu.Unlock()
	esJSON(w, 200, f.setStatus(index, ids, status))
}

// setStatus sets alerts' workflow status and answers like update-by-query.
func (f *fakeElastic) setStatus(index string, ids []string, status string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	updated := 0
	for _, id := range ids {
		for _, d := range f.indices[index] {
			if d.id != id {
				continue
			}
			if sig, ok := d.src["signal"].(map[string]any); ok {
				sig["status"] = status
			} else {
				d.src["kibana.alert.workflow_status"] = status
			}
			d.raw, _ = json.Marshal(d.src)
			updated++
		}
	}
	return map[string]any{"took": 5, "timed_out": false, "total": updated, "updated": updated, "deleted": 0, "batches": 1,
		"version_conflicts": 0, "noops": 0, "retries": map[string]any{"bulk": 0, "search": 0}, "throttled_millis": 0,
		"requests_per_second": -1.0, "throttled_until_millis": 0, "failures": []any{}}
}
