package plugin

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// InjectorFactory returns a new, unconfigured Injector. It must have no side
// effects: setup belongs in Configure.
type InjectorFactory func() Injector

// SIEMFactory returns a new, unconfigured SIEM. It must have no side effects.
type SIEMFactory func() SIEM

var (
	regMu     sync.RWMutex
	injectors = map[string]InjectorFactory{}
	siems     = map[string]SIEMFactory{}
	namePat   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
)

// RegisterInjector registers a built-in injector. Call it from an init
// function; it panics on a bad or duplicate name or a nil factory, like
// Caddy's RegisterModule.
func RegisterInjector(name string, f InjectorFactory) {
	regMu.Lock()
	defer regMu.Unlock()
	mustRegister(KindInjector, name, f == nil, injectors[name] != nil)
	injectors[name] = f
}

// RegisterSIEM registers a built-in SIEM plugin (see RegisterInjector).
func RegisterSIEM(name string, f SIEMFactory) {
	regMu.Lock()
	defer regMu.Unlock()
	mustRegister(KindSIEM, name, f == nil, siems[name] != nil)
	siems[name] = f
}

func mustRegister(kind, name string, nilFactory, dup bool) {
	switch {
	case !namePat.MatchString(name):
		panic(fmt.Sprintf("plugin: bad %s plugin name %q (want %s)", kind, name, namePat))
	case nilFactory:
		panic(fmt.Sprintf("plugin: %s: nil factory", ID(kind, name)))
	case dup:
		panic(fmt.Sprintf("plugin: %s already registered", ID(kind, name)))
	}
}

// LookupInjector returns the factory of a built-in injector.
func LookupInjector(name string) (InjectorFactory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := injectors[name]
	return f, ok
}

// LookupSIEM returns the factory of a built-in SIEM plugin.
func LookupSIEM(name string) (SIEMFactory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := siems[name]
	return f, ok
}

// Builtins returns the sorted names of the built-in plugins of a kind.
func Builtins(kind string) []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	switch kind {
	case KindInjector:
		for n := range injectors {
			out = append(out, n)
		}
	case KindSIEM:
		for n := range siems {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ValidName reports whether name is a valid plugin name.
func ValidName(name string) bool { return namePat.MatchString(name) }
