package session

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/core/atomic"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/pluginhost"
)

// Selection chooses the config, the catalog and the tests of a command:
// the options run, plan, list, validate and record share.
type Selection struct {
	ConfigPath  string
	CatalogDirs []string
	PluginDirs  []string
	IDs         []string
	Techniques  []string
	Tactics     []string
	Platforms   []string
	SIEMs       []string
	Targets     []string
	Args        []string
	// AllowUnpinned runs external plugins that have no sha256 pin.
	AllowUnpinned bool
	// AllowDestructive lets destructive tests selected by ID run.
	AllowDestructive bool
	// Replay turns the run into a replay of the recorded telemetry
	// (ReplayDir: recordings from there instead of the built-in ones).
	Replay    bool
	ReplayDir string
	// RuleDirs are extra detection rule directories for the SIEMs that
	// load rules from files (--sigma-dir).
	RuleDirs []string
	// AtomicsDirs are Atomic Red Team checkouts whose atomics are
	// converted and added to the catalog (--atomics).
	AtomicsDirs []string
	Tags        []string
	ExcludeTags []string
}

// Loaded is what a Selection loads.
type Loaded struct {
	Config *config.Config
	Cat    *catalog.Catalog
	Tests  []*catalog.Test
	// Skipped are destructive tests left out of a broad selection.
	Skipped []*catalog.Test
	Args    catalog.ArgOverrides
	SIEMs   []config.SIEM
	Targets []config.Target
	// Notes are things the user should know (destructive tests left out,
	// atomics imported, replay).
	Notes []string
	// PluginDirs are searched for external plugins.
	PluginDirs []string
	// AllowUnpinned is the selection's.
	AllowUnpinned bool
}

// Load reads the config and the catalog and selects the tests, SIEMs and
// targets. Errors are ConfigErrors.
func Load(s Selection) (*Loaded, error) {
	cfg, err := config.Find(s.ConfigPath)
	if err != nil {
		return nil, configErr(err)
	}
	l := &Loaded{Config: cfg, AllowUnpinned: s.AllowUnpinned}
	if l.Cat, l.Notes, err = LoadCatalog(cfg, s.CatalogDirs, s.AtomicsDirs); err != nil {
		return nil, err
	}
	if l.Args, err = catalog.ParseArgOverrides(s.Args); err != nil {
		return nil, configErr(err)
	}
	l.Tests, l.Skipped, err = l.Cat.Select(catalog.Filter{
		IDs: s.IDs, Techniques: s.Techniques, Tactics: s.Tactics, Platforms: s.Platforms, AllowDestructive: s.AllowDestructive,
		Tags: s.Tags, ExcludeTags: s.ExcludeTags,
	})
	if err != nil {
		return nil, configErr(err)
	}
	if err := l.Args.Check(l.Tests); err != nil {
		return nil, configErr(err)
	}
	if len(l.Skipped) > 0 {
		ids := make([]string, len(l.Skipped))
		for i, t := range l.Skipped {
			ids[i] = t.ID
		}
		l.Notes = append(l.Notes, fmt.Sprintf("left out %d destructive test(s) (%s): select them with --id and --allow-destructive", len(ids), strings.Join(ids, ", ")))
	}
	if l.SIEMs, err = PickSIEMs(cfg, s.SIEMs); err != nil {
		return nil, configErr(err)
	}
	if l.Targets, err = pick("target", cfg.Targets, s.Targets, func(x config.Target) string { return x.Name }); err != nil {
		return nil, configErr(err)
	}
	for i := range l.SIEMs {
		if l.SIEMs[i].PollInterval <= 0 {
			l.SIEMs[i].PollInterval = cfg.Run.PollInterval
		}
		if l.SIEMs[i].Timeout <= 0 {
			l.SIEMs[i].Timeout = cfg.Run.Timeout
		}
	}
	if len(s.RuleDirs) > 0 {
		l.SIEMs = AddRuleDirs(l.SIEMs, AbsAll(s.RuleDirs))
	}
	if s.ReplayDir != "" && !s.Replay {
		return nil, configErr(fmt.Errorf("--replay-dir needs --replay"))
	}
	if s.Replay {
		dir := ""
		if s.ReplayDir != "" {
			dir = AbsAll([]string{s.ReplayDir})[0]
		}
		if err := l.MakeReplay(dir); err != nil {
			return nil, err
		}
	}
	l.PluginDirs = pluginhost.DefaultDirs(append(append([]string{}, cfg.Run.PluginDirs...), s.PluginDirs...)...)
	return l, nil
}

// PickSIEMs returns the config's SIEMs named in names (all of them when
// names is empty), erring on a name the config does not have.
func PickSIEMs(cfg *config.Config, names []string) ([]config.SIEM, error) {
	return pick("siem", cfg.SIEMs, names, func(x config.SIEM) string { return x.Name })
}

// LoadCatalog loads the embedded catalog, the config's and the extra
// catalog directories, and the converted atomics of each Atomic Red Team
// checkout (--atomics; their positions name the atomic's YAML file and
// line), with a note per checkout. Errors are ConfigErrors.
func LoadCatalog(cfg *config.Config, catalogDirs, atomicsDirs []string) (*catalog.Catalog, []string, error) {
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
			return nil, nil, configErr(err)
		}
		imports = append(imports, r)
		sources = append(sources, r.Source())
		notes = append(notes, fmt.Sprintf("atomics %s: %d atomic tests imported, %d skipped (vigil import atomics %s lists why)", d, len(r.Tests), len(r.Skipped), d))
	}
	cat, err := catalog.Load(sources...)
	if err != nil {
		return nil, nil, configErr(err)
	}
	for _, r := range imports {
		r.Relocate(cat)
	}
	return cat, notes, nil
}

// AbsAll returns the paths made absolute (as given when that fails).
func AbsAll(dirs []string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		out = append(out, d)
	}
	return out
}
