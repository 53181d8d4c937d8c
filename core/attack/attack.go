// Package attack holds the MITRE ATT&CK Enterprise vocabulary vigil speaks:
// technique IDs, tactics and the technique table of ATT&CK v18.1, embedded in
// the binary (see data/README.md for provenance and the ATT&CK Terms of Use).
//
// The catalog validates every test's technique against this table when it
// loads, so an unknown, revoked or deprecated technique ID is rejected before
// anything fires.
package attack

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

//go:embed data/enterprise-techniques.json
var tableJSON []byte

// Notice is the copyright notice the ATT&CK Terms of Use require with every copy.
const Notice = "© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation."

// Errors returned by Lookup. They are wrapped with the offending ID.
var (
	// ErrMalformed means the string is not of the form T1234 or T1234.567.
	ErrMalformed = errors.New("not an ATT&CK technique ID (want T1234 or T1234.567)")
	// ErrUnknown means the ID is well formed but not in ATT&CK Enterprise.
	ErrUnknown = errors.New("unknown ATT&CK Enterprise technique")
	// ErrRevoked means MITRE revoked the technique (usually merged into another).
	ErrRevoked = errors.New("revoked ATT&CK technique")
	// ErrDeprecated means MITRE deprecated the technique.
	ErrDeprecated = errors.New("deprecated ATT&CK technique")
)

var idPattern = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)

// TechniqueID is an ATT&CK technique or sub-technique ID such as "T1070.002".
type TechniqueID string

// Validate checks the ID's form only (not that it exists).
func (id TechniqueID) Validate() error {
	if !idPattern.MatchString(string(id)) {
		return fmt.Errorf("%q: %w", string(id), ErrMalformed)
	}
	return nil
}

// Parent returns the parent technique of a sub-technique ("T1070" for
// "T1070.002") and the ID itself for a technique.
func (id TechniqueID) Parent() TechniqueID {
	if i := strings.IndexByte(string(id), '.'); i > 0 {
		return id[:i]
	}
	return id
}

// IsSub reports whether the ID is a sub-technique.
func (id TechniqueID) IsSub() bool { return strings.Contains(string(id), ".") }

// Covers reports whether a signal tagged with id counts as evidence for the
// expected technique: the same ID, or id being the parent technique of
// expected (a rule tagged T1070 covers T1070.002).
func (id TechniqueID) Covers(expected TechniqueID) bool {
	return id == expected || (expected.IsSub() && !id.IsSub() && expected.Parent() == id)
}

// AnyCovers reports whether one of tags (technique IDs as rules and
// signals spell them: any case, spaces around) covers expected.
func AnyCovers(tags []string, expected string) bool {
	want := TechniqueID(strings.ToUpper(strings.TrimSpace(expected)))
	for _, t := range tags {
		if TechniqueID(strings.ToUpper(strings.TrimSpace(t))).Covers(want) {
			return true
		}
	}
	return false
}

// Tactic is an ATT&CK Enterprise tactic, identified by its short name
// ("defense-evasion").
type Tactic struct {
	ID        string `json:"id"`        // TA0005
	ShortName string `json:"shortname"` // defense-evasion
	Name      string `json:"name"`      // Defense Evasion
	Order     int    `json:"-"`         // kill-chain position, 0-based
}

// String returns the tactic's short name.
func (t Tactic) String() string { return t.ShortName }

// Technique is one row of the ATT&CK table.
type Technique struct {
	ID           TechniqueID `json:"id"`
	Name         string      `json:"name"`
	Tactics      []string    `json:"tactics"` // short names, kill-chain order
	Platforms    []string    `json:"platforms"`
	Subtechnique bool        `json:"subtechnique"`
	Deprecated   bool        `json:"deprecated"`
	Revoked      bool        `json:"revoked"`
	RevokedBy    TechniqueID `json:"revoked_by,omitempty"`
}

