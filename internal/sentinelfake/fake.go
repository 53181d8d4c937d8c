// Package sentinelfake is an in-process fake Microsoft Sentinel for the
// tests of the sentinel SIEM plugin: TEST EQUIPMENT ONLY, never a code
// path of a user's run.
//
// It is one TLS server answering, in the documented wire formats, the
// Entra ID token endpoint (client credentials, OpenID discovery), the Log
// Analytics query API (POST /v1/workspaces/{id}/query: tables, columns,
// rows; an "error" with PartialError for partial results; 400 with the
// parser's error for a query it does not understand), the Logs Ingestion
// API (POST /dataCollectionRules/{dcr}/streams/{stream}, gzip bodies, 204,
// 413 past the size limit) and the Resource Manager endpoints of
// Microsoft.SecurityInsights (alert rules listed in pages linked by
// nextLink; incidents read and written back with their etag). Tokens are
// checked: issued by its token endpoint, for the audience of the API they
// are sent to, not expired.
//
// Its workspace holds tables (SecurityAlert, SecurityIncident, the
// replay's tables); rows ingested through a stream land in the stream's
// table and become queryable, and its scripted analytics rules (SetRules,
// and SetDetect's Sigma engine over AWSCloudTrail) raise SecurityAlert
// rows, with their incidents, after a delay. Its KQL is a parsed subset
// (kql.go). Faults are scripted per API (Fail), and every request is
// recorded so that tests assert what was sent.
//
// It is written from the wire format, independently of the plugin: it
// imports nothing of plugins/ but the Sigma engine the local SIEM uses.
package sentinelfake

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
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

// Identities and names of the fake. The secret is long and distinctive so
// that a leak into an error message is found by a plain substring search.
const (
	TenantID       = "7a1b2c3d-0000-4000-8000-00000000f00d"
	ClientID       = "c0ffee00-1111-4222-8333-444455556666"
	ClientSecret   = "sec~Qx7Lr2Vt6Np0KdZ8mW4yHj3"
	WorkspaceID    = "9f8e7d6c-5b4a-4321-8765-0123456789ab"
	SubscriptionID = "11111111-2222-4333-8444-555555555555"
	ResourceGroup  = "soc-rg"
	WorkspaceName  = "soc-sentinel"
	DCR            = "dcr-0123456789abcdef0123456789abcdef"
	// Streams of the fake's data collection rule, and their tables.
	Stream           = "Custom-VigilEvents_CL"
	CloudTrailStream = "Custom-AWSCloudTrail"
	ProcessStream    = "Custom-ASimProcessEvents"
)

// Audiences of the APIs, as the token's scope names them.
const (
	audienceQuery  = "https://api.loganalytics.io"
	audienceARM    = "https://management.core.windows.net"
	audienceIngest = "https://monitor.azure.com"
)

// API names for Fail and Requests.
const (
	APIToken  = "token"
	APIQuery  = "query"
	APIIngest = "ingest"
	APIARM    = "arm"
)

// Request is one request the fake received.
type Request struct {
	API          string
	Method, Path string
	Query        url.Values
	Header       http.Header
	// Body is the request body, gunzipped.
	Body []byte
	// KQL is the query of a query request.
	KQL string
}

// Fault is a scripted answer: the next request of its API gets it
// instead of being served.
type Fault struct {
	Status     int
	RetryAfter string // the Retry-After header, when set
	Code       string // the error code of the body
	Message    string
}

// Rule is a scripted analytics rule: every row ingested into Table ("":
// any) whose JSON contains Contains raises a SecurityAlert stamped Delay
// (plus Shift) after the row's TimeGenerated, visible Delay after
// ingestion, with an incident unless NoIncident. The rule is listed by
// the alert rules API (Disabled rules too, which raise nothing).
type Rule struct {
	ID, Name   string
	Table      string
	Contains   string
	Tactics    []string
	Techniques []string // techniques and sub-techniques
	Delay      time.Duration
	Shift      time.Duration
	NoMarker   bool
	NoIncident bool
	Disabled   bool
}

// tokenInfo is an access token the fake issued.
type tokenInfo struct {
	audience string
	expires  time.Time
}

// incident is an incident resource.
type incident struct {
	name  string
	etag  int
	props map[string]any
}

