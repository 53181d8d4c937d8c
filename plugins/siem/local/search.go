package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
)

// Limits of one answer: results travel over gRPC, whose default message
// limit is 4 MiB.
const (
	// MaxPageSize caps SearchRequest.PageSize.
	MaxPageSize = 10_000
	// maxPageBytes cuts a Search page early when its raw documents add up
	// to this many bytes.
	maxPageBytes = 2 << 20
	// MaxRawEvents caps the events SearchRawEvents returns (the earliest).
	MaxRawEvents = 1000
)

// ErrBadPageToken means a Search page token this plugin did not issue.
var ErrBadPageToken = errors.New("local: bad page token")

// Search returns the signals whose timestamp (the event's own time) is in
// [Start, End], sorted by timestamp then ID, in pages of PageSize (default
// DefaultPageSize). Each expectation with a native Query (an inline Sigma
// rule) is evaluated against the raw events of the window; the signals it
// raises carry that expectation's ID in MatchedExpectations. A query that
// does not parse raises nothing (Check reports it).
func (s *SIEM) Search(ctx context.Context, req plugin.SearchRequest) (plugin.SearchResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.SearchResult{}, err
	}
	size := req.PageSize
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after, err := parsePageToken(req.PageToken)
	if err != nil {
		return plugin.SearchResult{}, err
	}

	sigs := st.store.signalsIn(req.Start, req.End)
	if qs := st.querySignals(req); len(qs) > 0 {
		sigs = append(sigs, qs...)
		sort.Slice(sigs, func(i, j int) bool { return less(sigs[i], sigs[j]) })
	}
	if err := ctx.Err(); err != nil {
		return plugin.SearchResult{}, err
	}
	i := 0
	if after != nil {
		i = sort.Search(len(sigs), func(k int) bool { return less(*after, sigs[k]) })
	}
	var (
		res   plugin.SearchResult
		bytes int
	)
	for ; i < len(sigs) && len(res.Signals) < size; i++ {
		if bytes += len(sigs[i].Raw); bytes > maxPageBytes && len(res.Signals) > 0 {
			break
		}
		res.Signals = append(res.Signals, sigs[i])
	}
	if i < len(sigs) && len(res.Signals) > 0 {
		res.NextPageToken = pageToken(res.Signals[len(res.Signals)-1])
	}
	return res, nil
}

// pageToken is the key of the last signal of a page: the next page starts
// after it, whatever was stored or expired in between.
func pageToken(last plugin.Signal) string {
	return strconv.FormatInt(last.Timestamp.UnixNano(), 10) + "/" + last.ID
}

func parsePageToken(tok string) (*plugin.Signal, error) {
	if tok == "" {
		return nil, nil
	}
	ns, id, ok := strings.Cut(tok, "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, fmt.Errorf("%w %q", ErrBadPageToken, tok)
	}
	return &plugin.Signal{Timestamp: time.Unix(0, n), ID: id}, nil
}

// SearchRawEvents returns the stored events whose time is in [Start, End]
// and whose ancestry or fields contain one of Markers, from one of Hosts
// when Hosts is set: at most MaxRawEvents, the earliest first. Timestamp is
// the event's own time, IngestedAt when the SIEM received it.
func (s *SIEM) SearchRawEvents(ctx context.Context, req plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	type hit struct {
		e      storedEvent
		marker string
	}
	var hits []hit
	st.store.eachEvent(req.Start, req.End, func(e storedEvent) bool {
		if !req.Wants(e.ev.Host) {
			return true
		}
		if m, ok := findMarker(e.ev, req.Markers); ok {
			hits = append(hits, hit{e, m})
		}
		return true
	})
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].e.ev.Time.Before(hits[j].e.ev.Time) })
	if len(hits) > MaxRawEvents {
		hits = hits[:MaxRawEvents]
	}
	out := make([]plugin.RawEvent, 0, len(hits))
	for _, h := range hits {
		raw, err := json.Marshal(h.e.ev)
		if err != nil {
			return nil, fmt.Errorf("local: encode event: %w", err)
		}
		out = append(out, plugin.RawEvent{
			Marker: h.marker, Timestamp: h.e.ev.Time, IngestedAt: h.e.received, Host: h.e.ev.Host, Raw: raw,
			Source: h.e.ev.Source.String(), Summary: eventSummary(h.e.ev),
		})
	}
	return out, nil
}

