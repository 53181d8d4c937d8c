// Package measure holds vigil's results model (results.json, schema
// vigil/results/v1) and the pure functions that summarise it: detection
// latency percentiles and coverage per SIEM and per tactic. Every report
// format is derived from a Run.
package measure

import (
	"math"
	"sort"
	"time"
)

// Schema is the results.json schema identifier.
const Schema = "vigil/results/v1"

// Status is the outcome of one (test, target, SIEM) result.
type Status string

// Result statuses.
const (
	// Detected: every expected signal appeared before its deadline.
	Detected Status = "detected"
	// Missed: a deadline passed without the expected signal.
	Missed Status = "missed"
	// Error: the injection or a plugin failed; nothing can be said about
	// detection. Never reported as missed.
	Error Status = "error"
	// Skipped: a prerequisite was not met, or the test was not run.
	Skipped Status = "skipped"
	// Quiet: a negative test (every expectation `absent`) raised nothing, as
	// it should.
	Quiet Status = "quiet"
	// Noisy: a negative test raised the signal it must not raise.
	Noisy Status = "noisy"
)

// Run is the whole of results.json.
type Run struct {
	Schema     string                      `json:"schema"`
	RunID      string                      `json:"run_id"`
	Vigil      string                      `json:"vigil_version,omitempty"`
	StartedAt  time.Time                   `json:"started_at"`
	FinishedAt time.Time                   `json:"finished_at"`
	Config     map[string]any              `json:"config"`
	Results    []Result                    `json:"results"`
	Summary    Summary                     `json:"summary"`
	SIEMStats  map[string]map[string]int64 `json:"siem_stats,omitempty"`
	Notes      []string                    `json:"notes,omitempty"`
	// HostChanged are the differences the host-integrity check found on
	// this host after the cleanups; IntegrityCheck says what it read (nil:
	// it did not run).
	HostChanged    []HostChange    `json:"host_changed,omitempty"`
	IntegrityCheck *IntegrityCheck `json:"integrity_check,omitempty"`
}

// HostChange is a difference left on the host after a run.
type HostChange struct {
	// Path is a file, or user:NAME, group:NAME, module:NAME,
	// listen:PROTO ADDR:PORT or clock.
	Path string `json:"path"`
	// Change says what changed: "created (file)", "content changed",
	// "mode -rw-r--r-- -> -rwxrwxrwx", "truncated from 1200 to 0 bytes".
	Change string `json:"change"`
	// Tests were changing the host (prerequisites, injection or cleanup)
	// when it appeared; Attribution says so in words, including when it
	// cannot tell them apart or no test was.
	Tests       []string `json:"tests,omitempty"`
	Attribution string   `json:"attribution"`
}

// IntegrityCheck is what the host-integrity check read.
type IntegrityCheck struct {
	Host      string `json:"host"`
	Entries   int    `json:"entries"`   // paths and items in a snapshot
	Snapshots int    `json:"snapshots"` // before, after each test step, after
	CostMS    int64  `json:"cost_ms"`   // their total time
}

// Result is one (test, target, SIEM) outcome.
type Result struct {
	TestID        string   `json:"test_id"`
	TestName      string   `json:"test_name,omitempty"`
	Technique     string   `json:"technique"`
	TechniqueName string   `json:"technique_name,omitempty"`
	Tactics       []string `json:"tactics"`
	Target        string   `json:"target"`
	Host          string   `json:"host,omitempty"`
	SIEM          string   `json:"siem"`
	Status        Status   `json:"status"`
	Marker        string   `json:"marker,omitempty"`

	InjectedAt *time.Time `json:"injected_at,omitempty"`
	DetectedAt *time.Time `json:"detected_at,omitempty"`
	// LatencyMS is the SIEM's own signal timestamp minus the injection start.
	LatencyMS *int64 `json:"latency_ms,omitempty"`
	// ObservedLatencyMS is when vigil's watcher first saw the signal, minus
	// the injection start: an upper bound that includes the poll interval.
	ObservedLatencyMS *int64 `json:"observed_latency_ms,omitempty"`
	// IngestLatencyMS is the injection start to the telemetry's arrival in
	// the SIEM, where the plugin can search raw events.
	IngestLatencyMS *int64 `json:"ingest_latency_ms,omitempty"`
	PollIntervalMS  int64  `json:"poll_interval_ms,omitempty"`

	// Correlation says how the signal was tied to this injection:
	// "marker:process.command_line", "time+host", ...
	Correlation  string              `json:"correlation,omitempty"`
	Signals      []SignalRef         `json:"signals,omitempty"`
	Expectations []ExpectationResult `json:"expectations,omitempty"`
	Error        string              `json:"error,omitempty"`
	Reason       string              `json:"reason,omitempty"`
	// Diagnosis says why a missed result was missed (and, for a noisy one,
	// which rule fired): the evidence the SIEM gave. Nil on other statuses.
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// ClockOffsetMS is set when the signal was credited with the SIEM's
	// measured clock offset taken off its timestamp (the SIEM's clock minus
	// this host's): the latency is then measured from the corrected time.
	ClockOffsetMS *int64     `json:"clock_offset_ms,omitempty"`
	Injection     *Injection `json:"injection,omitempty"`
	// Ingest counts the replayed events sent to the SIEM and how many it
	// accepted (replays only).
	Ingest *Ingest `json:"ingest,omitempty"`
}

