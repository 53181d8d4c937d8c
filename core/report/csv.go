package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/measure"
)

// CSVHeader is the header row of results.csv.
var CSVHeader = []string{
	"run_id", "test_id", "test_name", "technique", "technique_name", "tactics", "target", "host", "siem",
	"status", "latency_ms", "observed_latency_ms", "ingest_latency_ms", "budget_ms", "budget_breached",
	"correlation", "rules", "rule_ids", "signal_ids", "marker", "injected_at", "detected_at", "reason", "error",
	"diagnosis", "clock_offset_ms", "host_changed",
}

// HostChangesOf lists the host changes the integrity check tied to a test
// ("PATH: CHANGE"), alone or with others it could not tell apart.
func HostChangesOf(run *measure.Run, testID string) []string {
	var out []string
	for _, c := range run.HostChanged {
		for _, t := range c.Tests {
			if t == testID {
				out = append(out, c.Path+": "+c.Change)
			}
		}
	}
	return out
}

// WriteCSV writes one row per result under CSVHeader (RFC 4180). Lists
// are joined with "; ", times are RFC 3339 in UTC, empty cells mean "not
// applicable". Text cells that a spreadsheet would run as a formula
// (starting with =, +, -, @, tab or CR) are prefixed with a quote.
func WriteCSV(w io.Writer, run *measure.Run) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, r := range run.Results {
		var rules, ruleIDs, sigIDs []string
		for _, s := range r.Signals {
			rules = append(rules, s.Rule)
			ruleIDs = append(ruleIDs, s.RuleID)
			sigIDs = append(sigIDs, s.ID)
		}
		budget, breached := "", ""
		if b, ok := BudgetOf(r); ok {
			budget, breached = strconv.FormatInt(b.BudgetMS, 10), strconv.FormatBool(b.Breached)
		}
		row := []string{
			text(run.RunID), text(r.TestID), text(r.TestName), text(r.Technique), text(techniqueName(r)),
			text(strings.Join(r.Tactics, "; ")), text(r.Target), text(r.Host), text(r.SIEM), string(r.Status),
			num(r.LatencyMS), num(r.ObservedLatencyMS), num(r.IngestLatencyMS), budget, breached,
			text(r.Correlation), text(strings.Join(rules, "; ")), text(strings.Join(ruleIDs, "; ")), text(strings.Join(sigIDs, "; ")),
			text(r.Marker), stamp(r.InjectedAt), stamp(r.DetectedAt), text(oneLine(r.Reason)), text(oneLine(r.Error)),
			diagnosisClass(r), num(r.ClockOffsetMS), text(strings.Join(HostChangesOf(run, r.TestID), "; ")),
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// diagnosisClass is the class of a result's diagnosis ("" without one).
func diagnosisClass(r measure.Result) string {
	if r.Diagnosis == nil {
		return ""
	}
	return string(r.Diagnosis.Class)
}

// text defuses spreadsheet formulas (OWASP "CSV injection").
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func num(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func stamp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
