// Package splunkfake is an in-process fake Splunk for the tests of the
// splunk SIEM plugin: TEST EQUIPMENT ONLY, never a code path of a user's
// run.
//
// It is a TLS server answering the REST search API (search jobs v1 and
// v2, their status, results and control, the export stream), login,
// server info, the current context, saved searches, the ES notable update
// endpoint and the HTTP Event Collector (events, acknowledgements,
// health), in the documented wire formats, as the recorded SDK fixtures
// show them. It records every request so that tests assert the SPL and
// the parameters sent, and can be scripted to fail (quota refusals, FATAL
// jobs, garbage results, expired sessions, busy collectors...). Its
// "search" understands exactly the SPL the plugin builds: the base search
// (answered with the notables), appended per-expectation subsearches
// (answered from AddQuery) and the raw-event marker search (answered from
// the events ingested through HEC). Correlation rules (SetRules) raise
// notables from ingested events.
//
// It is written from the wire format, independently of the plugin's
// client: it imports nothing of plugins/.
package splunkfake

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// Credentials of the fake. They are long and distinctive so that a leak
// into an error message is found by a plain substring search.
const (
	Token    = "tok-7f3a9c1e5b2d4f60a8e1" // accepted as "Bearer " + Token
	User     = "vigil-svc"
	Password = "pw-Zq8x4Lr2Vt6Np0Kd"
	// Session prefixes the session keys logins hand out: Session-0,
	// Session-1...
	Session  = "sess-192e7a5c3f0b8d64"
	HECToken = "hec-0c6b2e9a7d1f3e58b4a2" // accepted as "Splunk " + HECToken
)

// QuotaMessage is the text Splunk answers with HTTP 503 when the role's
// concurrent-search quota is reached (quoted in hasadna/open-bus#177).
const QuotaMessage = `Search not executed: The maximum number of concurrent historical searches for this user based on their role quota has been reached., concurrency_category="historical", concurrency_context="user_instance-wide", current_concurrency=3, concurrency_limit=3`

// NotableSearch is the base search the fake answers with its notables
// (Enterprise Security's notable macro).
const NotableSearch = "search `notable`"

// Request is one request the fake received.
type Request struct {
	Method, Path string
	Form         url.Values // query and form merged
	Auth         string
	Header       http.Header
	Body         []byte
}

// Rule is a correlation search of the fake: every event ingested through
// HEC whose text contains Contains raises a notable Delay after the
// event's own time, visible Delay after ingestion.
type Rule struct {
	Contains, Name, SearchName string
	Techniques                 []string
	Delay                      time.Duration
	// Shift moves the notable's _time (a clock behind: negative);
	// NoMarker leaves the marker out of the notable's fields.
	Shift    time.Duration
	NoMarker bool
}

// HECReply is a scripted answer of the HTTP Event Collector.
type HECReply struct {
	Status, Code int
	Text         string
}

type notable struct {
	row       Row
	visibleAt time.Time
}

// event is an event ingested through HEC.
type event struct {
	time, indexed time.Time
	host, index   string
	sourcetype    string
	raw           string
	marker        string
}

type job struct {
	sid, spl  string
	rows      []Row
	polls     int
	cancelled bool
	fatal     string
}

// Fake is a fake Splunk search head with HEC on the same server. Create
// it with New; its methods are safe for concurrent use.
type Fake struct {
	t      testing.TB
	srv    *httptest.Server
	caFile string

	mu       sync.Mutex
	reqs     []Request
	sessions map[string]bool
	jobs     map[string]*job
	seq      int

	// Data.
	notables []notable
	events   []event
	queries  map[string][]Row // rows of a native query, by its text
	rules    []Rule
	// Search behaviour.
	baseSearch     string
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
	ignoreOffset   bool          // /results and listings answer from offset 0 whatever is asked
	clockSkew      time.Duration // the server's clock minus the real one (Date header)
	// detect, when set, raises notables from aws:cloudtrail events.
	detect      *detect.Engine
	detectDelay time.Duration
	// Check data.
	version string
	caps    []string
	saved   []map[string]any
	// savedCap is the most saved searches one answer holds, whatever the
	// count asked (0: no cap).
	savedCap      int
	savedStatuses []int
	updateReply   string
	// HEC.
	hecIndexes []string   // allowed indexes; empty: any
	hecReplies []HECReply // answered first, in order, then success
	hecAck     bool
	ackPolls   int // ack polls answered false before true
	ackSeq     int64
	acks       map[int64]int
	healthCode int
}

// New starts a fake Splunk (TLS, its certificate in CAFile), closed when
// the test ends. It answers as Splunk 9.2.1 with a user holding the
// search and edit_notable_events capabilities and a healthy HEC.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		t: t, sessions: map[string]bool{}, jobs: map[string]*job{}, queries: map[string][]Row{},
		baseSearch: NotableSearch, version: "9.2.1", caps: []string{"search", "edit_notable_events"},
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

// URL is the base URL of the search head (and of HEC).
func (f *Fake) URL() string { return f.srv.URL }

// CAFile is a PEM file holding the server's certificate.
func (f *Fake) CAFile() string { return f.caFile }

// Requests returns the requests received whose path ends with suffix (and
// whose method is method, unless it is empty), in order.
func (f *Fake) Requests(method, suffix string) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.reqs {
		if (method == "" || r.Method == method) && strings.HasSuffix(r.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// JobCreations returns the job-creation requests.
func (f *Fake) JobCreations() []Request {
	return f.Requests(http.MethodPost, "/jobs")
}

// JobCancelled reports whether the search job sid was cancelled.
func (f *Fake) JobCancelled(sid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[sid]
	return j != nil && j.cancelled
}

// AddNotable adds a notable, the row the base search returns from
// visibleAt on.
func (f *Fake) AddNotable(r Row, visibleAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notables = append(f.notables, notable{row: r, visibleAt: visibleAt})
}

// AddQuery sets the rows the native query spl (as the appended subsearch
// holds it) returns; a query the fake does not know fails the search.
func (f *Fake) AddQuery(spl string, rows ...Row) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries[spl] = rows
}

// SetDetect makes HEC events of sourcetype aws:cloudtrail go through eng,
// each match a notable delay after the event.
func (f *Fake) SetDetect(eng *detect.Engine, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detect, f.detectDelay = eng, delay
}

// SetRules sets the correlation searches applied to ingested events.
func (f *Fake) SetRules(rules []Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append([]Rule(nil), rules...)
}