// Ingest is what a SIEM did with a replay's events.
type Ingest struct {
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	// Rejected is Sent - Accepted; Reasons are the first reasons the SIEM
	// gave for the rejected events.
	Rejected int      `json:"rejected,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// DiagnosisClass classifies a miss by where the detection chain broke.
type DiagnosisClass string

// Diagnosis classes, from the strongest evidence to the weakest.
const (
	// AlertOutsideWindow: a signal carrying this injection's marker, for
	// the expected technique or rule, is stamped before the injection or
	// after the deadline (clock skew or a slow pipeline).
	AlertOutsideWindow DiagnosisClass = "alert_outside_window"
	// AlertWrongTechnique: a signal carrying the marker fired, but not for
	// the expected technique or rule (a mapping gap).
	AlertWrongTechnique DiagnosisClass = "alert_wrong_technique"
	// AlertWithoutMarker: a signal for the expected technique fired on the
	// same host inside the window without the marker (a correlation gap:
	// likely detected, not proven).
	AlertWithoutMarker DiagnosisClass = "alert_without_marker"
	// TelemetryNoAlert: events carrying the marker reached the SIEM and no
	// signal fired (a rule gap).
	TelemetryNoAlert DiagnosisClass = "telemetry_no_alert"
	// NoTelemetry: no raw event carrying the marker reached the SIEM by the
	// deadline (a log source or collection gap).
	NoTelemetry DiagnosisClass = "no_telemetry"
	// Unknown: the SIEM gave no evidence either way (its plugin cannot
	// search raw events, or that search failed).
	Unknown DiagnosisClass = "unknown"
	// RuleFired is the diagnosis of a noisy result: the rule that fired for
	// the benign action.
	RuleFired DiagnosisClass = "rule_fired"
)

// Diagnosis is the evidence behind a missed (or noisy) result.
type Diagnosis struct {
	Class DiagnosisClass `json:"class"`
	// Summary says it in one line, for tables and reports.
	Summary string `json:"summary"`
	// Events are the raw events carrying the marker the SIEM holds.
	Events *EventEvidence `json:"events,omitempty"`
	// Signals are the signals behind the class (at most a few).
	Signals []SignalEvidence `json:"signals,omitempty"`
}

// EventEvidence sums up the raw events carrying an injection's marker.
type EventEvidence struct {
	Count int `json:"count"`
	// FirstAt is the earliest event's own time; FirstIngestedAt when the
	// SIEM received the first one, where it says.
	FirstAt         time.Time  `json:"first_at"`
	FirstIngestedAt *time.Time `json:"first_ingested_at,omitempty"`
	// Sources are the events' log sources (logsource, dataset, sourcetype).
	Sources []string `json:"sources,omitempty"`
	// Excerpt is the key field of the first event (a command line, a path,
	// an API call).
	Excerpt string `json:"excerpt,omitempty"`
}

// SignalEvidence is a signal that did not satisfy an expectation, and why.
type SignalEvidence struct {
	ID         string    `json:"id,omitempty"`
	Rule       string    `json:"rule,omitempty"`
	RuleID     string    `json:"rule_id,omitempty"`
	Techniques []string  `json:"techniques,omitempty"`
	Timestamp  time.Time `json:"timestamp"`
	Host       string    `json:"host,omitempty"`
	// Marker says whether the signal carries this injection's marker.
	Marker bool `json:"marker"`
	// OffsetMS is the signal's timestamp minus the injection start
	// (negative: stamped before it).
	OffsetMS int64 `json:"offset_ms"`
}

// SignalRef is a signal matched to a result.
type SignalRef struct {
	ID        string    `json:"id"`
	Rule      string    `json:"rule"`
	RuleID    string    `json:"rule_id,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}

// ExpectationResult is the outcome of one [[expect]] of a test.
type ExpectationResult struct {
	Index       int       `json:"index"`
	Technique   string    `json:"technique,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	RuleID      string    `json:"rule_id,omitempty"`
	Absent      bool      `json:"absent,omitempty"`
	Deadline    time.Time `json:"deadline"`
	Status      Status    `json:"status"`
	LatencyMS   *int64    `json:"latency_ms,omitempty"`
	Correlation string    `json:"correlation,omitempty"`
	SignalID    string    `json:"signal_id,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Diagnosis is set on a missed (or noisy) expectation.
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
}

// Injection records what the injector reported.
type Injection struct {
	Outcome    string    `json:"outcome"`
	ExitCode   int       `json:"exit_code"`
	Output     string    `json:"output,omitempty"` // excerpt of stdout and stderr
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	DurationMS int64     `json:"duration_ms"`
	Cleanup    string    `json:"cleanup,omitempty"` // cleanup problems, if any
}

// Counts is a tally of statuses with coverage and latency figures.
type Counts struct {
	Total    int `json:"total"`
	Detected int `json:"detected"`
	Missed   int `json:"missed"`
	Error    int `json:"error"`
	Skipped  int `json:"skipped"`
	Quiet    int `json:"quiet,omitempty"`
	Noisy    int `json:"noisy,omitempty"`
	// Coverage is detected / (detected + missed): errors and skips are not
	// evidence either way. Nil when nothing was measured.
	Coverage        *float64 `json:"coverage"`
	LatencyMedianMS *int64   `json:"latency_median_ms,omitempty"`
	LatencyP95MS    *int64   `json:"latency_p95_ms,omitempty"`
	LatencyMaxMS    *int64   `json:"latency_max_ms,omitempty"`
}

// Summary aggregates a run.
type Summary struct {
	Counts
	BySIEM   map[string]Counts `json:"by_siem"`
	ByTactic map[string]Counts `json:"by_tactic"`
}

// Summarise computes the summary of results.
func Summarise(results []Result) Summary {
	s := Summary{BySIEM: map[string]Counts{}, ByTactic: map[string]Counts{}}
	all := tally{}
	bySIEM := map[string]*tally{}
	byTactic := map[string]*tally{}
	for _, r := range results {
		all.add(r)
		get(bySIEM, r.SIEM).add(r)
		for _, t := range r.Tactics {
			get(byTactic, t).add(r)
		}
	}
	s.Counts = all.counts()
	for k, t := range bySIEM {
		s.BySIEM[k] = t.counts()
	}
	for k, t := range byTactic {
		s.ByTactic[k] = t.counts()
	}
	return s
}

type tally struct {
	c         Counts
	latencies []int64
}

func get(m map[string]*tally, k string) *tally {
	if m[k] == nil {
		m[k] = &tally{}
	}
	return m[k]
}

func (t *tally) add(r Result) {
	t.c.Total++
	switch r.Status {
	case Detected:
		t.c.Detected++
		if r.LatencyMS != nil {
			t.latencies = append(t.latencies, *r.LatencyMS)
		}
	case Missed:
		t.c.Missed++
	case Error:
		t.c.Error++
	case Skipped:
		t.c.Skipped++
	case Quiet:
		t.c.Quiet++
	case Noisy:
		t.c.Noisy++
	}
}

func (t *tally) counts() Counts {
	c := t.c
	if n := c.Detected + c.Missed; n > 0 {
		v := float64(c.Detected) / float64(n)
		c.Coverage = &v
	}
	if len(t.latencies) > 0 {
		med, p95, max := Percentile(t.latencies, 50), Percentile(t.latencies, 95), Percentile(t.latencies, 100)
		c.LatencyMedianMS, c.LatencyP95MS, c.LatencyMaxMS = &med, &p95, &max
	}
	return c
}

// Percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method; xs is not modified. It panics on an empty slice.
func Percentile(xs []int64, p float64) int64 {
	s := append([]int64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// Millis returns d in whole milliseconds as a pointer (for optional fields).
func Millis(d time.Duration) *int64 {
	ms := d.Milliseconds()
	return &ms
}
