package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
)

// Navigator layer constants (ATT&CK Navigator layer format 4.5).
const (
	// LayerFormatVersion is the layer file format written.
	LayerFormatVersion = "4.5"
	// NavigatorVersion is the Navigator release the layers target (layer
	// format 4.5 needs at least 4.9.0; 5.x opens ATT&CK v18).
	NavigatorVersion = "5.2.0"
	// LayerDomain is the ATT&CK domain of vigil's layers.
	LayerDomain = "enterprise-attack"
)

// Colours of the layers' gradient and legend, shared with the HTML report.
const (
	colorNone    = "#e5534b" // no test detected
	colorPartial = "#f2cc60" // some tests detected
	colorAll     = "#57ab5a" // every test detected
	colorUntried = "#c8c8c8" // nothing measured: errors, skips, negative tests only
)

// Layer is an ATT&CK Navigator layer (format 4.5). Only the properties
// vigil sets are modelled.
type Layer struct {
	Name                          string           `json:"name"`
	Versions                      LayerVersions    `json:"versions"`
	Domain                        string           `json:"domain"`
	Description                   string           `json:"description"`
	Sorting                       int              `json:"sorting"`
	Layout                        LayerLayout      `json:"layout"`
	HideDisabled                  bool             `json:"hideDisabled"`
	Techniques                    []LayerTechnique `json:"techniques"`
	Gradient                      LayerGradient    `json:"gradient"`
	LegendItems                   []LegendItem     `json:"legendItems"`
	ShowTacticRowBackground       bool             `json:"showTacticRowBackground"`
	TacticRowBackground           string           `json:"tacticRowBackground"`
	SelectTechniquesAcrossTactics bool             `json:"selectTechniquesAcrossTactics"`
	SelectSubtechniquesWithParent bool             `json:"selectSubtechniquesWithParent"`
	SelectVisibleTechniques       bool             `json:"selectVisibleTechniques"`
	Metadata                      []LayerMetadata  `json:"metadata"`
}

// LayerVersions is the layer's Version object.
type LayerVersions struct {
	Attack    string `json:"attack"`
	Navigator string `json:"navigator"`
	Layer     string `json:"layer"`
}

// LayerLayout is the layer's Layout object.
type LayerLayout struct {
	Layout                string `json:"layout"`
	ShowID                bool   `json:"showID"`
	ShowName              bool   `json:"showName"`
	ShowAggregateScores   bool   `json:"showAggregateScores"`
	CountUnscored         bool   `json:"countUnscored"`
	AggregateFunction     string `json:"aggregateFunction"`
	ExpandedSubtechniques string `json:"expandedSubtechniques"`
}

// LayerTechnique is a Technique object: one technique or sub-technique.
// Without a tactic it annotates the technique under every tactic it
// belongs to.
type LayerTechnique struct {
	TechniqueID       string          `json:"techniqueID"`
	Score             *float64        `json:"score,omitempty"`
	Color             string          `json:"color,omitempty"`
	Comment           string          `json:"comment,omitempty"`
	Enabled           bool            `json:"enabled"`
	Metadata          []LayerMetadata `json:"metadata,omitempty"`
	ShowSubtechniques bool            `json:"showSubtechniques,omitempty"`
}

// LayerGradient is the Gradient object: scores minValue..maxValue map onto
// the colours.
type LayerGradient struct {
	Colors   []string `json:"colors"`
	MinValue float64  `json:"minValue"`
	MaxValue float64  `json:"maxValue"`
}

// LegendItem is a LegendItem object.
type LegendItem struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

// LayerMetadata is a Metadata object (name and value) or a Divider object.
type LayerMetadata struct {
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
	Divider bool   `json:"divider,omitempty"`
}

// CombinedLayer is the layer of every SIEM together: a technique's score
// is the share of its tests (test on a target) detected by at least one
// SIEM.
func CombinedLayer(run *measure.Run) Layer {
	return buildLayer(run, AllSIEMs, CombinedResults(run))
}

// SIEMLayers returns one layer per SIEM, keyed by SIEM name.
func SIEMLayers(run *measure.Run) map[string]Layer {
	by := map[string][]measure.Result{}
	for _, r := range run.Results {
		by[r.SIEM] = append(by[r.SIEM], r)
	}
	out := make(map[string]Layer, len(by))
	for siem, rs := range by {
		out[siem] = buildLayer(run, siem, rs)
	}
	return out
}

func attackMajor() string {
	v := attack.Default().Version
	if i := strings.IndexByte(v, '.'); i > 0 {
		return v[:i]
	}
	return v
}

