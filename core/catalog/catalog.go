// Package catalog loads vigil's technique catalog: one TOML file per test (a
// procedure of an ATT&CK technique) that says how to perform it through an
// injector plugin and which signals the SIEMs should raise.
//
// Tests come from Sources: the catalog built into the binary (Embedded) and
// extra directories (Dir, for --catalog DIR). Load decodes every file
// strictly, validates it against ATT&CK (core/attack) and reports every
// problem of every file at once, each as "file:line: message". The file
// format is documented in rules/README.md.
//
// Params of inject and cleanup steps are templates; Render fills them in
// (see template.go).
package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/rules"
)

// Safety says what a test does to its target.
type Safety string

// The safety levels, from harmless to harmful.
const (
	// SafetySafe tests change nothing outside the per-injection temporary
	// directory.
	SafetySafe Safety = "safe"
	// SafetyReversible tests change the target and undo the change in cleanup.
	SafetyReversible Safety = "reversible"
	// SafetyDestructive tests change the target in ways cleanup cannot fully
	// undo. They only run when selected by ID with AllowDestructive.
	SafetyDestructive Safety = "destructive"
)

// Limits and defaults of a test's injection timeout.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 10 * time.Minute
)

// Test is one procedure of an ATT&CK technique: how to perform it and what
// the SIEMs should see.
type Test struct {
	// ID is a stable slug, unique across all loaded sources.
	ID string
	// Technique is the ATT&CK technique the test performs (current, neither
	// revoked nor deprecated).
	Technique attack.Technique
	// Tactics are the ATT&CK tactic short names the test demonstrates: the
	// technique's tactics, or the subset the file narrows them to.
	Tactics           []string
	Name, Description string
	// Platforms the test runs on: linux, macos, windows, containers, ...
	Platforms []string
	Safety    Safety
	// Timeout bounds the injection (default 30s, at most 10m).
	Timeout           time.Duration
	ElevationRequired bool
	// SerialGroup, if set, names a resource the test shares with other
	// tests (fixed paths such as /tmp/T1070.004): tests of one group never
	// run at the same time on the same target and host, whatever the
	// run's concurrency (see runner.Options.Concurrency).
	SerialGroup string
	// AtomicGUID is the Atomic Red Team test the test was adapted from, if any.
	AtomicGUID string
	References []string
	Tags       []string
	// Args are the test's named inputs with their defaults (see ArgOverrides).
	Args          map[string]string
	Prerequisites []Prerequisite
	// Inject performs the technique.
	Inject Step
	// Cleanup undoes it, on the same plugin as Inject; nil when the test
	// needs none beyond the injector's own cleanup of its temporary directory.
	Cleanup *Step
	// Expect lists the signals the SIEMs should (or, if Absent, should not)
	// raise. It is never empty: without [[expect]] it holds one expectation
	// of any signal tagged with the test's technique.
	Expect []Expectation
	// Source is the file and the line of the test's id key.
	Source Position
}

// Prerequisite is a condition the injector checks before injecting. Check
// and Get are shell command lines, templated like shell params.
type Prerequisite struct {
	Description string
	Check       string // exit status 0 means the prerequisite is met
	Get         string // optional; run only with --get-prereqs
}

// Step is one call to an injector plugin.
type Step struct {
	Plugin string
	// Params are the plugin's params as written in the file: templates that
	// Render fills in. Never nil.
	Params map[string]any
}

// Expectation is one signal a test should or should not raise.
type Expectation struct {
	// Technique the signal must be tagged with (or with its parent
	// technique; see attack.TechniqueID.Covers). Defaults to the test's.
	Technique attack.TechniqueID
	// Rule is a rule name, matched case-insensitively; RuleID a rule ID.
	// Empty means any rule.
	Rule, RuleID string
	// Query holds native queries keyed by SIEM plugin or SIEM name. Values
	// are templates (placeholders allowed, rendered without shell quoting).
	Query map[string]string
	// Within is the deadline for this expectation; zero means the run's or
	// the SIEM's timeout.
	Within time.Duration
	// Absent inverts the expectation: the signal must NOT be raised (a
	// benign action that catches noisy rules).
	Absent bool
	// SIEMs restricts the expectation to these SIEM names or plugins; empty
	// means every configured SIEM.
	SIEMs []string
	// Source is where the expectation is defined (the [[expect]] header, or
	// the test's id for the default expectation).
	Source Position
}

