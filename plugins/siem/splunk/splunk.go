// Package splunk is vigil's built-in SIEM plugin "splunk": it checks Splunk
// for the signals fired techniques should raise, through the documented
// REST API on the management port (no SDK: Splunk has no maintained Go
// one).
//
// Every poll is ONE search job (/services/search/v2/jobs: create, poll
// dispatchState until DONE, read the results with output_mode=json in
// count/offset pages, cancel) or one streamed export
// (/services/search/v2/jobs/export, BOM stripped, final rows only), over a
// window from the earliest pending injection to now. The base search is
// Enterprise Security's notables (the `notable` macro), or any SPL the user
// configures; each expectation's native query is appended as a subsearch
// whose rows carry that expectation's ID. ATT&CK technique IDs come from
// annotations.mitre_attack*, the rule from rule_name and search_name, the
// time from _time (and orig_time, the source event's). Multivalue fields
// are read both as JSON arrays and as "\n"-joined strings.
//
// The concurrent-search quota (HTTP 503) is waited out within a poll, then
// reported so the engine backs off; a failed search is an error naming the
// SPL, never an empty answer. Optional calls: Check (credentials, the
// search head, correlation searches exist and are enabled and scheduled,
// claimed ATT&CK coverage), SearchRawEvents (a marker search in the
// configured indexes; _indextime gives the ingestion delay), CloseSignals
// (ES's notable_update, when enabled) and Ingest (HTTP Event Collector,
// batched, with the HEC reply codes handled and optional indexer
// acknowledgement). Jobs vigil created are cancelled on Close.
package splunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// Name is the plugin's registered name.
const Name = "splunk"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// QueryDialect is the dialect of expectations' native queries: SPL.
const QueryDialect = "spl"

// ErrNotConfigured is returned by calls that need Configure first.
var ErrNotConfigured = errors.New("splunk: not configured")

func init() {
	plugin.RegisterSIEM(Name, func() plugin.SIEM { return new(SIEM) })
}

// Interface guards.
var _ plugin.SIEM = (*SIEM)(nil)

// SIEM is the splunk plugin. New values are unconfigured; its methods are
// safe for concurrent use.
type SIEM struct {
	mu sync.RWMutex
	st *state

	// warn receives warnings (default os.Stderr at the time of the call,
	// which go-plugin forwards to vigil's stderr).
	warn io.Writer
}

// state is what Configure sets up.
type state struct {
	cfg    *config
	client *client

	mu   sync.Mutex
	live map[string]bool // sids of jobs created and not yet cancelled
	// pages keeps the signals of the current poll for its later pages.
	pages sdk.Pages

	counters counters
}

// counters are the plugin's Stats.
type counters struct {
	jobs, exports, pages, rows, quota, cancelled atomic.Int64
	closed                                       atomic.Int64
	// signals are the distinct signals returned.
	signals                           sdk.SignalCount
	hecEvents, hecBatches, hecRetries atomic.Int64
}

func (st *state) track(sid string) {
	st.mu.Lock()
	st.live[sid] = true
	st.mu.Unlock()
}

func (st *state) untrack(sid string) {
	st.mu.Lock()
	delete(st.live, sid)
	st.mu.Unlock()
}

func (p *SIEM) state() (*state, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st == nil {
		return nil, ErrNotConfigured
	}
	return p.st, nil
}

// scrub removes the credentials (session key included) from err's message.
func (st *state) scrub(err error) error {
	secrets := st.cfg.secrets()
	st.client.mu.Lock()
	if st.client.session != "" {
		secrets = append(secrets, st.client.session.Reveal())
	}
	st.client.mu.Unlock()
	return scrub(err, secrets)
}

// fail prefixes err with the plugin name and scrubs it.
func (st *state) fail(err error) error {
	if err == nil {
		return nil
	}
	return st.scrub(fmt.Errorf("splunk: %w", err))
}

// Describe says what the splunk plugin is and what it can do.
func (p *SIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindSIEM,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Splunk: Enterprise Security notables or any SPL, through the REST search API; replay through HEC.",
		MarkerLocations: append([]plugin.MarkerLocation(nil), markerLocations...),
		QueryDialect:    QueryDialect,
		Capabilities:    []string{plugin.CapRawEvents, plugin.CapIngestTime, plugin.CapCloseSignals, plugin.CapIngest, plugin.CapRules, plugin.CapClock},
		ReportsHost:     true,
	}, nil
}

// Configure decodes the config strictly (see Config) and checks it; it
// does not contact Splunk (Check does). insecure_skip_verify is warned
// about. Configuring again first closes what the previous Configure set up.
func (p *SIEM) Configure(ctx context.Context, b []byte) error {
	cfg, err := parseConfig(b)
	if err != nil {
		return scrub(err, nil)
	}
	if cfg.InsecureSkipVerify {
		w := p.warn
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintf(w, "[WARN] splunk: insecure_skip_verify = true: the TLS certificates of %s are NOT verified; anyone on the path can read the credentials (set ca_cert instead)\n", cfg.base.Host)
	}
	st := &state{cfg: cfg, client: newClient(cfg), live: map[string]bool{}, pages: sdk.Pages{MaxBytes: maxPageBytes}}
	p.mu.Lock()
	old := p.st
	p.st = st
	p.mu.Unlock()
	if old != nil {
		if err := old.close(ctx); err != nil {
			return old.fail(fmt.Errorf("reconfigure: %w", err))
		}
	}
	return nil
}

// Stats returns the plugin's counters: search jobs created and cancelled,
// exports, results pages and rows read, concurrent-search quota refusals
// (quota_refusals), distinct signals returned, notables closed, HEC events sent,
// batches and retries, and the jobs not cancelled yet.
func (p *SIEM) Stats(context.Context) (map[string]int64, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	c := &st.counters
	st.mu.Lock()
	live := int64(len(st.live))
	st.mu.Unlock()
	st.client.mu.Lock()
	logins := st.client.logins
	st.client.mu.Unlock()
	return map[string]int64{
		"jobs": c.jobs.Load(), "jobs_cancelled": c.cancelled.Load(), "jobs_live": live,
		"exports": c.exports.Load(), "result_pages": c.pages.Load(), "result_rows": c.rows.Load(),
		"quota_refusals": c.quota.Load(), "signals": c.signals.Load(), "notables_closed": c.closed.Load(),
		"hec_events": c.hecEvents.Load(), "hec_batches": c.hecBatches.Load(), "hec_retries": c.hecRetries.Load(),
		"logins": logins,
	}, nil
}

// Close cancels the search jobs vigil created that are still there. It is
// safe before Configure and more than once.
func (p *SIEM) Close(ctx context.Context) error {
	p.mu.Lock()
	st := p.st
	p.st = nil
	p.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.fail(st.close(ctx))
}

// close cancels every live job.
func (st *state) close(ctx context.Context) error {
	st.mu.Lock()
	sids := make([]string, 0, len(st.live))
	for sid := range st.live {
		sids = append(sids, sid)
	}
	st.mu.Unlock()
	st.pages.Reset()
	sort.Strings(sids)
	var errs []error
	for _, sid := range sids {
		if err := st.cancelJob(ctx, sid); err != nil {
			errs = append(errs, err)
			continue
		}
		st.untrack(sid)
	}
	st.client.http.CloseIdleConnections()
	return errors.Join(errs...)
}
