package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/session"
)

// RulesOptions are the flags of vigil rules.
type RulesOptions struct {
	ConfigPath    string
	SIEMs         []string
	SigmaDirs     []string
	PluginDirs    []string
	AllowUnpinned bool
	// Refused lists only the rules each SIEM refused, with why.
	Refused bool
	// Output is "text" or "json".
	Output string
}

// siemRules is one SIEM's rules, for vigil rules.
type siemRules struct {
	SIEM   string        `json:"siem"`
	Plugin string        `json:"plugin"`
	Rules  []plugin.Rule `json:"rules,omitempty"`
	// Note says why the rules are unknown.
	Note string `json:"note,omitempty"`
}

func newCmdRules(io IO, runF func(*RulesOptions) error) *cobra.Command {
	o := &RulesOptions{Output: "text"}
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List each SIEM's detection rules, and the rules it refused with why",
		Long: `List the detection rules of each configured SIEM whose plugin can list
them: ID, name, the ATT&CK techniques the rule claims, whether it is
enabled, where it lives. Rules a SIEM refused to run (for the local SIEM:
Sigma files that cannot work, such as an invalid regular expression or a
condition naming a search that does not exist, and files outside what it
evaluates, such as a Windows logsource) follow, each with its file, line and
reason; they claim nothing in vigil coverage.

Exit status: 0, or 3 when a SIEM's rules could not be read.`,
		Example: `  vigil rules
  vigil rules --refused                          # only what was refused, and why
  vigil rules --sigma-dir ~/my-rules --refused   # check your own Sigma rules
  vigil rules --siem elastic --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Output != "text" && o.Output != "json" {
				return usageErr(fmt.Errorf("--output %q: want text or json", o.Output))
			}
			if runF != nil {
				return runF(o)
			}
			return rulesRun(cmd, io, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigPath, "config", "c", "", "config file (default ./vigil.toml, else built-in defaults)")
	f.StringArrayVar(&o.SIEMs, "siem", nil, "only this configured SIEM (repeatable)")
	f.StringArrayVar(&o.SigmaDirs, "sigma-dir", nil, "extra directory of Sigma rules for the local SIEM (repeatable)")
	f.StringArrayVar(&o.PluginDirs, "plugin-dir", nil, "extra directory of external plugins (repeatable)")
	f.BoolVar(&o.AllowUnpinned, "allow-unpinned", false, "run external plugins that have no sha256 pin")
	f.BoolVar(&o.Refused, "refused", false, "list only the rules each SIEM refused, with why")
	f.StringVarP(&o.Output, "output", "o", "text", "text or json")
	return cmd
}

func rulesRun(cmd *cobra.Command, io IO, o *RulesOptions) error {
	ctx := cmd.Context()
	cfg, err := config.Find(o.ConfigPath)
	if err != nil {
		return usageErr(err)
	}
	siems, err := session.PickSIEMs(cfg, o.SIEMs)
	if err != nil {
		return usageErr(err)
	}
	if len(o.SigmaDirs) > 0 {
		siems = session.AddRuleDirs(siems, session.AbsAll(o.SigmaDirs))
	}
	host := session.NewHost(cfg, o.PluginDirs, o.AllowUnpinned, io.Err)
	defer host.Close()
	var (
		all    []siemRules
		failed []error
	)
	for _, s := range siems {
		sr := siemRules{SIEM: s.Name, Plugin: s.Plugin}
		rules, err := session.ReadRules(ctx, host, s)
		switch {
		case errors.Is(err, plugin.ErrUnsupported):
			sr.Note = noRulesCall
		case err != nil:
			err = fmt.Errorf("%s: %w", s, err)
			sr.Note = "rules not read: " + oneLineErr(err)
			failed = append(failed, err)
		}
		for _, r := range rules {
			if !o.Refused || r.Refused != "" {
				sr.Rules = append(sr.Rules, r)
			}
		}
		all = append(all, sr)
	}
	if o.Output == "json" {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return runtimeErr(err)
		}
	} else {
		for _, sr := range all {
			writeRules(io.Out, sr, o.Refused)
		}
	}
	if len(failed) > 0 {
		return runtimeErr(errors.Join(failed...))
	}
	return nil
}

// writeRules prints one SIEM's rules as a table, then its refused rules.
func writeRules(w io.Writer, sr siemRules, refusedOnly bool) {
	if sr.Note != "" {
		fmt.Fprintf(w, "SIEM %s (plugin %s): %s\n\n", sr.SIEM, sr.Plugin, sr.Note)
		return
	}
	var runs, refused []plugin.Rule
	for _, r := range sr.Rules {
		if r.Refused != "" {
			refused = append(refused, r)
		} else {
			runs = append(runs, r)
		}
	}
	broken := 0
	for _, r := range refused {
		if r.Broken {
			broken++
		}
	}
	if refusedOnly {
		fmt.Fprintf(w, "SIEM %s (plugin %s): %d rules refused, %d of them broken\n", sr.SIEM, sr.Plugin, len(refused), broken)
	} else {
		fmt.Fprintf(w, "SIEM %s (plugin %s): %d rules, %d refused (%d broken)\n", sr.SIEM, sr.Plugin, len(runs), len(refused), broken)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTECHNIQUES\tENABLED\tSOURCE")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", r.ID, oneLine(r.Name, 60), strings.Join(r.Techniques, ","), r.Enabled, r.Source)
		}
		tw.Flush()
	}
	// Broken rules first: they are mistakes; the others are out of scope.
	sort.SliceStable(refused, func(i, j int) bool { return refused[i].Broken && !refused[j].Broken })
	for _, r := range refused {
		kind := "out of scope"
		if r.Broken {
			kind = "BROKEN"
		}
		fmt.Fprintf(w, "refused (%s): %s\n", kind, r.Refused)
	}
	fmt.Fprintln(w)
}
