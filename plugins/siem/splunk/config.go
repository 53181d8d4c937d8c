package splunk

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Search modes (Config.Mode).
const (
	// ModeJobs creates a search job (/search/v2/jobs), polls its
	// dispatchState and reads its results in pages. It is the default.
	ModeJobs = "jobs"
	// ModeExport streams the results of one search (/search/v2/jobs/export):
	// no job to poll, but some roles may not use the endpoint.
	ModeExport = "export"
)

// REST API generations of the search endpoints (Config.API).
const (
	// APIv2 uses /search/v2/jobs (Splunk Enterprise 9.0.1+, Cloud
	// 9.0.2208+). It is the default.
	APIv2 = "v2"
	// APIv1 uses the deprecated /search/jobs, for older servers.
	APIv1 = "v1"
)

// DefaultSearch is the base search of every poll when Config.Search is
// empty: Enterprise Security notables through the `notable` macro, which
// adds the review status and owner.
const DefaultSearch = "search `notable`"

// Defaults and limits of Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultJobTimeout     = 2 * time.Minute
	DefaultQuotaWait      = 30 * time.Second
	DefaultResultsPage    = 5000
	// MaxResultsPage is the usual server cap of one results request
	// (limits.conf maxresultrows).
	MaxResultsPage     = 50_000
	DefaultMaxRows     = 100_000
	DefaultHECBatch    = 100
	MaxHECBatch        = 10_000
	DefaultHECAckWait  = 30 * time.Second
	DefaultSourcetype  = "_json"
	DefaultSource      = "vigil"
	DefaultCloseStatus = "5" // Closed, in ES's default status list
)

// DefaultTechniqueFields are the result fields ATT&CK technique IDs are read
// from: ES annotations (a JSON array or a "\n"-joined multivalue), their
// enrichment from the mitre_attack_lookup, and names common in custom
// searches.
var DefaultTechniqueFields = []string{
	"annotations.mitre_attack",
	"annotations.mitre_attack.mitre_technique_id",
	"mitre_technique_id",
	"mitre_attack",
	"mitre_attack_id",
}

// DefaultHostFields are the result fields the signal's host is read from,
// the first present winning. CIM's dest comes first: a notable's own host
// is the search head that raised it.
var DefaultHostFields = []string{"dest", "dest_host", "orig_host", "dvc", "host"}

// DefaultMarkerFields are, per marker location, the result fields where the
// run marker is looked for (CIM Endpoint and Web names, Sysmon names, the
// vigil_marker field of events replayed through HEC, and the raw text).
var DefaultMarkerFields = map[plugin.MarkerLocation][]string{
	plugin.MarkerCommandLine: {"process", "parent_process", "CommandLine", "ParentCommandLine", "process_command_line", "cmdline"},
	plugin.MarkerProcessName: {"process_name", "parent_process_name"},
	plugin.MarkerFilePath:    {"file_path", "file_name", "TargetFilename", "process_path"},
	plugin.MarkerUserAgent:   {"http_user_agent", "user_agent"},
	plugin.MarkerHostname:    {"dest", "dest_host", "orig_host", "src_host"},
	plugin.MarkerLogField:    {"vigil_marker", "_raw", "orig_raw"},
}

// markerLocations are the locations Describe announces, in a stable order.
var markerLocations = []plugin.MarkerLocation{
	plugin.MarkerCommandLine, plugin.MarkerProcessName, plugin.MarkerFilePath,
	plugin.MarkerUserAgent, plugin.MarkerHostname, plugin.MarkerLogField,
}