// eventSummary is an event's key field, for miss diagnoses: the command
// line of a process creation, the path of a file event, the record type,
// syscall and program of an audit record, the verb and URI of a Kubernetes
// audit event; else the command line of the process that caused it.
func eventSummary(ev *telemetry.Event) string {
	switch ev.Source {
	case telemetry.ProcessCreation:
		return ev.Get("CommandLine")
	case telemetry.FileEvent:
		return ev.Get("TargetFilename") + " (by " + ev.Get("Image") + ")"
	case telemetry.Auditd:
		return strings.TrimSpace(ev.Get("type") + " " + ev.Get("syscall") + " " + ev.Get("exe"))
	case telemetry.KubernetesAudit:
		return ev.Get("verb") + " " + ev.Get("requestURI")
	}
	if len(ev.Ancestry) > 0 {
		return ev.Ancestry[0]
	}
	return ""
}

// Check reports, per expectation, a native query that does not parse, an
// expected rule that is not loaded, or a technique no loaded rule is tagged
// with (the expectation could only be missed). Expectations of absence are
// not checked.
func (s *SIEM) Check(ctx context.Context, req plugin.CheckRequest) ([]plugin.Problem, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	rules := st.engine.Rules()
	var probs []plugin.Problem
	for _, e := range req.Expectations {
		if e.Absent {
			continue
		}
		subject := e.ID
		if subject == "" {
			subject = e.TestID
		}
		switch {
		case e.Query != "":
			if _, err := st.queries.rule(e.ID, e.Query); err != nil {
				probs = append(probs, plugin.Problem{Subject: subject, Message: err.Error()})
			}
		case e.RuleID != "" || e.RuleName != "":
			found := false
			for _, r := range rules {
				if (e.RuleID == "" || strings.EqualFold(r.ID, e.RuleID)) &&
					(e.RuleName == "" || strings.EqualFold(strings.TrimSpace(r.Title), strings.TrimSpace(e.RuleName))) {
					found = true
					break
				}
			}
			if !found {
				probs = append(probs, plugin.Problem{Subject: subject, Message: "no loaded Sigma rule has " + ruleRef(e.RuleID, e.RuleName)})
			}
		case e.Technique != "":
			want := attack.TechniqueID(strings.ToUpper(e.Technique))
			found := false
			for _, r := range rules {
				for _, t := range r.Techniques {
					found = found || attack.TechniqueID(t).Covers(want)
				}
			}
			if !found {
				probs = append(probs, plugin.Problem{Subject: subject, Message: fmt.Sprintf("no loaded Sigma rule is tagged with %s", want)})
			}
		}
	}
	return probs, nil
}

func ruleRef(id, name string) string {
	switch {
	case id != "" && name != "":
		return fmt.Sprintf("id %s and title %q", id, name)
	case id != "":
		return "id " + id
	default:
		return fmt.Sprintf("title %q", name)
	}
}

// CloseSignals is not supported: local signals live only as long as the
// plugin.
func (s *SIEM) CloseSignals(context.Context, plugin.CloseSignalsRequest) error {
	return plugin.ErrUnsupported
}

// Ingest runs replayed telemetry through the pipeline as if the sensor had
// seen it. Each item is one telemetry.Event as JSON (as `vigil record` writes
// them); its time is kept as is. An event without the vigil.marker field
// gets req.Marker in it. Undecodable items and items without a time are
// per-item problems; Accepted counts the others.
func (s *SIEM) Ingest(ctx context.Context, req plugin.IngestRequest) (plugin.IngestResult, error) {
	st, err := s.state()
	if err != nil {
		return plugin.IngestResult{}, err
	}
	var (
		res plugin.IngestResult
		evs = make([]telemetry.Event, 0, len(req.Events))
	)
	for i, b := range req.Events {
		subject := "events[" + strconv.Itoa(i) + "]"
		var ev telemetry.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			res.Problems = append(res.Problems, plugin.Problem{Subject: subject, Message: err.Error()})
			continue
		}
		if ev.Time.IsZero() {
			res.Problems = append(res.Problems, plugin.Problem{Subject: subject, Message: "event has no time"})
			continue
		}
		if ev.Fields == nil {
			ev.Fields = map[string]any{}
		}
		if _, ok := ev.Fields[MarkerField]; !ok && req.Marker != "" {
			ev.Fields[MarkerField] = req.Marker
		}
		evs = append(evs, ev)
	}
	st.nRejected.Add(uint64(len(res.Problems)))
	if len(evs) > 0 {
		s.process(st, evs, s.clock())
		st.nIngested.Add(uint64(len(evs)))
	}
	res.Accepted = len(evs)
	return res, nil
}
