package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/report"
	"github.com/vigilsec/vigil/core/session"
)

// CoverageOptions are the flags of `vigil coverage`.
type CoverageOptions struct {
	historyOptions
	Results       string
	Run           string
	ConfigPath    string
	CatalogDirs   []string
	AtomicsDirs   []string
	SIEMs         []string
	SigmaDirs     []string
	PluginDirs    []string
	AllowUnpinned bool
	Platforms     []string
	Format        string
	Out           string
}

// noRulesCall is the note of a SIEM whose plugin cannot list its rules.
const noRulesCall = "claims unknown (plugin has no rules call)"

func newCmdCoverage(io IO, runF func(*CoverageOptions) error) *cobra.Command {
	o := &CoverageOptions{}
	cmd := &cobra.Command{
		Use:   "coverage",
		Short: "Compare what the SIEMs' rules claim to detect with what a run proved",
		Long: `coverage reads each configured SIEM's detection rules and the ATT&CK
techniques they claim (Sigma attack.tNNNN tags for the local SIEM and any
--sigma-dir, Datadog technique: tags, Elastic threat mappings, Splunk ES
correlation search annotations), and compares them with a run's results
(--results, else --run of the history database, default the newest run).

Per SIEM and per tactic (kill-chain order) it counts the techniques
  claimed and proven       a rule claims it, a test of it was detected
  claimed, never proven    a rule claims it, its tests ran, none detected
                           (the rules are named)
  proven, no rule claims   a test was detected, no rule claims it
  claimed, untested        a rule claims it, no test of it ran
  missed, no rule claims   its tests ran and were missed, no rule claims it
  no test, no claim
over the ATT&CK techniques of --platform (default Linux and Containers)
plus every tested one. A rule claiming a technique (T1059) claims its
sub-techniques (T1059.004); a test proves only its own technique. A SIEM
whose plugin has no rules call is "claims unknown", not an error.

The catalog names the tests of each technique, run or not, and brings the
techniques it tests into scope: give coverage the --catalog and --atomics
of the run, so that it counts what the run's own coverage.json counts.

--format text (default), json (coverage.json) or navigator (ATT&CK
Navigator 4.5 layers, one colour per class) goes to standard output;
--out DIR writes coverage.json and coverage-<siem>.json layers as well.

Exit status: 0, 1 when some claimed technique was tested and never
detected, 2 usage, 3 when a SIEM's rules could not be read.`,
		Example: `  vigil coverage --results out/results.json
  vigil coverage --atomics ~/atomic-red-team --results out/results.json
  vigil coverage --run last --sigma-dir ~/sigma/rules/linux --format navigator > layer.json
  vigil coverage --config vigil.toml --siem elastic --out reports/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runCoverage(cmd.Context(), io, o)
		},
	}
	o.addHistoryFlags(cmd, false)
	f := cmd.Flags()
	f.StringVar(&o.Results, "results", "", "results.json of the run to compare (default: a run of the history database)")
	f.StringVar(&o.Run, "run", "", `run ID (or unique prefix) in the history database (default "last", the newest)`)
	f.StringVarP(&o.ConfigPath, "config", "c", "", "config file (default ./vigil.toml, else built-in defaults)")
	f.StringArrayVar(&o.CatalogDirs, "catalog", nil, "extra catalog directory (repeatable)")
	f.StringArrayVar(&o.AtomicsDirs, "atomics", nil, atomicsFlagUsage)
	f.StringArrayVar(&o.SIEMs, "siem", nil, "only this configured SIEM (repeatable)")
	f.StringArrayVar(&o.SigmaDirs, "sigma-dir", nil, "extra directory of Sigma rules for the local SIEM (repeatable)")
	f.StringArrayVar(&o.PluginDirs, "plugin-dir", nil, "extra directory of external plugins (repeatable)")
	f.BoolVar(&o.AllowUnpinned, "allow-unpinned", false, "run external plugins that have no sha256 pin")
	f.StringArrayVar(&o.Platforms, "platform", nil, "ATT&CK platform of the techniques in scope (repeatable; default Linux and Containers)")
	f.StringVarP(&o.Format, "format", "f", "text", "text, json or navigator")
	f.StringVarP(&o.Out, "out", "o", "", "also write coverage.json and the Navigator layers to this directory")
	return cmd
}

func runCoverage(ctx context.Context, io IO, o *CoverageOptions) error {
	switch o.Format {
	case "text", "json", "navigator":
	default:
		return usageErr(fmt.Errorf("--format %q: want text, json or navigator", o.Format))
	}
	if o.Results != "" && o.Run != "" {
		return usageErr(errors.New("--results and --run choose the run two ways; give one"))
	}
	cfg, err := config.Find(o.ConfigPath)
	if err != nil {
		return usageErr(err)
	}
	o.configured = cfg.Run.History
	cat, notes, err := session.LoadCatalog(cfg, o.CatalogDirs, o.AtomicsDirs)
	if err != nil {
		return sessionErr(err)
	}
	for _, n := range notes {
		fmt.Fprintln(io.Err, "note:", n)
	}
	siems, err := session.PickSIEMs(cfg, o.SIEMs)
	if err != nil {
		return usageErr(err)
	}
	platforms, err := attackPlatforms(o.Platforms)
	if err != nil {
		return usageErr(err)
	}

	var run *measure.Run
	if o.Results != "" {
		run, err = readResults(o.Results)
	} else {
		src := &runSource{opts: &o.historyOptions}
		defer src.close()
		ref := o.Run
		if ref == "" {
			ref = "last"
		}
		run, err = src.load(ctx, ref)
	}
	if err != nil {
		return err
	}

	in := coverageInput(cat, run, o.SIEMs)
	in.Platforms = platforms
	claims, failures := readClaims(ctx, io, cfg, siems, o)
	for _, r := range in.Results {
		if !slices.ContainsFunc(claims, func(c coverage.Claims) bool { return c.SIEM == r.SIEM }) {
			claims = append(claims, coverage.Claims{SIEM: r.SIEM, Note: "claims unknown (no SIEM of that name in the config)"})
		}
	}
	in.Claims = claims
	rep := coverage.Compute(in)

	var buf bytes.Buffer
	switch o.Format {
	case "text":
		err = report.WriteCoverage(&buf, rep)
	case "json":
		err = report.WriteCoverageJSON(&buf, rep)
	case "navigator":
		err = report.WriteCoverageLayers(&buf, rep)
	}
	if err != nil {
		return runtimeErr(err)
	}
	if _, err := io.Out.Write(buf.Bytes()); err != nil {
		return runtimeErr(err)
	}
	if o.Out != "" {
		paths, err := writeCoverageFiles(o.Out, rep)
		for _, p := range paths {
			fmt.Fprintln(io.Err, "wrote", p)
		}
		if err != nil {
			return runtimeErr(err)
		}
	}
	if len(failures) > 0 {
		return runtimeErr(errors.Join(failures...))
	}
	for _, s := range rep.SIEMs {
		if s.Counts[coverage.ClaimedNotProven] > 0 {
			return silentExit{code: ExitMissed}
		}
	}
	return nil
}

// attackPlatforms resolves --platform values to ATT&CK platform names,
// case-insensitively ("linux" is "Linux").
func attackPlatforms(vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	known := map[string]string{}
	for _, t := range attack.Default().Techniques() {
		for _, p := range t.Platforms {
			known[strings.ToLower(p)] = p
		}
	}
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			name, ok := known[strings.ToLower(strings.TrimSpace(p))]
			if !ok {
				return nil, fmt.Errorf("--platform %q: not an ATT&CK Enterprise platform", p)
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// readClaims starts each SIEM's plugin configured to list its rules and
// nothing else (session.RulesOnly: no sensor starts, no file is written),
// with the --sigma-dir directories, and reads its rules. A plugin without
// the rules call gives unknown claims; a failure gives unknown claims and
// an error naming the SIEM.
func readClaims(ctx context.Context, io IO, cfg *config.Config, siems []config.SIEM, o *CoverageOptions) ([]coverage.Claims, []error) {
	if len(o.SigmaDirs) > 0 {
		siems = session.AddRuleDirs(siems, session.AbsAll(o.SigmaDirs))
	}
	host := session.NewHost(cfg, o.PluginDirs, o.AllowUnpinned, io.Err)
	defer host.Close()

	var (
		out  []coverage.Claims
		errs []error
	)
	for _, s := range siems {
		c, err := siemClaims(ctx, host, s)
		if err != nil {
			err = fmt.Errorf("%s: %w", s, err)
			c = coverage.Claims{SIEM: s.Name, Note: "claims unknown (rules not read: " + oneLineErr(err) + ")"}
			errs = append(errs, err)
		}
		out = append(out, c)
	}
	return out, errs
}

// siemClaims reads one SIEM's rules as claims: the rules it runs; those it
// refused are only counted.
func siemClaims(ctx context.Context, host *pluginhost.Host, s config.SIEM) (coverage.Claims, error) {
	rules, err := session.ReadRules(ctx, host, s)
	if errors.Is(err, plugin.ErrUnsupported) {
		return coverage.Claims{SIEM: s.Name, Note: noRulesCall}, nil
	}
	if err != nil {
		return coverage.Claims{}, err
	}
	return claimsOf(s.Name, rules), nil
}

// claimsOf turns a SIEM's rules into its claims.
func claimsOf(siem string, rules []plugin.Rule) coverage.Claims {
	c := coverage.Claims{SIEM: siem, Known: true}
	for _, r := range rules {
		// A rule the SIEM refused does not run: it claims nothing and is
		// not one of its rules (vigil rules --refused lists it).
		if r.Refused != "" {
			c.Refused++
			continue
		}
		c.Rules = append(c.Rules, coverage.Rule{ID: r.ID, Name: r.Name, Techniques: r.Techniques, Enabled: r.Enabled, Source: r.Source, Platforms: r.Platforms})
	}
	return c
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// writeCoverageFiles writes coverage.json and one Navigator layer per SIEM
// (coverage-<siem>.json) into dir and returns their paths.
func writeCoverageFiles(dir string, rep *coverage.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	var paths []string
	write := func(name string, render func(*bytes.Buffer) error) error {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("coverage: %w", err)
		}
		paths = append(paths, p)
		return nil
	}
	if err := write("coverage.json", func(b *bytes.Buffer) error { return report.WriteCoverageJSON(b, rep) }); err != nil {
		return paths, err
	}
	for _, s := range rep.SIEMs {
		one := *rep
		one.SIEMs = []coverage.SIEM{s}
		if err := write(report.CoverageLayerFileName(s.Name), func(b *bytes.Buffer) error { return report.WriteCoverageLayers(b, &one) }); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// runClaims reads the rules of a run's SIEMs whose plugins have the rules
// call (CapRules), while they still run. A failure is a warning: the run's
// results do not depend on it.
func runClaims(ctx context.Context, io IO, st *session.Started) []coverage.Claims {
	var out []coverage.Claims
	for _, s := range st.SIEMs {
		if !s.Desc.Has(plugin.CapRules) {
			continue
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		rules, err := s.Impl.ClaimedRules(rctx)
		cancel()
		if err != nil {
			if !errors.Is(err, plugin.ErrUnsupported) {
				fmt.Fprintf(io.Err, "vigil: siem %q (plugin %s): rules: %v (coverage.json shows its claims as unknown)\n", s.Name, s.Plugin, err)
			}
			out = append(out, coverage.Claims{SIEM: s.Name, Note: noRulesCall})
			continue
		}
		out = append(out, claimsOf(s.Name, rules))
	}
	return out
}

// writeRunCoverage writes a run's claimed versus proven coverage into its
// --out directory (coverage.json and coverage-<siem>.json).
func writeRunCoverage(dir string, l *session.Loaded, run *measure.Run, claims []coverage.Claims) ([]string, error) {
	in := coverageInput(l.Cat, run, nil)
	in.Claims = claims
	return writeCoverageFiles(dir, coverage.Compute(in))
}

// coverageInput is what coverage compares, the same for `vigil coverage`
// and a run's --out: the run's results (of the named SIEMs; all when none
// is named) against every test of the catalog, which brings the techniques
// it tests into scope and names the tests of each technique.
func coverageInput(cat *catalog.Catalog, run *measure.Run, siems []string) coverage.Input {
	in := coverage.Input{RunID: run.RunID, Results: run.Results}
	if len(siems) > 0 {
		in.Results = nil
		for _, r := range run.Results {
			if slices.Contains(siems, r.SIEM) {
				in.Results = append(in.Results, r)
			}
		}
	}
	for _, t := range cat.Tests {
		in.Tests = append(in.Tests, coverage.Test{ID: t.ID, Technique: string(t.Technique.ID)})
	}
	return in
}