// Config is the splunk plugin's [siem.params] table, for example
//
//	[[siem]]
//	name = "splunk"
//	plugin = "splunk"
//	poll_interval = "10s"
//	[siem.params]
//	url = "https://splunk.example.com:8089"
//	token = "${SPLUNK_TOKEN}"
//	ca_cert = "/etc/vigil/splunk-ca.pem"
//	correlation_searches = ["ESCU - Linux Shadow File Read - Rule"]
//	hec_url = "https://splunk.example.com:8088"
//	hec_token = "${SPLUNK_HEC_TOKEN}"
//	index = "vigil"
//
// Unknown keys are errors.
type Config struct {
	// URL is the management (REST) endpoint, https, usually port 8089.
	URL string `toml:"url"`
	// Token is an authentication token, sent as a Bearer token. Set it or
	// Username and Password, not both.
	Token plugin.Secret `toml:"token"`
	// Username and Password get a session key from /services/auth/login.
	Username string        `toml:"username"`
	Password plugin.Secret `toml:"password"`
	// App and Owner select the namespace (/servicesNS/OWNER/APP/...) of
	// searches; "-" is the wildcard, used for the one left empty. Both empty
	// means /services.
	App   string `toml:"app"`
	Owner string `toml:"owner"`
	// CACert is a PEM file of the CA(s) that sign the server certificates
	// (management port and HEC); default: the system roots.
	CACert string `toml:"ca_cert"`
	// InsecureSkipVerify turns TLS certificate verification off (warned).
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// API is APIv2 (default) or APIv1.
	API string `toml:"api"`
	// Mode is ModeJobs (default) or ModeExport.
	Mode string `toml:"mode"`
	// Search is the base SPL of every poll (default DefaultSearch). It must
	// return alerts with _time; vigil adds the time window.
	Search string `toml:"search"`
	// RequestTimeout bounds each HTTP request (default 30s).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// JobTimeout bounds one search job from creation to its last result
	// (default 2m); the job is then cancelled and the poll fails.
	JobTimeout time.Duration `toml:"job_timeout"`
	// QuotaWait is how long one poll waits out the concurrent-search quota
	// (HTTP 503) before it fails and the engine backs off (default 30s;
	// "0s" fails at once).
	QuotaWait time.Duration `toml:"quota_wait"`
	// ResultsPage is the rows per results request (default 5000, at most
	// 50000, the usual maxresultrows).
	ResultsPage int `toml:"results_page"`
	// MaxRows caps the rows of one poll (default 100000): more is an error
	// asking for a narrower search, never a silent cut.
	MaxRows int `toml:"max_rows"`
	// Indexes are searched for the injected activity's raw events (default
	// all non-internal indexes, "*").
	Indexes []string `toml:"indexes"`
	// CorrelationSearches are saved searches Check verifies: they exist,
	// are enabled and scheduled.
	CorrelationSearches []string `toml:"correlation_searches"`
	// CloseNotables lets CloseSignals set matched notables to CloseStatus
	// through ES's /services/notable_update (needs edit_notable_events).
	CloseNotables bool `toml:"close_notables"`
	// CloseStatus is the ES status ID closed notables get (default "5").
	CloseStatus string `toml:"close_status"`
	// HECURL is the HTTP Event Collector (usually port 8088) that Ingest
	// sends replayed telemetry to; HECToken is its token.
	HECURL   string        `toml:"hec_url"`
	HECToken plugin.Secret `toml:"hec_token"`
	// Index, Sourcetype and Source are set on every replayed event (index
	// default: the token's default index; sourcetype default "_json";
	// source default "vigil").
	Index      string `toml:"index"`
	Sourcetype string `toml:"sourcetype"`
	Source     string `toml:"source"`
	// HECBatch is the events per HEC request (default 100).
	HECBatch int `toml:"hec_batch"`
	// HECAck waits for indexer acknowledgement of every batch (the token
	// must have it enabled), at most HECAckTimeout (default 30s).
	HECAck        bool          `toml:"hec_ack"`
	HECAckTimeout time.Duration `toml:"hec_ack_timeout"`
	// TechniqueFields, HostFields and MarkerFields replace
	// DefaultTechniqueFields, DefaultHostFields and, per location,
	// DefaultMarkerFields.
	TechniqueFields []string            `toml:"technique_fields"`
	HostFields      []string            `toml:"host_fields"`
	MarkerFields    map[string][]string `toml:"marker_fields"`
}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	base    *url.URL // management URL, no trailing slash
	hec     *url.URL // nil without HEC
	tls     *tls.Config
	markers map[plugin.MarkerLocation][]string
	// quotaBackoff is the first wait after a 503, hecBackoff after a busy
	// HEC reply (tests shorten them).
	quotaBackoff, hecBackoff time.Duration
}

// esMode reports whether the base search is ES's notables.
func (c *config) esMode() bool { return c.Search == DefaultSearch }

// secrets returns the credential values, for scrubbing error messages.
func (c *config) secrets() []string {
	var out []string
	for _, s := range []plugin.Secret{c.Token, c.Password, c.HECToken} {
		if s != "" {
			out = append(out, s.Reveal())
		}
	}
	return out
}

