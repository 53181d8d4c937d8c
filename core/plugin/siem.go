package plugin

import (
	"context"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/vigilsec/vigil/core/plugin/proto/v1"
)

// SIEM searches a SIEM for the signals fired techniques should raise.
//
// The engine calls Describe, Configure (with the [siem.params] table as
// TOML), Check, then Search once per poll interval with every pending
// expectation (one batched search, paged), and Close at the end of the run.
// SearchRawEvents, CloseSignals, Ingest, ClaimedRules and Clock are optional:
// return ErrUnsupported (embed sdk.SIEMBase) and leave them out of
// Description.Capabilities.
type SIEM interface {
	// Describe says what the SIEM plugin is and what it can do.
	Describe(ctx context.Context) (Description, error)
	// Configure decodes the plugin's config strictly and does fast checks.
	Configure(ctx context.Context, toml []byte) error
	// Check validates credentials and reachability and, per expectation,
	// that the expected rule exists and is enabled. Problems are data; an
	// error means the check could not run.
	Check(ctx context.Context, req CheckRequest) ([]Problem, error)
	// Search returns the signals raised in [Start, End] that may satisfy
	// the expectations. "Nothing yet" is an empty result, not an error.
	// Matching to expectations happens in the engine; a plugin that runs
	// an expectation's native Query tags the signals it returned with that
	// expectation's ID (Signal.MatchedExpectations).
	Search(ctx context.Context, req SearchRequest) (SearchResult, error)
	// SearchRawEvents finds the injected activity's own telemetry by marker.
	SearchRawEvents(ctx context.Context, req RawEventsRequest) ([]RawEvent, error)
	// CloseSignals archives signals vigil raised, leaving the SOC queue clean.
	CloseSignals(ctx context.Context, req CloseSignalsRequest) error
	// Ingest replays telemetry (JSON objects) into the SIEM.
	Ingest(ctx context.Context, req IngestRequest) (IngestResult, error)
	// ClaimedRules lists the SIEM's detection rules with the ATT&CK
	// techniques each claims to detect (its tags or threat mapping), for
	// claimed-versus-proven coverage (`vigil coverage`). Every rule is
	// listed, disabled ones with Enabled false; paging through the SIEM's
	// API is the plugin's business. Optional (CapRules).
	ClaimedRules(ctx context.Context) ([]Rule, error)
	// Clock reads the SIEM's clock against this host's: what the SIEM
	// answers to one cheap call (its HTTP Date header or its own server
	// time). Optional (CapClock).
	Clock(ctx context.Context) (ClockReading, error)
	// Stats returns plugin counters for the run result (e.g. audit "lost").
	Stats(ctx context.Context) (map[string]int64, error)
	// Close releases what Configure set up.
	Close(ctx context.Context) error
}

// Expectation is one signal the engine waits for.
type Expectation struct {
	ID        string
	TestID    string
	Technique string
	RuleName  string
	RuleID    string
	Query     string // native query for this SIEM, if any
	Marker    string
	Host      string
	NotBefore time.Time // the injection's start
	Deadline  time.Time
	Absent    bool
}

// CheckRequest lists the expectations of the planned run.
type CheckRequest struct {
	Expectations []Expectation
}

// SearchRequest is one batched search.
type SearchRequest struct {
	Start, End   time.Time
	Expectations []Expectation
	PageToken    string
	PageSize     int
}

// MarkerValue is the value of a marker-capable field of a signal.
type MarkerValue struct {
	Location MarkerLocation
	Value    string
	// Field is the SIEM's own field the value was read from (for example
	// "vigil.marker" or "process.args" for MarkerLogField or
	// MarkerCommandLine in Elastic); empty when the plugin does not say.
	// A result's correlation names it.
	Field string
}

// Signal is an alert the SIEM raised.
type Signal struct {
	ID         string
	RuleName   string
	RuleID     string
	Techniques []string
	// Timestamp is when the SIEM raised the signal: the basis of latency.
	Timestamp time.Time
	Host      string
	Raw       []byte // the SIEM's own document, JSON
	// EventTime is the source event's own time, when known.
	EventTime           time.Time
	MarkerValues        []MarkerValue
	MatchedExpectations []string
	Severity            string
}

// SearchResult is one page of signals.
type SearchResult struct {
	Signals       []Signal
	NextPageToken string
	// RetryAfter asks the watcher to wait at least this long (rate limits).
	RetryAfter time.Duration
}

// RawEventsRequest asks for the injected activity's own telemetry.
type RawEventsRequest struct {
	Start, End time.Time
	Markers    []string
	Hosts      []string
}

// Wants reports whether an event of host answers the request's host
// filter: no Hosts, an event that names no host, or one of Hosts (by
// SameHost; an empty entry takes any host).
func (r RawEventsRequest) Wants(host string) bool {
	if len(r.Hosts) == 0 || host == "" {
		return true
	}
	for _, h := range r.Hosts {
		if h == "" || SameHost(h, host) {
			return true
		}
	}
	return false
}

