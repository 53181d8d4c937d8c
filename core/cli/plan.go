package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/runner"
)

// PlanOptions are the flags of `vigil plan`.
type PlanOptions struct {
	selectOptions
}

func newCmdPlan(io IO, runF func(*PlanOptions) error) *cobra.Command {
	o := &PlanOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Dry run: show what would fire where, and what each SIEM is expected to see",
		Long: `Show what a run would do, without injecting anything: each test with its
target, the SIEMs it is checked in, how signals are correlated, and the
expectations. Plugins are started (to describe themselves) but nothing fires,
and the local SIEM starts no sensor: a plan needs no root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runPlan(cmd.Context(), io, o)
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

func containsStr(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func runPlan(ctx context.Context, io IO, o *PlanOptions) error {
	l, err := o.load()
	if err != nil {
		return err
	}
	l.DryRun()
	st, err := start(ctx, l)
	if err != nil {
		return err
	}
	defer st.Close(ctx)
	eng := st.Engine()
	plan, err := eng.Plan(l.Tests)
	if err != nil {
		return usageErr(err)
	}
	// SERIAL GROUP only when a test has one: tests of a group run
	// one at a time per target and host.
	grouped := slices.ContainsFunc(plan.Jobs, func(j *runner.Job) bool { return j.Test.SerialGroup != "" })
	group := func(s string) string {
		switch {
		case !grouped:
			return ""
		case s == "":
			return "-\t"
		}
		return s + "\t"
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TEST\tTECHNIQUE\tSAFETY\t%sTARGET\tSIEM\tCORRELATION\tEXPECT\n", group("SERIAL GROUP"))
	for _, j := range plan.Jobs {
		for _, s := range j.SIEMs {
			var exps []string
			for _, x := range j.Test.Expect {
				if len(x.SIEMs) > 0 && !containsStr(x.SIEMs, s.Name) && !containsStr(x.SIEMs, s.Plugin) {
					continue
				}
				e := "signal tagged " + string(x.Technique)
				if x.Rule != "" {
					e = "rule " + fmt.Sprintf("%q", x.Rule)
				}
				if x.RuleID != "" {
					e = "rule id " + x.RuleID
				}
				if q := x.Query[s.Name] + x.Query[s.Plugin]; q != "" {
					e = "native query"
				}
				if x.Absent {
					e = "NO " + e
				}
				within := x.Within
				if within == 0 {
					within = s.Timeout
				}
				exps = append(exps, fmt.Sprintf("%s within %s", e, within))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s\t%s\t%s\n", j.Test.ID, j.Test.Technique.ID, j.Test.Safety,
				group(j.Test.SerialGroup), j.TargetName(), s.Name, j.Pairings[s.Name].Describe(), strings.Join(exps, "; "))
		}
	}
	tw.Flush()
	for _, n := range append(l.Notes, plan.Notes...) {
		fmt.Fprintln(io.Out, "note:", n)
	}
	fmt.Fprintf(io.Out, "\n%d tests, %d targets, %d SIEMs: %d jobs\n", len(l.Tests), len(st.Targets), len(st.SIEMs), len(plan.Jobs))
	return nil
}
