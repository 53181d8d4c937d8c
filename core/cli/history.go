package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/history"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/report"
)

// historyOptions choose the run history database.
type historyOptions struct {
	History   string
	NoHistory bool
	// configured is [run] history of the config in use, if any.
	configured string
}

func (o *historyOptions) addHistoryFlags(cmd *cobra.Command, withNo bool) {
	f := cmd.Flags()
	f.StringVar(&o.History, "history", "", "run history database (default $"+history.EnvPath+", else $XDG_STATE_HOME/vigil/history.db or ~/.local/state/vigil/history.db)")
	if withNo {
		f.BoolVar(&o.NoHistory, "no-history", false, "do not store this run in the history database")
	}
}

// path is --history, else $VIGIL_HISTORY, else [run] history of the config,
// else the default under the user's state directory.
func (o *historyOptions) path() (string, error) {
	if o.History != "" {
		return o.History, nil
	}
	if os.Getenv(history.EnvPath) == "" {
		if o.configured != "" {
			return o.configured, nil
		}
		if cfg, err := config.Find(""); err == nil && cfg.Run.History != "" {
			return cfg.Run.History, nil
		}
	}
	return history.DefaultPath()
}

func (o *historyOptions) openHistory(ctx context.Context) (*history.Store, error) {
	p, err := o.path()
	if err != nil {
		return nil, err
	}
	return history.Open(ctx, p)
}

// regressionOptions are the latency thresholds of diff and --baseline.
type regressionOptions struct {
	MaxLatencyRegression float64
	MinLatencyChange     time.Duration
}

func (o *regressionOptions) addRegressionFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Float64Var(&o.MaxLatencyRegression, "max-latency-regression", report.DefaultThresholds.Ratio,
		"a detection more than this many times slower than in the baseline is a regression (0: latency is not compared)")
	f.DurationVar(&o.MinLatencyChange, "min-latency-change", report.DefaultThresholds.MinChange,
		"latency changes smaller than this are noise, whatever the ratio")
}

func (o *regressionOptions) thresholds() (report.Thresholds, error) {
	switch {
	case o.MaxLatencyRegression < 0:
		return report.Thresholds{}, usageErr(fmt.Errorf("--max-latency-regression %g: want a ratio of 0 (off) or more, e.g. 1.5", o.MaxLatencyRegression))
	case o.MaxLatencyRegression > 0 && o.MaxLatencyRegression < 1:
		return report.Thresholds{}, usageErr(fmt.Errorf("--max-latency-regression %g: a ratio below 1 would call a faster detection a regression", o.MaxLatencyRegression))
	case o.MinLatencyChange < 0:
		return report.Thresholds{}, usageErr(fmt.Errorf("--min-latency-change %s: want 0 or more", o.MinLatencyChange))
	}
	return report.Thresholds{Ratio: o.MaxLatencyRegression, MinChange: o.MinLatencyChange}, nil
}

// HistoryOptions are the flags of `vigil history`.
type HistoryOptions struct {
	historyOptions
	Limit  int
	Config string
	Output string
}

