// Package atomic converts Atomic Red Team atomics into vigil catalog tests.
//
// A checkout of redcanaryco/atomic-red-team holds one YAML file per ATT&CK
// technique, atomics/<TID>/<TID>.yaml, each listing atomic tests. Import
// reads them all and turns every atomic test vigil can run (a linux
// platform and an `sh` or `bash` executor, which the exec and ssh
// injectors run) into a catalog file for the exec injector; every other
// atomic test is skipped with its file, line and reason. One bad file or
// atomic never stops the others.
//
// The conversion keeps Atomic Red Team's semantics:
//
//   - input_arguments become the test's args, with their defaults, and
//     #{name} becomes the raw placeholder {{args.name | raw}}: atomics
//     substitute arguments as text before the shell parses the command (an
//     argument may hold several words, ~ or $HOME), so vigil does not
//     shell-quote them. --arg NAME=VALUE overrides them.
//   - dependencies become prerequisites (prereq_command is the check,
//     get_prereq_command the get, run only with --get-prereqs), run by bash
//     when dependency_executor_name (or the executor) says so.
//   - cleanup_command becomes the cleanup step; elevation_required is kept
//     (the exec injector reports it unmet when not root, and the test is
//     skipped).
//   - PathToAtomicsFolder, $PathToAtomicsFolder and PathToPayloads become the
//     absolute path of the checkout's atomics directory.
//
// Every test gets the serial group "atomic-red-team/<technique>": the
// atomics of one technique often share fixed paths, and the runner never
// runs two tests of a group at once on one host.
//
// Each test gets a safety level from a conservative heuristic (see
// classify) and tags: "atomic-red-team", "payload" when it needs files of
// the checkout, "network" when it downloads or installs something.
//
// Generated files load through catalog.Load, so validation and its
// messages are the catalog's own; Result.Source serves them to a run
// without writing them anywhere.
package atomic

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/core/attack"
)

// The reasons an atomic test is skipped, as Skip.Reason: short and fixed,
// so that a report can count them.
const (
	ReasonPlatform  = "no linux platform"
	ReasonExecutor  = "unsupported executor"
	ReasonTechnique = "unknown technique"
	ReasonMalformed = "malformed atomic"
	ReasonInvalid   = "invalid after conversion"
)

// Options narrow an import.
type Options struct {
	// Techniques keeps only the atomics of these techniques; a technique
	// also matches its sub-techniques ("T1070" matches T1070.004).
	Techniques []string
}

// Result is what an import produced.
type Result struct {
	// AtomicsDir is the absolute path of the atomics directory
	// (PathToAtomicsFolder).
	AtomicsDir string
	// Files is how many atomics files were read.
	Files int
	// Tests are the converted tests, in file order.
	Tests []*Test
	// Skipped are the atomic tests (or whole files) that were not converted,
	// in file order.
	Skipped []Skip
}

// Origin is where an atomic test comes from.
type Origin struct {
	File   string // the YAML file, as DIR joined with its path under DIR
	Line   int    // the line of the atomic test (or of the problem)
	Number int    // 1-based index in atomic_tests, Atomic Red Team's test number; 0 for a whole file
}

// String is "file:line".
func (o Origin) String() string {
	if o.Line <= 0 {
		return o.File
	}
	return o.File + ":" + strconv.Itoa(o.Line)
}

// Test is one converted atomic test.
type Test struct {
	ID        string
	Technique attack.TechniqueID
	Name      string
	GUID      string
	// Path is where the catalog file goes: linux/<tactic>/<ID>.toml.
	Path   string
	TOML   []byte
	Origin Origin
	Safety string
	Tags   []string
	// SerialGroup is "atomic-red-team/<technique>" (see SerialGroupPrefix).
	SerialGroup string
}

// Skip is an atomic test, or a whole file, that was not converted.
type Skip struct {
	Origin Origin
	// Technique is the file's attack_technique, if it could be read.
	Technique string
	// Name is the atomic test's name ("" for a whole file).
	Name string
	// Reason is one of the Reason constants; Detail says more.
	Reason, Detail string
}

// String is "file:line: T1234 #3 "name": reason: detail".
func (s Skip) String() string {
	var b strings.Builder
	b.WriteString(s.Origin.String())
	b.WriteString(": ")
	if s.Technique != "" {
		b.WriteString(s.Technique)
		if s.Origin.Number > 0 {
			fmt.Fprintf(&b, " #%d", s.Origin.Number)
		}
		b.WriteString(" ")
	}
	if s.Name != "" {
		fmt.Fprintf(&b, "%q ", s.Name)
	}
	b.WriteString(s.Reason)
	if s.Detail != "" {
		b.WriteString(": " + s.Detail)
	}
	return b.String()
}

