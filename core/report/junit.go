package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/vigilsec/vigil/core/measure"
)

// JUnit XML in the shape the usual CI parsers (Jenkins, GitLab, GitHub
// test-report actions) accept: the Jenkins junit-4 schema, whose copy is
// in testdata/junit. Element order inside testcase and testsuite follows
// that schema's sequences, and <skipped> carries its reason as text (the
// schema gives it no attributes).

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	ID         string          `xml:"id,attr"`
	Package    string          `xml:"package,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Skipped   *junitSkipped `xml:"skipped"`
	Error     *junitProblem `xml:"error"`
	Failure   *junitProblem `xml:"failure"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitSkipped struct {
	Text string `xml:",chardata"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// seconds renders milliseconds as JUnit's seconds ("0.047").
func seconds(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// WriteJUnit writes the run as JUnit XML: one testsuite per SIEM, one
// testcase per (test, target). Missed and noisy results are failures,
// errors are errors, skipped results are skipped, and a detected result's
// time is its detection latency.
func WriteJUnit(w io.Writer, run *measure.Run) error {
	doc := junitSuites{Name: "vigil " + run.RunID}
	bySIEM := map[string][]measure.Result{}
	for _, r := range run.Results {
		bySIEM[r.SIEM] = append(bySIEM[r.SIEM], r)
	}
	var total int64
	for i, siem := range sortedKeys(bySIEM) {
		rs := bySIEM[siem]
		c := measure.Summarise(rs).Counts
		s := junitSuite{
			Name: siem, ID: fmt.Sprint(i), Package: "vigil." + siem,
			Timestamp: run.StartedAt.UTC().Format("2006-01-02T15:04:05"),
		}
		s.Properties.Props = []junitProperty{
			{"run_id", run.RunID}, {"siem", siem}, {"vigil_version", nonEmpty(run.Vigil, "unknown")},
			{"coverage", Percent(c.Coverage)}, {"latency_p50", optMS(c.LatencyMedianMS)}, {"latency_p95", optMS(c.LatencyP95MS)},
		}
		targets := map[string]map[string]bool{}
		for _, r := range rs {
			if targets[r.TestID] == nil {
				targets[r.TestID] = map[string]bool{}
			}
			targets[r.TestID][r.Target] = true
		}
		var suiteMS int64
		for _, r := range rs {
			tc := junitCase{Name: r.TestID, Classname: strings.TrimSpace(r.Technique + " " + techniqueName(r))}
			if len(targets[r.TestID]) > 1 {
				tc.Name += " @" + r.Target
			}
			if r.LatencyMS != nil {
				tc.Time = seconds(*r.LatencyMS)
				suiteMS += *r.LatencyMS
			}
			why := oneLine(detail(r))
			switch r.Status {
			case measure.Missed:
				tc.Failure = &junitProblem{Message: nonEmpty(why, "no matching signal by the deadline"), Type: "missed", Text: caseText(r)}
				s.Failures++
			case measure.Noisy:
				tc.Failure = &junitProblem{Message: nonEmpty(why, "a benign action raised the signal"), Type: "noisy", Text: caseText(r)}
				s.Failures++
			case measure.Error:
				tc.Error = &junitProblem{Message: nonEmpty(why, "error"), Type: "error", Text: caseText(r)}
				s.Errors++
			case measure.Skipped:
				tc.Skipped = &junitSkipped{Text: nonEmpty(why, "skipped")}
				s.Skipped++
			}
			tc.SystemOut = caseText(r)
			s.Cases = append(s.Cases, tc)
		}
		s.Tests = len(s.Cases)
		s.Time = seconds(suiteMS)
		total += suiteMS
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Suites = append(doc.Suites, s)
	}
	if s, ok := integritySuite(run, len(doc.Suites)); ok {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// integritySuite is the host-integrity check as a suite: one passing case
// when the host was left unchanged, else a failing case per change.
func integritySuite(run *measure.Run, id int) (junitSuite, bool) {
	ic := run.IntegrityCheck
	if ic == nil {
		return junitSuite{}, false
	}
	s := junitSuite{Name: "host-integrity", ID: fmt.Sprint(id), Package: "vigil.host-integrity", Timestamp: run.StartedAt.UTC().Format("2006-01-02T15:04:05")}
	s.Properties.Props = []junitProperty{{"run_id", run.RunID}, {"host", ic.Host}, {"entries", fmt.Sprint(ic.Entries)}, {"snapshots", fmt.Sprint(ic.Snapshots)}}
	if len(run.HostChanged) == 0 {
		s.Cases = []junitCase{{Name: ic.Host + " left unchanged", Classname: "host-integrity"}}
	}
	for _, c := range run.HostChanged {
		text := "path: " + c.Path + "\nchange: " + c.Change + "\nby: " + c.Attribution + "\n"
		s.Cases = append(s.Cases, junitCase{Name: c.Path, Classname: "host-integrity",
			Failure: &junitProblem{Message: c.Change + " (by " + c.Attribution + ")", Type: "host_changed", Text: text}})
		s.Failures++
	}
	s.Tests = len(s.Cases)
	s.Time = seconds(0)
	return s, true
}

// caseText is the evidence of a result, one fact a line.
func caseText(r measure.Result) string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	line("test", r.TestID+nonEmptyPrefix(" - ", r.TestName))
	line("technique", r.Technique+nonEmptyPrefix(" ", techniqueName(r)))
	line("tactics", strings.Join(r.Tactics, ", "))
	line("target", r.Target+nonEmptyPrefix(" host ", r.Host))
	line("siem", r.SIEM)
	line("status", string(r.Status))
	if r.LatencyMS != nil {
		lat := FormatMS(*r.LatencyMS)
		if r.ObservedLatencyMS != nil {
			lat += ", observed " + FormatMS(*r.ObservedLatencyMS)
		}
		if r.IngestLatencyMS != nil {
			lat += ", ingest " + FormatMS(*r.IngestLatencyMS)
		}
		line("latency", lat)
	}
	if b, ok := BudgetOf(r); ok {
		v := "within budget " + FormatMS(b.BudgetMS)
		if b.Breached {
			v = fmt.Sprintf("BREACHED: %s over a budget of %s", FormatMS(b.LatencyMS), FormatMS(b.BudgetMS))
		}
		line("budget", v)
	}
	for _, s := range r.Signals {
		line("signal", s.Rule+nonEmptyPrefix(" rule_id=", s.RuleID)+" id="+s.ID+" at "+s.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	line("correlation", r.Correlation)
	if r.ClockOffsetMS != nil {
		line("clock offset", FormatMS(*r.ClockOffsetMS)+" (the SIEM's clock minus this host's, taken off the signal's timestamp)")
	}
	line("marker", r.Marker)
	line("reason", oneLine(r.Reason))
	if d := r.Diagnosis; d != nil {
		line("diagnosis", string(d.Class))
		if e := d.Events; e != nil {
			line("events", fmt.Sprintf("%d with the marker (%s), first at %s: %s", e.Count, strings.Join(e.Sources, ", "),
				e.FirstAt.UTC().Format("2006-01-02T15:04:05.000Z"), oneLine(e.Excerpt)))
		}
		for _, s := range d.Signals {
			marker := "without the marker"
			if s.Marker {
				marker = "with the marker"
			}
			line("evidence", fmt.Sprintf("%s [%s] %s, %+dms from the injection", nonEmpty(s.Rule, s.RuleID), strings.Join(s.Techniques, ", "), marker, s.OffsetMS))
		}
	}
	if r.Ingest != nil {
		line("ingest", fmt.Sprintf("%d sent, %d accepted", r.Ingest.Sent, r.Ingest.Accepted))
	}
	line("error", oneLine(r.Error))
	if r.Injection != nil {
		line("cleanup", oneLine(r.Injection.Cleanup))
	}
	return b.String()
}

func nonEmptyPrefix(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