func buildLayer(run *measure.Run, siem string, results []measure.Result) Layer {
	sum := measure.Summarise(results).Counts
	l := Layer{
		Name:     fmt.Sprintf("vigil %s %s", siem, run.RunID),
		Versions: LayerVersions{Attack: attackMajor(), Navigator: NavigatorVersion, Layer: LayerFormatVersion},
		Domain:   LayerDomain,
		Description: fmt.Sprintf("Detection coverage measured by vigil in %s (run %s): score = share of the technique's tests detected, %s overall; comment = tests and median detection latency.",
			siem, run.RunID, Percent(sum.Coverage)),
		Sorting: 3,
		Layout: LayerLayout{Layout: "side", ShowID: true, ShowName: true, AggregateFunction: "average",
			ExpandedSubtechniques: "annotated"},
		Gradient: LayerGradient{Colors: []string{colorNone, colorPartial, colorAll}, MinValue: 0, MaxValue: 100},
		LegendItems: []LegendItem{
			{Label: "every test detected (100)", Color: colorAll},
			{Label: "some tests detected", Color: colorPartial},
			{Label: "no test detected (0)", Color: colorNone},
			{Label: "not measured (error, skipped or negative tests only)", Color: colorUntried},
		},
		TacticRowBackground:           "#dddddd",
		SelectTechniquesAcrossTactics: true,
		SelectSubtechniquesWithParent: false,
		Metadata: []LayerMetadata{
			{Name: "run_id", Value: run.RunID},
			{Name: "siem", Value: siem},
			{Name: "vigil_version", Value: nonEmpty(run.Vigil, "unknown")},
			{Name: "started_at", Value: run.StartedAt.UTC().Format("2006-01-02T15:04:05Z")},
			{Divider: true},
			{Name: "tests", Value: fmt.Sprint(sum.Total)},
			{Name: "coverage", Value: Percent(sum.Coverage)},
			{Name: "latency_p50", Value: optMS(sum.LatencyMedianMS)},
			{Name: "latency_p95", Value: optMS(sum.LatencyP95MS)},
		},
	}
	if ic := run.IntegrityCheck; ic != nil {
		l.Metadata = append(l.Metadata, LayerMetadata{Divider: true},
			LayerMetadata{Name: "host_changed", Value: fmt.Sprintf("%d change(s) left on %s", len(run.HostChanged), ic.Host)})
	}
	stats := ByTechnique(results)
	scored := map[string]bool{}
	for _, t := range stats {
		scored[t.ID] = true
	}
	parents := map[string]bool{}
	for _, t := range stats {
		lt := LayerTechnique{TechniqueID: t.ID, Enabled: true, Comment: layerComment(t)}
		if score, ok := t.Score(); ok {
			v := math.Round(score * 100)
			lt.Score = &v
		} else {
			lt.Color = colorUntried
		}
		for _, r := range t.Results {
			lt.Metadata = append(lt.Metadata, LayerMetadata{Name: r.TestID, Value: resultLine(r, siem == AllSIEMs)})
		}
		id := attack.TechniqueID(t.ID)
		if id.IsSub() {
			parents[string(id.Parent())] = true
		}
		l.Techniques = append(l.Techniques, lt)
	}
	for i := range l.Techniques {
		if parents[l.Techniques[i].TechniqueID] {
			l.Techniques[i].ShowSubtechniques = true
		}
	}
	for _, p := range sortedKeys(parents) {
		if !scored[p] {
			// An unscored parent entry only unfolds its tested sub-techniques.
			l.Techniques = append(l.Techniques, LayerTechnique{TechniqueID: p, Enabled: true, ShowSubtechniques: true})
		}
	}
	return l
}

// layerComment is "2 tests: 1 detected, 1 missed; median latency 47ms".
func layerComment(t TechniqueStats) string {
	c := t.Counts
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Detected, "detected"}, {c.Missed, "missed"}, {c.Error, "error"}, {c.Skipped, "skipped"}, {c.Quiet, "quiet"}, {c.Noisy, "noisy"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	s := fmt.Sprintf("%d %s: %s", c.Total, plural(c.Total, "test", "tests"), strings.Join(parts, ", "))
	if c.LatencyMedianMS != nil {
		s += "; median latency " + FormatMS(*c.LatencyMedianMS)
	}
	return s
}

// resultLine is "detected in 47ms by Rule name (localhost)".
func resultLine(r measure.Result, combined bool) string {
	s := string(r.Status)
	if r.LatencyMS != nil {
		s += " in " + FormatMS(*r.LatencyMS)
	}
	if !combined {
		if d := oneLine(detail(r)); d != "" {
			s += ": " + truncate(d, 160)
		}
	}
	return s + " (target " + r.Target + ")"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
