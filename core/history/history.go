// Package history stores every vigil run in an embedded SQLite database
// (modernc.org/sqlite, pure Go): the run's metadata, every result and
// every signal matched, written as the run goes so that a run that dies
// halfway leaves what it measured. It answers "which runs were there",
// "the last complete run of this config" and loads a stored run back into
// the results model (measure.Run) that every report derives from.
package history

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/vigilsec/vigil/core/measure"
)

// EnvPath is the environment variable that overrides the default path.
const EnvPath = "VIGIL_HISTORY"

// Run states.
const (
	// StateRunning: results are still being written, or the process died
	// before it finished the run (results stored so far are kept).
	StateRunning = "running"
	// StateComplete: the run finished.
	StateComplete = "complete"
	// StateInterrupted: the run was interrupted (Ctrl-C) and stopped early.
	StateInterrupted = "interrupted"
)

// Errors.
var (
	// ErrNotFound means no stored run matches.
	ErrNotFound = errors.New("no such run in history")
	// ErrAmbiguous means a run ID prefix matches several runs.
	ErrAmbiguous = errors.New("run ID prefix matches several runs")
)

// DefaultPath is $VIGIL_HISTORY, else $XDG_STATE_HOME/vigil/history.db,
// else ~/.local/state/vigil/history.db.
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "vigil", "history.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("history: locate the state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "vigil", "history.db"), nil
}

// ConfigHash identifies a configuration across runs: the SHA-256 of the
// redacted config (results.json's "config", secrets already hidden) in
// canonical JSON, without its file path, so that the same settings from
// another directory are the same config.
func ConfigHash(cfg map[string]any) string {
	c := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if k != "path" {
			c[k] = v
		}
	}
	b, err := json.Marshal(c) // map keys are sorted: canonical
	if err != nil {
		b = []byte(fmt.Sprint(c))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Store is an open history database. Its methods are safe for concurrent
// use.
type Store struct {
	db   *sql.DB
	path string
}

// schema is applied in order; PRAGMA user_version counts the steps done.
var schema = []string{
	`CREATE TABLE runs (
		seq           INTEGER PRIMARY KEY AUTOINCREMENT,
		id            TEXT NOT NULL UNIQUE,
		state         TEXT NOT NULL,
		started_at    TEXT NOT NULL,
		finished_at   TEXT,
		vigil_version TEXT NOT NULL DEFAULT '',
		config_hash   TEXT NOT NULL,
		config_json   TEXT NOT NULL,
		notes_json    TEXT NOT NULL DEFAULT '[]',
		stats_json    TEXT NOT NULL DEFAULT '{}',
		total         INTEGER NOT NULL DEFAULT 0,
		detected      INTEGER NOT NULL DEFAULT 0,
		missed        INTEGER NOT NULL DEFAULT 0,
		errors        INTEGER NOT NULL DEFAULT 0,
		skipped       INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX runs_config ON runs (config_hash, seq);
	CREATE TABLE results (
		run_id              TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		idx                 INTEGER NOT NULL,
		test_id             TEXT NOT NULL,
		target              TEXT NOT NULL,
		siem                TEXT NOT NULL,
		technique           TEXT NOT NULL,
		tactics             TEXT NOT NULL,
		status              TEXT NOT NULL,
		marker              TEXT NOT NULL DEFAULT '',
		injected_at         TEXT,
		detected_at         TEXT,
		latency_ms          INTEGER,
		observed_latency_ms INTEGER,
		ingest_latency_ms   INTEGER,
		correlation         TEXT NOT NULL DEFAULT '',
		reason              TEXT NOT NULL DEFAULT '',
		error               TEXT NOT NULL DEFAULT '',
		result_json         TEXT NOT NULL,
		PRIMARY KEY (run_id, idx)
	);
	CREATE INDEX results_test ON results (test_id, target, siem);
	CREATE TABLE signals (
		run_id     TEXT NOT NULL,
		result_idx INTEGER NOT NULL,
		signal_id  TEXT NOT NULL,
		rule       TEXT NOT NULL,
		rule_id    TEXT NOT NULL DEFAULT '',
		timestamp  TEXT NOT NULL,
		FOREIGN KEY (run_id, result_idx) REFERENCES results (run_id, idx) ON DELETE CASCADE
	);
	CREATE INDEX signals_rule ON signals (rule);`,
}

// Open opens (creating it and its directory if needed) the database at
// path and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history: create %s: %w", filepath.Dir(path), err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	} else {
		f.Close()
	}
	// WAL lets readers work while a run writes; write transactions start
	// IMMEDIATE so that two processes writing at once wait for each other
	// (busy_timeout) instead of failing to upgrade a read lock.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %s: %w", path, err)
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(schema) {
		return fmt.Errorf("database schema version %d is newer than this vigil knows (%d)", version, len(schema))
	}
	for i := version; i < len(schema); i++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, schema[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
	}
	return nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optTS(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return ts(*t)
}

func optInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// Begin records the start of a run (state running) from its metadata;
// results come with Add and Finish.
func (s *Store) Begin(ctx context.Context, run *measure.Run) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs (id, state, started_at, vigil_version, config_hash, config_json, notes_json)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		run.RunID, StateRunning, ts(run.StartedAt), run.Vigil, ConfigHash(run.Config), mustJSON(run.Config), mustJSON(notes(run)))
	if err != nil {
		return fmt.Errorf("history: begin run %s: %w", run.RunID, err)
	}
	return nil
}

func notes(run *measure.Run) []string {
	if run.Notes == nil {
		return []string{}
	}
	return run.Notes
}

// Add appends results to a run that was begun, with their signals, in one
// transaction, and updates the run's counts.
func (s *Store) Add(ctx context.Context, runID string, rs []measure.Result) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: add results to %s: %w", runID, err)
	}
	defer tx.Rollback()
	var next int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM results WHERE run_id = ?`, runID).Scan(&next); err != nil {
		return fmt.Errorf("history: add results to %s: %w", runID, err)
	}
	if err := insertResults(ctx, tx, runID, next, rs); err != nil {
		return err
	}
	if err := updateCounts(ctx, tx, runID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: add results to %s: %w", runID, err)
	}
	return nil
}

func insertResults(ctx context.Context, tx *sql.Tx, runID string, first int, rs []measure.Result) error {
	resStmt, err := tx.PrepareContext(ctx, `INSERT INTO results (run_id, idx, test_id, target, siem, technique, tactics, status, marker,
		injected_at, detected_at, latency_ms, observed_latency_ms, ingest_latency_ms, correlation, reason, error, result_json)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("history: prepare: %w", err)
	}
	defer resStmt.Close()
	sigStmt, err := tx.PrepareContext(ctx, `INSERT INTO signals (run_id, result_idx, signal_id, rule, rule_id, timestamp) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("history: prepare: %w", err)
	}
	defer sigStmt.Close()
	for i, r := range rs {
		idx := first + i
		if _, err := resStmt.ExecContext(ctx, runID, idx, r.TestID, r.Target, r.SIEM, r.Technique, strings.Join(r.Tactics, ","),
			string(r.Status), r.Marker, optTS(r.InjectedAt), optTS(r.DetectedAt), optInt(r.LatencyMS), optInt(r.ObservedLatencyMS),
			optInt(r.IngestLatencyMS), r.Correlation, r.Reason, r.Error, mustJSON(r)); err != nil {
			return fmt.Errorf("history: store result %s/%s/%s: %w", r.TestID, r.Target, r.SIEM, err)
		}
		for _, sg := range r.Signals {
			if _, err := sigStmt.ExecContext(ctx, runID, idx, sg.ID, sg.Rule, sg.RuleID, ts(sg.Timestamp)); err != nil {
				return fmt.Errorf("history: store signal %s: %w", sg.ID, err)
			}
		}
	}
	return nil
}

func updateCounts(ctx context.Context, tx *sql.Tx, runID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE runs SET
		total = (SELECT COUNT(*) FROM results WHERE run_id = runs.id),
		detected = (SELECT COUNT(*) FROM results WHERE run_id = runs.id AND status = 'detected'),
		missed = (SELECT COUNT(*) FROM results WHERE run_id = runs.id AND status = 'missed'),
		errors = (SELECT COUNT(*) FROM results WHERE run_id = runs.id AND status = 'error'),
		skipped = (SELECT COUNT(*) FROM results WHERE run_id = runs.id AND status = 'skipped')
		WHERE id = ?`, runID)
	if err != nil {
		return fmt.Errorf("history: count results of %s: %w", runID, err)
	}
	return nil
}

// Finish replaces the run's results with the final set (the run's order)
// and records its end, notes and SIEM statistics. state is StateComplete
// or StateInterrupted.
func (s *Store) Finish(ctx context.Context, run *measure.Run, state string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: finish run %s: %w", run.RunID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE runs SET state = ?, finished_at = ?, notes_json = ?, stats_json = ?, vigil_version = ? WHERE id = ?`,
		state, optTS(&run.FinishedAt), mustJSON(notes(run)), mustJSON(run.SIEMStats), run.Vigil, run.RunID)
	if err != nil {
		return fmt.Errorf("history: finish run %s: %w", run.RunID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("history: finish run %s: %w", run.RunID, ErrNotFound)
	}
	for _, q := range []string{`DELETE FROM signals WHERE run_id = ?`, `DELETE FROM results WHERE run_id = ?`} {
		if _, err := tx.ExecContext(ctx, q, run.RunID); err != nil {
			return fmt.Errorf("history: finish run %s: %w", run.RunID, err)
		}
	}
	if err := insertResults(ctx, tx, run.RunID, 0, run.Results); err != nil {
		return err
	}
	if err := updateCounts(ctx, tx, run.RunID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: finish run %s: %w", run.RunID, err)
	}
	return nil
}

// Save stores a whole run at once (an imported results.json).
func (s *Store) Save(ctx context.Context, run *measure.Run, state string) error {
	if err := s.Begin(ctx, run); err != nil {
		return err
	}
	return s.Finish(ctx, run, state)
}

