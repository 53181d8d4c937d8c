package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vigilsec/vigil/core/measure"
)

// Comparison is the side-by-side view of the SIEMs of one run: every
// injection was checked in each of them, so their coverage and latency
// compare on the same attacks.
type Comparison struct {
	SIEMs []string
	// BySIEM is coverage and latency per SIEM.
	BySIEM map[string]measure.Counts
	// Tactics are the tactics tested, in kill-chain order, with their
	// coverage per SIEM.
	Tactics []TacticRow
	// OnlyOne are the injections exactly one SIEM detected while others
	// measured them and missed.
	OnlyOne []Exclusive
	// NoneCaught are the injections no SIEM detected and at least one
	// missed (SIEMs that errored are named, since they prove nothing).
	NoneCaught []Uncaught
}

// TacticRow is a tactic's coverage in each SIEM.
type TacticRow struct {
	Tactic string
	BySIEM map[string]measure.Counts
}

// Exclusive is an injection only one SIEM caught.
type Exclusive struct {
	TestID, Target, Technique, SIEM string
	LatencyMS                       *int64
	MissedBy                        []string
}

// Uncaught is an injection no SIEM caught.
type Uncaught struct {
	TestID, Target, Technique string
	MissedBy, ErrorIn         []string
}

// Compare computes the comparison of the run's SIEMs.
func Compare(run *measure.Run) Comparison {
	c := Comparison{SIEMs: SIEMs(run), BySIEM: Summary(run).BySIEM}
	perSIEM := map[string]measure.Summary{}
	by := map[string][]measure.Result{}
	for _, r := range run.Results {
		by[r.SIEM] = append(by[r.SIEM], r)
	}
	tactics := map[string]bool{}
	for s, rs := range by {
		perSIEM[s] = measure.Summarise(rs)
		for t := range perSIEM[s].ByTactic {
			tactics[t] = true
		}
	}
	for _, t := range tacticNames(tactics) {
		row := TacticRow{Tactic: t, BySIEM: map[string]measure.Counts{}}
		for _, s := range c.SIEMs {
			if n, ok := perSIEM[s].ByTactic[t]; ok {
				row.BySIEM[s] = n
			}
		}
		c.Tactics = append(c.Tactics, row)
	}
	for _, in := range Injections(run) {
		var missed, errored []string
		for _, s := range sortedKeys(in.BySIEM) {
			switch in.BySIEM[s].Status {
			case measure.Missed:
				missed = append(missed, s)
			case measure.Error:
				errored = append(errored, s)
			}
		}
		switch {
		case len(in.DetectedSIEMs) == 1 && len(missed) > 0:
			s := in.DetectedSIEMs[0]
			c.OnlyOne = append(c.OnlyOne, Exclusive{TestID: in.TestID, Target: in.Target, Technique: in.Technique, SIEM: s,
				LatencyMS: in.BySIEM[s].LatencyMS, MissedBy: missed})
		case len(in.DetectedSIEMs) == 0 && len(missed) > 0:
			c.NoneCaught = append(c.NoneCaught, Uncaught{TestID: in.TestID, Target: in.Target, Technique: in.Technique,
				MissedBy: missed, ErrorIn: errored})
		}
	}
	return c
}

// WriteComparison prints the comparison as text tables.
func WriteComparison(w io.Writer, run *measure.Run) error {
	c := Compare(run)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run %s: %d SIEM(s), %d injection(s)\n\n", run.RunID, len(c.SIEMs), len(Injections(run)))
	fmt.Fprintln(tw, "SIEM\tTESTS\tDETECTED\tMISSED\tERROR\tCOVERAGE\tLATENCY p50\tp95")
	for _, s := range c.SIEMs {
		n := c.BySIEM[s]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s, n.Total, n.Detected, n.Missed, n.Error, Percent(n.Coverage),
			optMS(n.LatencyMedianMS), optMS(n.LatencyP95MS))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "TACTIC\t%s\n", strings.ToUpper(strings.Join(c.SIEMs, "\t")))
	for _, row := range c.Tactics {
		cells := make([]string, len(c.SIEMs))
		for i, s := range c.SIEMs {
			cells[i] = "-"
			if n, ok := row.BySIEM[s]; ok && n.Coverage != nil {
				cells[i] = fmt.Sprintf("%s (%d/%d)", Percent(n.Coverage), n.Detected, n.Detected+n.Missed)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", row.Tactic, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	fmt.Fprintf(w, "\ncaught by only one SIEM (%d):\n", len(c.OnlyOne))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(c.OnlyOne) > 0 {
		fmt.Fprintln(tw, "TEST\tTARGET\tTECHNIQUE\tCAUGHT BY\tLATENCY\tMISSED BY")
	}
	for _, e := range c.OnlyOne {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.TestID, e.Target, e.Technique, e.SIEM, optMS(e.LatencyMS), strings.Join(e.MissedBy, ", "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	fmt.Fprintf(w, "\ncaught by no SIEM (%d):\n", len(c.NoneCaught))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(c.NoneCaught) > 0 {
		fmt.Fprintln(tw, "TEST\tTARGET\tTECHNIQUE\tMISSED BY\tERROR IN")
	}
	for _, u := range c.NoneCaught {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.TestID, u.Target, u.Technique, strings.Join(u.MissedBy, ", "), nonEmpty(strings.Join(u.ErrorIn, ", "), "-"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	return nil
}
