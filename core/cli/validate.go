package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/core/session"
)

// ValidateOptions are the flags of `vigil validate`.
type ValidateOptions struct {
	selectOptions
	// Online starts the plugins: params, credentials, expected rules,
	// clocks.
	Online bool
}

func newCmdValidate(io IO, runF func(*ValidateOptions) error) *cobra.Command {
	o := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the config and the catalog (and, with --online, the SIEMs)",
		Long: `Check vigil.toml and every catalog file: strict TOML, known ATT&CK
techniques, placeholders, plugins that exist. Every problem names its file
and line. The rules of SIEMs that read them offline (the local SIEM's Sigma
files) are loaded too: every rule file refused is named with its line and
why, and a broken one (an invalid regular expression, a condition naming a
search that does not exist, ...) is a problem. With --online, plugins are
started and configured, injectors validate the params of their tests, and
each SIEM checks its credentials and the rules the tests expect, lists the
rules it refuses, and reports its clock offset (a warning beyond 2s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runValidate(cmd.Context(), io, o)
		},
	}
	o.addFlags(cmd, true)
	cmd.Flags().BoolVar(&o.Online, "online", false, "start the plugins and check params, credentials and expected rules")
	return cmd
}

func runValidate(ctx context.Context, io IO, o *ValidateOptions) error {
	l, err := o.load()
	if err != nil {
		return err
	}
	src := "built-in defaults"
	if l.Config.Path != "" {
		src = l.Config.Path
	}
	fmt.Fprintf(io.Out, "config: %s: ok (%d SIEMs, %d targets)\n", src, len(l.SIEMs), len(l.Targets))
	fmt.Fprintf(io.Out, "catalog: ok (%d tests, %d selected)\n", len(l.Cat.Tests), len(l.Tests))
	bad := validateRules(ctx, io, l, o.Online)
	if o.Online {
		st, err := start(ctx, l)
		if err != nil {
			return err
		}
		defer st.Close(ctx)
		bad += validateOnline(ctx, io, l, st)
	}
	if bad > 0 {
		return usageErr(fmt.Errorf("%d problem(s)", bad))
	}
	return nil
}

// validateOnline checks the started plugins: each injector validates the
// params of its tests, the plan must pair every test, and each SIEM checks
// its credentials and the expected rules and reads its clock. It returns
// the number of problems, each printed.
func validateOnline(ctx context.Context, io IO, l *session.Loaded, st *session.Started) int {
	bad := 0
	for _, p := range st.ValidateTests(ctx, l.Tests) {
		fmt.Fprintln(io.Out, p)
		bad++
	}
	if _, err := st.Engine().Plan(l.Tests); err != nil {
		fmt.Fprintln(io.Out, err)
		bad++
	}
	for _, s := range st.SIEMs {
		var exps []plugin.Expectation
		for _, t := range l.Tests {
			for i, x := range t.Expect {
				if len(x.SIEMs) > 0 && !containsStr(x.SIEMs, s.Name) && !containsStr(x.SIEMs, s.Plugin) {
					continue
				}
				exps = append(exps, plugin.Expectation{ID: fmt.Sprintf("%s/%d", t.ID, i), TestID: t.ID,
					Technique: string(x.Technique), RuleName: x.Rule, RuleID: x.RuleID, Query: x.Query[s.Name] + x.Query[s.Plugin]})
			}
		}
		probs, err := s.Impl.Check(ctx, plugin.CheckRequest{Expectations: exps})
		if err != nil {
			fmt.Fprintf(io.Out, "siem %q: check: %v\n", s.Name, err)
			bad++
			continue
		}
		for _, p := range probs {
			fmt.Fprintf(io.Out, "siem %q: %s\n", s.Name, p)
			bad++
		}
		if len(probs) == 0 {
			fmt.Fprintf(io.Out, "siem %q: ok\n", s.Name)
		}
		reportClock(ctx, io, s)
	}
	return bad
}

// validateRules loads the rules of each SIEM that reads them offline (all
// of them with --online), names every rule file it refused with its line
// and why, and returns how many are broken: those are problems.
func validateRules(ctx context.Context, io IO, l *session.Loaded, online bool) int {
	host := l.Host(io.Err)
	defer host.Close()
	bad := 0
	for _, s := range l.SIEMs {
		impl, _, err := host.SIEM(ctx, s.Plugin)
		if err != nil {
			continue // --online reports it; offline, plugins are not the subject
		}
		d, err := impl.Describe(ctx)
		if err != nil || !d.Has(plugin.CapRules) || (!online && !d.Has(plugin.CapRulesOffline)) {
			continue
		}
		rules, err := session.ReadRules(ctx, host, s)
		if err != nil {
			if !errors.Is(err, plugin.ErrUnsupported) {
				fmt.Fprintf(io.Out, "siem %q: rules: %v\n", s.Name, err)
				bad++
			}
			continue
		}
		var runs, broken, scope int
		for _, r := range rules {
			switch {
			case r.Refused == "":
				runs++
			case r.Broken:
				broken++
				fmt.Fprintf(io.Out, "siem %q: rule refused, broken: %s\n", s.Name, r.Refused)
			default:
				scope++
			}
		}
		if scope > 0 {
			for _, r := range rules {
				if r.Refused != "" && !r.Broken {
					fmt.Fprintf(io.Out, "siem %q: rule refused, outside what it evaluates: %s\n", s.Name, r.Refused)
				}
			}
		}
		fmt.Fprintf(io.Out, "siem %q: %d rules loaded, %d refused (%d broken, %d outside what it evaluates)\n", s.Name, runs, broken+scope, broken, scope)
		bad += broken
	}
	return bad
}

// reportClock says how far the SIEM's clock is from this host's, when its
// plugin can tell, and warns beyond ClockWarning.
func reportClock(ctx context.Context, io IO, s *runner.SIEM) {
	if !s.Desc.Has(plugin.CapClock) {
		fmt.Fprintf(io.Out, "siem %q: clock: not read (the plugin has no clock call)\n", s.Name)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, err := s.Impl.Clock(cctx)
	if err != nil {
		fmt.Fprintf(io.Out, "siem %q: clock: not read: %v\n", s.Name, err)
		return
	}
	if note := clockNote(s.Name, r); note != "" {
		fmt.Fprintf(io.Out, "WARNING: %s\n", note)
		return
	}
	fmt.Fprintf(io.Out, "siem %q: clock: %s off this host's (+/- %s; read from %s)\n", s.Name, r.Offset.Round(time.Millisecond), r.Uncertainty.Round(time.Millisecond), r.Source)
}