// RunInfo describes a stored run.
type RunInfo struct {
	ID         string
	State      string
	StartedAt  time.Time
	FinishedAt *time.Time
	Vigil      string
	ConfigHash string
	Total      int
	Detected   int
	Missed     int
	Errors     int
	Skipped    int
}

// Coverage is detected / (detected + missed), nil when nothing was
// measured.
func (r RunInfo) Coverage() *float64 {
	if n := r.Detected + r.Missed; n > 0 {
		v := float64(r.Detected) / float64(n)
		return &v
	}
	return nil
}

// Filter selects runs.
type Filter struct {
	// ConfigHash, when set, keeps the runs of that config (a prefix is
	// enough).
	ConfigHash string
	// State, when set, keeps the runs in that state.
	State string
	// Before, when set, keeps the runs stored before that run.
	Before string
	// Limit bounds the number of runs (0: no bound).
	Limit int
}

// Runs lists stored runs, newest first.
func (s *Store) Runs(ctx context.Context, f Filter) ([]RunInfo, error) {
	q := `SELECT id, state, started_at, finished_at, vigil_version, config_hash, total, detected, missed, errors, skipped FROM runs WHERE 1 = 1`
	var args []any
	if f.ConfigHash != "" {
		q += ` AND config_hash LIKE ? || '%'`
		args = append(args, f.ConfigHash)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.Before != "" {
		q += ` AND seq < (SELECT seq FROM runs WHERE id = ?)`
		args = append(args, f.Before)
	}
	q += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("history: list runs: %w", err)
	}
	defer rows.Close()
	var out []RunInfo
	for rows.Next() {
		var r RunInfo
		var started string
		var finished sql.NullString
		if err := rows.Scan(&r.ID, &r.State, &started, &finished, &r.Vigil, &r.ConfigHash, &r.Total, &r.Detected, &r.Missed, &r.Errors, &r.Skipped); err != nil {
			return nil, fmt.Errorf("history: list runs: %w", err)
		}
		r.StartedAt, _ = time.Parse(time.RFC3339Nano, started)
		if finished.Valid {
			if t, err := time.Parse(time.RFC3339Nano, finished.String); err == nil {
				r.FinishedAt = &t
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list runs: %w", err)
	}
	return out, nil
}

// Resolve returns the ID of the run a reference names: a full run ID or a
// unique prefix of one.
func (s *Store) Resolve(ctx context.Context, ref string) (string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs WHERE id = ? OR substr(id, 1, length(?)) = ? ORDER BY seq DESC LIMIT 3`, ref, ref, ref)
	if err != nil {
		return "", fmt.Errorf("history: find run %q: %w", ref, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("history: find run %q: %w", ref, err)
		}
		if id == ref {
			return id, nil
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("history: find run %q: %w", ref, err)
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w: %q", ErrNotFound, ref)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%w: %q (%s, ...)", ErrAmbiguous, ref, strings.Join(ids[:2], ", "))
}

// Load reads a stored run back, results in stored order. The summary is
// recomputed from the results (a run that died has none stored).
func (s *Store) Load(ctx context.Context, ref string) (*measure.Run, error) {
	id, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	run := &measure.Run{Schema: measure.Schema, RunID: id}
	var started, cfg, notesJ, stats string
	var finished sql.NullString
	err = s.db.QueryRowContext(ctx, `SELECT started_at, finished_at, vigil_version, config_json, notes_json, stats_json FROM runs WHERE id = ?`, id).
		Scan(&started, &finished, &run.Vigil, &cfg, &notesJ, &stats)
	if err != nil {
		return nil, fmt.Errorf("history: load run %s: %w", id, err)
	}
	run.StartedAt, _ = time.Parse(time.RFC3339Nano, started)
	if finished.Valid {
		run.FinishedAt, _ = time.Parse(time.RFC3339Nano, finished.String)
	}
	if err := json.Unmarshal([]byte(cfg), &run.Config); err != nil {
		return nil, fmt.Errorf("history: load run %s: config: %w", id, err)
	}
	if err := json.Unmarshal([]byte(notesJ), &run.Notes); err != nil {
		return nil, fmt.Errorf("history: load run %s: notes: %w", id, err)
	}
	if err := json.Unmarshal([]byte(stats), &run.SIEMStats); err != nil {
		return nil, fmt.Errorf("history: load run %s: stats: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT result_json FROM results WHERE run_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("history: load results of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("history: load results of %s: %w", id, err)
		}
		var r measure.Result
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return nil, fmt.Errorf("history: load results of %s: %w", id, err)
		}
		run.Results = append(run.Results, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: load results of %s: %w", id, err)
	}
	run.Summary = measure.Summarise(run.Results)
	return run, nil
}

// Last returns the newest complete run of a config, before the run
// `before` when it is set.
func (s *Store) Last(ctx context.Context, configHash, before string) (RunInfo, error) {
	runs, err := s.Runs(ctx, Filter{ConfigHash: configHash, State: StateComplete, Before: before, Limit: 1})
	if err != nil {
		return RunInfo{}, err
	}
	if len(runs) == 0 {
		return RunInfo{}, fmt.Errorf("%w: no complete run of config %.12s", ErrNotFound, configHash)
	}
	return runs[0], nil
}
