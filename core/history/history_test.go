package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
)

func ms(v int64) *int64 { return &v }

func testRun(id string, cfg map[string]any, statuses ...measure.Status) *measure.Run {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	run := &measure.Run{Schema: measure.Schema, RunID: id, Vigil: "test", StartedAt: t0, FinishedAt: t0.Add(time.Minute), Config: cfg,
		Notes: []string{"a note"}, SIEMStats: map[string]map[string]int64{"local": {"signals": 3}}}
	for i, st := range statuses {
		inj := t0.Add(time.Duration(i) * time.Second)
		r := measure.Result{TestID: "test-" + string(rune('a'+i)), Technique: "T1140", Tactics: []string{"defense-evasion"},
			Target: "localhost", SIEM: "local", Status: st, Marker: "vigil-00000000000" + string(rune('a'+i)), InjectedAt: &inj}
		if st == measure.Detected {
			det := inj.Add(40 * time.Millisecond)
			r.DetectedAt, r.LatencyMS = &det, ms(40)
			r.Signals = []measure.SignalRef{{ID: "sig-" + r.TestID, Rule: "Rule " + r.TestID, RuleID: "r1", Timestamp: det}}
		}
		run.Results = append(run.Results, r)
	}
	run.Summary = measure.Summarise(run.Results)
	return run
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state dir #1?%41", "vigil", "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	s := open(t)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600 (results name hosts and markers)", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(s.Path()))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	// Reopening applies no migration twice.
	s2, err := Open(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s := open(t)
	if _, err := s.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), s.Path())
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer than this vigil knows (1)") {
		t.Fatalf("error %v", err)
	}
}

