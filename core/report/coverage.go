package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/coverage"
)

// Colours of the claimed-versus-proven classes (Navigator layers and
// legends): one distinct colour per class.
var coverageColors = map[coverage.Class]string{
	coverage.ClaimedProven:    colorAll,  // green
	coverage.ClaimedNotProven: colorNone, // red: the rules' claim failed the test
	coverage.ProvenUnclaimed:  "#6cb6ff", // blue
	coverage.ClaimedUntested:  colorPartial,
	coverage.MissedUnclaimed:  "#f69d50", // orange
	coverage.Proven:           "#8ddb8c", // light green
	coverage.Missed:           "#ff938a", // light red
	coverage.NoTest:           "#e6e6e6", // light grey
}

// CoverageColor is the colour of a class in layers and legends.
func CoverageColor(c coverage.Class) string { return coverageColors[c] }

// coverageClasses are the classes a SIEM's report can hold.
func coverageClasses(s coverage.SIEM) []coverage.Class {
	if s.ClaimsKnown {
		return []coverage.Class{coverage.ClaimedProven, coverage.ClaimedNotProven, coverage.ProvenUnclaimed,
			coverage.ClaimedUntested, coverage.MissedUnclaimed, coverage.NoTest}
	}
	return []coverage.Class{coverage.Proven, coverage.Missed, coverage.NoTest}
}

// coverageHeads are the text table's column heads.
var coverageHeads = map[coverage.Class]string{
	coverage.ClaimedProven: "CLAIMED+PROVEN", coverage.ClaimedNotProven: "NEVER PROVEN", coverage.ProvenUnclaimed: "PROVEN UNCLAIMED",
	coverage.ClaimedUntested: "CLAIMED UNTESTED", coverage.MissedUnclaimed: "MISSED UNCLAIMED", coverage.Proven: "PROVEN",
	coverage.Missed: "MISSED", coverage.NoTest: "NO TEST",
}

// WriteCoverage prints claimed versus proven coverage as text: per SIEM the
// counts per class, the table per tactic (kill-chain order), then the
// techniques of every class but no_test, with their rules and tests.
func WriteCoverage(w io.Writer, rep *coverage.Report) error {
	b := &strings.Builder{}
	run := ""
	if rep.RunID != "" {
		run = " of run " + rep.RunID
	}
	fmt.Fprintf(b, "claimed versus proven coverage%s: ATT&CK v%s, %s techniques (%d)\n", run, rep.AttackVersion,
		strings.Join(rep.Platforms, " and "), rep.Techniques)
	for _, s := range rep.SIEMs {
		if err := writeCoverageSIEM(b, s); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write coverage: %w", err)
	}
	return nil
}

func writeCoverageSIEM(b *strings.Builder, s coverage.SIEM) error {
	fmt.Fprintf(b, "\nSIEM %s: ", s.Name)
	if s.ClaimsKnown {
		fmt.Fprintf(b, "%d %s (%d enabled)", s.Rules, plural(s.Rules, "rule", "rules"), s.EnabledRules)
		if s.RefusedRules > 0 {
			fmt.Fprintf(b, ", %d refused (vigil rules --refused says why)", s.RefusedRules)
		}
		if s.ClaimedOutOfScope > 0 {
			fmt.Fprintf(b, ", %d claimed %s outside the scope", s.ClaimedOutOfScope, plural(s.ClaimedOutOfScope, "technique", "techniques"))
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(b, "%s\n", nonEmpty(s.ClaimsNote, "claims unknown"))
	}
	classes := coverageClasses(s)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	heads := make([]string, len(classes))
	for i, c := range classes {
		heads[i] = coverageHeads[c]
	}
	fmt.Fprintf(tw, "  TACTIC\t%s\n", strings.Join(heads, "\t"))
	row := func(name string, counts map[coverage.Class]int) {
		cells := make([]string, len(classes))
		for i, c := range classes {
			cells[i] = fmt.Sprint(counts[c])
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, strings.Join(cells, "\t"))
	}
	for _, t := range s.Tactics {
		row(t.Name, t.Counts)
	}
	row("all techniques", s.Counts)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write coverage: %w", err)
	}
	for _, c := range classes {
		if c == coverage.NoTest {
			continue
		}
		techs := s.Of(c)
		if len(techs) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n  %s (%d):\n", c.Label(), len(techs))
		for _, t := range techs {
			fmt.Fprintf(b, "    %s %s%s\n", t.ID, t.Name, techniqueEvidence(t))
		}
	}
	if len(s.SilentRules) > 0 {
		fmt.Fprintf(b, "\n  rules that did not fire on a test of their technique (%d):\n", len(s.SilentRules))
		for _, r := range s.SilentRules {
			fmt.Fprintf(b, "    %s: %s\n", ruleName(r), strings.Join(r.Claims, ", "))
		}
	}
	if n := s.Counts[coverage.NoTest]; n > 0 {
		fmt.Fprintf(b, "\n  %s: %d %s (listed in coverage.json and the Navigator layer)\n", coverage.NoTest.Label(), n, plural(n, "technique", "techniques"))
	}
	return nil
}

