// Package elasticfake is an in-process fake Elasticsearch and Kibana for
// the tests of the elastic SIEM plugin: TEST EQUIPMENT ONLY, never a code
// path of a user's run.
//
// It answers the subset of the APIs the plugin uses the way the real
// servers do (the X-Elastic-Product header the v8 client checks, search
// answers shaped like the recorded ones, bulk answers like the
// go-elasticsearch fixtures, Kibana's kbn-xsrf rule and its dropping of
// body keys it does not know), records every request so that tests assert
// the exact query DSL sent, and can be scripted to fail.
//
// It is written from the wire format, independently of the plugin's
// client: it imports nothing of plugins/.
package elasticfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real error bodies of Elasticsearch.
const (
	// RejectedBody is a 429 answer of a node whose write or search queue
	// is full.
	RejectedBody = `{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, max_coordinating_and_primary_bytes=107374182]"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, max_coordinating_and_primary_bytes=107374182]"},"status":429}`
	// InternalErrorBody is a 500 answer of a failing node.
	InternalErrorBody = `{"error":{"root_cause":[{"type":"null_pointer_exception","reason":"Cannot invoke \"Object.toString()\" because \"x\" is null"}],"type":"null_pointer_exception","reason":"Cannot invoke \"Object.toString()\" because \"x\" is null"},"status":500}`
)

// The Kibana detection engine endpoints the fake serves (also under
// /s/SPACE).
const (
	kibanaSearchPath    = "/api/detection_engine/signals/search"
	kibanaStatusPath    = "/api/detection_engine/signals/status"
	kibanaRulesFindPath = "/api/detection_engine/rules/_find"
)

// Request is one request the fake received.
type Request struct {
	Server string // "es" or "kibana"
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Failure scripts answers: the next N requests (N < 0: all) whose
// "METHOD path" contains Match get Status and Body instead.
type Failure struct {
	Match  string
	N      int
	Status int
	Body   string
	Header http.Header
	// NoProduct leaves out the X-Elastic-Product header (a proxy or a
	// server that is not Elasticsearch).
	NoProduct bool
	// Delay holds the answer back (until the client gives up).
	Delay time.Duration
}

// ItemFailure decides the fate of one bulk item, given its source and how
// often it was sent: status 0 means created.
type ItemFailure func(doc map[string]any, attempt int) (status int, errType, reason string)

// storedDoc is one stored document.
type storedDoc struct {
	id        string
	src       map[string]any
	raw       []byte
	visibleAt time.Time // searchable from then on (refresh, rule delay)
}

// Fake is the fake Elasticsearch and Kibana pair. Create it with New; its
// methods are safe for concurrent use.
type Fake struct {
	t  testing.TB
	es *httptest.Server
	kb *httptest.Server

	mu       sync.Mutex
	auth     string // the Authorization header to require ("" for none)
	indices  map[string][]*storedDoc
	requests []Request
	failures []*Failure
	rules    []json.RawMessage
	seq      int
	itemFail ItemFailure
	attempts map[string]int // per document, how often it was sent
	onIngest func(docs []map[string]any)
	echoAuth bool
	// clockSkew is the server's clock minus the real one.
	clockSkew         time.Duration
	ignoreSearchAfter bool
	// stampIngested sets event.ingested on created documents.
	stampIngested bool
}

// New starts a fake Elasticsearch and a fake Kibana, both closed when the
// test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{t: t, indices: map[string][]*storedDoc{}, attempts: map[string]int{}}
	f.es = httptest.NewServer(http.HandlerFunc(f.serveES))
	f.kb = httptest.NewServer(http.HandlerFunc(f.serveKibana))
	t.Cleanup(func() { f.es.Close(); f.kb.Close() })
	return f
}

// ESURL is the base URL of the fake Elasticsearch.
func (f *Fake) ESURL() string { return f.es.URL }

// KibanaURL is the base URL of the fake Kibana.
func (f *Fake) KibanaURL() string { return f.kb.URL }

// CloseES stops the fake Elasticsearch: it no longer answers.
func (f *Fake) CloseES() { f.es.Close() }