// SameHost compares host names case-insensitively, and a short name with
// the first label of a fully qualified one (web1 is web1.example.com).
func SameHost(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	short := func(h string) string {
		if i := strings.IndexByte(h, '.'); i > 0 {
			return h[:i]
		}
		return h
	}
	return short(a) == short(b)
}

// RawEvent is one telemetry record found by marker.
type RawEvent struct {
	Marker     string
	Timestamp  time.Time // the event's own time
	IngestedAt time.Time // when the SIEM received it
	Host       string
	Raw        []byte
	// Source is the event's log source as the SIEM names it (a Sigma
	// logsource, a dataset, a sourcetype); Summary its key field (a command
	// line, a file path, an API call). Both feed miss diagnoses.
	Source, Summary string
}

// ClockReading is a SIEM's clock against this host's.
type ClockReading struct {
	// Offset is the SIEM's clock minus this host's: positive when the SIEM
	// is ahead.
	Offset time.Duration
	// Uncertainty bounds the reading: the true offset is within Offset +/-
	// Uncertainty (an HTTP Date header has a one-second resolution).
	Uncertainty time.Duration
	// Source says how the clock was read ("HTTP Date header of GET /").
	Source string
}

// CloseSignalsRequest lists signals to archive.
type CloseSignalsRequest struct {
	SignalIDs []string
	Reason    string
}

// IngestRequest carries telemetry to replay.
type IngestRequest struct {
	Events [][]byte
	Marker string
}

// IngestResult says how much was accepted.
type IngestResult struct {
	Accepted int
	Problems []Problem
}

// Rule is a detection rule of the SIEM and the ATT&CK techniques it claims
// to detect.
type Rule struct {
	ID   string
	Name string
	// Techniques are ATT&CK technique or sub-technique IDs, upper-case
	// ("T1059.004"), without duplicates. A rule claiming a technique claims
	// its sub-techniques too (attack.TechniqueID.Covers).
	Techniques []string
	Enabled    bool
	// Source is where the rule lives: a file path, a URL, or a saved
	// search's name.
	Source string
	// Platforms are the ATT&CK platforms whose telemetry the rule reads
	// ("Linux", "Containers", "IaaS"); empty means any. Coverage counts
	// the rule's claims only within them: a CloudTrail rule tagged T1005
	// says nothing of T1005 on Linux hosts.
	Platforms []string
	// Query and Language are the rule's query and its language ("sigma",
	// "kuery", "eql", "spl", ...), when the plugin gives them.
	Query    string
	Language string
	// Refused says why the SIEM does not run the rule at all, with the
	// file and line where it applies ("x.yml:12: invalid regular
	// expression: ..."): a refused rule is never Enabled and claims
	// nothing. Broken marks a refused rule that cannot work as written, as
	// opposed to a valid rule outside what the SIEM evaluates.
	Refused string
	Broken  bool
}

// SIEMPlugin is the go-plugin adapter for SIEM (gRPC only).
type SIEMPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl SIEM
}

var _ goplugin.GRPCPlugin = (*SIEMPlugin)(nil)