// techniqueEvidence is " - detected: a; missed: b; rules: R1 (fired), R2".
func techniqueEvidence(t coverage.Technique) string {
	var parts []string
	if len(t.Detected) > 0 {
		parts = append(parts, "detected: "+strings.Join(t.Detected, ", "))
	}
	if len(t.Missed) > 0 {
		parts = append(parts, "missed: "+strings.Join(t.Missed, ", "))
	}
	if len(t.Detected)+len(t.Missed) == 0 && len(t.Tests) > 0 {
		parts = append(parts, "not run: "+strings.Join(t.Tests, ", "))
	}
	if len(t.Rules) > 0 {
		const max = 5
		names := make([]string, 0, max+1)
		for i, r := range t.Rules {
			if i == max {
				names = append(names, fmt.Sprintf("and %d more", len(t.Rules)-max))
				break
			}
			n := ruleName(r)
			if r.Fired {
				n += " (fired)"
			}
			names = append(names, n)
		}
		parts = append(parts, plural(len(t.Rules), "rule", "rules")+": "+strings.Join(names, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " - " + strings.Join(parts, "; ")
}

// ruleName is `"Name" (id)`, or the ID alone.
func ruleName(r coverage.RuleRef) string {
	switch {
	case r.Name == "":
		return r.ID
	case r.ID == "" || r.ID == r.Name:
		return fmt.Sprintf("%q", r.Name)
	}
	return fmt.Sprintf("%q (%s)", r.Name, r.ID)
}

// WriteCoverageJSON writes the report as coverage.json (schema
// vigil/coverage/v1).
func WriteCoverageJSON(w io.Writer, rep *coverage.Report) error {
	if err := writeJSON(w, rep); err != nil {
		return fmt.Errorf("write coverage.json: %w", err)
	}
	return nil
}

// CoverageLayerFileName is the file name of a SIEM's coverage layer.
func CoverageLayerFileName(siem string) string {
	return "coverage-" + strings.TrimPrefix(SIEMLayerFileName(siem), "navigator-")
}

// CoverageLayer is the ATT&CK Navigator layer (format 4.5) of one SIEM's
// claimed versus proven coverage: every technique in scope coloured by its
// class (no scores), the class in the comment, the claiming rules and the
// tests in the metadata, and a legend of the classes.
func CoverageLayer(rep *coverage.Report, s coverage.SIEM) Layer {
	classes := coverageClasses(s)
	l := Layer{
		Name:     "vigil claimed vs proven " + s.Name,
		Versions: LayerVersions{Attack: attackMajor(), Navigator: NavigatorVersion, Layer: LayerFormatVersion},
		Domain:   LayerDomain,
		Description: fmt.Sprintf("Claimed versus proven coverage of %s: what its rules claim to detect (ATT&CK tags) against what vigil's run%s detected. %s techniques.",
			s.Name, nonEmptyPrefix(" ", rep.RunID), strings.Join(rep.Platforms, " and ")),
		Sorting: 0,
		Layout: LayerLayout{Layout: "side", ShowID: true, ShowName: true, AggregateFunction: "average",
			ExpandedSubtechniques: "annotated"},
		Gradient:                      LayerGradient{Colors: []string{colorNone, colorAll}, MinValue: 0, MaxValue: 100},
		TacticRowBackground:           "#dddddd",
		SelectTechniquesAcrossTactics: true,
		Metadata: []LayerMetadata{
			{Name: "siem", Value: s.Name},
			{Name: "run_id", Value: nonEmpty(rep.RunID, "none")},
			{Name: "claims", Value: claimsValue(s)},
			{Divider: true},
		},
	}
	for _, c := range classes {
		l.LegendItems = append(l.LegendItems, LegendItem{Label: fmt.Sprintf("%s (%d)", c.Label(), s.Counts[c]), Color: coverageColors[c]})
		l.Metadata = append(l.Metadata, LayerMetadata{Name: string(c), Value: fmt.Sprint(s.Counts[c])})
	}
	listed := map[string]int{}
	parents := map[string]bool{}
	for _, t := range s.Techniques {
		lt := LayerTechnique{TechniqueID: t.ID, Enabled: true, Color: coverageColors[t.Class], Comment: t.Class.Label()}
		for _, id := range t.Detected {
			lt.Metadata = append(lt.Metadata, LayerMetadata{Name: "detected", Value: id})
		}
		for _, id := range t.Missed {
			lt.Metadata = append(lt.Metadata, LayerMetadata{Name: "missed", Value: id})
		}
		if len(t.Detected)+len(t.Missed) == 0 {
			for _, id := range t.Tests {
				lt.Metadata = append(lt.Metadata, LayerMetadata{Name: "not run", Value: id})
			}
		}
		for i, r := range t.Rules {
			if i == 20 {
				lt.Metadata = append(lt.Metadata, LayerMetadata{Name: "rules", Value: fmt.Sprintf("and %d more", len(t.Rules)-20)})
				break
			}
			v := truncate(ruleName(r), 160)
			if r.Fired {
				v += " (fired)"
			}
			lt.Metadata = append(lt.Metadata, LayerMetadata{Name: "rule", Value: v})
		}
		if id := attack.TechniqueID(t.ID); id.IsSub() && t.Class != coverage.NoTest {
			parents[string(id.Parent())] = true
		}
		listed[t.ID] = len(l.Techniques)
		l.Techniques = append(l.Techniques, lt)
	}
	for _, p := range sortedKeys(parents) {
		if i, ok := listed[p]; ok {
			l.Techniques[i].ShowSubtechniques = true
		} else {
			l.Techniques = append(l.Techniques, LayerTechnique{TechniqueID: p, Enabled: true, ShowSubtechniques: true})
		}
	}
	return l
}

func claimsValue(s coverage.SIEM) string {
	if !s.ClaimsKnown {
		return nonEmpty(s.ClaimsNote, "unknown")
	}
	return fmt.Sprintf("%d rules, %d enabled", s.Rules, s.EnabledRules)
}

// WriteCoverageLayers writes the layers of every SIEM: one layer object
// for one SIEM, else a list of layers (the 4.5 multi-layer form).
func WriteCoverageLayers(w io.Writer, rep *coverage.Report) error {
	var v any
	if len(rep.SIEMs) == 1 {
		v = CoverageLayer(rep, rep.SIEMs[0])
	} else {
		ls := make([]Layer, len(rep.SIEMs))
		for i, s := range rep.SIEMs {
			ls[i] = CoverageLayer(rep, s)
		}
		v = ls
	}
	if err := writeJSON(w, v); err != nil {
		return fmt.Errorf("write coverage layer: %w", err)
	}
	return nil
}