// FullName is "Parent: Sub" for sub-techniques and the name otherwise, the
// way ATT&CK displays them ("Indicator Removal: Clear Linux or Mac System Logs").
func (t Technique) FullName() string {
	if t.Subtechnique {
		if p, ok := Default().techniques[t.ID.Parent()]; ok {
			return p.Name + ": " + t.Name
		}
	}
	return t.Name
}

// Table is a loaded ATT&CK technique table.
type Table struct {
	Version    string
	Domain     string
	tactics    []Tactic
	tacticIdx  map[string]int
	techniques map[TechniqueID]Technique
}

type tableFile struct {
	Version    string      `json:"attack_version"`
	Domain     string      `json:"domain"`
	Tactics    []Tactic    `json:"tactics"`
	Techniques []Technique `json:"techniques"`
}

// Parse reads a technique table in the compact JSON form shipped in data/.
func Parse(b []byte) (*Table, error) {
	var f tableFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("attack: parse technique table: %w", err)
	}
	t := &Table{
		Version:    f.Version,
		Domain:     f.Domain,
		tactics:    f.Tactics,
		tacticIdx:  make(map[string]int, len(f.Tactics)),
		techniques: make(map[TechniqueID]Technique, len(f.Techniques)),
	}
	for i := range t.tactics {
		t.tactics[i].Order = i
		t.tacticIdx[t.tactics[i].ShortName] = i
		t.tacticIdx[strings.ToLower(t.tactics[i].ID)] = i
		t.tacticIdx[strings.ToLower(t.tactics[i].Name)] = i
	}
	for _, tech := range f.Techniques {
		if err := tech.ID.Validate(); err != nil {
			return nil, fmt.Errorf("attack: technique table: %w", err)
		}
		t.techniques[tech.ID] = tech
	}
	return t, nil
}

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default returns the embedded ATT&CK Enterprise table.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := Parse(tableJSON)
		if err != nil {
			panic(err) // the embedded table is checked by tests
		}
		defaultTable = t
	})
	return defaultTable
}

// Lookup returns a current (not revoked, not deprecated) technique, or an
// error wrapping ErrMalformed, ErrUnknown, ErrRevoked or ErrDeprecated that
// says what to use instead where ATT&CK knows it.
func (t *Table) Lookup(id string) (Technique, error) {
	tid := TechniqueID(strings.ToUpper(strings.TrimSpace(id)))
	if err := tid.Validate(); err != nil {
		return Technique{}, fmt.Errorf("%q: %w", id, ErrMalformed)
	}
	tech, ok := t.techniques[tid]
	switch {
	case !ok:
		return Technique{}, fmt.Errorf("%s: %w (ATT&CK v%s)", tid, ErrUnknown, t.Version)
	case tech.Revoked && tech.RevokedBy != "":
		return Technique{}, fmt.Errorf("%s %q: %w, use %s instead", tid, tech.Name, ErrRevoked, tech.RevokedBy)
	case tech.Revoked:
		return Technique{}, fmt.Errorf("%s %q: %w", tid, tech.Name, ErrRevoked)
	case tech.Deprecated:
		return Technique{}, fmt.Errorf("%s %q: %w", tid, tech.Name, ErrDeprecated)
	}
	return tech, nil
}

// Tactic resolves a tactic by short name ("defense-evasion"), ID ("TA0005")
// or display name ("Defense Evasion"), case-insensitively.
func (t *Table) Tactic(name string) (Tactic, error) {
	i, ok := t.tacticIdx[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Tactic{}, fmt.Errorf("unknown ATT&CK tactic %q", name)
	}
	return t.tactics[i], nil
}

// Tactics returns the Enterprise tactics in kill-chain order.
func (t *Table) Tactics() []Tactic { return append([]Tactic(nil), t.tactics...) }

// Techniques returns every current technique and sub-technique, sorted by ID.
func (t *Table) Techniques() []Technique {
	out := make([]Technique, 0, len(t.techniques))
	for _, tech := range t.techniques {
		if !tech.Revoked && !tech.Deprecated {
			out = append(out, tech)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup looks id up in the embedded table.
func Lookup(id string) (Technique, error) { return Default().Lookup(id) }
