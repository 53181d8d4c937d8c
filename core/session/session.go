// Package session prepares what a command runs on: it loads the config and
// the catalog, selects the tests, puts the SIEMs and targets in the mode
// the command needs (live, replay, rules only, record) through the typed
// hooks the built-in plugins register (plugin.SIEMModes, plugin.Replayer),
// builds the one plugin host, and starts and configures the plugin
// processes. The CLI (core/cli) is its user; nothing here knows a plugin's
// own config keys.
package session

import (
	"errors"
	"fmt"
)

// ConfigError marks a problem with what the user gave (the config, the
// selection, a plugin's params): the CLI exits 2 on it. Other errors are
// runtime errors (a plugin that fails to start or to configure: exit 3).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(err error) error { return &ConfigError{Err: err} }

// IsConfigError reports whether err is (or wraps) a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// pick returns the items of all named in want (all of them when want is
// empty), erring on a name no item has.
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
			return nil, fmt.Errorf("no %s named %q in the config (have: %s)", kind, w, joinNames(names))
		}
	}
	return out, nil
}

func joinNames(ns []string) string {
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
