package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/runner"
)

// RunOptions are the flags of `vigil run`.
type RunOptions struct {
	selectOptions
	Out          string
	Concurrency  int
	GetPrereqs   bool
	CloseSignals bool
	Quiet        bool
}

func newCmdRun(io IO, runF func(*RunOptions) error) *cobra.Command {
	o := &RunOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Fire the selected tests and measure what each SIEM detects",
		Long: `Fire the selected tests on their targets, wait for the expected signals in
each SIEM, and print coverage and detection latency per test.

With no config, the whole Linux pack runs on this host against the local
SIEM (needs root for the kernel audit sensor; without root use --replay).
Ctrl-C stops firing and cleans up; a second Ctrl-C aborts the cleanup.`,
		Example: `  sudo vigil run
  vigil run --replay
  vigil run --technique T1053 --siem local --out results/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runRun(cmd.Context(), io, o)
		},
	}
	o.addFlags(cmd, true)
	f := cmd.Flags()
	f.StringVarP(&o.Out, "out", "o", "", "write DIR/results.json (schema vigil/results/v1)")
	f.IntVar(&o.Concurrency, "concurrency", 0, "tests in flight (default: [run] concurrency)")
	f.BoolVar(&o.GetPrereqs, "get-prereqs", false, "run the get commands of unmet prerequisites")
	f.BoolVar(&o.CloseSignals, "close-signals", false, "archive the signals vigil raised, in SIEMs that can")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "print the summary only")
	return cmd
}

func runRun(ctx context.Context, io IO, o *RunOptions) error {
	l, err := o.load()
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return usageErr(fmt.Errorf("create --out directory: %w", err))
		}
	}
	run, err := execute(ctx, io, l, o)
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := writeResults(filepath.Join(o.Out, "results.json"), run); err != nil {
			// The results are printed below all the same: nothing measured is lost.
			fmt.Fprintln(io.Err, "vigil:", err)
		}
	}
	if !o.Quiet {
		printResults(io.Out, run)
	}
	printSummary(io.Out, run)
	if o.Out != "" {
		fmt.Fprintf(io.Out, "\nresults: %s\n", filepath.Join(o.Out, "results.json"))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(io.Err, "vigil: interrupted; the results above are what was measured before it")
		return silentExit{ExitRuntime}
	}
	return silentExit{exitCodeFor(run.Results)}
}

// execute starts the plugins, fires the selected tests and returns the run;
// the plugins are closed (and the SIEMs' stats read) before it returns.
func execute(ctx context.Context, io IO, l *loaded, o *RunOptions) (*measure.Run, error) {
	if len(l.tests) == 0 {
		return nil, usageErr(fmt.Errorf("no test matches the selection"))
	}
	startedAt := time.Now().UTC()
	st, err := l.start(ctx, &o.selectOptions)
	if err != nil {
		return nil, err
	}
	defer st.close(context.WithoutCancel(ctx))

	if probs := validateTests(ctx, st, l.tests); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(io.Err, p)
		}
		return nil, usageErr(fmt.Errorf("%d test(s) have invalid params", len(probs)))
	}
	eng := &runner.Engine{SIEMs: st.siems, Targets: st.targets}
	plan, err := eng.Plan(l.tests)
	if err != nil {
		return nil, usageErr(err)
	}
	for _, n := range append(l.notes, plan.Notes...) {
		fmt.Fprintln(io.Err, "note:", n)
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = l.cfg.Run.Concurrency
	}
	eng.Opts = runner.Options{
		Concurrency: conc, AllowDestructive: o.AllowDestr, GetPrereqs: o.GetPrereqs, Args: l.args,
		CloseSignals: o.CloseSignals, CleanupContext: io.Abort,
	}
	prog := newProgress(io, len(plan.Jobs), o.Quiet)
	eng.Opts.Progress = prog.update
	results := eng.Run(ctx, plan)
	prog.done()

	run := &measure.Run{
		Schema: measure.Schema, RunID: runID(startedAt), Vigil: Version,
		StartedAt: startedAt, FinishedAt: time.Now().UTC(), Config: l.cfg.Redacted(),
		Results: results, Summary: measure.Summarise(results), Notes: append(l.notes, plan.Notes...),
	}
	run.SIEMStats = map[string]map[string]int64{}
	for _, s := range st.siems {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if c, err := s.Impl.Stats(sctx); err == nil && len(c) > 0 {
			run.SIEMStats[s.Name] = c
		}
		cancel()
	}
	runner.SortResults(run.Results)
	return run, nil
}

// exitCodeFor: 3 when a result is an error, else 1 when one is missed or
// noisy, else 0.
func exitCodeFor(rs []measure.Result) ExitCode {
	code := ExitOK
	for _, r := range rs {
		switch r.Status {
		case measure.Error:
			return ExitRuntime
		case measure.Missed, measure.Noisy:
			code = ExitMissed
		}
	}
	return code
}

func runID(t time.Time) string {
	return t.Format("20060102T150405Z") + "-" + runner.NewMarker()[len("vigil-"):][:6]
}

// writeResults writes results.json atomically (temp file, then rename).
func writeResults(path string, run *measure.Run) error {
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