// TestIncrementalThenFinish: results stored as the run goes are there if
// the run dies; Finish replaces them with the final set.
func TestIncrementalThenFinish(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	run := testRun("20261123T100000Z-aaaaaa", map[string]any{"siem": []any{"local"}}, measure.Detected, measure.Missed, measure.Error)
	if err := s.Begin(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, run.RunID, run.Results[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, run.RunID, run.Results[1:2]); err != nil {
		t.Fatal(err)
	}
	// The process dies here: what was measured is stored.
	partial, err := s.Load(ctx, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(partial.Results) != 2 || partial.Results[0].TestID != "test-a" || partial.Results[1].Status != measure.Missed {
		t.Fatalf("partial run: %+v", partial.Results)
	}
	if partial.Summary.Detected != 1 || partial.Summary.Missed != 1 {
		t.Fatalf("partial summary %+v", partial.Summary.Counts)
	}
	runs, err := s.Runs(ctx, Filter{})
	if err != nil || len(runs) != 1 || runs[0].State != StateRunning || runs[0].Total != 2 || runs[0].FinishedAt != nil {
		t.Fatalf("runs %+v, %v", runs, err)
	}

	// The run finishes: the final set (in its final order) replaces them.
	run.Results[0], run.Results[2] = run.Results[2], run.Results[0]
	if err := s.Finish(ctx, run, StateComplete); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	wantJ, _ := json.Marshal(run)
	gotJ, _ := json.Marshal(got)
	if string(wantJ) != string(gotJ) {
		t.Fatalf("loaded run differs from the stored one:\n got %s\nwant %s", gotJ, wantJ)
	}
	runs, _ = s.Runs(ctx, Filter{})
	if runs[0].State != StateComplete || runs[0].Total != 3 || runs[0].Detected != 1 || runs[0].Missed != 1 || runs[0].Errors != 1 ||
		runs[0].FinishedAt == nil || *runs[0].Coverage() != 0.5 {
		t.Fatalf("run info %+v", runs[0])
	}
	var sigs int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM signals WHERE run_id = ? AND rule = 'Rule test-a'`, run.RunID).Scan(&sigs); err != nil || sigs != 1 {
		t.Fatalf("signals of test-a: %d, %v (want 1, not duplicated by Finish)", sigs, err)
	}
}

func TestLastAndResolve(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	cfgA := map[string]any{"path": "a/vigil.toml", "siem": []any{"local"}}
	cfgA2 := map[string]any{"path": "elsewhere/vigil.toml", "siem": []any{"local"}} // same settings, other directory
	cfgB := map[string]any{"path": "a/vigil.toml", "siem": []any{"acme"}}
	for _, r := range []struct {
		run   *measure.Run
		state string
	}{
		{testRun("20261120T000000Z-aaaaaa", cfgA, measure.Detected), StateComplete},
		{testRun("20261121T000000Z-bbbbbb", cfgB, measure.Detected), StateComplete},
		{testRun("20261122T000000Z-cccccc", cfgA2, measure.Missed), StateComplete},
		{testRun("20261122T000000Z-dddddd", cfgA, measure.Missed), StateInterrupted},
	} {
		if err := s.Save(ctx, r.run, r.state); err != nil {
			t.Fatal(err)
		}
	}
	hA := ConfigHash(cfgA)
	if hA != ConfigHash(cfgA2) || hA == ConfigHash(cfgB) {
		t.Fatalf("config hash must ignore the path only")
	}
	tests := []struct {
		name, hash, before, want string
	}{
		{"newest complete of A", hA, "", "20261122T000000Z-cccccc"},
		{"the one before it", hA, "20261122T000000Z-cccccc", "20261120T000000Z-aaaaaa"},
		{"by hash prefix", hA[:12], "", "20261122T000000Z-cccccc"},
		{"config B", ConfigHash(cfgB), "", "20261121T000000Z-bbbbbb"},
		{"nothing before the first", hA, "20261120T000000Z-aaaaaa", ""},
	}
	for _, tc := range tests {
		got, err := s.Last(ctx, tc.hash, tc.before)
		switch {
		case tc.want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("%s: %+v, %v; want ErrNotFound", tc.name, got, err)
		case tc.want != "" && (err != nil || got.ID != tc.want):
			t.Errorf("%s: %+v, %v; want %s", tc.name, got.ID, err, tc.want)
		}
	}
	for _, tc := range []struct{ ref, want, err string }{
		{"20261121T000000Z-bbbbbb", "20261121T000000Z-bbbbbb", ""},
		{"20261121", "20261121T000000Z-bbbbbb", ""},
		{"20261122", "", "run ID prefix matches several runs"},
		{"2025", "", "no such run in history"},
	} {
		got, err := s.Resolve(ctx, tc.ref)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %q", tc.ref, got, err, tc.want, tc.err)
		}
	}
	runs, err := s.Runs(ctx, Filter{Limit: 2})
	if err != nil || len(runs) != 2 || runs[0].ID != "20261122T000000Z-dddddd" || runs[0].State != StateInterrupted {
		t.Fatalf("newest two: %+v, %v", runs, err)
	}
	// The runs are in the file named (its path has URI metacharacters).
	again, err := Open(ctx, s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if runs, err := again.Runs(ctx, Filter{}); err != nil || len(runs) != 4 {
		t.Fatalf("reopened %s: %d runs, %v", s.Path(), len(runs), err)
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Size() == 0 {
		t.Fatalf("%s is empty (%v): the database went elsewhere", s.Path(), err)
	}
}

// TestConcurrentWriters: two processes' stores (two runs at once on one
// machine) write the same database without losing results.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	a := open(t)
	b, err := Open(ctx, a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := testRun("run-"+string(rune('a'+i)), map[string]any{}, measure.Detected)
			if err := s.Begin(ctx, run); err != nil {
				errs <- err
				return
			}
			for k := 0; k < 50; k++ {
				if err := s.Add(ctx, run.RunID, run.Results); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	runs, err := a.Runs(ctx, Filter{})
	if err != nil || len(runs) != 2 || runs[0].Total != 50 || runs[1].Total != 50 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
}

func TestDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ env, xdg, want string }{
		{"/tmp/h.db", "/state", "/tmp/h.db"},
		{"", "/state", "/state/vigil/history.db"},
		{"", "relative/ignored", filepath.Join(home, ".local/state/vigil/history.db")},
		{"", "", filepath.Join(home, ".local/state/vigil/history.db")},
	} {
		t.Setenv(EnvPath, tc.env)
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		got, err := DefaultPath()
		if err != nil || got != tc.want {
			t.Errorf("VIGIL_HISTORY=%q XDG_STATE_HOME=%q: %q, %v; want %q", tc.env, tc.xdg, got, err, tc.want)
		}
	}
}

func TestSchemaIsQueryable(t *testing.T) {
	// The tables are meant for ad-hoc SQL too: check the columns people
	// will query exist with the values they expect.
	ctx := context.Background()
	s := open(t)
	if err := s.Save(ctx, testRun("r1", map[string]any{}, measure.Detected, measure.Missed), StateComplete); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Query(`SELECT test_id, status, latency_ms FROM results WHERE run_id = 'r1' ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got [][3]any
	for rows.Next() {
		var id, st string
		var lat sql.NullInt64
		if err := rows.Scan(&id, &st, &lat); err != nil {
			t.Fatal(err)
		}
		got = append(got, [3]any{id, st, lat})
	}
	want := [][3]any{{"test-a", "detected", sql.NullInt64{Int64: 40, Valid: true}}, {"test-b", "missed", sql.NullInt64{}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}