// SkippedByReason counts the skipped atomic tests per reason.
func (r *Result) SkippedByReason() map[string]int {
	out := map[string]int{}
	for _, s := range r.Skipped {
		out[s.Reason]++
	}
	return out
}

// techniqueDirRE matches the directories of atomics/.
var techniqueDirRE = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)

// AtomicsDir returns the atomics directory of dir: dir/atomics when it
// exists (a checkout), else dir itself (the atomics directory).
func AtomicsDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("atomics: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(abs, "atomics")); err == nil && fi.IsDir() {
		return filepath.Join(abs, "atomics"), nil
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("atomics: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("atomics: %s is not a directory", dir)
	}
	return abs, nil
}

// Import reads every atomics/<TID>/<TID>.yaml of the checkout (or atomics
// directory) dir and converts its atomic tests. Problems of files and
// atomics are in Result.Skipped; the error is for a directory that cannot
// be read or a bad option.
func Import(dir string, opts Options) (*Result, error) {
	var filter []attack.TechniqueID
	for _, t := range opts.Techniques {
		id := attack.TechniqueID(strings.ToUpper(strings.TrimSpace(t)))
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("atomics: technique filter %q: %w", t, err)
		}
		filter = append(filter, id)
	}
	atomicsDir, err := AtomicsDir(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(atomicsDir)
	if err != nil {
		return nil, fmt.Errorf("atomics: %w", err)
	}
	// Positions name files under the directory as the user gave it.
	label := dir
	if atomicsDir != filepath.Clean(mustAbs(dir)) {
		label = filepath.Join(dir, "atomics")
	}
	res := &Result{AtomicsDir: atomicsDir}
	ids := map[string]Origin{}
	for _, e := range entries {
		if !e.IsDir() || !techniqueDirRE.MatchString(e.Name()) {
			continue
		}
		tid := attack.TechniqueID(e.Name())
		if len(filter) > 0 && !matchesAny(filter, tid) {
			continue
		}
		rel := filepath.Join(e.Name(), e.Name()+".yaml")
		data, err := os.ReadFile(filepath.Join(atomicsDir, rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		file := filepath.Join(label, rel)
		if err != nil {
			res.Skipped = append(res.Skipped, Skip{Origin: Origin{File: file}, Technique: string(tid), Reason: ReasonMalformed, Detail: err.Error()})
			continue
		}
		res.Files++
		tests, skips := convertFile(file, data, atomicsDir)
		for _, t := range tests {
			if first, dup := ids[t.ID]; dup {
				skips = append(skips, Skip{Origin: t.Origin, Technique: string(t.Technique), Name: t.Name, Reason: ReasonInvalid,
					Detail: fmt.Sprintf("test id %s is also the id of %s (duplicate auto_generated_guid?)", t.ID, first)})
				continue
			}
			ids[t.ID] = t.Origin
			res.Tests = append(res.Tests, t)
		}
		res.Skipped = append(res.Skipped, skips...)
	}
	sort.SliceStable(res.Skipped, func(i, j int) bool {
		a, b := res.Skipped[i].Origin, res.Skipped[j].Origin
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return res, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func matchesAny(filter []attack.TechniqueID, id attack.TechniqueID) bool {
	for _, f := range filter {
		if f.Covers(id) {
			return true
		}
	}
	return false
}

// atomicFile is the top of an atomics YAML file.
type atomicFile struct {
	AttackTechnique string      `yaml:"attack_technique"`
	DisplayName     string      `yaml:"display_name"`
	AtomicTests     []yaml.Node `yaml:"atomic_tests"`
}

// atomicTest is one entry of atomic_tests.
type atomicTest struct {
	Name                   string              `yaml:"name"`
	GUID                   string              `yaml:"auto_generated_guid"`
	Description            string              `yaml:"description"`
	SupportedPlatforms     []string            `yaml:"supported_platforms"`
	InputArguments         map[string]inputArg `yaml:"input_arguments"`
	DependencyExecutorName string              `yaml:"dependency_executor_name"`
	Dependencies           []dependency        `yaml:"dependencies"`
	Executor               executor            `yaml:"executor"`
}

type inputArg struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	Default     any    `yaml:"default"`
}

type dependency struct {
	Description      string `yaml:"description"`
	PrereqCommand    string `yaml:"prereq_command"`
	GetPrereqCommand string `yaml:"get_prereq_command"`
}

type executor struct {
	Name              string `yaml:"name"`
	Command           string `yaml:"command"`
	CleanupCommand    string `yaml:"cleanup_command"`
	ElevationRequired bool   `yaml:"elevation_required"`
	Steps             string `yaml:"steps"`
}

// yamlLineRE finds the line in yaml.v3's error messages;
// yamlLinePrefixRE removes it (positions say it).
var (
	yamlLineRE       = regexp.MustCompile(`line (\d+)`)
	yamlLinePrefixRE = regexp.MustCompile(`^line \d+: `)
)

// yamlErrLine returns the first line number an error of yaml.v3 names, or
// fallback.
func yamlErrLine(err error, fallback int) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil {
			return n
		}
	}
	return fallback
}

// yamlErrText shortens yaml.v3's messages to one line.
func yamlErrText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n")
	s = strings.Join(strings.Fields(s), " ")
	return yamlLinePrefixRE.ReplaceAllString(s, "")
}

// keyLine returns the line of the last of keys in the mapping n,
// following nested keys, or 0.
func keyLine(n *yaml.Node, keys ...string) int {
	line := 0
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next, line = n.Content[i+1], n.Content[i].Line
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}

// convertFile converts the atomic tests of one YAML file.
func convertFile(file string, data []byte, atomicsDir string) ([]*Test, []Skip) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []Skip{{Origin: Origin{File: file, Line: yamlErrLine(err, 0)}, Reason: ReasonMalformed, Detail: yamlErrText(err)}}
	}
	if len(doc.Content) == 0 {
		return nil, []Skip{{Origin: Origin{File: file}, Reason: ReasonMalformed, Detail: "empty file"}}
	}
	root := doc.Content[0]
	var af atomicFile
	if err := root.Decode(&af); err != nil {
		return nil, []Skip{{Origin: Origin{File: file, Line: yamlErrLine(err, root.Line)}, Reason: ReasonMalformed, Detail: yamlErrText(err)}}
	}
	tid := strings.TrimSpace(af.AttackTechnique)
	if tid == "" {
		return nil, []Skip{{Origin: Origin{File: file, Line: root.Line}, Reason: ReasonMalformed, Detail: "no attack_technique"}}
	}
	if len(af.AtomicTests) == 0 {
		return nil, []Skip{{Origin: Origin{File: file, Line: root.Line}, Technique: tid, Reason: ReasonMalformed, Detail: "no atomic_tests"}}
	}
	tech, techErr := attack.Lookup(tid)
	var (
		tests []*Test
		skips []Skip
	)
	for i := range af.AtomicTests {
		n := &af.AtomicTests[i]
		origin := Origin{File: file, Line: n.Line, Number: i + 1}
		var at atomicTest
		if err := n.Decode(&at); err != nil {
			origin.Line = yamlErrLine(err, n.Line)
			skips = append(skips, Skip{Origin: origin, Technique: tid, Reason: ReasonMalformed, Detail: yamlErrText(err)})
			continue
		}
		skip := func(reason, detail string, line int) {
			o := origin
			if line > 0 {
				o.Line = line
			}
			skips = append(skips, Skip{Origin: o, Technique: tid, Name: at.Name, Reason: reason, Detail: detail})
		}
		if !hasLinux(at.SupportedPlatforms) {
			skip(ReasonPlatform, "supported_platforms: "+strings.Join(at.SupportedPlatforms, ", "), 0)
			continue
		}
		shell, ok := shells[strings.ToLower(at.Executor.Name)]
		if !ok {
			detail := fmt.Sprintf("executor %q (vigil runs sh and bash)", at.Executor.Name)
			if strings.EqualFold(at.Executor.Name, "manual") {
				detail = "executor \"manual\": steps for a person, nothing to run"
			}
			skip(ReasonExecutor, detail, keyLine(n, "executor", "name"))
			continue
		}
		if techErr != nil {
			skip(ReasonTechnique, "attack_technique "+techErr.Error(), 0)
			continue
		}
		t, err := convert(at, tech, shell, atomicsDir, origin, file)
		if err != nil {
			var pe *problem
			line := 0
			if errors.As(err, &pe) {
				line = keyLine(n, pe.keys...)
			}
			reason := ReasonInvalid
			if pe != nil && pe.reason != "" {
				reason = pe.reason
			}
			skip(reason, err.Error(), line)
			continue
		}
		tests = append(tests, t)
	}
	return tests, skips
}

// problem is a conversion problem at a key of the atomic test.
type problem struct {
	keys   []string
	reason string
	msg    string
}

func (p *problem) Error() string { return p.msg }

func hasLinux(ps []string) bool {
	for _, p := range ps {
		if strings.EqualFold(strings.TrimSpace(p), "linux") {
			return true
		}
	}
	return false
}

// shells are the executors vigil runs, with the shell the exec injector
// runs them with.
var shells = map[string]string{"sh": "/bin/sh", "bash": "/bin/bash"}