// Position is a place in a catalog file.
type Position struct {
	File string // source label joined with the file's path
	Line int    // 1-based; 0 when unknown
}

// String returns "file:line", or just the file when the line is unknown.
func (p Position) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Source is a tree of catalog files: every *.toml file under Root in FS,
// recursively. Positions name files as Label joined with their path under
// FS, so Label should say where FS comes from.
type Source struct {
	Label string
	FS    fs.FS
	Root  string
}

// Embedded returns the catalog built into the binary (rules/techniques).
func Embedded() Source {
	return Source{Label: "rules", FS: rules.Techniques, Root: rules.TechniquesRoot}
}

// Dir returns a Source for the catalog files under a directory (--catalog DIR).
func Dir(dir string) Source {
	return Source{Label: dir, FS: os.DirFS(dir), Root: "."}
}

// file returns the name of the file at p in the source, for positions.
func (s Source) file(p string) string {
	return filepath.Join(s.Label, filepath.FromSlash(p))
}

// Catalog is a set of loaded tests, sorted by technique ID, then test ID.
type Catalog struct {
	Tests []*Test
}

// Load reads and validates the tests of every source. It reports
// all problems it finds, in every file, as one error whose lines each read
// "file:line: message"; the catalog is then nil.
func Load(sources ...Source) (*Catalog, error) {
	var (
		tests []*Test
		errs  []error
	)
	for _, src := range sources {
		t, e := loadSource(src)
		tests = append(tests, t...)
		errs = append(errs, e...)
	}
	seen := make(map[string]*Test, len(tests))
	for _, t := range tests {
		if first, dup := seen[t.ID]; dup {
			errs = append(errs, &fileError{pos: t.Source, msg: fmt.Sprintf("id: duplicate test id %q, also defined at %s", t.ID, first.Source)})
			continue
		}
		seen[t.ID] = t
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(tests, func(i, j int) bool {
		if tests[i].Technique.ID != tests[j].Technique.ID {
			return tests[i].Technique.ID < tests[j].Technique.ID
		}
		return tests[i].ID < tests[j].ID
	})
	return &Catalog{Tests: tests}, nil
}

// fileError is a problem found outside a single file's decoding.
type fileError struct {
	pos Position
	msg string
}

func (e *fileError) Error() string { return e.pos.String() + ": " + e.msg }

// loadSource parses every *.toml file of src, in lexical order.
func loadSource(src Source) ([]*Test, []error) {
	root := src.Root
	if root == "" {
		root = "."
	}
	if src.FS == nil {
		return nil, []error{fmt.Errorf("catalog source %q: no file system", src.Label)}
	}
	var (
		tests []*Test
		errs  []error
	)
	err := fs.WalkDir(src.FS, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".toml") {
			return nil
		}
		data, err := fs.ReadFile(src.FS, p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", src.file(p), err)
		}
		t, perr := parseTest(src.file(p), path.Base(p), data)
		if perr != nil {
			errs = append(errs, perr...)
			return nil
		}
		tests = append(tests, t)
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == root {
			err = pe.Err // "stat .: ..." says nothing more than the label
		}
		errs = append(errs, fmt.Errorf("loading catalog %s: %w", src.Label, err))
	}
	return tests, errs
}

// Get returns the test with the given ID.
func (c *Catalog) Get(id string) (*Test, bool) {
	for _, t := range c.Tests {
		if t.ID == id {
			return t, true
		}
	}
	return nil, false
}
