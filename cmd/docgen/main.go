// Command docgen writes vigil's technique documentation from the built-in
// catalog, as Stratus Red Team does from its registry: one page per test
// (docs/techniques/<platform>/<id>.md), an index (docs/techniques/README.md)
// and an ATT&CK coverage matrix (docs/coverage-matrix.md). Each page lists
// the local SIEM's default rules that fire on the test's recorded telemetry
// (rules/telemetry), replayed through the detection engine here, offline.
//
//	go run ./cmd/docgen -out docs          # make docs
//	go run ./cmd/docgen -out docs -check   # make lint: fail on stale docs
//
// The pages are generated: edit the catalog, the rules or the recordings
// and run make docs, never the pages themselves.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "github.com/vigilsec/vigil/plugins" // the built-in plugins describe themselves (cleanup by marker)
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("docgen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("out", "docs", "the docs directory to write (or check)")
	check := fl.Bool("check", false, "write nothing; fail when a generated file is missing, differs or is left over")
	if err := fl.Parse(args); err != nil {
		return err
	}
	site, err := build()
	if err != nil {
		return err
	}
	if *check {
		stale, err := compare(*out, site)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("%d generated docs are stale (run make docs and commit the result):\n  %s", len(stale), strings.Join(stale, "\n  "))
		}
		fmt.Fprintf(stdout, "docgen: %d files under %s are up to date\n", len(site), *out)
		return nil
	}
	if err := write(*out, site); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "docgen: wrote %d files under %s\n", len(site), *out)
	return nil
}

// generatedDirs are the directories of the docs that docgen owns: every
// .md file below them is generated, so one that docgen no longer writes is
// stale and removed.
var generatedDirs = []string{"techniques"}

// write writes the site below dir and removes the generated pages it no
// longer has (a test that was renamed or removed).
func write(dir string, site map[string][]byte) error {
	old, err := owned(dir)
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, ok := site[p]; !ok {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return fmt.Errorf("remove stale %s: %w", p, err)
			}
		}
	}
	for _, p := range sortedKeys(site) {
		f := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.WriteFile(f, site[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// compare lists the files of site that are missing below dir or differ,
// and the generated pages below dir that site does not have.
func compare(dir string, site map[string][]byte) ([]string, error) {
	var stale []string
	for _, p := range sortedKeys(site) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stale = append(stale, p+": missing")
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", p, err)
		case !bytes.Equal(b, site[p]):
			stale = append(stale, p+": differs")
		}
	}
	old, err := owned(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range old {
		if _, ok := site[p]; !ok {
			stale = append(stale, p+": no longer generated")
		}
	}
	return stale, nil
}

// owned lists the .md files below the generated directories of dir,
// slash-separated and relative to dir.
func owned(dir string) ([]string, error) {
	var out []string
	for _, g := range generatedDirs {
		root := filepath.Join(dir, g)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipDir
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", root, err)
		}
	}
	return out, nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
