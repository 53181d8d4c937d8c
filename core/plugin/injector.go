package plugin

import (
	"context"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/vigilsec/vigil/core/plugin/proto/v1"
)

// Injector performs or emulates an attack technique on a target.
//
// The engine calls Describe, then Configure once with the target's params,
// then for each test Validate, CheckPrerequisites, Inject and, always, Cleanup;
// Close at the end of the run. Every call honours ctx.
type Injector interface {
	// Describe says what the injector is: name, platforms, params, and where
	// it plants the run marker.
	Describe(ctx context.Context) (Description, error)
	// Configure receives the target's params table as TOML. Decode it
	// strictly; keep expensive checks out of it.
	Configure(ctx context.Context, toml []byte) error
	// Validate checks a test's params without side effects.
	Validate(ctx context.Context, req ValidateRequest) ([]Problem, error)
	// CheckPrerequisites returns the prerequisites that are not met (none:
	// the test may run). An error means the check itself could not run.
	CheckPrerequisites(ctx context.Context, req PrerequisitesRequest) ([]UnmetPrerequisite, error)
	// Inject performs the technique. A technique that could not be performed
	// is an InjectResult with Outcome Failed, not an error; an error means
	// the injector itself broke.
	Inject(ctx context.Context, req InjectRequest) (InjectResult, error)
	// Cleanup undoes the injection: runs the test's cleanup params, removes
	// the artifacts and the workdir. It must work even if Inject failed
	// half-way or was never called.
	Cleanup(ctx context.Context, req CleanupRequest) (CleanupResult, error)
	// Close releases what Configure set up.
	Close(ctx context.Context) error
}

// Outcome of an injection.
type Outcome string

// Injection outcomes.
const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	OutcomeTimedOut  Outcome = "timed_out"
	OutcomeRefused   Outcome = "refused"
)

var outcomeToProto = map[Outcome]pluginv1.Outcome{
	OutcomeSucceeded: pluginv1.Outcome_OUTCOME_SUCCEEDED,
	OutcomeFailed:    pluginv1.Outcome_OUTCOME_FAILED,
	OutcomeTimedOut:  pluginv1.Outcome_OUTCOME_TIMED_OUT,
	OutcomeRefused:   pluginv1.Outcome_OUTCOME_REFUSED,
}

// ValidateRequest carries a test's inject and cleanup params, unrendered.
type ValidateRequest struct {
	TestID        string
	Params        Params
	CleanupParams Params
}

// Prerequisite is a check the injector runs before injecting.
type Prerequisite struct {
	Description string
	Check       string // exit status 0 means met
	Get         string // run only when GetPrerequisites is set
}

// PrerequisitesRequest asks whether a test can run on this target.
type PrerequisitesRequest struct {
	TestID            string
	Prerequisites     []Prerequisite
	ElevationRequired bool
	GetPrerequisites  bool
	Marker            string
	// Host is the host to check on when the target names several (its
	// hosts or inventory); "" for a single-host target. Injectors that
	// reach one host ignore it.
	Host string
}

// UnmetPrerequisite says which prerequisite failed and why.
type UnmetPrerequisite struct {
	Description string
	Reason      string
}

// InjectRequest asks the injector to perform one test.
type InjectRequest struct {
	TestID    string
	Technique string
	Marker    string
	// Workdir is a fresh per-injection temporary directory on the target:
	// the injector creates it (0700, failing if it exists) and Cleanup
	// removes it.
	Workdir          string
	Params           Params // rendered
	Timeout          time.Duration
	AllowDestructive bool
	Safety           string
	// Host is the host to inject on when the target names several (its
	// hosts or inventory); "" for a single-host target. Injectors that
	// reach one host ignore it.
	Host string
}

// Artifact is something an injection left behind for Cleanup to remove.
type Artifact struct {
	Kind string // "file", "dir", "process", "k8s-object", ...
	Ref  string
}

// InjectResult is what happened when the technique was performed.
type InjectResult struct {
	StartedAt, EndedAt time.Time
	Outcome            Outcome
	ExitCode           int
	Stdout, Stderr     []byte
	Artifacts          []Artifact
	// Host is the host the technique ran on, as SIEMs will name it.
	Host string
	// MarkerLocations are where the marker was actually planted.
	MarkerLocations []MarkerLocation
	// Events is telemetry to replay into SIEMs that ingest (JSON objects).
	Events [][]byte
	Error  string
	// Details holds injector-specific findings as a JSON object.
	Details []byte
}

// CleanupRequest asks the injector to undo one test.
type CleanupRequest struct {
	TestID    string
	Marker    string
	Workdir   string
	Params    Params // rendered cleanup params; may be empty
	Artifacts []Artifact
	Timeout   time.Duration
	// Host is the InjectRequest's Host: cleanup runs on the same host.
	Host string
}