// Add stores a document, searchable from visibleAt on.
func (f *Fake) Add(index, id string, src []byte, visibleAt time.Time) {
	f.t.Helper()
	m, err := decode(src)
	if err != nil {
		f.t.Fatalf("elasticfake: add %s/%s: %v", index, id, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.indices[index] = append(f.indices[index], &storedDoc{id: id, src: m, raw: append([]byte(nil), src...), visibleAt: visibleAt})
}

// Doc returns a stored document's source, decoded again (nil when there
// is none).
func (f *Fake) Doc(index, id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.indices[index] {
		if d.id == id {
			m, _ := decode(d.raw)
			return m
		}
	}
	return nil
}

// Docs returns the sources of an index's documents, in insertion order.
func (f *Fake) Docs(index string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, d := range f.indices[index] {
		m, _ := decode(d.raw)
		out = append(out, m)
	}
	return out
}

// Fail makes the next n requests (n < 0: all) whose "METHOD path"
// contains match answer status and body.
func (f *Fake) Fail(match string, n, status int, body string) {
	f.FailWith(Failure{Match: match, N: n, Status: status, Body: body})
}

// FailWith scripts a failure; the fake keeps its own copy.
func (f *Fake) FailWith(fl Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &fl)
}

// Requests returns the requests received whose "METHOD path" contains
// match, in order.
func (f *Fake) Requests(match string) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.requests {
		if strings.Contains(r.Method+" "+r.Path, match) {
			out = append(out, r)
		}
	}
	return out
}

// SetAuth sets the Authorization header both servers require ("" for
// none; the scheme is compared case-insensitively).
func (f *Fake) SetAuth(auth string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = auth
}

// Auth returns the Authorization header required.
func (f *Fake) Auth() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth
}

// SetEchoAuth makes 401 answers quote the Authorization header received:
// an adversarial server, to prove secrets are redacted.
func (f *Fake) SetEchoAuth(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.echoAuth = on
}

// SetItemFail installs fn to decide bulk items (nil: all created). The
// attempt it gets counts the sendings of a document, known by its message
// and vigil.original_time.
func (f *Fake) SetItemFail(fn ItemFailure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.itemFail = fn
}

// SetOnIngest installs fn, called with the documents each bulk request
// created, after the answer is written and without the fake's lock (it
// may call Add): tests raise alerts from them.
func (f *Fake) SetOnIngest(fn func(docs []map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onIngest = fn
}

// SetClockSkew sets the server's clock minus the real one, as the ingest
// timestamp of a simulated pipeline shows it.
func (f *Fake) SetClockSkew(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clockSkew = d
}

// SetStampIngested makes bulk-created documents carry event.ingested, the
// server's time when it indexed them, as the final pipeline of Elastic
// Agent integrations sets it. Off, documents keep what they were sent
// with, as the built-in logs-*-* template does.
func (f *Fake) SetStampIngested(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stampIngested = on
}

// SetIgnoreSearchAfter makes every search answer from its first hit, as
// a server (or proxy) that drops the paging cursor would.
func (f *Fake) SetIgnoreSearchAfter(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignoreSearchAfter = on
}

// SetRules sets the detection rules Kibana's rule listing pages through,
// as they appear in its data array.
func (f *Fake) SetRules(rules []json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append([]json.RawMessage(nil), rules...)
}

// record stores the request and returns its body and the scripted failure
// that answers it, if any.
func (f *Fake) record(server string, r *http.Request) ([]byte, *Failure) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		f.t.Errorf("elasticfake: unexpected gzip request body")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, Request{Server: server, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	for _, fl := range f.failures {
		if fl.N != 0 && strings.Contains(r.Method+" "+r.URL.Path, fl.Match) {
			if fl.N > 0 {
				fl.N--
			}
			answer := *fl
			return body, &answer
		}
	}
	return body, nil
}

// authorized checks the Authorization header and answers the refusal the
// way the server (es or Kibana) does.
func (f *Fake) authorized(w http.ResponseWriter, r *http.Request, es bool) bool {
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
