package report

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/core/measure"
)

// Thresholds decide which latency changes between two runs count.
type Thresholds struct {
	// Ratio: a latency counts as slower when the new one is more than Ratio
	// times the old one, and as faster when it is less than old/Ratio. Zero
	// or less turns latency comparison off.
	Ratio float64
	// MinChange is the noise floor: smaller absolute changes never count,
	// whatever the ratio (a 2ms detection becoming 5ms is not news).
	MinChange time.Duration
}

// DefaultThresholds are the defaults of `vigil diff` and `vigil run
// --baseline`: twice as slow, and at least 100ms slower.
var DefaultThresholds = Thresholds{Ratio: 2, MinChange: 100 * time.Millisecond}

// Change is one result compared across two runs.
type Change struct {
	Key
	Technique         string
	Before, After     measure.Status
	BeforeMS, AfterMS *int64
}

// Ratio is After/Before latency, 0 when either is unknown or Before is 0.
func (c Change) Ratio() float64 {
	if c.BeforeMS == nil || c.AfterMS == nil || *c.BeforeMS == 0 {
		return 0
	}
	return float64(*c.AfterMS) / float64(*c.BeforeMS)
}

// Diff is what changed from run A to run B.
type Diff struct {
	A, B string // run IDs
	// NewlyMissed were detected in A and are missed in B.
	NewlyMissed []Change
	// NewlyDetected were missed in A and are detected in B.
	NewlyDetected []Change
	// Slower and Faster are detected in both, with a latency change beyond
	// the thresholds.
	Slower, Faster []Change
	// Other are the remaining status changes (to or from error, skipped,
	// quiet, noisy).
	Other []Change
	// Added are only in B, Removed only in A.
	Added, Removed []Change
	// Unchanged counts the results in both runs that did not change.
	Unchanged int
}

// Regressions are the changes that fail a baseline gate: newly missed, and
// slower beyond the thresholds.
func (d Diff) Regressions() []Change {
	out := append([]Change(nil), d.NewlyMissed...)
	out = append(out, d.Slower...)
	sortChanges(out)
	return out
}

// DiffRuns compares run a (before) with run b (after), result by result,
// matching results by test, target and SIEM.
func DiffRuns(a, b *measure.Run, th Thresholds) Diff {
	d := Diff{A: a.RunID, B: b.RunID}
	before := map[Key]measure.Result{}
	for _, r := range a.Results {
		before[KeyOf(r)] = r
	}
	seen := map[Key]bool{}
	for _, r := range b.Results {
		k := KeyOf(r)
		seen[k] = true
		old, ok := before[k]
		c := Change{Key: k, Technique: r.Technique, Before: old.Status, After: r.Status, BeforeMS: old.LatencyMS, AfterMS: r.LatencyMS}
		switch {
		case !ok:
			c.Before, c.BeforeMS = "", nil
			d.Added = append(d.Added, c)
		case old.Status == measure.Detected && r.Status == measure.Missed:
			d.NewlyMissed = append(d.NewlyMissed, c)
		case old.Status == measure.Missed && r.Status == measure.Detected:
			d.NewlyDetected = append(d.NewlyDetected, c)
		case old.Status != r.Status:
			d.Other = append(d.Other, c)
		case r.Status == measure.Detected && slower(c, th):
			d.Slower = append(d.Slower, c)
		case r.Status == measure.Detected && faster(c, th):
			d.Faster = append(d.Faster, c)
		default:
			d.Unchanged++
		}
	}
	for _, r := range a.Results {
		if k := KeyOf(r); !seen[k] {
			seen[k] = true
			d.Removed = append(d.Removed, Change{Key: k, Technique: r.Technique, Before: r.Status, BeforeMS: r.LatencyMS})
		}
	}
	for _, l := range [][]Change{d.NewlyMissed, d.NewlyDetected, d.Slower, d.Faster, d.Other, d.Added, d.Removed} {
		sortChanges(l)
	}
	return d
}

