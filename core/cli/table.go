package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/report"
	"github.com/vigilsec/vigil/core/runner"
)

// progress prints one line per finished job, or a single rewritten line on
// a terminal.
type progress struct {
	io    IO
	total int
	quiet bool
	mu    sync.Mutex
	start time.Time
}

func newProgress(io IO, total int, quiet bool) *progress {
	return &progress{io: io, total: total, quiet: quiet, start: time.Now()}
}

func (p *progress) update(ev runner.Progress) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Results == nil {
		if p.io.IsTerminal {
			fmt.Fprintf(p.io.Err, "\r\033[K[%d/%d %s] firing %s", ev.Done, ev.Total, time.Since(p.start).Round(time.Second), ev.Job.Test.ID)
		}
		return
	}
	var parts []string
	for _, r := range ev.Results {
		s := r.SIEM + ": " + string(r.Status)
		if r.LatencyMS != nil {
			s += " " + report.FormatMS(*r.LatencyMS)
		}
		parts = append(parts, s)
	}
	line := fmt.Sprintf("[%d/%d] %s %s", ev.Done, ev.Total, ev.Job.Test.ID, strings.Join(parts, ", "))
	if p.io.IsTerminal {
		fmt.Fprintf(p.io.Err, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.io.Err, line)
}

func (p *progress) done() {
	if p.io.IsTerminal && !p.quiet {
		fmt.Fprint(p.io.Err, "\r\033[K")
	}
}

// optMS renders an optional latency, "-" when absent.
func optMS(p *int64) string {
	if p == nil {
		return "-"
	}
	return report.FormatMS(*p)
}

// printResults prints the per-result table.
func printResults(w io.Writer, run *measure.Run) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tTECHNIQUE\tTARGET\tSIEM\tSTATUS\tLATENCY\tOBSERVED\tRULE / REASON")
	for _, r := range run.Results {
		detail := ""
		switch {
		case len(r.Signals) > 0:
			detail = r.Signals[0].Rule
			if len(r.Signals) > 1 {
				detail += fmt.Sprintf(" (+%d)", len(r.Signals)-1)
			}
		case r.Error != "":
			detail = r.Error
		case r.Diagnosis != nil:
			detail = string(r.Diagnosis.Class) + " (why: below)"
		case r.Reason != "":
			detail = r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.TestID, r.Technique, r.Target, r.SIEM, r.Status,
			optMS(r.LatencyMS), optMS(r.ObservedLatencyMS), oneLine(detail, 90))
	}
	tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

// printDiagnoses says why each missed result was missed and which rule
// fired for each noisy one, in full: the table has room for the class only.
func printDiagnoses(w io.Writer, run *measure.Run) {
	for _, st := range []measure.Status{measure.Missed, measure.Noisy} {
		var rs []measure.Result
		for _, r := range run.Results {
			if r.Status == st && r.Diagnosis != nil {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		title := "WHY MISSED"
		if st == measure.Noisy {
			title = "NOISY: rules that fired for benign actions"
		}
		fmt.Fprintf(w, "\n%s (%d)\n", title, len(rs))
		for _, r := range rs {
			fmt.Fprintf(w, "%s on %s in %s: %s\n    %s\n", r.TestID, r.Target, r.SIEM, r.Diagnosis.Class, strings.Join(strings.Fields(r.Diagnosis.Summary), " "))
		}
	}
}

// printSummary prints coverage and latency per SIEM and per tactic.
func printSummary(w io.Writer, run *measure.Run) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIEM\tTESTS\tDETECTED\tMISSED\tERROR\tSKIPPED\tCOVERAGE\tLATENCY p50\tp95\tmax")
	row := func(name string, c measure.Counts) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", name, c.Total, c.Detected, c.Missed, c.Error, c.Skipped,
			report.Percent(c.Coverage), optMS(c.LatencyMedianMS), optMS(c.LatencyP95MS), optMS(c.LatencyMaxMS))
	}
	for _, name := range sortedKeys(run.Summary.BySIEM) {
		row(name, run.Summary.BySIEM[name])
	}
	if len(run.Summary.BySIEM) > 1 {
		row("all", run.Summary.Counts)
	}
	tw.Flush()
	if c := run.Summary.Counts; c.Quiet+c.Noisy > 0 {
		fmt.Fprintf(w, "negative tests: %d quiet, %d noisy\n", c.Quiet, c.Noisy)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TACTIC\tTESTS\tDETECTED\tCOVERAGE")
	for _, name := range killChainOrder(run.Summary.ByTactic) {
		c := run.Summary.ByTactic[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", name, c.Total, c.Detected, report.Percent(c.Coverage))
	}
	tw.Flush()
	for name, st := range run.SIEMStats {
		keys := make([]string, 0, len(st))
		for k := range st {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, st[k]))
		}
		fmt.Fprintf(w, "\n%s stats: %s\n", name, strings.Join(parts, " "))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// killChainOrder returns the tactics of m in ATT&CK's kill-chain order,
// unknown names last, alphabetically.
func killChainOrder[V any](m map[string]V) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range attack.Default().Tactics() {
		if _, ok := m[t.ShortName]; ok {
			out = append(out, t.ShortName)
			seen[t.ShortName] = true
		}
	}
	for _, k := range sortedKeys(m) {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}
