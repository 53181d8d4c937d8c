package plugin

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// ServeConfig builds the go-plugin serve config for one implementation; set
// exactly one of inj and siem.
func ServeConfig(inj Injector, siem SIEM) *goplugin.ServeConfig {
	return &goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{ProtocolVersion: PluginSet(inj, siem)},
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Level: hclog.Info, Output: os.Stderr, JSONFormat: true,
		}),
	}
}

// ServeBuiltin serves the registered built-in plugin kind/name on this
// process's stdio, the way `vigil plugin serve KIND NAME` does. It returns
// only on error (go-plugin's Serve exits the process when the host goes).
func ServeBuiltin(kind, name string) error {
	switch kind {
	case KindInjector:
		f, ok := LookupInjector(name)
		if !ok {
			return fmt.Errorf("plugin: no built-in injector %q (have %v)", name, Builtins(KindInjector))
		}
		goplugin.Serve(ServeConfig(f(), nil))
	case KindSIEM:
		f, ok := LookupSIEM(name)
		if !ok {
			return fmt.Errorf("plugin: no built-in siem %q (have %v)", name, Builtins(KindSIEM))
		}
		goplugin.Serve(ServeConfig(nil, f()))
	default:
		return fmt.Errorf("plugin: unknown plugin kind %q (want %s or %s)", kind, KindInjector, KindSIEM)
	}
	return nil
}
