package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/atomic"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/runner"
)

// selectOptions are the flags that choose config, catalog and tests; shared
// by run, plan, list and validate.
type selectOptions struct {
	ConfigPath    string
	CatalogDirs   []string
	PluginDirs    []string
	IDs           []string
	Techniques    []string
	Tactics       []string
	Platforms     []string
	SIEMs         []string
	Targets       []string
	Args          []string
	AllowUnpinned bool
	AllowDestr    bool
	Replay        bool
	SigmaDirs     []string
	ReplayDir     string
	// AtomicsDirs are Atomic Red Team checkouts whose atomics are converted
	// and added to the catalog (--atomics).
	AtomicsDirs []string
	Tags        []string
	ExcludeTags []string
}

// atomicsFlagUsage is the help of --atomics (run, plan, list, validate and
// coverage).
const atomicsFlagUsage = "add the linux sh/bash atomics of this Atomic Red Team checkout to the catalog (repeatable; see vigil import atomics)"

func (o *selectOptions) addFlags(cmd *cobra.Command, withPlugins bool) {
	f := cmd.Flags()
	f.StringVarP(&o.ConfigPath, "config", "c", "", "config file (default ./vigil.toml, else built-in defaults)")
	f.StringArrayVar(&o.CatalogDirs, "catalog", nil, "extra catalog directory (repeatable)")
	f.StringArrayVar(&o.IDs, "id", nil, "test ID (repeatable)")
	f.StringArrayVarP(&o.Techniques, "technique", "t", nil, "ATT&CK technique ID or prefix, e.g. T1070 or T1070.002 (repeatable)")
	f.StringArrayVar(&o.Tactics, "tactic", nil, "ATT&CK tactic, e.g. persistence (repeatable)")
	f.StringArrayVar(&o.Platforms, "platform", nil, "platform, e.g. linux (repeatable)")
	f.StringArrayVar(&o.Args, "arg", nil, "override a test arg: NAME=VALUE or TEST_ID.NAME=VALUE (repeatable)")
	f.BoolVar(&o.AllowDestr, "allow-destructive", false, "allow destructive tests selected by --id")
	f.StringArrayVar(&o.AtomicsDirs, "atomics", nil, atomicsFlagUsage)
	f.StringArrayVar(&o.Tags, "tag", nil, "only tests with this tag (repeatable)")
	f.StringArrayVar(&o.ExcludeTags, "exclude-tag", nil, "leave out tests with this tag, e.g. network or payload (repeatable)")
	if withPlugins {
		f.StringArrayVar(&o.SIEMs, "siem", nil, "only this configured SIEM (repeatable)")
		f.StringArrayVar(&o.Targets, "target", nil, "only this configured target (repeatable)")
		f.StringArrayVar(&o.PluginDirs, "plugin-dir", nil, "extra directory of external plugins (repeatable)")
		f.BoolVar(&o.AllowUnpinned, "allow-unpinned", false, "run external plugins that have no sha256 pin")
		f.StringArrayVar(&o.SigmaDirs, "sigma-dir", nil, "extra directory of Sigma rules for the local SIEM (repeatable)")
		f.StringVar(&o.ReplayDir, "replay-dir", "", "with --replay: read recordings from this directory instead of the built-in ones")
		f.BoolVar(&o.Replay, "replay", false, "replay the recorded telemetry of each test into SIEMs that ingest, instead of performing it (no root needed)")
	}
}

// loaded is what the select options load.
type loaded struct {
	cfg      *config.Config
	cat      *catalog.Catalog
	tests    []*catalog.Test
	skipped  []*catalog.Test // destructive tests left out of a broad selection
	args     catalog.ArgOverrides
	siems    []config.SIEM
	targets  []config.Target
	notes    []string
	pluginDs []string
}