// GRPCServer registers the server shim.
func (p *SIEMPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterSIEMServer(s, &siemServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the client shim.
func (p *SIEMPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &siemClient{c: pluginv1.NewSIEMClient(c)}, nil
}

// siemClient implements SIEM by calling the plugin over gRPC.
type siemClient struct{ c pluginv1.SIEMClient }

var _ SIEM = (*siemClient)(nil)

func (c *siemClient) Describe(ctx context.Context) (Description, error) {
	d, err := c.c.Describe(ctx, &pluginv1.Empty{})
	if err != nil {
		return Description{}, fromStatus(err)
	}
	return descriptionFromProto(d), nil
}

func (c *siemClient) Configure(ctx context.Context, toml []byte) error {
	_, err := c.c.Configure(ctx, &pluginv1.TomlConfig{Toml: toml})
	return fromStatus(err)
}

func (c *siemClient) Check(ctx context.Context, req CheckRequest) ([]Problem, error) {
	resp, err := c.c.Check(ctx, &pluginv1.CheckRequest{Expectations: expectationsToProto(req.Expectations)})
	if err != nil {
		return nil, fromStatus(err)
	}
	return problemsFromProto(resp.GetProblems()), nil
}

func (c *siemClient) Search(ctx context.Context, req SearchRequest) (SearchResult, error) {
	resp, err := c.c.Search(ctx, &pluginv1.SearchRequest{
		Start: timeToProto(req.Start), End: timeToProto(req.End),
		Expectations: expectationsToProto(req.Expectations), PageToken: req.PageToken, PageSize: int32(req.PageSize),
	})
	if err != nil {
		return SearchResult{}, fromStatus(err)
	}
	out := SearchResult{NextPageToken: resp.GetNextPageToken(), RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond}
	for _, s := range resp.GetSignals() {
		out.Signals = append(out.Signals, signalFromProto(s))
	}
	return out, nil
}

func (c *siemClient) SearchRawEvents(ctx context.Context, req RawEventsRequest) ([]RawEvent, error) {
	resp, err := c.c.SearchRawEvents(ctx, &pluginv1.RawEventsRequest{
		Start: timeToProto(req.Start), End: timeToProto(req.End), Markers: req.Markers, Hosts: req.Hosts,
	})
	if err != nil {
		return nil, fromStatus(err)
	}
	var out []RawEvent
	for _, e := range resp.GetEvents() {
		out = append(out, RawEvent{
			Marker: e.GetMarker(), Timestamp: timeFromProto(e.GetTimestamp()),
			IngestedAt: timeFromProto(e.GetIngestedAt()), Host: e.GetHost(), Raw: e.GetRaw(),
			Source: e.GetSource(), Summary: e.GetSummary(),
		})
	}
	return out, nil
}

func (c *siemClient) CloseSignals(ctx context.Context, req CloseSignalsRequest) error {
	_, err := c.c.CloseSignals(ctx, &pluginv1.CloseSignalsRequest{SignalIds: req.SignalIDs, Reason: req.Reason})
	return fromStatus(err)
}

func (c *siemClient) Ingest(ctx context.Context, req IngestRequest) (IngestResult, error) {
	resp, err := c.c.Ingest(ctx, &pluginv1.IngestRequest{Events: req.Events, Marker: req.Marker})
	if err != nil {
		return IngestResult{}, fromStatus(err)
	}
	return IngestResult{Accepted: int(resp.GetAccepted()), Problems: problemsFromProto(resp.GetProblems())}, nil
}

func (c *siemClient) ClaimedRules(ctx context.Context) ([]Rule, error) {
	resp, err := c.c.Rules(ctx, &pluginv1.RulesRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	return rulesFromProto(resp.GetRules()), nil
}

func (c *siemClient) Clock(ctx context.Context) (ClockReading, error) {
	resp, err := c.c.Clock(ctx, &pluginv1.Empty{})
	if err != nil {
		return ClockReading{}, fromStatus(err)
	}
	return ClockReading{Offset: time.Duration(resp.GetOffsetNs()), Uncertainty: time.Duration(resp.GetUncertaintyNs()), Source: resp.GetSource()}, nil
}

func (c *siemClient) Stats(ctx context.Context) (map[string]int64, error) {
	resp, err := c.c.Stats(ctx, &pluginv1.Empty{})
	if err != nil {
		return nil, fromStatus(err)
	}
	return resp.GetCounters(), nil
}

func (c *siemClient) Close(ctx context.Context) error {
	_, err := c.c.Close(ctx, &pluginv1.Empty{})
	return fromStatus(err)
}

// siemServer serves a SIEM implementation over gRPC.
type siemServer struct {
	pluginv1.UnimplementedSIEMServer
	impl SIEM
}

func (s *siemServer) Describe(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Description, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if d.Kind == "" {
		d.Kind = KindSIEM
	}
	return d.toProto(), nil
}

func (s *siemServer) Configure(ctx context.Context, req *pluginv1.TomlConfig) (*pluginv1.Empty, error) {
	return &pluginv1.Empty{}, toStatus(s.impl.Configure(ctx, req.GetToml()))
}

func (s *siemServer) Check(ctx context.Context, req *pluginv1.CheckRequest) (*pluginv1.CheckResponse, error) {
	probs, err := s.impl.Check(ctx, CheckRequest{Expectations: expectationsFromProto(req.GetExpectations())})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.CheckResponse{Problems: problemsToProto(probs)}, nil
}

func (s *siemServer) Search(ctx context.Context, req *pluginv1.SearchRequest) (*pluginv1.SearchResponse, error) {
	r, err := s.impl.Search(ctx, SearchRequest{
		Start: timeFromProto(req.GetStart()), End: timeFromProto(req.GetEnd()),
		Expectations: expectationsFromProto(req.GetExpectations()), PageToken: req.GetPageToken(), PageSize: int(req.GetPageSize()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pluginv1.SearchResponse{NextPageToken: r.NextPageToken, RetryAfterMs: r.RetryAfter.Milliseconds()}
	for _, sig := range r.Signals {
		resp.Signals = append(resp.Signals, signalToProto(sig))
	}
	return resp, nil
}

func (s *siemServer) SearchRawEvents(ctx context.Context, req *pluginv1.RawEventsRequest) (*pluginv1.RawEventsResponse, error) {
	evs, err := s.impl.SearchRawEvents(ctx, RawEventsRequest{
		Start: timeFromProto(req.GetStart()), End: timeFromProto(req.GetEnd()), Markers: req.GetMarkers(), Hosts: req.GetHosts(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pluginv1.RawEventsResponse{}
	for _, e := range evs {
		resp.Events = append(resp.Events, &pluginv1.RawEvent{
			Marker: e.Marker, Timestamp: timeToProto(e.Timestamp), IngestedAt: timeToProto(e.IngestedAt), Host: e.Host, Raw: e.Raw,
			Source: e.Source, Summary: e.Summary,
		})
	}
	return resp, nil
}

func (s *siemServer) CloseSignals(ctx context.Context, req *pluginv1.CloseSignalsRequest) (*pluginv1.Empty, error) {
	return &pluginv1.Empty{}, toStatus(s.impl.CloseSignals(ctx, CloseSignalsRequest{SignalIDs: req.GetSignalIds(), Reason: req.GetReason()}))
}

func (s *siemServer) Ingest(ctx context.Context, req *pluginv1.IngestRequest) (*pluginv1.IngestResponse, error) {
	r, err := s.impl.Ingest(ctx, IngestRequest{Events: req.GetEvents(), Marker: req.GetMarker()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.IngestResponse{Accepted: int32(r.Accepted), Problems: problemsToProto(r.Problems)}, nil
}

func (s *siemServer) Rules(ctx context.Context, _ *pluginv1.RulesRequest) (*pluginv1.RulesResponse, error) {
	rs, err := s.impl.ClaimedRules(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.RulesResponse{Rules: rulesToProto(rs)}, nil
}

func (s *siemServer) Clock(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.ClockReading, error) {
	r, err := s.impl.Clock(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.ClockReading{OffsetNs: int64(r.Offset), UncertaintyNs: int64(r.Uncertainty), Source: r.Source}, nil
}

func (s *siemServer) Stats(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.StatsResponse, error) {
	c, err := s.impl.Stats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.StatsResponse{Counters: c}, nil
}

func (s *siemServer) Close(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Empty, error) {
	return &pluginv1.Empty{}, toStatus(s.impl.Close(ctx))
}

func expectationsToProto(es []Expectation) []*pluginv1.Expectation {
	out := make([]*pluginv1.Expectation, len(es))
	for i, e := range es {
		out[i] = &pluginv1.Expectation{
			Id: e.ID, TestId: e.TestID, Technique: e.Technique, RuleName: e.RuleName, RuleId: e.RuleID,
			Query: e.Query, Marker: e.Marker, Host: e.Host, NotBefore: timeToProto(e.NotBefore),
			Deadline: timeToProto(e.Deadline), Absent: e.Absent,
		}
	}
	return out
}

func expectationsFromProto(es []*pluginv1.Expectation) []Expectation {
	out := make([]Expectation, len(es))
	for i, e := range es {
		out[i] = Expectation{
			ID: e.GetId(), TestID: e.GetTestId(), Technique: e.GetTechnique(), RuleName: e.GetRuleName(),
			RuleID: e.GetRuleId(), Query: e.GetQuery(), Marker: e.GetMarker(), Host: e.GetHost(),
			NotBefore: timeFromProto(e.GetNotBefore()), Deadline: timeFromProto(e.GetDeadline()), Absent: e.GetAbsent(),
		}
	}
	return out
}

func signalToProto(s Signal) *pluginv1.Signal {
	ps := &pluginv1.Signal{
		Id: s.ID, RuleName: s.RuleName, RuleId: s.RuleID, Techniques: s.Techniques,
		Timestamp: timeToProto(s.Timestamp), Host: s.Host, Raw: s.Raw, EventTime: timeToProto(s.EventTime),
		MatchedExpectations: s.MatchedExpectations, Severity: s.Severity,
	}
	for _, mv := range s.MarkerValues {
		ps.MarkerValues = append(ps.MarkerValues, &pluginv1.MarkerValue{Location: markerToProto[mv.Location], Value: mv.Value, Field: mv.Field})
	}
	return ps
}

func signalFromProto(ps *pluginv1.Signal) Signal {
	s := Signal{
		ID: ps.GetId(), RuleName: ps.GetRuleName(), RuleID: ps.GetRuleId(), Techniques: ps.GetTechniques(),
		Timestamp: timeFromProto(ps.GetTimestamp()), Host: ps.GetHost(), Raw: ps.GetRaw(),
		EventTime: timeFromProto(ps.GetEventTime()), MatchedExpectations: ps.GetMatchedExpectations(),
		Severity: ps.GetSeverity(),
	}
	for _, mv := range ps.GetMarkerValues() {
		s.MarkerValues = append(s.MarkerValues, MarkerValue{Location: markerFromProto(mv.GetLocation()), Value: mv.GetValue(), Field: mv.GetField()})
	}
	return s
}
