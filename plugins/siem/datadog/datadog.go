// Package datadog is vigil's built-in SIEM plugin "datadog": it checks
// which techniques a Datadog organisation's Cloud SIEM and Workload
// Protection rules detect, and how fast, through the official Go client
// (github.com/DataDog/datadog-api-client-go/v2).
//
// Search runs one batched signals search per poll
// (SecurityMonitoringApi.SearchSecurityMonitoringSignals, POST body, cursor
// paging) over the window of the pending injections, and decodes the
// answer itself: the real answer nests rule and workflow data under
// attributes.attributes (list and search) or attributes.custom (details),
// tags techniques as lower-case slugs (technique:t1552-unsecured-credentials
// becomes T1552), and keeps the log samples that raised the signal, whose
// command lines, file paths and vigil.marker attributes become the signal's
// marker values.
//
// The optional calls: Check validates the keys and the rules expectations
// name (security monitoring rules API); SearchRawEvents finds the injected
// activity's own logs by marker (logs search API); CloseSignals archives
// the matched signals (signal state API) when close_signals is set; Ingest
// replays events through the logs intake (SubmitLog), re-timestamped and in
// batches within the intake's limits. Rules lists the detection rules with
// their ATT&CK tags.
//
// Every call honours Datadog's X-RateLimit-* headers and retries 5xx, 408,
// 429 and timeouts with capped backoff; a failure that persists is an
// error, which the engine turns into an `error` result, never a miss.
// Errors name the call and never contain the keys.
package datadog

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/vigilsec/vigil/core/plugin"
)

// Name is the plugin's registered name.
const Name = "datadog"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// QueryDialect is the dialect of expectations' native queries: a Datadog
// security signals search query, such as
// `@workflow.rule.name:"PAM Configuration Files Modification"`.
const QueryDialect = "datadog-signals"

// ErrNotConfigured is returned by calls that need Configure first.
var ErrNotConfigured = errors.New("datadog: not configured")

func init() {
	plugin.RegisterSIEM(Name, func() plugin.SIEM { return new(SIEM) })
}

// Interface guards.
var _ plugin.SIEM = (*SIEM)(nil)

// SIEM is the Datadog SIEM plugin. New values are unconfigured; its methods
// are safe for concurrent use.
type SIEM struct {
	mu sync.RWMutex
	st *state // nil until Configure

	// httpClient, when set, replaces the default HTTP client (tests).
	httpClient *http.Client
	// adjust, when set, is applied to the api Configure builds (tests:
	// clocks and sleeps).
	adjust func(*api)
}

// state is what Configure sets up.
type state struct {
	cfg Config
	api *api
}

func (s *SIEM) state() (*state, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st == nil {
		return nil, ErrNotConfigured
	}
	return s.st, nil
}

// Describe says what the Datadog plugin is and what it can do.
func (s *SIEM) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindSIEM,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Datadog Cloud SIEM and Workload Protection signals, through the official Go client; replay through the logs intake.",
		MarkerLocations: []plugin.MarkerLocation{
			plugin.MarkerCommandLine, plugin.MarkerProcessName, plugin.MarkerFilePath,
			plugin.MarkerUserAgent, plugin.MarkerHostname, plugin.MarkerEnvironment, plugin.MarkerLogField,
		},
		QueryDialect: QueryDialect,
		Capabilities: []string{plugin.CapRawEvents, plugin.CapCloseSignals, plugin.CapIngest, plugin.CapRules, plugin.CapClock},
		ReportsHost:  true,
	}, nil
}

// Configure decodes the config strictly (see Config) and builds the
// client. It makes no request: Check does. Configuring again replaces the
// previous setup.
func (s *SIEM) Configure(ctx context.Context, b []byte) error {
	cfg, err := parseConfig(b)
	if err != nil {
		return err
	}
	hc := s.httpClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	a := newAPI(cfg, hc)
	if s.adjust != nil {
		s.adjust(a)
	}
	s.mu.Lock()
	s.st = &state{cfg: cfg, api: a}
	s.mu.Unlock()
	return nil
}

// Stats returns the plugin's counters: requests sent, 429s met, retries,
// 5xx answers, time spent waiting for rate limits, signals seen, logs sent
// and rejected, signals archived.
func (s *SIEM) Stats(ctx context.Context) (map[string]int64, error) {
	st, err := s.state()
	if err != nil {
		return nil, nil
	}
	return st.api.stats.snapshot(), nil
}

// Close releases idle connections. The plugin can be configured again.
func (s *SIEM) Close(ctx context.Context) error {
	s.mu.Lock()
	st := s.st
	s.st = nil
	s.mu.Unlock()
	if st != nil {
		st.api.client.Cfg.HTTPClient.CloseIdleConnections()
	}
	return nil
}
