// Package local is vigil's embedded default SIEM, the built-in SIEM plugin
// "local": a real detection pipeline on the host.
//
// In live mode (the default) Configure starts the kernel audit sensor
// (plugins/siem/local/sensor). Every normalised event, from the sensor or
// from Ingest (replayed telemetry, mode "replay"), goes through the Sigma
// engine (plugins/siem/local/detect) loaded with vigil's own rules
// (rules/sigma/linux), the shipped SigmaHQ Linux rules and any extra rule
// directories; every match becomes a stored signal whose timestamp is the
// event's own time (the kernel's audit timestamp), the basis of the
// detection latency. Raw events are kept in a bounded ring for
// SearchRawEvents, for native queries (an expectation's Query is an inline
// Sigma rule) and, when configured, appended to a record file for
// `vigil record`.
//
// Signals carry the run marker wherever the event shows it: the command
// lines of the process ancestry, the process's own command line, file paths
// and the vigil.marker field of replayed events.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/plugins/siem/local/sensor"
)

// Name is the plugin's registered name.
const Name = "local"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// QueryDialect is the dialect of expectations' native queries: an inline
// Sigma rule (YAML with at least logsource and detection).
const QueryDialect = "sigma"

// DefaultPageSize is the number of signals per Search page when the request
// sets none.
const DefaultPageSize = 1000

// ErrNotConfigured is returned by calls that need Configure first.
var ErrNotConfigured = errors.New("local: not configured")

func init() {
	plugin.RegisterSIEM(Name, func() plugin.SIEM { return new(SIEM) })
	plugin.RegisterSIEMModes(Name, modes{})
}

// Interface guards.
var _ plugin.SIEM = (*SIEM)(nil)

// SIEM is the local SIEM. New values are unconfigured; its methods are safe
// for concurrent use.
type SIEM struct {
	mu sync.RWMutex
	st *state // nil until Configure

	// now is the clock (tests); default time.Now.
	now func() time.Time
	// sensorConfig, when set, adjusts the sensor's config (tests).
	sensorConfig func(*sensor.Config)
}

// runningSensor is a started sensor and the cancel func of its context.
type runningSensor struct {
	*sensor.Sensor
	cancel context.CancelFunc
}

// state is what Configure sets up.
type state struct {
	cfg      Config
	engine   *detect.Engine
	nRules   int
	problems []detect.Problem
	store    *store
	rec      *recorder
	queries  *queryCache

	sensor atomic.Pointer[runningSensor] // nil in replay mode
	logs   *auditLogs                    // nil without kubernetes_audit_logs

	nIngested, nRejected, nEventsSeen atomic.Uint64
}

func (s *SIEM) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *SIEM) state() (*state, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st == nil {
		return nil, ErrNotConfigured
	}
	return s.st, nil
}

// Describe says what the local SIEM is and what it can do.
func (s *SIEM) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindSIEM,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Embedded SIEM: Linux audit sensor, Kubernetes API server audit logs (or replayed telemetry) through vigil's and SigmaHQ's Sigma rules.",
		Platforms:       []string{"linux"},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField, plugin.MarkerUserAgent},
		QueryDialect:    QueryDialect,
		Capabilities:    []string{plugin.CapRawEvents, plugin.CapIngestTime, plugin.CapIngest, plugin.CapRules, plugin.CapClock, plugin.CapRulesOffline},
		ReportsHost:     true,
	}, nil
}

// Configure decodes the config strictly (see Config), loads the rules,
// builds the engine, opens the record file and, in live mode, starts the
// audit sensor. A sensor that cannot run on this host returns its error
// unchanged: it wraps sensor.ErrUnavailable and points to
// `vigil run --replay`. Configuring again first closes what the previous
// Configure set up.
func (s *SIEM) Configure(ctx context.Context, b []byte) error {
	cfg, err := parseConfig(b)
	if err != nil {
		return err
	}
	rs, err := loadRules(cfg)
	if err != nil {
		return err
	}
	st := &state{
		cfg:      cfg,
		engine:   detect.NewEngine(rs.rules),
		nRules:   len(rs.rules),
		problems: rs.problems,
		store:    newStore(cfg.Retention, cfg.MaxEvents, s.clock),
		queries:  newQueryCache(),
	}
	if cfg.Record != "" {
		if st.rec, err = openRecorder(cfg.Record); err != nil {
			return err
		}
	}

	s.mu.Lock()
	old := s.st
	s.st = nil
	s.mu.Unlock()
	if old != nil {
		if err := old.close(ctx); err != nil {
			_ = st.rec.close()
			return fmt.Errorf("local: reconfigure: %w", err)
		}
	}
	// Publish the state before the sensor starts: its first events need it.
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()

	if cfg.Mode != ModeReplay && len(cfg.KubernetesAuditLogs) > 0 {
		st.logs, err = followAuditLogs(cfg.KubernetesAuditLogs, cfg.KubernetesCluster, func(evs []telemetry.Event) { s.process(st, evs, s.clock()) })
		if err != nil {
			s.mu.Lock()
			s.st = nil
			s.mu.Unlock()
			_ = st.rec.close()
			return err
		}
	}
	if cfg.Mode == ModeLive {
		if err := s.startSensor(ctx, st); err != nil {
			s.mu.Lock()
			s.st = nil
			s.mu.Unlock()
			st.logs.stop()
			_ = st.rec.close()
			return err
		}
	}
	return nil
}