// Fake is a fake Sentinel workspace with its Entra ID tenant. Create it
// with New; its methods are safe for concurrent use.
type Fake struct {
	t      testing.TB
	srv    *httptest.Server
	caFile string

	mu          sync.Mutex
	reqs        []Request
	tokens      map[string]tokenInfo
	tokenSeq    int
	tokenTTL    time.Duration
	tables      map[string][]stored
	streams     map[string]string
	rules       []Rule
	rulesPage   int
	rulesStuck  bool
	incidents   map[string]*incident
	incidentSeq int
	alertSeq    int
	faults      map[string][]Fault
	partial     string
	ingestLimit int
	clockSkew   time.Duration
	detect      *detect.Engine
	detectDelay time.Duration
}

// New starts a fake; it stops when the test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		t: t, tokens: map[string]tokenInfo{}, tokenTTL: time.Hour,
		tables: map[string][]stored{
			"SecurityAlert": nil, "SecurityIncident": nil, "VigilEvents_CL": nil, "AWSCloudTrail": nil,
			"ASimProcessEventLogs": nil, "Syslog": nil,
		},
		streams:     map[string]string{Stream: "VigilEvents_CL", CloudTrailStream: "AWSCloudTrail", ProcessStream: "ASimProcessEventLogs"},
		rulesPage:   2,
		incidents:   map[string]*incident{},
		faults:      map[string][]Fault{},
		ingestLimit: 1 << 20,
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "sentinelfake-ca.pem")
	cert := f.srv.Certificate()
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// URL is the server's base URL (authority, query, ARM and ingestion
// endpoints are all on it).
func (f *Fake) URL() string { return f.srv.URL }

// CAFile is a PEM file of the server's certificate.
func (f *Fake) CAFile() string { return f.caFile }

// Params returns the sentinel plugin's params for the fake, TOML lines,
// with the client secret taken from the environment variable secretEnv
// ("": written in clear, for in-process tests).
func (f *Fake) Params(secretEnv string) string {
	secret := fmt.Sprintf("%q", ClientSecret)
	if secretEnv != "" {
		secret = `"${` + secretEnv + `}"`
	}
	return fmt.Sprintf(`tenant_id = %q
client_id = %q
client_secret = %s
workspace_id = %q
subscription_id = %q
resource_group = %q
workspace_name = %q
authority_host = %q
query_endpoint = %q
arm_endpoint = %q
ingest_endpoint = %q
dcr_immutable_id = %q
ca_cert = %q
retry_delay = "50ms"
`, TenantID, ClientID, secret, WorkspaceID, SubscriptionID, ResourceGroup, WorkspaceName,
		f.URL(), f.URL(), f.URL(), f.URL(), DCR, f.caFile)
}

// Fail queues faults for an API (APIToken, APIQuery, APIIngest, APIARM):
// its next requests get them, one each, in order.
func (f *Fake) Fail(api string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[api] = append(f.faults[api], faults...)
}

// SetPartial makes every query answer partial results with a
// PartialError whose detail says msg ("": whole answers).
func (f *Fake) SetPartial(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial = msg
}

// SetTokenTTL sets the lifetime of the tokens issued from now on.
func (f *Fake) SetTokenTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenTTL = d
}

// SetRules sets the analytics rules.
func (f *Fake) SetRules(rules []Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append([]Rule(nil), rules...)
}

// SetRulesPageSize sets how many rules one page of the listing holds.
func (f *Fake) SetRulesPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rulesPage = n
}

// SetRulesStuck makes every page of the rules listing link to the
// second page, as a server whose nextLink does not advance.
func (f *Fake) SetRulesStuck(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rulesStuck = on
}

// SetIngestLimit sets the largest body (uncompressed) the ingestion API
// takes; larger ones get 413.
func (f *Fake) SetIngestLimit(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ingestLimit = n
}

// SetClockSkew sets the workspace's clock minus the real one, as now()
// shows it.
func (f *Fake) SetClockSkew(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clockSkew = d
}

// SetDetect makes rows ingested into AWSCloudTrail go through eng (as
// CloudTrail records rebuilt from the table's columns): each match raises
// an alert delay after the row's time.
func (f *Fake) SetDetect(eng *detect.Engine, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detect, f.detectDelay = eng, delay
}

// AddRow adds a row to a table (created if needed), visible at once.
func (f *Fake) AddRow(table string, rec Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.tables[table] = append(f.tables[table], stored{rec: normalise(rec), ingested: now, visibleAt: now})
}

