package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
)

// ErrDestructive is returned by Select when tests selected by ID are
// destructive and the filter does not allow them.
var ErrDestructive = errors.New("destructive tests need AllowDestructive (--allow-destructive)")

// Filter selects tests. A test must match every non-empty field, and any
// value within a field. The zero Filter selects every test.
type Filter struct {
	// IDs are exact test IDs. Tests named here are "explicitly selected".
	IDs []string
	// Techniques are ATT&CK technique IDs: an exact ID, or a technique that
	// also matches its sub-techniques ("T1070" matches T1070.002).
	Techniques []string
	// Tactics are ATT&CK tactics by short name, ID or name
	// ("defense-evasion", "TA0005", "Defense Evasion").
	Tactics []string
	// Platforms are platform names as tests list them ("linux").
	Platforms []string
	// Tags select tests that have any of these tags.
	Tags []string
	// ExcludeTags leave out tests that have any of these tags ("network",
	// "payload" for imported atomics).
	ExcludeTags []string
	// AllowDestructive lets destructive tests run when they are selected by
	// ID. Destructive tests never run from a broad selection.
	AllowDestructive bool
}

// Select returns the tests that match f, in catalog order.
//
// Destructive tests are handled apart. When f.IDs is empty (a broad
// selection), matching destructive tests are never selected; they are
// returned in skipped so that the caller can say so ("skipped 2 destructive
// tests; select them by ID with --allow-destructive"). When f.IDs is set,
// a matching destructive test is selected if f.AllowDestructive is set, and
// otherwise Select fails with an error that wraps ErrDestructive and names
// the tests.
//
// An unknown test ID, an invalid, unknown, revoked or deprecated technique,
// an unknown tactic or an unknown platform is an error. Selecting nothing is
// not an error.
func (c *Catalog) Select(f Filter) (selected, skipped []*Test, err error) {
	var errs []error
	for _, id := range f.IDs {
		if _, ok := c.Get(id); !ok {
			errs = append(errs, fmt.Errorf("unknown test id %q", id))
		}
	}
	techniques := make([]attack.TechniqueID, 0, len(f.Techniques))
	for _, id := range f.Techniques {
		tech, err := attack.Lookup(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("technique filter: %w", err))
			continue
		}
		techniques = append(techniques, tech.ID)
	}
	tactics := make([]string, 0, len(f.Tactics))
	for _, name := range f.Tactics {
		tac, err := attack.Default().Tactic(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("tactic filter: %w", err))
			continue
		}
		tactics = append(tactics, tac.ShortName)
	}
	for _, p := range f.Platforms {
		if !knownPlatform(p) && platformAliases[p] == "" {
			errs = append(errs, fmt.Errorf("platform filter: unknown platform %q (known: %s, and aws, azure, gcp for iaas:...)", p, strings.Join(knownPlatforms, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("selecting tests: %w", errors.Join(errs...))
	}

	var refused []string
	for _, t := range c.Tests {
		if !f.matches(t, techniques, tactics) {
			continue
		}
		if t.Safety == SafetyDestructive {
			switch {
			case len(f.IDs) == 0:
				skipped = append(skipped, t)
				continue
			case !f.AllowDestructive:
				refused = append(refused, t.ID)
				continue
			}
		}
		selected = append(selected, t)
	}
	if len(refused) > 0 {
		return nil, nil, fmt.Errorf("selecting tests %s: %w", strings.Join(refused, ", "), ErrDestructive)
	}
	return selected, skipped, nil
}

// platformAliases are the cloud providers a filter may name alone
// (--platform aws for the tests of platform iaas:aws).
var platformAliases = map[string]string{"aws": "iaas:aws", "azure": "iaas:azure", "gcp": "iaas:gcp"}

// onPlatform says whether t runs on the filter's platform p: p itself, its
// alias (aws: iaas:aws), or any provider of iaas.
func onPlatform(t *Test, p string) bool {
	return slices.ContainsFunc(t.Platforms, func(tp string) bool {
		return tp == p || tp == platformAliases[p] || p == "iaas" && strings.HasPrefix(tp, "iaas:")
	})
}

func (f Filter) matches(t *Test, techniques []attack.TechniqueID, tactics []string) bool {
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, t.ID) {
		return false
	}
	if len(techniques) > 0 && !slices.ContainsFunc(techniques, func(id attack.TechniqueID) bool { return id.Covers(t.Technique.ID) }) {
		return false
	}
	if len(tactics) > 0 && !slices.ContainsFunc(tactics, func(tac string) bool { return slices.Contains(t.Tactics, tac) }) {
		return false
	}
	if len(f.Platforms) > 0 && !slices.ContainsFunc(f.Platforms, func(p string) bool { return onPlatform(t, p) }) {
		return false
	}
	if len(f.Tags) > 0 && !slices.ContainsFunc(f.Tags, func(tag string) bool { return slices.Contains(t.Tags, tag) }) {
		return false
	}
	if slices.ContainsFunc(f.ExcludeTags, func(tag string) bool { return slices.Contains(t.Tags, tag) }) {
		return false
	}
	return true
}
