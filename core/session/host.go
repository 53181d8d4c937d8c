package session

import (
	"io"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/pluginhost"
)

// NewHost is the one factory of plugin hosts: the config's plugin pins,
// its plugin directories and extraDirs (with the defaults), external
// plugins refused unless pinned or allowUnpinned, plugin logs to stderr
// (nil: discarded).
func NewHost(cfg *config.Config, extraDirs []string, allowUnpinned bool, stderr io.Writer) *pluginhost.Host {
	dirs := pluginhost.DefaultDirs(append(append([]string{}, cfg.Run.PluginDirs...), extraDirs...)...)
	return newHost(cfg, dirs, allowUnpinned, stderr)
}

// Host is the plugin host of the loaded session.
func (l *Loaded) Host(stderr io.Writer) *pluginhost.Host {
	return newHost(l.Config, l.PluginDirs, l.AllowUnpinned, stderr)
}

func newHost(cfg *config.Config, dirs []string, allowUnpinned bool, stderr io.Writer) *pluginhost.Host {
	pins := map[string]string{}
	for _, p := range cfg.Plugins {
		pins[p.Name] = p.SHA256
	}
	return pluginhost.New(pluginhost.Options{Dirs: dirs, Pins: pins, AllowUnpinned: allowUnpinned, Stderr: stderr})
}