// Rows returns the rows of a table, visible or not.
func (f *Fake) Rows(table string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Record, 0, len(f.tables[table]))
	for _, s := range f.tables[table] {
		out = append(out, s.rec)
	}
	return out
}

// Incident returns an incident's properties (nil when there is none).
func (f *Fake) Incident(name string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.incidents[name]; in != nil {
		return in.props
	}
	return nil
}

// Requests returns the requests received for an API ("": all).
func (f *Fake) Requests(api string) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.reqs {
		if api == "" || r.API == api {
			out = append(out, r)
		}
	}
	return out
}

// TokensIssued is how many tokens the token endpoint handed out.
func (f *Fake) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenSeq
}

// serve routes a request.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not gzip")
			return
		}
		if body, err = io.ReadAll(io.LimitReader(zr, 16<<20)); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not gzip")
			return
		}
	}
	p := r.URL.Path
	api := ""
	switch {
	case strings.HasPrefix(p, "/"+TenantID+"/"):
		api = APIToken
	case strings.HasPrefix(p, "/v1/workspaces/"):
		api = APIQuery
	case strings.HasPrefix(p, "/dataCollectionRules/"):
		api = APIIngest
	case strings.HasPrefix(p, "/subscriptions/"):
		api = APIARM
	}
	req := Request{API: api, Method: r.Method, Path: p, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if api == APIQuery {
		var q struct {
			Query string `json:"query"`
		}
		_ = json.Unmarshal(body, &q)
		req.KQL = q.Query
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	var fault *Fault
	if fs := f.faults[api]; len(fs) > 0 && !strings.Contains(p, "openid-configuration") {
		fault = &fs[0]
		f.faults[api] = fs[1:]
	}
	skew := f.clockSkew
	f.mu.Unlock()
	w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
	if fault != nil {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		if api == APIToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fault.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": fault.Code, "error_description": fault.Message})
			return
		}
		writeError(w, fault.Status, fault.Code, fault.Message)
		return
	}
	switch api {
	case APIToken:
		f.serveToken(w, r, body)
	case APIQuery:
		f.serveQuery(w, r, body)
	case APIIngest:
		f.serveIngest(w, r, body)
	case APIARM:
		f.serveARM(w, r, body)
	default:
		writeError(w, http.StatusNotFound, "NotFound", "no such endpoint: "+p)
	}
}

// writeError writes an Azure error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveToken answers OpenID discovery and the client credentials grant.
func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request, body []byte) {
	base := f.URL() + "/" + TenantID
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":           base + "/oauth2/v2.0/token",
			"authorization_endpoint":   base + "/oauth2/v2.0/authorize",
			"issuer":                   base + "/v2.0",
			"jwks_uri":                 base + "/discovery/v2.0/keys",
			"response_types_supported": []string{"code", "id_token", "code id_token", "id_token token"},
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+TenantID+"/oauth2/v2.0/token":
		form, _ := url.ParseQuery(string(body))
		switch {
		case form.Get("grant_type") != "client_credentials":
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an unsupported grant type."})
		case form.Get("client_id") != ClientID:
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unauthorized_client", "error_description": "AADSTS700016: Application with identifier '" + form.Get("client_id") + "' was not found in the directory."})
		case form.Get("client_secret") != ClientSecret:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."})
		default:
			aud := ""
			for _, sc := range strings.Fields(form.Get("scope")) {
				if strings.HasSuffix(sc, "/.default") {
					aud = strings.TrimSuffix(strings.TrimSuffix(sc, "/.default"), "/")
				}
			}
			f.mu.Lock()
			f.tokenSeq++
			tok := fmt.Sprintf("fake-at-%04d", f.tokenSeq)
			ttl := f.tokenTTL
			f.tokens[tok] = tokenInfo{audience: aud, expires: time.Now().Add(ttl)}
			f.mu.Unlock()
			secs := int(ttl / time.Second)
			writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found"})
	}
}

// tokenGrace is how long after its expiry a token is still taken (a
// request in flight).
const tokenGrace = 250 * time.Millisecond

// authorise checks the bearer token for an audience; false means it
// answered.
func (f *Fake) authorise(w http.ResponseWriter, r *http.Request, audience string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	info, known := f.tokens[tok]
	f.mu.Unlock()
	switch {
	case !ok || !known:
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	case info.audience != audience:
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.", info.audience, audience))
	case time.Now().After(info.expires.Add(tokenGrace)):
		writeError(w, http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
	default:
		return true
	}
	return false
}
