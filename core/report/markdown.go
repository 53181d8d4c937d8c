package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/vigilsec/vigil/core/measure"
)

// mdMaxRows bounds each Markdown table, so that a large run still fits a
// pull request comment (GitHub caps a comment at 65536 characters).
const mdMaxRows = 50

// WriteMarkdown writes a summary of the run in GitHub-flavoured Markdown,
// fit for a pull request comment or $GITHUB_STEP_SUMMARY: coverage and
// latency per SIEM and per tactic, then what needs attention (missed,
// noisy, errors, budget breaches), then every result in a folded table.
func WriteMarkdown(w io.Writer, run *measure.Run) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	sum := Summary(run)
	p("## vigil: %d of %d detected (%s)\n\n", sum.Detected, sum.Detected+sum.Missed, Percent(sum.Coverage))
	meta := []string{"run `" + mdCode(run.RunID) + "`", "vigil " + mdText(nonEmpty(run.Vigil, "unknown"))}
	if !run.StartedAt.IsZero() {
		meta = append(meta, run.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if d := duration(run); d > 0 {
		meta = append(meta, FormatMS(d.Milliseconds()))
	}
	p("%s\n\n", strings.Join(meta, " · "))

	p("| SIEM | Tests | Detected | Missed | Error | Skipped | Coverage | Latency p50 | p95 | max |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(name string, c measure.Counts) {
		p("| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s |\n", name, c.Total, c.Detected, c.Missed, c.Error, c.Skipped,
			Percent(c.Coverage), optMS(c.LatencyMedianMS), optMS(c.LatencyP95MS), optMS(c.LatencyMaxMS))
	}
	for _, s := range sortedKeys(sum.BySIEM) {
		row(mdText(s), sum.BySIEM[s])
	}
	if len(sum.BySIEM) > 1 {
		row("**all**", sum.Counts)
	}
	if c := sum.Counts; c.Quiet+c.Noisy > 0 {
		p("\nNegative tests: %d quiet, %d noisy.\n", c.Quiet, c.Noisy)
	}

	if len(sum.ByTactic) > 0 {
		p("\n| Tactic | Tests | Detected | Missed | Coverage |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, t := range tacticNames(sum.ByTactic) {
			c := sum.ByTactic[t]
			p("| %s | %d | %d | %d | %s |\n", mdText(tacticDisplay(t)), c.Total, c.Detected, c.Missed, Percent(c.Coverage))
		}
	}

	section := func(title string, rs []measure.Result, cols string, line func(measure.Result) string) {
		if len(rs) == 0 {
			return
		}
		p("\n### %s (%d)\n\n%s\n", title, len(rs), cols)
		for i, r := range rs {
			if i == mdMaxRows {
				p("\n… and %d more (see the full report).\n", len(rs)-mdMaxRows)
				break
			}
			p("%s\n", line(r))
		}
	}
	pick := func(st measure.Status) []measure.Result {
		var out []measure.Result
		for _, r := range run.Results {
			if r.Status == st {
				out = append(out, r)
			}
		}
		return out
	}
	why := func(r measure.Result) string { return mdText(truncate(oneLine(detail(r)), 200)) }
	testCell := func(r measure.Result) string {
		return fmt.Sprintf("`%s` | [%s](%s) %s | %s | %s", mdCode(r.TestID), mdText(r.Technique), TechniqueURL(r.Technique),
			mdText(techniqueName(r)), mdText(r.Target), mdText(r.SIEM))
	}
	hdr := "| Test | Technique | Target | SIEM | %s |\n| --- | --- | --- | --- | --- |"
	section("Missed", pick(measure.Missed), "| Test | Technique | Target | SIEM | Diagnosis | Why |\n| --- | --- | --- | --- | --- | --- |", func(r measure.Result) string {
		if r.Diagnosis == nil {
			return "| " + testCell(r) + " | | " + why(r) + " |"
		}
		return "| " + testCell(r) + " | `" + mdCode(string(r.Diagnosis.Class)) + "` | " + mdText(truncate(oneLine(r.Diagnosis.Summary), 300)) + " |"
	})
	section("Noisy negative tests", pick(measure.Noisy), fmt.Sprintf(hdr, "Rule"), func(r measure.Result) string {
		return "| " + testCell(r) + " | " + why(r) + " |"
	})
	section("Errors", pick(measure.Error), fmt.Sprintf(hdr, "Error"), func(r measure.Result) string {
		return "| " + testCell(r) + " | " + why(r) + " |"
	})
	if bs := Breaches(run); len(bs) > 0 {
		p("\n### Latency budget breaches (%d)\n\nDetected, but later than the test's `within`.\n\n", len(bs))
		p("| Test | Technique | Target | SIEM | Latency | Budget |\n| --- | --- | --- | --- | ---: | ---: |\n")
		for i, b := range bs {
			if i == mdMaxRows {
				p("\n… and %d more.\n", len(bs)-mdMaxRows)
				break
			}
			p("| `%s` | %s | %s | %s | %s | %s |\n", mdCode(b.TestID), mdText(b.Technique), mdText(b.Target), mdText(b.SIEM),
				FormatMS(b.LatencyMS), FormatMS(b.BudgetMS))
		}
	}

	if ic := run.IntegrityCheck; ic != nil && len(run.HostChanged) == 0 {
		p("\nHost-integrity check: %s left unchanged (%d paths and items, %d snapshots).\n", mdText(ic.Host), ic.Entries, ic.Snapshots)
	} else if ic != nil {
		p("\n### Host changed (%d)\n\nThe run left %s different after the cleanups.\n\n| Path | Change | By |\n| --- | --- | --- |\n", len(run.HostChanged), mdText(ic.Host))
		for _, c := range run.HostChanged {
			p("| `%s` | %s | %s |\n", mdCode(c.Path), mdText(c.Change), mdText(c.Attribution))
		}
	}

	if len(run.Results) > 0 {
		p("\n<details><summary>All results (%d)</summary>\n\n", len(run.Results))
		p("| Test | Technique | Target | SIEM | Status | Latency | Rule / reason |\n| --- | --- | --- | --- | --- | ---: | --- |\n")
		for i, r := range run.Results {
			if i == 4*mdMaxRows {
				p("\n… and %d more (see results.csv or the HTML report).\n", len(run.Results)-4*mdMaxRows)
				break
			}
			p("| `%s` | %s | %s | %s | %s | %s | %s |\n", mdCode(r.TestID), mdText(r.Technique), mdText(r.Target), mdText(r.SIEM),
				r.Status, optMS(r.LatencyMS), why(r))
		}
		p("\n</details>\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// mdText escapes text for a Markdown table cell: HTML and Markdown
// metacharacters are neutralised and the text stays on one line.
var mdReplacer = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", "|", "\\|", "\\", "\\\\", "`", "\\`",
	"*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "#", "\\#", "~", "\\~",
	"\r", " ", "\n", " ",
)

func mdText(s string) string { return mdReplacer.Replace(s) }

// mdCode makes s safe inside a single-backtick code span in a table.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ", "\r", " ").Replace(s)
}