// startSensor starts the audit sensor feeding st. The sensor outlives ctx
// (it runs until Close), but a ctx cancelled while it starts stops it.
func (s *SIEM) startSensor(ctx context.Context, st *state) error {
	scfg := sensor.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if s.sensorConfig != nil {
		s.sensorConfig(&scfg)
	}
	sen := sensor.New(scfg)
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	err := sen.Start(sctx, func(evs []telemetry.Event) { s.process(st, evs, s.clock()) })
	if !stop() {
		// ctx ended while the sensor started: it stops with sctx.
		cancel()
		if err == nil {
			err = fmt.Errorf("local: start sensor: %w", context.Cause(ctx))
			_ = sen.Stop(context.WithoutCancel(ctx))
		}
		return err
	}
	if err != nil {
		cancel()
		return err // unchanged: wraps sensor.ErrUnavailable when it applies
	}
	st.sensor.Store(&runningSensor{Sensor: sen, cancel: cancel})
	return nil
}

// process runs events through the engine and stores them and the signals
// they raise. It is called by the sensor's goroutine and by Ingest.
func (s *SIEM) process(st *state, evs []telemetry.Event, received time.Time) {
	st.rec.write(evs)
	var buf []detect.Match
	for i := range evs {
		ev := &evs[i]
		st.nEventsSeen.Add(1)
		st.store.addEvent(ev, received)
		buf = st.engine.AppendMatches(buf[:0], ev)
		for _, m := range buf {
			st.store.addSignal(newSignal(m.Rule, m.Searches, ev, ""), received)
		}
	}
}

// kernelTick bounds how far behind the time of an audit event is stamped:
// the kernel reads its coarse clock, updated once per tick (1 to 10 ms
// depending on CONFIG_HZ).
const kernelTick = 10 * time.Millisecond

// Clock reads the local SIEM's clock: it is this host's, so the offset is
// zero. Live events are stamped by the kernel's coarse clock, up to one
// tick behind: that is the reading's uncertainty.
func (s *SIEM) Clock(ctx context.Context) (plugin.ClockReading, error) {
	if _, err := s.state(); err != nil {
		return plugin.ClockReading{}, err
	}
	return plugin.ClockReading{Uncertainty: kernelTick, Source: "this host's own clock (the kernel stamps audit events with its coarse clock)"}, nil
}

// LoadProblems lists the SigmaHQ and extra-directory rule files that were
// not loaded, with the reason (nil before Configure). vigil's own rules
// never appear here: their problems fail Configure.
func (s *SIEM) LoadProblems() []detect.Problem {
	st, err := s.state()
	if err != nil {
		return nil
	}
	return append([]detect.Problem(nil), st.problems...)
}

// Rules returns the loaded rules (nil before Configure).
func (s *SIEM) Rules() []*detect.Rule {
	st, err := s.state()
	if err != nil {
		return nil
	}
	return st.engine.Rules()
}

// Stats returns the sensor's counters (live mode: the kernel's lost,
// backlog and backlog_limit, and the sensor's records, audit_events,
// emitted, unparsed, dropped and sequence_gaps) and the SIEM's own: events
// (processed), signals (raised), stored_events, stored_signals,
// events_evicted, ingested, ingest_rejected, record_dropped, rules_loaded
// and rules_skipped.
func (s *SIEM) Stats(ctx context.Context) (map[string]int64, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	events, signals, storedEvents, storedSignals, evicted, _ := st.store.counts()
	out := map[string]int64{
		"events":          int64(events),
		"signals":         int64(signals),
		"stored_events":   int64(storedEvents),
		"stored_signals":  int64(storedSignals),
		"events_evicted":  int64(evicted),
		"ingested":        int64(st.nIngested.Load()),
		"ingest_rejected": int64(st.nRejected.Load()),
		"record_dropped":  int64(st.rec.dropped()),
		"rules_loaded":    int64(st.nRules),
		"rules_skipped":   int64(len(st.problems)),
		"rules_broken":    int64(brokenRules(st.problems)),
	}
	if st.logs != nil {
		out["kubernetes_audit_lines"] = int64(st.logs.lines.Load())
		out["kubernetes_audit_unparsed"] = int64(st.logs.unparsed.Load())
	}
	if sen := st.sensor.Load(); sen != nil {
		ss, err := sen.Stats(ctx)
		out["records"] = int64(ss.Records)
		out["audit_events"] = int64(ss.Events)
		out["emitted"] = int64(ss.Emitted)
		out["unparsed"] = int64(ss.Unparsed)
		out["dropped"] = int64(ss.Dropped)
		out["sequence_gaps"] = int64(ss.SequenceGaps)
		if err == nil {
			out["lost"] = int64(ss.Lost)
			out["backlog"] = int64(ss.Backlog)
			out["backlog_limit"] = int64(ss.BacklogLimit)
		}
	}
	return out, nil
}

// brokenRules counts the rule files that cannot work as written.
func brokenRules(ps []detect.Problem) int {
	n := 0
	for _, p := range ps {
		if p.Broken() {
			n++
		}
	}
	return n
}

// Close stops the sensor (removing its audit rules and restoring the audit
// status) and flushes and closes the record file. Signals stay searchable.
// It is safe to call more than once.
func (s *SIEM) Close(ctx context.Context) error {
	s.mu.RLock()
	st := s.st
	s.mu.RUnlock()
	if st == nil {
		return nil
	}
	return st.close(ctx)
}

// close stops the sensor and the audit logs and closes the recorder.
func (st *state) close(ctx context.Context) error {
	var errs []error
	st.logs.stop()
	if sen := st.sensor.Load(); sen != nil {
		if err := sen.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("local: stop sensor: %w", err))
		}
		sen.cancel()
	}
	if err := st.rec.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
