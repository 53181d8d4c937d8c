package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/core/history"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/report"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/core/session"
)

// RunOptions are the flags of `vigil run`.
type RunOptions struct {
	selectOptions
	historyOptions
	regressionOptions
	Out          string
	Concurrency  int
	GetPrereqs   bool
	CloseSignals bool
	Quiet        bool
	// Formats are the reports written into Out (--format).
	Formats []string
	// Baseline is "last" or a stored run's ID (--baseline).
	Baseline string
	// NoIntegrityCheck turns off the host-integrity check.
	NoIntegrityCheck bool

	// sink receives the run's metadata and its results as they are
	// measured (history and results.json); nil for `vigil record`.
	sink *runSink
	// claims are the rules of the SIEMs with the rules call, read before
	// the plugins close, for coverage.json in Out.
	claims []coverage.Claims
	// hostCheckFailed: the host-integrity check could not read the host
	// after the run.
	hostCheckFailed bool
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
  vigil run --technique T1053 --siem local --out results/
  sudo vigil run --out out/ --format junit,navigator,html,markdown,csv
  sudo vigil run --out out/ --baseline last --max-latency-regression 2   # nightly gate`,
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
	f.StringArrayVarP(&o.Formats, "format", "f", nil, "also write these reports into --out: navigator, junit, html, markdown, csv or all (comma-separated, repeatable)")
	f.StringVar(&o.Baseline, "baseline", "", "compare with a stored run, `last` (the newest complete run of this config) or a run ID: exit 1 on a regression")
	f.BoolVar(&o.NoIntegrityCheck, "no-integrity-check", false, "do not check that this host is left as it was (the check reads it before, during and after the run)")
	o.addHistoryFlags(cmd, true)
	o.addRegressionFlags(cmd)
	return cmd
}

func runRun(ctx context.Context, io IO, o *RunOptions) error {
	formats, err := report.ParseFormats(o.Formats)
	if err != nil {
		return usageErr(err)
	}
	if len(formats) > 0 && o.Out == "" {
		return usageErr(fmt.Errorf("--format needs --out DIR (the reports are written next to results.json)"))
	}
	th, err := o.thresholds()
	if err != nil {
		return err
	}
	l, err := o.load()
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return usageErr(fmt.Errorf("create --out directory: %w", err))
		}
	}

	// History: every run is stored; a baseline is resolved before anything
	// fires, so that a wrong run ID costs nothing.
	var store *history.Store
	if !o.NoHistory || o.Baseline != "" {
		o.configured = l.Config.Run.History
		store, err = o.openHistory(ctx)
		switch {
		case err != nil && o.Baseline != "":
			return runtimeErr(err)
		case err != nil:
			fmt.Fprintf(io.Err, "vigil: %v; this run is not stored in history\n", err)
		default:
			defer store.Close()
		}
	}
	var base *measure.Run
	if o.Baseline != "" {
		base, err = loadBaseline(ctx, store, o.Baseline, history.ConfigHash(l.Config.Redacted()))
		switch {
		case errors.Is(err, history.ErrNotFound) && o.Baseline == "last":
			fmt.Fprintf(io.Err, "note: --baseline last: %v yet; this run becomes the baseline of the next one\n", err)
		case err != nil:
			return usageErr(fmt.Errorf("--baseline: %w", err))
		}
	}
	o.sink = &runSink{io: io}
	if store != nil && !o.NoHistory {
		o.sink.store = store
	}
	if o.Out != "" {
		o.sink.resultsPath = filepath.Join(o.Out, "results.json")
	}

	run, err := execute(ctx, io, l, o)
	if err != nil {
		return err
	}
	state := history.StateComplete
	if ctx.Err() != nil {
		state = history.StateInterrupted
	}
	o.sink.finish(ctx, run, state)
	var written []string
	if len(formats) > 0 {
		if written, err = report.WriteDir(o.Out, run, formats); err != nil {
			fmt.Fprintln(io.Err, "vigil:", err)
		}
	}
	if len(o.claims) > 0 {
		ps, err := writeRunCoverage(o.Out, l, run, o.claims)
		written = append(written, ps...)
		if err != nil {
			fmt.Fprintln(io.Err, "vigil:", err)
		}
	}
	if !o.Quiet {
		printResults(io.Out, run)
	}
	printSummary(io.Out, run)
	printDiagnoses(io.Out, run)
	printBreaches(io.Out, run)
	printHostChanges(io.Out, run)
	if o.Out != "" {
		fmt.Fprintf(io.Out, "\nresults: %s\n", filepath.Join(o.Out, "results.json"))
		for _, p := range written {
			fmt.Fprintf(io.Out, "report: %s\n", p)
		}
	}
	if o.sink.stored {
		fmt.Fprintf(io.Out, "history: run %s stored in %s\n", run.RunID, store.Path())
	}
	var regressions []report.Change
	if base != nil {
		regressions = report.DiffRuns(base, run, th).Regressions()
		fmt.Fprintln(io.Out)
		report.WriteRegressions(io.Out, base.RunID, regressions)
	}
	if len(run.HostChanged) > 0 {
		return silentExit{ExitHostChanged}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(io.Err, "vigil: interrupted; the results above are what was measured before it")
		return silentExit{ExitRuntime}
	}
	if o.hostCheckFailed {
		return silentExit{ExitRuntime}
	}
	if o.Baseline != "" {
		return silentExit{exitCodeForBaseline(run.Results, regressions)}
	}
	return silentExit{exitCodeFor(run.Results)}
}

