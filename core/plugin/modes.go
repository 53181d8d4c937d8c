package plugin

import (
	"maps"
	"sync"
)

// SIEMModes are the typed hooks a built-in SIEM plugin gives the session
// (core/session), so that a command can put the plugin in the mode it needs
// without knowing the plugin's own config keys. Each method returns a copy
// of params, the plugin's [siem.params] table, changed for the mode; the
// plugin's tests check that each result configures what it says.
type SIEMModes interface {
	// Replay: the SIEM collects nothing of its own and sees only what
	// Ingest brings (vigil run --replay).
	Replay(params map[string]any) map[string]any
	// RulesOnly: the SIEM is configured to list its rules and nothing
	// else: no collection, no file written (coverage, rules, validate).
	RulesOnly(params map[string]any) map[string]any
	// Record: the SIEM collects live and appends every event it sees to
	// path, one telemetry.Event per line (vigil record).
	Record(params map[string]any, path string) map[string]any
	// AddRuleDirs: the SIEM also loads the detection rules below dirs
	// (absolute paths; --sigma-dir).
	AddRuleDirs(params map[string]any, dirs []string) map[string]any
}

// Replayer is the typed hook of the built-in injector that replays
// recorded telemetry instead of performing a technique (vigil run
// --replay).
type Replayer interface {
	// Target returns the params of a target that replays the recordings of
	// dir (absolute; "" for the built-in recordings).
	Target(dir string) map[string]any
	// Step returns the inject params that replay the recording of test
	// testID.
	Step(testID string) map[string]any
}

var (
	hooksMu   sync.RWMutex
	siemModes = map[string]SIEMModes{}
	replayer  struct {
		name string
		r    Replayer
	}
)

// RegisterSIEMModes registers the mode hooks of a built-in SIEM plugin.
// Call it from an init function, after RegisterSIEM; it panics on an
// unknown plugin or a second registration.
func RegisterSIEMModes(name string, m SIEMModes) {
	hooksMu.Lock()
	defer hooksMu.Unlock()
	if _, ok := LookupSIEM(name); !ok || m == nil || siemModes[name] != nil {
		panic("plugin: RegisterSIEMModes(" + name + "): not a registered SIEM plugin, nil hooks, or registered twice")
	}
	siemModes[name] = m
}

// SIEMModesOf returns the mode hooks of SIEM plugin name; false when it
// has none (an external plugin, or a built-in with no modes).
func SIEMModesOf(name string) (SIEMModes, bool) {
	hooksMu.RLock()
	defer hooksMu.RUnlock()
	m, ok := siemModes[name]
	return m, ok
}

// RegisterReplayer registers the built-in injector that replays
// recordings. There is one; a second registration panics.
func RegisterReplayer(name string, r Replayer) {
	hooksMu.Lock()
	defer hooksMu.Unlock()
	if _, ok := LookupInjector(name); !ok || r == nil || replayer.r != nil {
		panic("plugin: RegisterReplayer(" + name + "): not a registered injector, nil hooks, or a second replayer")
	}
	replayer.name, replayer.r = name, r
}

// ReplayerPlugin returns the injector that replays recordings and its
// hooks; false when none is registered.
func ReplayerPlugin() (string, Replayer, bool) {
	hooksMu.RLock()
	defer hooksMu.RUnlock()
	return replayer.name, replayer.r, replayer.r != nil
}

// CloneParams returns a shallow copy of params (never nil), for hooks that
// change a table.
func CloneParams(params map[string]any) map[string]any {
	out := make(map[string]any, len(params)+2)
	maps.Copy(out, params)
	return out
}
