// Package sentinel is vigil's built-in SIEM plugin "sentinel": it checks
// Microsoft Sentinel for the alerts fired techniques should raise, through
// the Azure SDK for Go (azidentity, the Logs query and Logs ingestion
// clients of azure-sdk-for-go/sdk/monitor, and armsecurityinsights).
//
// Every poll is ONE KQL query of the Log Analytics workspace
// (azlogs.Client.QueryWorkspace) over a window from the earliest pending
// injection to now: SecurityAlert rows (the first record of each
// SystemAlertId), unioned with SecurityIncident when incidents = true and
// with each distinct native query of the pending expectations, whose rows
// carry those expectations' IDs. Techniques, tactics, the alert name and
// the analytics rule ID (ExtendedProperties' "Analytic Rule Ids") are read
// from the row, the time from TimeGenerated (StartTime is the source
// activity's), the host from CompromisedEntity and the host entity, the
// marker from the Entities (process command lines, files, hosts, URLs)
// and the ExtendedProperties (custom details).
//
// Faults are never silent misses: throttling (429) and server errors (5xx)
// are retried within the call after their Retry-After, then spaced
// (RetryAfter) or reported as errors; a PartialError answer is an error;
// a refused token or role (401, 403) is plugin.ErrDenied naming the role.
// Optional calls: Check (credentials, roles, rules exist and are enabled,
// native queries parse), SearchRawEvents (the replay's tables and
// raw_tables, by marker, with ingestion_time()), CloseSignals (the
// incidents of vigil's alerts set to Closed, when close_signals is set),
// Ingest (the Logs Ingestion API through a data collection rule, gzip,
// batched below 1 MB, 413 split), ClaimedRules (analytics rules with
// their tactics, techniques and sub-techniques, ARM nextLink paging) and
// Clock (the workspace's now()).
package sentinel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// Name is the plugin's registered name.
const Name = "sentinel"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// QueryDialect is the dialect of expectations' native queries: KQL.
const QueryDialect = "kql"

// ErrNotConfigured is returned by calls that need Configure first.
var ErrNotConfigured = errors.New("sentinel: not configured")

func init() {
	plugin.RegisterSIEM(Name, func() plugin.SIEM { return new(SIEM) })
}

// Interface guards.
var _ plugin.SIEM = (*SIEM)(nil)

// SIEM is the sentinel plugin. New values are unconfigured; its methods are
// safe for concurrent use.
type SIEM struct {
	mu sync.RWMutex
	st *state
}

// state is what Configure sets up.
type state struct {
	cfg *config
	cl  *clients

	// pages keeps the signals of the current poll for its later pages.
	pages sdk.Pages

	stats   counters
	signals sdk.SignalCount
}

func (p *SIEM) state() (*state, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st == nil {
		return nil, ErrNotConfigured
	}
	return p.st, nil
}

// fail prefixes err with the plugin name and removes the client secret
// from its message, keeping what it wraps (plugin.ErrDenied).
func (st *state) fail(err error) error {
	if err == nil {
		return nil
	}
	return st.scrub(fmt.Errorf("sentinel: %w", err))
}

// scrub removes the client secret from err's message.
func (st *state) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := plugin.RedactSecrets(msg, st.cfg.secrets()...)
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

// scrubbed is an error whose message has the secret removed; it still
// unwraps to the original (errors.Is(err, plugin.ErrDenied)).
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// markerLocations are where the plugin finds the run marker in an alert.
var markerLocations = []plugin.MarkerLocation{
	plugin.MarkerCommandLine, plugin.MarkerProcessName, plugin.MarkerFilePath,
	plugin.MarkerUserAgent, plugin.MarkerHostname, plugin.MarkerLogField,
}

// Describe says what the sentinel plugin is and what it can do.
func (p *SIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindSIEM,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Microsoft Sentinel: SecurityAlert (and incidents) or any KQL through the Logs query API; replay through the Logs Ingestion API.",
		MarkerLocations: append([]plugin.MarkerLocation(nil), markerLocations...),
		QueryDialect:    QueryDialect,
		Capabilities: []string{
			plugin.CapRawEvents, plugin.CapIngestTime, plugin.CapCloseSignals, plugin.CapIngest, plugin.CapRules, plugin.CapClock,
		},
		ReportsHost: true,
	}, nil
}

// Configure decodes the config strictly (see Config), checks it and builds
// the clients; it does not contact Azure (Check does).
func (p *SIEM) Configure(_ context.Context, b []byte) error {
	cfg, err := parseConfig(b)
	if err != nil {
		return err
	}
	st := &state{cfg: cfg, pages: sdk.Pages{MaxBytes: maxPageBytes}}
	if st.cl, err = newClients(cfg, &st.stats); err != nil {
		return st.scrub(err)
	}
	p.mu.Lock()
	old := p.st
	p.st = st
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Stats returns the plugin's counters: polls, queries sent and rows read,
// distinct signals returned, tokens obtained, HTTP attempts, throttled
// (429) and server-error (5xx) answers, uploads, rows uploaded and batches
// split after a 413, incidents closed and rule pages read.
func (p *SIEM) Stats(context.Context) (map[string]int64, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	c := &st.stats
	return map[string]int64{
		"polls": c.polls.Load(), "queries": c.queries.Load(), "rows": c.rows.Load(), "signals": st.signals.Load(),
		"tokens": c.tokens.Load(), "requests": c.requests.Load(), "throttled": c.throttled.Load(), "server_errors": c.serverErrors.Load(),
		"uploads": c.uploads.Load(), "uploaded_rows": c.uploadedRows.Load(), "upload_splits": c.splits.Load(),
		"incidents_closed": c.closed.Load(), "rule_pages": c.rulePages.Load(),
	}, nil
}

// Close drops the poll pages kept and idle connections. It is safe before
// Configure and more than once.
func (p *SIEM) Close(context.Context) error {
	p.mu.Lock()
	st := p.st
	p.st = nil
	p.mu.Unlock()
	if st != nil {
		st.close()
	}
	return nil
}

func (st *state) close() {
	st.pages.Reset()
	st.cl.transport.CloseIdleConnections()
}