// load reads config and catalog and selects tests. Errors are usage errors.
func (o *selectOptions) load() (*loaded, error) {
	cfg, err := config.Find(o.ConfigPath)
	if err != nil {
		return nil, usageErr(err)
	}
	l := &loaded{cfg: cfg}
	if l.cat, l.notes, err = loadCatalog(cfg, o.CatalogDirs, o.AtomicsDirs); err != nil {
		return nil, err
	}
	if l.args, err = catalog.ParseArgOverrides(o.Args); err != nil {
		return nil, usageErr(err)
	}
	l.tests, l.skipped, err = l.cat.Select(catalog.Filter{
		IDs: o.IDs, Techniques: o.Techniques, Tactics: o.Tactics, Platforms: o.Platforms, AllowDestructive: o.AllowDestr,
		Tags: o.Tags, ExcludeTags: o.ExcludeTags,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	if err := l.args.Check(l.tests); err != nil {
		return nil, usageErr(err)
	}
	if len(l.skipped) > 0 {
		ids := make([]string, len(l.skipped))
		for i, t := range l.skipped {
			ids[i] = t.ID
		}
		l.notes = append(l.notes, fmt.Sprintf("left out %d destructive test(s) (%s): select them with --id and --allow-destructive", len(ids), strings.Join(ids, ", ")))
	}
	if l.siems, err = pick("siem", cfg.SIEMs, o.SIEMs, func(s config.SIEM) string { return s.Name }); err != nil {
		return nil, usageErr(err)
	}
	if l.targets, err = pick("target", cfg.Targets, o.Targets, func(t config.Target) string { return t.Name }); err != nil {
		return nil, usageErr(err)
	}
	for i := range l.siems {
		if l.siems[i].PollInterval <= 0 {
			l.siems[i].PollInterval = cfg.Run.PollInterval
		}
		if l.siems[i].Timeout <= 0 {
			l.siems[i].Timeout = cfg.Run.Timeout
		}
	}
	if len(o.SigmaDirs) > 0 {
		l.addSigmaDirs(absAll(o.SigmaDirs))
	}
	if o.ReplayDir != "" && !o.Replay {
		return nil, usageErr(fmt.Errorf("--replay-dir needs --replay"))
	}
	if o.Replay {
		dir := ""
		if o.ReplayDir != "" {
			dir = absAll([]string{o.ReplayDir})[0]
		}
		l.applyReplay(dir)
	}
	l.pluginDs = pluginhost.DefaultDirs(append(append([]string{}, cfg.Run.PluginDirs...), o.PluginDirs...)...)
	return l, nil
}

// loadCatalog loads the embedded catalog, the config's and the extra
// catalog directories, and the converted atomics of each Atomic Red Team
// checkout (--atomics; their positions name the atomic's YAML file and
// line), with a note per checkout. Errors are usage errors.
func loadCatalog(cfg *config.Config, catalogDirs, atomicsDirs []string) (*catalog.Catalog, []string, error) {
	sources := []catalog.Source{catalog.Embedded()}
	for _, d := range append(append([]string{}, cfg.Run.CatalogDirs...), catalogDirs...) {
		sources = append(sources, catalog.Dir(d))
	}
	var (
		imports []*atomic.Result
		notes   []string
	)
	for _, d := range atomicsDirs {
		r, err := atomic.Import(d, atomic.Options{})
		if err != nil {
			return nil, nil, usageErr(err)
		}
		imports = append(imports, r)
		sources = append(sources, r.Source())
		notes = append(notes, fmt.Sprintf("atomics %s: %d atomic tests imported, %d skipped (vigil import atomics %s lists why)", d, len(r.Tests), len(r.Skipped), d))
	}
	cat, err := catalog.Load(sources...)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	for _, r := range imports {
		r.Relocate(cat)
	}
	return cat, notes, nil
}

// applyReplay turns the run into a replay: one replay target, every test
// injecting through it, and the local SIEM in replay mode.
func (l *loaded) applyReplay(dir string) {
	target := config.Target{Name: "replay", Plugin: "replay"}
	if dir != "" {
		target.Params = map[string]any{"dir": dir}
	}
	l.targets = []config.Target{target}
	for i, t := range l.tests {
		c := *t
		c.Inject = catalog.Step{Plugin: "replay", Params: map[string]any{"test": t.ID}}
		c.Cleanup = nil
		c.Prerequisites = nil
		c.ElevationRequired = false
		l.tests[i] = &c
	}
	for i, s := range l.siems {
		if s.Plugin == "local" {
			p := map[string]any{}
			for k, v := range s.Params {
				p[k] = v
			}
			p["mode"] = "replay"
			l.siems[i].Params = p
		}
	}
	l.notes = append(l.notes, "replay: recorded telemetry of each test is re-timestamped, stamped with a fresh marker and ingested by the SIEMs; nothing is performed on this host")
}

// addSigmaDirs gives every local SIEM extra Sigma rule directories.
func (l *loaded) addSigmaDirs(dirs []string) {
	for i, s := range l.siems {
		if s.Plugin != "local" {
			continue
		}
		p := map[string]any{}
		for k, v := range s.Params {
			p[k] = v
		}
		var all []any
		if prev, ok := p["sigma_dirs"].([]any); ok {
			all = append(all, prev...)
		}
		for _, d := range dirs {
			all = append(all, d)
		}
		p["sigma_dirs"] = all
		l.siems[i].Params = p
	}
}

func pick[T any](kind string, all []T, want []string, name func(T) string) ([]T, error) {
	if len(want) == 0 {
		return all, nil
	}
	var out []T
	for _, w := range want {
		found := false
		for _, x := range all {
			if name(x) == w {
				out = append(out, x)
				found = true
			}
		}
		if !found {
			var names []string
			for _, x := range all {
				names = append(names, name(x))
			}
			return nil, fmt.Errorf("no %s named %q in the config (have: %s)", kind, w, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// started holds the plugin processes of a run.
type started struct {
	host    *pluginhost.Host
	siems   []*runner.SIEM
	targets []*runner.Target
}

func (s *started) close(ctx context.Context) {
	for _, x := range s.siems {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_ = x.Impl.Close(cctx)
		cancel()
	}
	for _, t := range s.targets {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_ = t.Impl.Close(cctx)
		cancel()
	}
	s.host.Close()
}

// start launches and configures every SIEM and target plugin. A failure
// names the plugin; what was started is closed again.
func (l *loaded) start(ctx context.Context, o *selectOptions) (*started, error) {
	pins := map[string]string{}
	for _, p := range l.cfg.Plugins {
		pins[p.Name] = p.SHA256
	}
	st := &started{host: pluginhost.New(pluginhost.Options{Dirs: l.pluginDs, Pins: pins, AllowUnpinned: o.AllowUnpinned, Stderr: os.Stderr})}
	fail := func(err error) (*started, error) {
		st.close(context.WithoutCancel(ctx))
		return nil, err
	}
	for _, s := range l.siems {
		impl, _, err := st.host.SIEM(ctx, s.Plugin)
		if err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: %w", s, err)))
		}
		desc, err := impl.Describe(ctx)
		if err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: describe: %w", s, err)))
		}
		params, err := s.ParamsTOML()
		if err != nil {
			return fail(usageErr(err))
		}
		rs := &runner.SIEM{Name: s.Name, Plugin: s.Plugin, Impl: impl, Desc: desc, PollInterval: s.PollInterval, Timeout: s.Timeout, ClockSlack: s.ClockSlack}
		st.siems = append(st.siems, rs)
		if err := impl.Configure(ctx, params); err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: configure: %w", s, err)))
		}
	}
	for _, t := range l.targets {
		impl, _, err := st.host.Injector(ctx, t.Plugin)
		if err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: %w", t, err)))
		}
		desc, err := impl.Describe(ctx)
		if err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: describe: %w", t, err)))
		}
		params, err := t.ParamsTOML()
		if err != nil {
			return fail(usageErr(err))
		}
		rt := &runner.Target{
			Name: t.Name, Plugin: t.Plugin, Impl: impl, Desc: desc, Host: targetHost(t), TmpRoot: targetTmpRoot(t),
			Hosts: t.Hosts, Runs: t.Runs,
		}
		st.targets = append(st.targets, rt)
		if err := impl.Configure(ctx, params); err != nil {
			return fail(runtimeErr(fmt.Errorf("%s: configure: %w", t, err)))
		}
	}
	return st, nil
}

// targetHost is the host name of a target: its `host` param, else this
// machine's name (local injectors).
func targetHost(t config.Target) string {
	if h, ok := t.Params["host"].(string); ok && h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// targetTmpRoot is where a target's work directories go: its `tmp_root`
// param, else /tmp on remote hosts (a target with hosts) and this
// machine's temporary directory for local injectors.
func targetTmpRoot(t config.Target) string {
	if r, ok := t.Params["tmp_root"].(string); ok && r != "" {
		return r
	}
	if len(t.Hosts) > 0 {
		return "/tmp"
	}
	return os.TempDir()
}

// validateTests asks each target's injector to validate the params of the
// tests that use it.
func validateTests(ctx context.Context, st *started, tests []*catalog.Test) []string {
	var problems []string
	for _, tg := range st.targets {
		for _, t := range tests {
			if !tg.Accepts(t.Inject.Plugin) {
				continue
			}
			req := plugin.ValidateRequest{TestID: t.ID, Params: t.Inject.Params}
			if t.Cleanup != nil {
				req.CleanupParams = t.Cleanup.Params
			}
			probs, err := tg.Impl.Validate(ctx, req)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: target %q: validate: %v", t.Source, tg.Name, err))
				continue
			}
			for _, p := range probs {
				problems = append(problems, fmt.Sprintf("%s: %s (injector %s)", t.Source, p, tg.Plugin))
			}
		}
	}
	return problems
}