// loadBaseline loads the baseline run: "last" is the newest complete run
// of the config; anything else a run ID (or a unique prefix of one).
func loadBaseline(ctx context.Context, store *history.Store, ref, configHash string) (*measure.Run, error) {
	if ref == "last" {
		info, err := store.Last(ctx, configHash, "")
		if err != nil {
			return nil, err
		}
		ref = info.ID
	}
	return store.Load(ctx, ref)
}

// exitCodeForBaseline: with --baseline the gate is the regressions: 3 when
// a result is an error (part of the run proves nothing), else 1 when a
// test detected in the baseline is now missed or much slower, else 0 (a
// test the baseline missed too does not fail the gate).
func exitCodeForBaseline(rs []measure.Result, regressions []report.Change) ExitCode {
	for _, r := range rs {
		if r.Status == measure.Error {
			return ExitRuntime
		}
	}
	if len(regressions) > 0 {
		return ExitMissed
	}
	return ExitOK
}

// printBreaches lists the detections that came later than their budget.
func printBreaches(w io.Writer, run *measure.Run) {
	bs := report.Breaches(run)
	if len(bs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nBUDGET BREACHES (%d): detected, but later than the test's within\n", len(bs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tTECHNIQUE\tTARGET\tSIEM\tLATENCY\tBUDGET")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.TestID, b.Technique, b.Target, b.SIEM, report.FormatMS(b.LatencyMS), report.FormatMS(b.BudgetMS))
	}
	tw.Flush()
}

// execute starts the plugins, fires the selected tests and returns the run;
// the plugins are closed (and the SIEMs' stats read) before it returns.
func execute(ctx context.Context, io IO, l *session.Loaded, o *RunOptions) (*measure.Run, error) {
	if len(l.Tests) == 0 {
		return nil, usageErr(fmt.Errorf("no test matches the selection"))
	}
	startedAt := time.Now().UTC()
	st, err := start(ctx, l)
	if err != nil {
		return nil, err
	}
	defer st.Close(context.WithoutCancel(ctx))

	if probs := st.ValidateTests(ctx, l.Tests); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(io.Err, p)
		}
		return nil, usageErr(fmt.Errorf("%d test(s) have invalid params", len(probs)))
	}
	eng := &runner.Engine{SIEMs: st.SIEMs, Targets: st.Targets}
	plan, err := eng.Plan(l.Tests)
	if err != nil {
		return nil, usageErr(err)
	}
	for _, n := range append(l.Notes, plan.Notes...) {
		fmt.Fprintln(io.Err, "note:", n)
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = l.Config.Run.Concurrency
	}
	eng.Opts = runner.Options{
		Concurrency: conc, AllowDestructive: o.AllowDestructive, GetPrereqs: o.GetPrereqs, Args: l.Args,
		CloseSignals: o.CloseSignals, CleanupContext: io.Abort,
	}
	run := &measure.Run{
		Schema: measure.Schema, RunID: runID(startedAt), Vigil: Version,
		StartedAt: startedAt, Config: l.Config.Redacted(), Notes: append(l.Notes, plan.Notes...),
	}
	hc, err := startHostCheck(ctx, plan, o.NoIntegrityCheck)
	if err != nil {
		return nil, err
	}
	if hc != nil {
		eng.Opts.HostStep = hc.step
	}
	prog := newProgress(io, len(plan.Jobs), o.Quiet)
	eng.Opts.Progress = prog.update
	if o.sink != nil {
		o.sink.begin(ctx, run, len(plan.Jobs))
		eng.Opts.Progress = func(ev runner.Progress) {
			prog.update(ev)
			if ev.Results != nil {
				o.sink.add(ctx, ev.Results)
			}
		}
	}
	results := eng.Run(ctx, plan)
	prog.done()
	if hc != nil && hc.finish(run) != nil {
		o.hostCheckFailed = true
	}
	run.FinishedAt = time.Now().UTC()
	run.Results, run.Summary = results, measure.Summarise(results)
	run.SIEMStats = map[string]map[string]int64{}
	for _, s := range st.SIEMs {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		c, err := s.Impl.Stats(sctx)
		cancel()
		if err != nil || c == nil {
			c = map[string]int64{}
		}
		if r, ok := eng.Clock(s.Name); ok {
			c["clock_offset_ms"], c["clock_uncertainty_ms"] = r.Offset.Milliseconds(), r.Uncertainty.Milliseconds()
			if note := clockNote(s.Name, r); note != "" {
				run.Notes = append(run.Notes, note)
			}
		}
		if len(c) > 0 {
			run.SIEMStats[s.Name] = c
		}
	}
	if o.Out != "" {
		o.claims = runClaims(ctx, io, st)
	}
	runner.SortResults(run.Results)
	return run, nil
}