// parseConfig decodes b strictly, checks it and fills in the defaults.
// Errors never quote a credential.
func parseConfig(b []byte) (*config, error) {
	var c Config
	md, err := plugin.DecodeConfigMeta("splunk", b, &c)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*config, error) {
		return nil, fmt.Errorf("splunk: config: "+format, args...)
	}
	cfg := &config{Config: c, quotaBackoff: 500 * time.Millisecond, hecBackoff: 500 * time.Millisecond}

	if c.URL == "" {
		return bad("url is required (the management port, e.g. https://splunk.example.com:8089)")
	}
	if cfg.base, err = parseHTTPS("url", c.URL); err != nil {
		return nil, err
	}
	switch {
	case c.Token != "" && (c.Username != "" || c.Password != ""):
		return bad("set token, or username and password, not both")
	case c.Token == "" && c.Username == "" && c.Password == "":
		return bad("no credentials: set token (an authentication token), or username and password")
	case c.Token == "" && (c.Username == "" || c.Password == ""):
		return bad("username and password go together")
	}
	for _, ns := range []struct{ key, v string }{{"app", c.App}, {"owner", c.Owner}} {
		if strings.ContainsAny(ns.v, "/?#%") {
			return bad("%s %q: not a namespace name", ns.key, ns.v)
		}
	}
	switch c.API {
	case "":
		cfg.API = APIv2
	case APIv1, APIv2:
	default:
		return bad("api %q: want %q or %q", c.API, APIv2, APIv1)
	}
	switch c.Mode {
	case "":
		cfg.Mode = ModeJobs
	case ModeJobs, ModeExport:
	default:
		return bad("mode %q: want %q or %q", c.Mode, ModeJobs, ModeExport)
	}
	if cfg.Search = strings.TrimSpace(c.Search); cfg.Search == "" {
		cfg.Search = DefaultSearch
	} else {
		cfg.Search = normaliseSPL(cfg.Search)
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
		def time.Duration
		min time.Duration
	}{
		{"request_timeout", &cfg.RequestTimeout, DefaultRequestTimeout, time.Second},
		{"job_timeout", &cfg.JobTimeout, DefaultJobTimeout, time.Second},
		{"hec_ack_timeout", &cfg.HECAckTimeout, DefaultHECAckWait, time.Second},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < d.min:
			return bad("%s %s is below %s", d.key, *d.v, d.min)
		}
	}
	if !md.IsDefined("quota_wait") {
		cfg.QuotaWait = DefaultQuotaWait
	} else if c.QuotaWait < 0 {
		return bad("quota_wait %s is negative", c.QuotaWait)
	}
	switch {
	case c.ResultsPage == 0:
		cfg.ResultsPage = DefaultResultsPage
	case c.ResultsPage < 1 || c.ResultsPage > MaxResultsPage:
		return bad("results_page %d out of range (1..%d)", c.ResultsPage, MaxResultsPage)
	}
	switch {
	case c.MaxRows == 0:
		cfg.MaxRows = DefaultMaxRows
	case c.MaxRows < 1:
		return bad("max_rows %d out of range (at least 1)", c.MaxRows)
	}
	if len(c.Indexes) == 0 {
		cfg.Indexes = []string{"*"}
	}
	for i, ix := range cfg.Indexes {
		if strings.TrimSpace(ix) == "" || strings.ContainsAny(ix, "\" \t\n()=") {
			return bad("indexes[%d] %q: not an index name", i, ix)
		}
	}
	for i, n := range c.CorrelationSearches {
		if strings.TrimSpace(n) == "" {
			return bad("correlation_searches[%d] is empty", i)
		}
	}
	if cfg.CloseStatus == "" {
		cfg.CloseStatus = DefaultCloseStatus
	}

	// HEC.
	switch {
	case c.HECURL != "" && c.HECToken == "":
		return bad("hec_url needs hec_token")
	case c.HECURL == "" && c.HECToken != "":
		return bad("hec_token needs hec_url (the collector, e.g. https://splunk.example.com:8088)")
	case c.HECURL != "":
		if cfg.hec, err = parseHTTPS("hec_url", c.HECURL); err != nil {
			return nil, err
		}
	case c.HECAck:
		return bad("hec_ack needs hec_url and hec_token")
	}
	if cfg.Sourcetype == "" {
		cfg.Sourcetype = DefaultSourcetype
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	switch {
	case c.HECBatch == 0:
		cfg.HECBatch = DefaultHECBatch
	case c.HECBatch < 1 || c.HECBatch > MaxHECBatch:
		return bad("hec_batch %d out of range (1..%d)", c.HECBatch, MaxHECBatch)
	}

	// Field mappings.
	if len(c.TechniqueFields) == 0 {
		cfg.TechniqueFields = DefaultTechniqueFields
	}
	if len(c.HostFields) == 0 {
		cfg.HostFields = DefaultHostFields
	}
	cfg.markers = map[plugin.MarkerLocation][]string{}
	for l, fs := range DefaultMarkerFields {
		cfg.markers[l] = fs
	}
	keys := make([]string, 0, len(c.MarkerFields))
	for k := range c.MarkerFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		loc := plugin.MarkerLocation(k)
		if !slices.Contains(markerLocations, loc) {
			names := make([]string, len(markerLocations))
			for i, l := range markerLocations {
				names[i] = string(l)
			}
			return bad("marker_fields: unknown marker location %q (known: %s)", k, strings.Join(names, ", "))
		}
		cfg.markers[loc] = c.MarkerFields[k]
	}

	// TLS.
	cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, warned
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("splunk: config: ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return bad("ca_cert %s: no PEM certificate in it", c.CACert)
		}
		cfg.tls.RootCAs = pool
	}
	return cfg, nil
}

// parseHTTPS parses an https URL without credentials, query or fragment.
func parseHTTPS(key, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("splunk: config: %s: not a URL", key)
	case u.Scheme != "https":
		return nil, fmt.Errorf("splunk: config: %s %q: want an https:// URL (credentials never go over plain http)", key, u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("splunk: config: %s %q: no host", key, u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("splunk: config: %s: credentials go in token/username/password, not in the URL", key)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("splunk: config: %s %q: no query or fragment allowed", key, u.Redacted())
	}
	return u, nil
}

// normaliseSPL makes q a search string the REST API accepts: it must begin
// with a search command or a pipe.
func normaliseSPL(q string) string {
	q = strings.TrimSpace(q)
	if strings.HasPrefix(q, "|") {
		return q
	}
	if f := strings.Fields(q); len(f) > 0 && strings.EqualFold(f[0], "search") {
		return q
	}
	return "search " + q
}
