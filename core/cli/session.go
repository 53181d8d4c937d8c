package cli

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/session"
)

// selectOptions are the flags that choose config, catalog and tests
// (session.Selection); shared by run, plan, list, validate and record.
type selectOptions struct {
	session.Selection
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
	f.BoolVar(&o.AllowDestructive, "allow-destructive", false, "allow destructive tests selected by --id")
	f.StringArrayVar(&o.AtomicsDirs, "atomics", nil, atomicsFlagUsage)
	f.StringArrayVar(&o.Tags, "tag", nil, "only tests with this tag (repeatable)")
	f.StringArrayVar(&o.ExcludeTags, "exclude-tag", nil, "leave out tests with this tag, e.g. network or payload (repeatable)")
	if withPlugins {
		f.StringArrayVar(&o.SIEMs, "siem", nil, "only this configured SIEM (repeatable)")
		f.StringArrayVar(&o.Targets, "target", nil, "only this configured target (repeatable)")
		f.StringArrayVar(&o.PluginDirs, "plugin-dir", nil, "extra directory of external plugins (repeatable)")
		f.BoolVar(&o.AllowUnpinned, "allow-unpinned", false, "run external plugins that have no sha256 pin")
		f.StringArrayVar(&o.RuleDirs, "sigma-dir", nil, "extra directory of Sigma rules for the local SIEM (repeatable)")
		f.StringVar(&o.ReplayDir, "replay-dir", "", "with --replay: read recordings from this directory instead of the built-in ones")
		f.BoolVar(&o.Replay, "replay", false, "replay the recorded telemetry of each test into SIEMs that ingest, instead of performing it (no root needed)")
	}
}

// load reads config and catalog and selects tests (session.Load). Errors
// are usage errors.
func (o *selectOptions) load() (*session.Loaded, error) {
	l, err := session.Load(o.Selection)
	if err != nil {
		return nil, sessionErr(err)
	}
	return l, nil
}

// start launches and configures every SIEM and target plugin of l.
func start(ctx context.Context, l *session.Loaded) (*session.Started, error) {
	st, err := l.Start(ctx, os.Stderr)
	if err != nil {
		return nil, sessionErr(err)
	}
	return st, nil
}

// sessionErr maps a session error to its exit code: a problem with what
// the user gave is a usage error, anything else a runtime error.
func sessionErr(err error) error {
	if session.IsConfigError(err) {
		return usageErr(err)
	}
	return runtimeErr(err)
}
