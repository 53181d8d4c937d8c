// Package plugintest serves a plugin implementation over go-plugin's
// in-memory gRPC connection and returns the client side, as the engine
// sees a plugin: the tests of every plugin go through the real protocol
// shims with it. Test equipment only.
package plugintest

import (
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigilsec/vigil/core/plugin"
)

// SIEM serves impl and returns the client side. The connection closes
// (and the server stops) when the test ends.
func SIEM(t testing.TB, impl plugin.SIEM) plugin.SIEM {
	t.Helper()
	return dispense(t, plugin.PluginSet(nil, impl), plugin.KindSIEM).(plugin.SIEM)
}

// Injector serves impl and returns the client side (see SIEM).
func Injector(t testing.TB, impl plugin.Injector) plugin.Injector {
	t.Helper()
	return dispense(t, plugin.PluginSet(impl, nil), plugin.KindInjector).(plugin.Injector)
}

func dispense(t testing.TB, set goplugin.PluginSet, kind string) any {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, set)
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatalf("plugintest: dispense %s: %v", kind, err)
	}
	return raw
}
