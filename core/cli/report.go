package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/report"
)

// ReportOptions are the flags of `vigil report`.
type ReportOptions struct {
	historyOptions
	// Ref is the run: a results.json, or a run ID (prefix) or "last".
	Ref     string
	Formats []string
	Out     string
}

func newCmdReport(io IO, runF func(*ReportOptions) error) *cobra.Command {
	o := &ReportOptions{}
	cmd := &cobra.Command{
		Use:   "report RESULTS.json|RUN_ID",
		Short: "Write reports of a run: ATT&CK Navigator, JUnit, HTML, Markdown, CSV",
		Long: `Derive reports from a run's results: a results.json, or a run stored in the
history database (its ID from ` + "`vigil history`" + `, a unique prefix, or "last").

  navigator  ATT&CK Navigator layers (format 4.5): navigator.json (all SIEMs)
             and navigator-<siem>.json; score = share of the technique's
             tests detected, comment = tests and median latency
  junit      junit.xml: one testsuite per SIEM, one testcase per test
             (missed = failure, error = error, skipped = skipped,
             latency = time), for CI test reports
  html       report.html: one self-contained page (no network fetch): the
             ATT&CK matrix, latency per SIEM, the SIEMs side by side, every
             result with filters
  markdown   summary.md, for a pull request comment or $GITHUB_STEP_SUMMARY
  csv        results.csv, one row per result

Files go to --out (default: the directory of RESULTS.json, else the current
directory); --out - writes one format to standard output.`,
		Example: `  vigil report out/results.json --format html
  vigil report last --format junit,navigator --out reports/
  vigil report out/results.json --format markdown --out - >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			if runF != nil {
				return runF(o)
			}
			return runReport(cmd.Context(), io, o)
		},
	}
	o.addHistoryFlags(cmd, false)
	f := cmd.Flags()
	f.StringArrayVarP(&o.Formats, "format", "f", []string{"all"}, "navigator, junit, html, markdown, csv or all (comma-separated, repeatable)")
	f.StringVarP(&o.Out, "out", "o", "", "directory to write the reports to, or - for standard output")
	return cmd
}

func runReport(ctx context.Context, io IO, o *ReportOptions) error {
	ref := o.Ref
	formats, err := report.ParseFormats(o.Formats)
	if err != nil {
		return usageErr(err)
	}
	if len(formats) == 0 {
		return usageErr(fmt.Errorf("--format: no format given"))
	}
	if o.Out == "-" && len(formats) != 1 {
		return usageErr(fmt.Errorf("--out - writes one format to standard output; %d were given", len(formats)))
	}
	src := &runSource{opts: &o.historyOptions}
	defer src.close()
	run, err := src.load(ctx, ref)
	if err != nil {
		return err
	}
	if o.Out == "-" {
		if err := report.Render(io.Out, run, formats[0]); err != nil {
			return runtimeErr(err)
		}
		return nil
	}
	dir := o.Out
	if dir == "" {
		dir = "."
		if fi, err := os.Stat(ref); err == nil && !fi.IsDir() {
			dir = filepath.Dir(ref)
		}
	}
	paths, err := report.WriteDir(dir, run, formats)
	for _, p := range paths {
		fmt.Fprintln(io.Out, p)
	}
	if err != nil {
		return runtimeErr(err)
	}
	return nil
}

// CompareOptions are the flags of `vigil compare`.
type CompareOptions struct {
	historyOptions
	// Ref is the run: a results.json, or a run ID (prefix); default "last".
	Ref string
}

func newCmdCompare(io IO, runF func(*CompareOptions) error) *cobra.Command {
	o := &CompareOptions{Ref: "last"}
	cmd := &cobra.Command{
		Use:   "compare [RESULTS.json|RUN_ID]",
		Short: "Compare the SIEMs of a run side by side: coverage, latency, what only one caught",
		Long: `With several SIEMs configured, each injection is checked in all of them, so
they compare on the very same attacks. compare prints, for a run (default:
the newest stored run): coverage and median and p95 latency per SIEM,
coverage per tactic and SIEM, the tests caught by only one SIEM, and the
tests no SIEM caught. The HTML report has the same view.`,
		Example: `  vigil compare
  vigil compare out/results.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Ref = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			return runCompare(cmd.Context(), io, o)
		},
	}
	o.addHistoryFlags(cmd, false)
	return cmd
}

func runCompare(ctx context.Context, io IO, o *CompareOptions) error {
	src := &runSource{opts: &o.historyOptions}
	defer src.close()
	run, err := src.load(ctx, o.Ref)
	if err != nil {
		return err
	}
	if n := len(report.SIEMs(run)); n < 2 {
		fmt.Fprintf(io.Err, "note: run %s has %d SIEM; configure several to compare them on the same injections\n", run.RunID, n)
	}
	if err := report.WriteComparison(io.Out, run); err != nil {
		return runtimeErr(err)
	}
	return nil
}
