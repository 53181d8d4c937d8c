// Package elastic is vigil's built-in SIEM plugin "elastic": it verifies
// that Elastic Security raised the detection alerts the fired techniques
// should raise, and replays recorded telemetry into Elasticsearch.
//
// Everything goes through the official client,
// github.com/elastic/go-elasticsearch/v8, and its transport layer for
// Kibana:
//
//   - Search: one batched search per poll on the alerts index
//     (.alerts-security.alerts-<space>, or the 7.x .siem-signals-<space>),
//     @timestamp from the earliest pending injection, building-block alerts
//     excluded, sorted and paged with search_after; or, with
//     search_api = "kibana", the same query through Kibana's detection
//     engine API. Both document layouts are read: 8.x literal dotted keys
//     (kibana.alert.rule.name, kibana.alert.rule.threat, ...) and 7.x
//     nested signal.*. Matching happens in the engine.
//   - Check: credentials, the alerts index readable, and through Kibana's
//     rules API that the expected rules exist and are enabled.
//   - SearchRawEvents: the event indices (default logs-*) by marker and
//     host, with event.ingested for the ingestion delay.
//   - CloseSignals: kibana.alert.workflow_status set to closed (Kibana's
//     signals status API, or update-by-query on the alerts index).
//   - Ingest: _bulk create actions into a data stream (default
//     logs-vigil.replay-default), re-timestamped and stamped with the marker,
//     failed items handled one by one and retried only on 429.
//
// 429 is added to the client's retry statuses (with 500), with exponential
// backoff; a failure that persists is an error, which the engine turns into
// an error result, never a miss. Secrets never appear in errors.
package elastic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Name is the plugin's registered name.
const Name = "elastic"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// QueryDialect is the dialect of expectations' native queries: a Lucene
// query_string, or a JSON query DSL object, run against the alert
// documents.
const QueryDialect = "elasticsearch"

// ErrNotConfigured is returned by calls that need Configure first.
var ErrNotConfigured = errors.New("elastic: not configured")

// defaultRetryBase is the first retry's backoff.
const defaultRetryBase = 500 * time.Millisecond

func init() {
	plugin.RegisterSIEM(Name, func() plugin.SIEM { return new(SIEM) })
}

// Interface guards.
var _ plugin.SIEM = (*SIEM)(nil)

// SIEM is the elastic SIEM plugin. New values are unconfigured; its methods
// are safe for concurrent use.
type SIEM struct {
	mu    sync.RWMutex
	st    *state // nil until Configure
	stats counters

	// retryBase is the first retry's backoff (tests shorten it); 0 means
	// defaultRetryBase.
	retryBase time.Duration
	// warnings receives configuration warnings; nil means os.Stderr.
	warnings io.Writer
	// now is the clock (tests); nil means time.Now.
	now func() time.Time
	// sleep waits out a 429 before its retry (tests record the waits);
	// nil means a real wait that ends with ctx.
	sleep func(ctx context.Context, d time.Duration) error
}

// state is what Configure sets up.
type state struct {
	cfg   *config
	cl    *clients
	stats *counters
	now   func() time.Time
}

func (s *SIEM) state() (*state, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st == nil {
		return nil, ErrNotConfigured
	}
	return s.st, nil
}

// Describe says what the plugin is and what it can do. Raw-event search and
// ingest need Elasticsearch itself (addresses or cloud_id); with kibana_url
// alone they fail with ErrNoElasticsearch.
func (s *SIEM) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindSIEM,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Elastic Security: detection alerts through Elasticsearch or Kibana; replay through the bulk API.",
		MarkerLocations: markerLocations(),
		QueryDialect:    QueryDialect,
		Capabilities:    []string{plugin.CapRawEvents, plugin.CapIngestTime, plugin.CapCloseSignals, plugin.CapIngest, plugin.CapRules, plugin.CapClock},
		ReportsHost:     true,
	}, nil
}

// Configure decodes the config strictly (see Config) and builds the
// clients; it makes no request. insecure_skip_verify prints a warning.
func (s *SIEM) Configure(ctx context.Context, b []byte) error {
	cfg, err := parseConfig(b)
	if err != nil {
		return err
	}
	base := s.retryBase
	if base <= 0 {
		base = defaultRetryBase
	}
	cl, err := newClients(cfg, base, &s.stats, s.sleep)
	if err != nil {
		return err
	}
	if cfg.InsecureSkipVerify {
		w := s.warnings
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintln(w, "elastic: WARNING: insecure_skip_verify = true: TLS certificates are not verified, "+
			"so anyone on the network path can impersonate the server and read the credentials; use ca_cert or certificate_fingerprint")
	}
	now := s.now
	if now == nil {
		now = time.Now
	}
	st := &state{cfg: cfg, cl: cl, stats: &s.stats, now: now}
	s.mu.Lock()
	old := s.st
	s.st = st
	s.mu.Unlock()
	if old != nil {
		old.close(ctx)
	}
	return nil
}

func (st *state) close(ctx context.Context) {
	if st.cl.es != nil {
		_ = st.cl.es.Close(ctx)
	}
	if st.cl.kb != nil {
		_ = st.cl.kb.Close(ctx)
	}
}

// Stats returns the plugin's counters: searches (Search calls, pages
// included), alerts (distinct alerts returned), throttled (429 answers, retries
// included), server_errors (5xx answers), raw_searches, raw_events,
// ingested, ingest_rejected, ingest_item_retries and closed.
func (s *SIEM) Stats(ctx context.Context) (map[string]int64, error) {
	if _, err := s.state(); err != nil {
		return nil, err
	}
	c := &s.stats
	return map[string]int64{
		"searches":            c.searches.Load(),
		"alerts":              c.alerts.Load(),
		"throttled":           c.throttled.Load(),
		"server_errors":       c.serverErrors.Load(),
		"raw_searches":        c.rawSearches.Load(),
		"raw_events":          c.rawEvents.Load(),
		"ingested":            c.ingested.Load(),
		"ingest_rejected":     c.ingestRejected.Load(),
		"ingest_item_retries": c.ingestItemRetries.Load(),
		"closed":              c.closed.Load(),
	}, nil
}

// Close releases the clients' connections.
func (s *SIEM) Close(ctx context.Context) error {
	s.mu.Lock()
	st := s.st
	s.st = nil
	s.mu.Unlock()
	if st != nil {
		st.close(ctx)
	}
	return nil
}