// CleanupResult is the outcome of a cleanup.
type CleanupResult struct {
	ExitCode int
	Output   []byte
	Error    string
}

// InjectorPlugin is the go-plugin adapter for Injector (gRPC only).
type InjectorPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Injector
}

var _ goplugin.GRPCPlugin = (*InjectorPlugin)(nil)

// GRPCServer registers the server shim.
func (p *InjectorPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterInjectorServer(s, &injectorServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the client shim.
func (p *InjectorPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &injectorClient{c: pluginv1.NewInjectorClient(c)}, nil
}

// injectorClient implements Injector by calling the plugin over gRPC.
type injectorClient struct{ c pluginv1.InjectorClient }

var _ Injector = (*injectorClient)(nil)

func (c *injectorClient) Describe(ctx context.Context) (Description, error) {
	d, err := c.c.Describe(ctx, &pluginv1.Empty{})
	if err != nil {
		return Description{}, fromStatus(err)
	}
	return descriptionFromProto(d), nil
}

func (c *injectorClient) Configure(ctx context.Context, toml []byte) error {
	_, err := c.c.Configure(ctx, &pluginv1.TomlConfig{Toml: toml})
	return fromStatus(err)
}

func (c *injectorClient) Validate(ctx context.Context, req ValidateRequest) ([]Problem, error) {
	p, err := req.Params.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cp, err := req.CleanupParams.MarshalJSON()
	if err != nil {
		return nil, err
	}
	resp, err := c.c.Validate(ctx, &pluginv1.ValidateRequest{TestId: req.TestID, ParamsJson: p, CleanupParamsJson: cp})
	if err != nil {
		return nil, fromStatus(err)
	}
	return problemsFromProto(resp.GetProblems()), nil
}

func (c *injectorClient) CheckPrerequisites(ctx context.Context, req PrerequisitesRequest) ([]UnmetPrerequisite, error) {
	preq := &pluginv1.PrerequisitesRequest{
		TestId: req.TestID, ElevationRequired: req.ElevationRequired,
		FetchMissing: req.GetPrerequisites, Marker: req.Marker, Host: req.Host,
	}
	for _, p := range req.Prerequisites {
		preq.Prerequisites = append(preq.Prerequisites, &pluginv1.Prerequisite{Description: p.Description, Check: p.Check, Get: p.Get})
	}
	resp, err := c.c.CheckPrerequisites(ctx, preq)
	if err != nil {
		return nil, fromStatus(err)
	}
	var out []UnmetPrerequisite
	for _, u := range resp.GetUnmet() {
		out = append(out, UnmetPrerequisite{Description: u.GetDescription(), Reason: u.GetReason()})
	}
	return out, nil
}

func (c *injectorClient) Inject(ctx context.Context, req InjectRequest) (InjectResult, error) {
	p, err := req.Params.MarshalJSON()
	if err != nil {
		return InjectResult{}, err
	}
	resp, err := c.c.Inject(ctx, &pluginv1.InjectRequest{
		TestId: req.TestID, Technique: req.Technique, Marker: req.Marker, Workdir: req.Workdir,
		ParamsJson: p, TimeoutMs: req.Timeout.Milliseconds(), AllowDestructive: req.AllowDestructive,
		Safety: req.Safety, Host: req.Host,
	})
	if err != nil {
		return InjectResult{}, fromStatus(err)
	}
	r := InjectResult{
		StartedAt: timeFromProto(resp.GetStartedAt()), EndedAt: timeFromProto(resp.GetEndedAt()),
		ExitCode: int(resp.GetExitCode()), Stdout: resp.GetStdout(), Stderr: resp.GetStderr(),
		Host: resp.GetHost(), MarkerLocations: markersFromProto(resp.GetMarkerLocations()),
		Events: resp.GetEvents(), Error: resp.GetError(), Details: resp.GetDetailsJson(),
		Artifacts: artifactsFromProto(resp.GetArtifacts()),
	}
	for o, po := range outcomeToProto {
		if po == resp.GetOutcome() {
			r.Outcome = o
		}
	}
	return r, nil
}

func (c *injectorClient) Cleanup(ctx context.Context, req CleanupRequest) (CleanupResult, error) {
	p, err := req.Params.MarshalJSON()
	if err != nil {
		return CleanupResult{}, err
	}
	resp, err := c.c.Cleanup(ctx, &pluginv1.CleanupRequest{
		TestId: req.TestID, Marker: req.Marker, Workdir: req.Workdir, ParamsJson: p,
		Artifacts: artifactsToProto(req.Artifacts), TimeoutMs: req.Timeout.Milliseconds(), Host: req.Host,
	})
	if err != nil {
		return CleanupResult{}, fromStatus(err)
	}
	return CleanupResult{ExitCode: int(resp.GetExitCode()), Output: resp.GetOutput(), Error: resp.GetError()}, nil
}

func (c *injectorClient) Close(ctx context.Context) error {
	_, err := c.c.Close(ctx, &pluginv1.Empty{})
	return fromStatus(err)
}

// injectorServer serves an Injector implementation over gRPC.
type injectorServer struct {
	pluginv1.UnimplementedInjectorServer
	impl Injector
}

func (s *injectorServer) Describe(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Description, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if d.Kind == "" {
		d.Kind = KindInjector
	}
	return d.toProto(), nil
}

func (s *injectorServer) Configure(ctx context.Context, req *pluginv1.TomlConfig) (*pluginv1.Empty, error) {
	return &pluginv1.Empty{}, toStatus(s.impl.Configure(ctx, req.GetToml()))
}

func (s *injectorServer) Validate(ctx context.Context, req *pluginv1.ValidateRequest) (*pluginv1.ValidateResponse, error) {
	p, err := ParamsFromJSON(req.GetParamsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	cp, err := ParamsFromJSON(req.GetCleanupParamsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	probs, err := s.impl.Validate(ctx, ValidateRequest{TestID: req.GetTestId(), Params: p, CleanupParams: cp})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.ValidateResponse{Problems: problemsToProto(probs)}, nil
}

func (s *injectorServer) CheckPrerequisites(ctx context.Context, req *pluginv1.PrerequisitesRequest) (*pluginv1.PrerequisitesResponse, error) {
	r := PrerequisitesRequest{
		TestID: req.GetTestId(), ElevationRequired: req.GetElevationRequired(),
		GetPrerequisites: req.GetFetchMissing(), Marker: req.GetMarker(), Host: req.GetHost(),
	}
	for _, p := range req.GetPrerequisites() {
		r.Prerequisites = append(r.Prerequisites, Prerequisite{Description: p.GetDescription(), Check: p.GetCheck(), Get: p.GetGet()})
	}
	unmet, err := s.impl.CheckPrerequisites(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pluginv1.PrerequisitesResponse{}
	for _, u := range unmet {
		resp.Unmet = append(resp.Unmet, &pluginv1.UnmetPrerequisite{Description: u.Description, Reason: u.Reason})
	}
	return resp, nil
}

func (s *injectorServer) Inject(ctx context.Context, req *pluginv1.InjectRequest) (*pluginv1.InjectResponse, error) {
	p, err := ParamsFromJSON(req.GetParamsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := s.impl.Inject(ctx, InjectRequest{
		TestID: req.GetTestId(), Technique: req.GetTechnique(), Marker: req.GetMarker(), Workdir: req.GetWorkdir(),
		Params: p, Timeout: time.Duration(req.GetTimeoutMs()) * time.Millisecond,
		AllowDestructive: req.GetAllowDestructive(), Safety: req.GetSafety(), Host: req.GetHost(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.InjectResponse{
		StartedAt: timeToProto(r.StartedAt), EndedAt: timeToProto(r.EndedAt),
		Outcome: outcomeToProto[r.Outcome], ExitCode: int32(r.ExitCode), Stdout: r.Stdout, Stderr: r.Stderr,
		Artifacts: artifactsToProto(r.Artifacts), Host: r.Host, MarkerLocations: markersToProto(r.MarkerLocations),
		Events: r.Events, Error: r.Error, DetailsJson: r.Details,
	}, nil
}

func (s *injectorServer) Cleanup(ctx context.Context, req *pluginv1.CleanupRequest) (*pluginv1.CleanupResponse, error) {
	p, err := ParamsFromJSON(req.GetParamsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := s.impl.Cleanup(ctx, CleanupRequest{
		TestID: req.GetTestId(), Marker: req.GetMarker(), Workdir: req.GetWorkdir(), Params: p,
		Artifacts: artifactsFromProto(req.GetArtifacts()), Timeout: time.Duration(req.GetTimeoutMs()) * time.Millisecond,
		Host: req.GetHost(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.CleanupResponse{ExitCode: int32(r.ExitCode), Output: r.Output, Error: r.Error}, nil
}

func (s *injectorServer) Close(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Empty, error) {
	return &pluginv1.Empty{}, toStatus(s.impl.Close(ctx))
}

func artifactsToProto(as []Artifact) []*pluginv1.Artifact {
	out := make([]*pluginv1.Artifact, len(as))
	for i, a := range as {
		out[i] = &pluginv1.Artifact{Kind: a.Kind, Ref: a.Ref}
	}
	return out
}

func artifactsFromProto(as []*pluginv1.Artifact) []Artifact {
	out := make([]Artifact, len(as))
	for i, a := range as {
		out[i] = Artifact{Kind: a.GetKind(), Ref: a.GetRef()}
	}
	return out
}