func newCmdHistory(io IO, runF func(*HistoryOptions) error) *cobra.Command {
	o := &HistoryOptions{}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the runs stored in the history database",
		Long: `List stored runs, newest first: when, how long, whether the run completed
(running: still going, or the process died; its results so far are kept),
which config (a hash of the redacted config: runs with the same hash are
comparable), and coverage.

Every ` + "`vigil run`" + ` is stored unless --no-history is given.`,
		Example: `  vigil history
  vigil history --limit 5 --output json
  vigil report 20261123T101500Z-3f9a2c --format html --out report/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runHistory(cmd.Context(), io, o)
		},
	}
	o.addHistoryFlags(cmd, false)
	f := cmd.Flags()
	f.IntVar(&o.Limit, "limit", 20, "show at most this many runs (0: all)")
	f.StringVar(&o.Config, "config-hash", "", "only the runs of this config (a hash prefix, as listed)")
	f.StringVarP(&o.Output, "output", "o", "table", "table or json")
	return cmd
}

func runHistory(ctx context.Context, io IO, o *HistoryOptions) error {
	if o.Output != "table" && o.Output != "json" {
		return usageErr(fmt.Errorf("--output %q: want table or json", o.Output))
	}
	store, err := openExistingHistory(ctx, &o.historyOptions)
	if err != nil {
		return err
	}
	defer store.Close()
	runs, err := store.Runs(ctx, history.Filter{ConfigHash: o.Config, Limit: o.Limit})
	if err != nil {
		return runtimeErr(err)
	}
	if o.Output == "json" {
		type row struct {
			ID         string     `json:"run_id"`
			State      string     `json:"state"`
			StartedAt  time.Time  `json:"started_at"`
			FinishedAt *time.Time `json:"finished_at,omitempty"`
			Vigil      string     `json:"vigil_version"`
			ConfigHash string     `json:"config_hash"`
			Total      int        `json:"total"`
			Detected   int        `json:"detected"`
			Missed     int        `json:"missed"`
			Errors     int        `json:"error"`
			Skipped    int        `json:"skipped"`
			Coverage   *float64   `json:"coverage"`
		}
		out := make([]row, 0, len(runs))
		for _, r := range runs {
			out = append(out, row{r.ID, r.State, r.StartedAt, r.FinishedAt, r.Vigil, r.ConfigHash, r.Total, r.Detected, r.Missed, r.Errors, r.Skipped, r.Coverage()})
		}
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(runs) == 0 {
		fmt.Fprintf(io.Out, "no run in %s yet\n", store.Path())
		return nil
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tDURATION\tSTATE\tCONFIG\tTESTS\tDETECTED\tMISSED\tERROR\tSKIPPED\tCOVERAGE")
	for _, r := range runs {
		dur := "-"
		if r.FinishedAt != nil {
			dur = report.FormatMS(r.FinishedAt.Sub(r.StartedAt).Milliseconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.12s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.StartedAt.Local().Format("2006-01-02 15:04:05"), dur, r.State,
			r.ConfigHash, r.Total, r.Detected, r.Missed, r.Errors, r.Skipped, report.Percent(r.Coverage()))
	}
	return tw.Flush()
}

// openExistingHistory opens the database for reading commands: a missing
// file is a usage error naming it, not a new empty database.
func openExistingHistory(ctx context.Context, o *historyOptions) (*history.Store, error) {
	p, err := o.path()
	if err != nil {
		return nil, runtimeErr(err)
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, usageErr(fmt.Errorf("no run history at %s yet (runs are stored there by vigil run; --history or $%s choose another file)", p, history.EnvPath))
	}
	s, err := history.Open(ctx, p)
	if err != nil {
		return nil, runtimeErr(err)
	}
	return s, nil
}

// DiffOptions are the flags of `vigil diff`.
type DiffOptions struct {
	historyOptions
	regressionOptions
	// Runs are the runs to compare: none, one or two run IDs or
	// results.json files.
	Runs []string
}

func newCmdDiff(io IO, runF func(*DiffOptions) error) *cobra.Command {
	o := &DiffOptions{}
	cmd := &cobra.Command{
		Use:   "diff [RUN_A] [RUN_B]",
		Short: "Show what changed between two runs: newly missed, newly detected, latency",
		Long: `Compare two runs result by result (the same test on the same target in the
same SIEM): tests newly missed, newly detected, detections that became
slower or faster beyond the thresholds, other status changes, and tests
only in one run.

A run is a run ID from ` + "`vigil history`" + ` (or a unique prefix of one), or a
results.json file. With no argument: the last two complete runs of the
newest run's config. With one: that run against the newest complete run of
its config.`,
		Example: `  vigil diff
  vigil diff 20261122T020000Z-1c2d3e
  vigil diff old/results.json new/results.json --max-latency-regression 1.5`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runs = args
			if runF != nil {
				return runF(o)
			}
			return runDiff(cmd.Context(), io, o)
		},
	}
	o.addHistoryFlags(cmd, false)
	o.addRegressionFlags(cmd)
	return cmd
}

func runDiff(ctx context.Context, io IO, o *DiffOptions) error {
	args := o.Runs
	th, err := o.thresholds()
	if err != nil {
		return err
	}
	src := &runSource{opts: &o.historyOptions}
	defer src.close()
	var a, b *measure.Run
	switch len(args) {
	case 2:
		if a, err = src.load(ctx, args[0]); err != nil {
			return err
		}
		if b, err = src.load(ctx, args[1]); err != nil {
			return err
		}
	case 1:
		if a, err = src.load(ctx, args[0]); err != nil {
			return err
		}
		store, err := src.store(ctx)
		if err != nil {
			return err
		}
		last, err := store.Last(ctx, history.ConfigHash(a.Config), "")
		if err == nil && last.ID == a.RunID {
			err = fmt.Errorf("%w: %s is the newest complete run of its config; name the run to compare it with", history.ErrNotFound, a.RunID)
		}
		if err != nil {
			return usageErr(err)
		}
		if b, err = store.Load(ctx, last.ID); err != nil {
			return runtimeErr(err)
		}
	default:
		store, err := src.store(ctx)
		if err != nil {
			return err
		}
		runs, err := store.Runs(ctx, history.Filter{State: history.StateComplete, Limit: 1})
		if err != nil {
			return runtimeErr(err)
		}
		if len(runs) == 0 {
			return usageErr(fmt.Errorf("no complete run in %s to diff", store.Path()))
		}
		prev, err := store.Last(ctx, runs[0].ConfigHash, runs[0].ID)
		if err != nil {
			return usageErr(fmt.Errorf("run %s is the only complete run of its config (%.12s): nothing to diff it with", runs[0].ID, runs[0].ConfigHash))
		}
		if a, err = store.Load(ctx, prev.ID); err != nil {
			return runtimeErr(err)
		}
		if b, err = store.Load(ctx, runs[0].ID); err != nil {
			return runtimeErr(err)
		}
	}
	if ha, hb := history.ConfigHash(a.Config), history.ConfigHash(b.Config); ha != hb {
		fmt.Fprintf(io.Err, "note: the two runs have different configs (%.12s, %.12s)\n", ha, hb)
	}
	return report.WriteDiff(io.Out, report.DiffRuns(a, b, th), th)
}

// runSource loads runs named on the command line: results.json files, or
// run IDs in the history database (opened on first need).
type runSource struct {
	opts *historyOptions
	db   *history.Store
}

func (s *runSource) store(ctx context.Context) (*history.Store, error) {
	if s.db == nil {
		db, err := openExistingHistory(ctx, s.opts)
		if err != nil {
			return nil, err
		}
		s.db = db
	}
	return s.db, nil
}

func (s *runSource) close() {
	if s.db != nil {
		s.db.Close()
	}
}

// load reads a run: a path to a results.json (an existing file, or any
// argument ending in .json), else a run ID or prefix; "last" is the newest
// stored run.
func (s *runSource) load(ctx context.Context, ref string) (*measure.Run, error) {
	if fi, err := os.Stat(ref); (err == nil && !fi.IsDir()) || strings.HasSuffix(ref, ".json") {
		return readResults(ref)
	}
	store, err := s.store(ctx)
	if err != nil {
		return nil, err
	}
	if ref == "last" {
		runs, err := store.Runs(ctx, history.Filter{Limit: 1})
		if err != nil {
			return nil, runtimeErr(err)
		}
		if len(runs) == 0 {
			return nil, usageErr(fmt.Errorf("no run in %s yet", store.Path()))
		}
		ref = runs[0].ID
	}
	run, err := store.Load(ctx, ref)
	if errors.Is(err, history.ErrNotFound) || errors.Is(err, history.ErrAmbiguous) {
		return nil, usageErr(err)
	}
	if err != nil {
		return nil, runtimeErr(err)
	}
	return run, nil
}

// readResults reads a results.json.
func readResults(path string) (*measure.Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr(fmt.Errorf("read results: %w", err))
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		return nil, usageErr(fmt.Errorf("read results %s: %w", path, err))
	}
	if run.Schema != measure.Schema {
		return nil, usageErr(fmt.Errorf("read results %s: schema %q, want %q", path, run.Schema, measure.Schema))
	}
	return &run, nil
}