func slower(c Change, th Thresholds) bool {
	if th.Ratio <= 0 || c.BeforeMS == nil || c.AfterMS == nil {
		return false
	}
	grew := time.Duration(*c.AfterMS-*c.BeforeMS) * time.Millisecond
	return grew >= th.MinChange && grew > 0 && float64(*c.AfterMS) > float64(*c.BeforeMS)*th.Ratio
}

func faster(c Change, th Thresholds) bool {
	if th.Ratio <= 0 || c.BeforeMS == nil || c.AfterMS == nil {
		return false
	}
	shrank := time.Duration(*c.BeforeMS-*c.AfterMS) * time.Millisecond
	return shrank >= th.MinChange && shrank > 0 && float64(*c.AfterMS)*th.Ratio < float64(*c.BeforeMS)
}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i].Key, cs[j].Key
		if a.TestID != b.TestID {
			return a.TestID < b.TestID
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.SIEM < b.SIEM
	})
}

// statusLatency renders "detected 47ms", "missed", "-" (absent).
func statusLatency(st measure.Status, ms *int64) string {
	if st == "" {
		return "-"
	}
	if ms != nil && st == measure.Detected {
		return string(st) + " " + FormatMS(*ms)
	}
	return string(st)
}

// WriteDiff prints the diff as text: a count line, then one table per kind
// of change that has entries.
func WriteDiff(w io.Writer, d Diff, th Thresholds) error {
	fmt.Fprintf(w, "%s -> %s: %d newly missed, %d newly detected, %d slower, %d faster, %d other changes, %d added, %d removed, %d unchanged\n",
		d.A, d.B, len(d.NewlyMissed), len(d.NewlyDetected), len(d.Slower), len(d.Faster), len(d.Other), len(d.Added), len(d.Removed), d.Unchanged)
	if th.Ratio > 0 {
		fmt.Fprintf(w, "latency changes count beyond x%g and %s\n", th.Ratio, FormatMS(th.MinChange.Milliseconds()))
	}
	for _, sec := range []struct {
		title string
		cs    []Change
	}{
		{"newly missed", d.NewlyMissed}, {"newly detected", d.NewlyDetected}, {"slower", d.Slower}, {"faster", d.Faster},
		{"other status changes", d.Other}, {"added", d.Added}, {"removed", d.Removed},
	} {
		if len(sec.cs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", sec.title, len(sec.cs))
		if err := writeChanges(w, sec.cs); err != nil {
			return err
		}
	}
	return nil
}

// WriteRegressions prints exactly the regressions against a baseline, one
// per line under a header; nothing but a one-line verdict when there are
// none.
func WriteRegressions(w io.Writer, baseline string, regs []Change) error {
	if len(regs) == 0 {
		_, err := fmt.Fprintf(w, "no regression against baseline %s\n", baseline)
		return err
	}
	fmt.Fprintf(w, "REGRESSIONS against baseline %s (%d):\n", baseline, len(regs))
	return writeChanges(w, regs)
}

func writeChanges(w io.Writer, cs []Change) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tTECHNIQUE\tTARGET\tSIEM\tBEFORE\tAFTER\tCHANGE")
	for _, c := range cs {
		change := ""
		switch {
		case c.Before == measure.Detected && c.After == measure.Missed:
			change = "no longer detected"
		case c.Before == measure.Missed && c.After == measure.Detected:
			change = "now detected"
		case c.Before == c.After && c.BeforeMS != nil && c.AfterMS != nil:
			delta := *c.AfterMS - *c.BeforeMS
			sign := "+"
			if delta < 0 {
				sign, delta = "-", -delta
			}
			change = sign + FormatMS(delta)
			if r := c.Ratio(); r > 0 {
				change += fmt.Sprintf(" (x%.1f)", r)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.TestID, c.Technique, c.Target, c.SIEM,
			statusLatency(c.Before, c.BeforeMS), statusLatency(c.After, c.AfterMS), change)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write changes: %w", err)
	}
	return nil
}
