package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/plugin"
)

func newCmdValidate(io IO) *cobra.Command {
	o := &selectOptions{}
	online := false
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the config and the catalog (and, with --online, the SIEMs)",
		Long: `Check vigil.toml and every catalog file: strict TOML, known ATT&CK
techniques, placeholders, plugins that exist. Every problem names its file
and line. With --online, plugins are started and configured, injectors
validate the params of their tests, and each SIEM checks its credentials and
the rules the tests expect.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			l, err := o.load()
			if err != nil {
				return err
			}
			src := "built-in defaults"
			if l.cfg.Path != "" {
				src = l.cfg.Path
			}
			fmt.Fprintf(io.Out, "config: %s: ok (%d SIEMs, %d targets)\n", src, len(l.siems), len(l.targets))
			fmt.Fprintf(io.Out, "catalog: ok (%d tests, %d selected)\n", len(l.cat.Tests), len(l.tests))
			if !online {
				return nil
			}
			st, err := l.start(ctx, o)
			if err != nil {
				return err
			}
			defer st.close(ctx)
			bad := 0
			for _, p := range validateTests(ctx, st, l.tests) {
				fmt.Fprintln(io.Out, p)
				bad++
			}
			eng := newEngine(st)
			if _, err := eng.Plan(l.tests); err != nil {
				fmt.Fprintln(io.Out, err)
				bad++
			}
			for _, s := range st.siems {
				var exps []plugin.Expectation
				for _, t := range l.tests {
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
			}
			if bad > 0 {
				return usageErr(fmt.Errorf("%d problem(s)", bad))
			}
			return nil
		},
	}
	o.addFlags(cmd, true)
	cmd.Flags().BoolVar(&online, "online", false, "start the plugins and check params, credentials and expected rules")
	return cmd
}
