package config

import (
	"github.com/vigilsec/vigil/core/config/tomldoc"
)

// RedactedValue is the placeholder of a hidden value in Redacted.
const RedactedValue = "[redacted]"

// Redacted returns the config as plain values shaped like vigil.toml (for
// results.json), with every value that came from a ${VAR} and every value
// under a secret-looking key (see IsSecretKey) replaced by "[redacted]".
// Durations are strings such as "2s".
func (c *Config) Redacted() map[string]any {
	r := redactor{c: c}
	siems := make([]any, len(c.SIEMs))
	for i, s := range c.SIEMs {
		p := tomldoc.Index("siem", i)
		sm := map[string]any{
			"name":          r.value(tomldoc.Join(p, "name"), s.Name),
			"plugin":        r.value(tomldoc.Join(p, "plugin"), s.Plugin),
			"poll_interval": s.PollInterval.String(),
			"timeout":       s.Timeout.String(),
			"params":        r.value(tomldoc.Join(p, "params"), s.Params),
		}
		// Only a changed slack is shown, so that the config hashes of
		// runs from before the setting existed stay comparable.
		if s.ClockSlack != DefaultClockSlack {
			sm["clock_slack"] = s.ClockSlack.String()
		}
		siems[i] = sm
	}
	targets := make([]any, len(c.Targets))
	for i, t := range c.Targets {
		p := tomldoc.Index("target", i)
		tm := map[string]any{
			"name":   r.value(tomldoc.Join(p, "name"), t.Name),
			"plugin": r.value(tomldoc.Join(p, "plugin"), t.Plugin),
			"params": r.value(tomldoc.Join(p, "params"), t.Params),
		}
		if len(t.Hosts) > 0 {
			tm["hosts"] = r.value(tomldoc.Join(p, "hosts"), t.Hosts)
		}
		if t.Inventory != "" {
			tm["inventory"] = r.value(tomldoc.Join(p, "inventory"), t.Inventory)
		}
		if len(t.Runs) > 0 {
			tm["runs"] = t.Runs
		}
		targets[i] = tm
	}
	pins := make([]any, len(c.Plugins))
	for i, pin := range c.Plugins {
		p := tomldoc.Index("plugin", i)
		pins[i] = map[string]any{
			"name":   r.value(tomldoc.Join(p, "name"), pin.Name),
			"sha256": r.value(tomldoc.Join(p, "sha256"), pin.SHA256),
		}
	}
	return map[string]any{
		"path": c.Path,
		"run": map[string]any{
			"concurrency":   c.Run.Concurrency,
			"poll_interval": c.Run.PollInterval.String(),
			"timeout":       c.Run.Timeout.String(),
			"plugin_dirs":   r.value("run.plugin_dirs", c.Run.PluginDirs),
			"catalog_dirs":  r.value("run.catalog_dirs", c.Run.CatalogDirs),
		},
		"siem":   siems,
		"target": targets,
		"plugin": pins,
	}
}

type redactor struct{ c *Config }

func (r redactor) hidden(path string) bool {
	if r.c.src != nil {
		return r.c.src.hidden(path)
	}
	return secretPath(path)
}

// value copies v, hiding the values at secret or expanded paths.
func (r redactor) value(path string, v any) any {
	if r.hidden(path) {
		return RedactedValue
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = r.value(tomldoc.Join(path, k), e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.value(tomldoc.Index(path, i), e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.value(tomldoc.Index(path, i), e)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.value(tomldoc.Index(path, i), e)
		}
		return out
	default:
		return v
	}
}
