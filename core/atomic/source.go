package atomic

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/vigilsec/vigil/core/catalog"
)

// sourceLabel prefixes the positions of the converted files in a catalog
// loaded from Source; Relocate turns them back into the atomics' files.
const sourceLabel = "atomics:"

// Source serves the converted tests as a catalog source, without writing
// them: pass it to catalog.Load, then call Relocate on the catalog.
func (r *Result) Source() catalog.Source {
	fsys := fstest.MapFS{}
	for _, t := range r.Tests {
		fsys[t.Path] = &fstest.MapFile{Data: t.TOML, Mode: 0o644}
	}
	return catalog.Source{Label: sourceLabel + r.AtomicsDir, FS: fsys, Root: "."}
}

// Relocate makes the positions of the tests that came from Source name the
// atomic test they were converted from (its YAML file and line) instead of
// the converted file.
func (r *Result) Relocate(c *catalog.Catalog) {
	byFile := make(map[string]Origin, len(r.Tests))
	for _, t := range r.Tests {
		byFile[filepath.Join(sourceLabel+r.AtomicsDir, filepath.FromSlash(t.Path))] = t.Origin
	}
	for _, t := range c.Tests {
		o, ok := byFile[t.Source.File]
		if !ok {
			continue
		}
		pos := catalog.Position{File: o.File, Line: o.Line}
		t.Source = pos
		for i := range t.Expect {
			t.Expect[i].Source = pos
		}
	}
}

// Write writes the converted tests under dir, as dir/linux/<tactic>/<id>.toml,
// and returns the files written. Existing files of the same names are
// replaced; nothing else is removed.
func (r *Result) Write(dir string) ([]string, error) {
	var written []string
	for _, t := range r.Tests {
		p := filepath.Join(dir, filepath.FromSlash(t.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, fmt.Errorf("writing %s: %w", p, err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, t.TOML, 0o644); err != nil {
			return written, fmt.Errorf("writing %s: %w", p, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return written, fmt.Errorf("writing %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// Summary counts the imported and skipped atomic tests, by reason.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "atomics: %s: %d files, %d atomic tests: imported %d, skipped %d\n",
		r.AtomicsDir, r.Files, len(r.Tests)+len(r.Skipped), len(r.Tests), len(r.Skipped))
	counts := r.SkippedByReason()
	for _, reason := range []string{ReasonPlatform, ReasonExecutor, ReasonTechnique, ReasonMalformed, ReasonInvalid} {
		if n := counts[reason]; n > 0 {
			fmt.Fprintf(&b, "  skipped %4d  %s\n", n, reason)
		}
	}
	return b.String()
}

// Details lists the skipped atomic tests, one a line, as "file:line:
// technique #n "name": reason: detail". Those skipped for having no linux
// platform (hundreds of Windows and macOS tests) are left out unless all.
func (r *Result) Details(all bool) string {
	var b strings.Builder
	for _, s := range r.Skipped {
		if s.Reason == ReasonPlatform && !all {
			continue
		}
		fmt.Fprintf(&b, "skipped: %s\n", s)
	}
	return b.String()
}
