// Package report derives vigil's report formats from a run's results
// (results.json, schema vigil/results/v1, the single source of every
// report): ATT&CK Navigator layers (layer format 4.5), JUnit XML, one
// self-contained HTML page, a Markdown summary and CSV. It also computes
// what reports share: per-technique coverage, latency budget breaches, the
// side-by-side comparison of SIEMs and the differences between two runs.
//
// Every function here is pure: the same run gives the same bytes, so the
// formats are checked against golden files (go test ./core/report -update).
package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core/measure"
)

// Format is one report format.
type Format string

// The report formats.
const (
	// Navigator is ATT&CK Navigator layers (layer format 4.5): one combined
	// layer (navigator.json) and one per SIEM (navigator-<siem>.json).
	Navigator Format = "navigator"
	// JUnit is JUnit XML (junit.xml): one testsuite per SIEM, one testcase
	// per test.
	JUnit Format = "junit"
	// HTML is one self-contained page (report.html) that fetches nothing.
	HTML Format = "html"
	// Markdown is a summary (summary.md) fit for a pull request comment or
	// $GITHUB_STEP_SUMMARY.
	Markdown Format = "markdown"
	// CSV is one row per result (results.csv).
	CSV Format = "csv"
)

// All lists every format, in the order they are written.
var All = []Format{Navigator, JUnit, HTML, Markdown, CSV}

// ErrUnknownFormat is returned by ParseFormats for a name it does not know.
var ErrUnknownFormat = errors.New("unknown report format")

// FileName is the file a format is written to (the combined layer for
// Navigator).
func (f Format) FileName() string {
	switch f {
	case Navigator:
		return "navigator.json"
	case JUnit:
		return "junit.xml"
	case HTML:
		return "report.html"
	case Markdown:
		return "summary.md"
	case CSV:
		return "results.csv"
	}
	return ""
}

// ParseFormats reads --format values: names separated by commas, each value
// possibly repeated, "all" for every format. The result has no duplicates
// and follows the order of All.
func ParseFormats(values []string) ([]Format, error) {
	want := map[Format]bool{}
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			switch name {
			case "":
				continue
			case "all":
				for _, f := range All {
					want[f] = true
				}
				continue
			case "md":
				name = string(Markdown)
			case "xml":
				name = string(JUnit)
			case "layer", "attack-navigator":
				name = string(Navigator)
			}
			f := Format(name)
			if f.FileName() == "" {
				return nil, fmt.Errorf("%w %q (known: %s, all)", ErrUnknownFormat, name, formatNames())
			}
			want[f] = true
		}
	}
	var out []Format
	for _, f := range All {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

func formatNames() string {
	s := make([]string, len(All))
	for i, f := range All {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// Render writes one format of run to w. For Navigator it writes the
// combined layer; WriteDir also writes the per-SIEM layers.
func Render(w io.Writer, run *measure.Run, f Format) error {
	switch f {
	case Navigator:
		return writeJSON(w, CombinedLayer(run))
	case JUnit:
		return WriteJUnit(w, run)
	case HTML:
		return WriteHTML(w, run)
	case Markdown:
		return WriteMarkdown(w, run)
	case CSV:
		return WriteCSV(w, run)
	}
	return fmt.Errorf("%w %q", ErrUnknownFormat, f)
}

// WriteDir writes the formats of run into dir (created if needed) and
// returns the paths written, in order. Each file is written atomically.
func WriteDir(dir string, run *measure.Run, formats []Format) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create report directory: %w", err)
	}
	var paths []string
	write := func(name string, render func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := render(&buf); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		p := filepath.Join(dir, name)
		if err := writeFileAtomic(p, buf.Bytes()); err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	}
	for _, f := range formats {
		if err := write(f.FileName(), func(w io.Writer) error { return Render(w, run, f) }); err != nil {
			return paths, err
		}
		if f != Navigator {
			continue
		}
		layers := SIEMLayers(run)
		for _, siem := range sortedKeys(layers) {
			l := layers[siem]
			if err := write(SIEMLayerFileName(siem), func(w io.Writer) error { return writeJSON(w, l) }); err != nil {
				return paths, err
			}
		}
	}
	return paths, nil
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SIEMLayerFileName is the file name of a SIEM's Navigator layer.
func SIEMLayerFileName(siem string) string {
	return "navigator-" + strings.Trim(unsafeFileChars.ReplaceAllString(siem, "_"), "._") + ".json"
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