// ClockWarning is the clock offset beyond which vigil warns about a SIEM's
// clock (beyond the reading's own uncertainty): latencies are reported in
// milliseconds, and a skew of seconds distorts them more than any poll
// interval does.
const ClockWarning = 2 * time.Second

// clockNote says when a SIEM's clock is off by more than ClockWarning
// beyond the reading's uncertainty ("" otherwise).
func clockNote(name string, r plugin.ClockReading) string {
	off := r.Offset
	if off < 0 {
		off = -off
	}
	if off-r.Uncertainty <= ClockWarning {
		return ""
	}
	dir := "ahead of"
	if r.Offset < 0 {
		dir = "behind"
	}
	return fmt.Sprintf("siem %q: its clock is %s %s this host's (+/- %s; read from %s): signals it stamps outside their window are credited with the offset taken off, and latencies may be off by as much",
		name, off.Round(time.Millisecond), dir, r.Uncertainty.Round(time.Millisecond), r.Source)
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

// runSink stores a run as it goes: its metadata when it starts, each
// job's results as they are measured (in history and in results.json),
// and the final run. A run that dies halfway leaves every result measured
// so far in both. Failures are reported once and never stop the run.
type runSink struct {
	io          IO
	store       *history.Store
	resultsPath string

	run    measure.Run // the header, and the results so far
	jobs   int
	stored bool // the run is in history
	warned map[string]bool
}

func (s *runSink) warn(what string, err error) {
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	if !s.warned[what] {
		s.warned[what] = true
		fmt.Fprintf(s.io.Err, "vigil: %s: %v (the run goes on)\n", what, err)
	}
}

func (s *runSink) begin(ctx context.Context, run *measure.Run, jobs int) {
	s.run, s.jobs = *run, jobs
	ctx = context.WithoutCancel(ctx)
	if s.store != nil {
		if err := s.store.Begin(ctx, run); err != nil {
			s.warn("history", err)
			s.store = nil
		} else {
			s.stored = true
		}
	}
	s.writePartial()
}

// add is called by the runner's progress callback, which the runner
// serialises.
func (s *runSink) add(ctx context.Context, rs []measure.Result) {
	s.run.Results = append(s.run.Results, rs...)
	if s.store != nil {
		if err := s.store.Add(context.WithoutCancel(ctx), s.run.RunID, rs); err != nil {
			s.warn("history", err)
		}
	}
	s.writePartial()
}

// writePartial rewrites results.json with what was measured so far, with a
// note saying so.
func (s *runSink) writePartial() {
	if s.resultsPath == "" {
		return
	}
	p := s.run
	p.Results = append([]measure.Result{}, s.run.Results...)
	p.Summary = measure.Summarise(p.Results)
	p.Notes = append(append([]string{}, s.run.Notes...),
		fmt.Sprintf("incomplete: %d of %d test(s) measured so far; the run is still going, or it died", len(doneJobs(p.Results)), s.jobs))
	if err := writeResults(s.resultsPath, &p); err != nil {
		s.warn("results", err)
	}
}

// doneJobs counts the distinct (test, target) pairs of results.
func doneJobs(rs []measure.Result) map[[2]string]bool {
	out := map[[2]string]bool{}
	for _, r := range rs {
		out[[2]string{r.TestID, r.Target}] = true
	}
	return out
}

func (s *runSink) finish(ctx context.Context, run *measure.Run, state string) {
	if s.resultsPath != "" {
		if err := writeResults(s.resultsPath, run); err != nil {
			// The results are printed all the same: nothing measured is lost.
			fmt.Fprintln(s.io.Err, "vigil:", err)
		}
	}
	if s.store != nil {
		if err := s.store.Finish(context.WithoutCancel(ctx), run, state); err != nil {
			fmt.Fprintln(s.io.Err, "vigil:", err)
			s.stored = false
		}
	}
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
