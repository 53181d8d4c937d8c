package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// fakeSIEM records what it receives and answers canned data.
type fakeSIEM struct {
	sdk.SIEMBase
	gotConfig []byte
	gotSearch plugin.SearchRequest
	answer    plugin.SearchResult
	searchErr error
}

func (f *fakeSIEM) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name: "fake", Version: "1.2.3", QueryDialect: "fql", ReportsHost: true,
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath},
		Capabilities:    []string{plugin.CapIngest},
	}, nil
}
func (f *fakeSIEM) Configure(_ context.Context, b []byte) error { f.gotConfig = b; return nil }
func (f *fakeSIEM) Search(_ context.Context, r plugin.SearchRequest) (plugin.SearchResult, error) {
	f.gotSearch = r
	return f.answer, f.searchErr
}
func (f *fakeSIEM) Ingest(_ context.Context, r plugin.IngestRequest) (plugin.IngestResult, error) {
	return plugin.IngestResult{Accepted: len(r.Events), Problems: []plugin.Problem{{Subject: "e1", Message: "bad"}}}, nil
}

func dispense(t *testing.T, kind string, inj plugin.Injector, siem plugin.SIEM) any {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, plugin.PluginSet(inj, siem))
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSIEMRoundTrip(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 123456789, time.UTC)
	impl := &fakeSIEM{answer: plugin.SearchResult{
		NextPageToken: "p2", RetryAfter: 1500 * time.Millisecond,
		Signals: []plugin.Signal{{
			ID: "s1", RuleName: "Cron edited", RuleID: "r1", Techniques: []string{"T1053.003"},
			Timestamp: t0, Host: "h1", Raw: []byte(`{"a":1}`), EventTime: t0.Add(-time.Second),
			MarkerValues:        []plugin.MarkerValue{{Location: plugin.MarkerCommandLine, Value: "sh -c x vigil-abc", Field: "process.command_line"}},
			MatchedExpectations: []string{"e1"}, Severity: "high",
		}},
	}}
	s := dispense(t, plugin.KindSIEM, nil, impl).(plugin.SIEM)

	d, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != plugin.KindSIEM || d.ProtocolVersion != plugin.ProtocolVersion || !d.ReportsHost ||
		!reflect.DeepEqual(d.MarkerLocations, []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath}) || !d.Has(plugin.CapIngest) {
		t.Fatalf("Describe = %+v", d)
	}
	if err := s.Configure(ctx, []byte("site = \"x\"\n")); err != nil || string(impl.gotConfig) != "site = \"x\"\n" {
		t.Fatalf("Configure: %v, plugin got %q", err, impl.gotConfig)
	}
	req := plugin.SearchRequest{Start: t0, End: t0.Add(time.Minute), PageSize: 50, Expectations: []plugin.Expectation{{
		ID: "e1", TestID: "t", Technique: "T1053.003", Marker: "vigil-abc", Host: "h1", NotBefore: t0, Deadline: t0.Add(time.Minute), Absent: true,
	}}}
	got, err := s.Search(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(impl.gotSearch, req) {
		t.Fatalf("plugin got %+v\nwant %+v", impl.gotSearch, req)
	}
	if !reflect.DeepEqual(got, impl.answer) {
		t.Fatalf("Search = %+v\nwant %+v", got, impl.answer)
	}
	if _, err := s.SearchRawEvents(ctx, plugin.RawEventsRequest{}); !errors.Is(err, plugin.ErrUnsupported) {
		t.Fatalf("SearchRawEvents error = %v, want ErrUnsupported", err)
	}
	ir, err := s.Ingest(ctx, plugin.IngestRequest{Events: [][]byte{[]byte(`{}`), []byte(`{}`)}})
	if err != nil || ir.Accepted != 2 || len(ir.Problems) != 1 || ir.Problems[0].String() != "e1: bad" {
		t.Fatalf("Ingest = %+v, %v", ir, err)
	}
}

// The errors the engine acts on keep their meaning over gRPC, with the
// plugin's message.
func TestErrorsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   error
		msg  string
	}{
		{"denied", fmt.Errorf("acme: search: %w: 403 Forbidden: missing security_monitoring_signals_read", plugin.ErrDenied), plugin.ErrDenied,
			"acme: search: the SIEM refused the credentials or their permissions: 403 Forbidden: missing security_monitoring_signals_read"},
		{"unsupported", fmt.Errorf("acme: %w", plugin.ErrUnsupported), plugin.ErrUnsupported, plugin.ErrUnsupported.Error()},
		{"other", errors.New("acme: search: 500 Internal Server Error"), nil, "acme: search: 500 Internal Server Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dispense(t, plugin.KindSIEM, nil, &fakeSIEM{searchErr: tc.err}).(plugin.SIEM)
			_, err := s.Search(context.Background(), plugin.SearchRequest{})
			if err == nil || err.Error() != tc.msg {
				t.Fatalf("error %v, want %q", err, tc.msg)
			}
			for _, sentinel := range []error{plugin.ErrDenied, plugin.ErrUnsupported} {
				if errors.Is(err, sentinel) != (sentinel == tc.is) {
					t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, !(sentinel == tc.is))
				}
			}
		})
	}
}

type fakeInjector struct {
	sdk.InjectorBase
	got        plugin.InjectRequest
	gotPrereq  plugin.PrerequisitesRequest
	gotCleanup plugin.CleanupRequest
}

func (f *fakeInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "fake", Params: []plugin.ParamSpec{{Name: "command", Type: "shell", Required: true}}}, nil
}
func (f *fakeInjector) Configure(context.Context, []byte) error { return nil }
func (f *fakeInjector) Inject(_ context.Context, r plugin.InjectRequest) (plugin.InjectResult, error) {
	f.got = r
	if r.Params.String("command") == "boom" {
		return plugin.InjectResult{}, errors.New("injector exploded")
	}
	return plugin.InjectResult{
		StartedAt: time.Unix(10, 0).UTC(), EndedAt: time.Unix(11, 0).UTC(), Outcome: plugin.OutcomeFailed, ExitCode: 3,
		Stdout: []byte("out"), Artifacts: []plugin.Artifact{{Kind: "file", Ref: "/tmp/x"}}, Host: "h",
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerEnvironment},
	}, nil
}
func (f *fakeInjector) Cleanup(_ context.Context, r plugin.CleanupRequest) (plugin.CleanupResult, error) {
	f.gotCleanup = r
	return plugin.CleanupResult{}, nil
}
func (f *fakeInjector) CheckPrerequisites(_ context.Context, r plugin.PrerequisitesRequest) ([]plugin.UnmetPrerequisite, error) {
	f.gotPrereq = r
	return nil, nil
}

// TestInjectorHostRoundTrip checks that the host of a multi-host target
// reaches the plugin in each of the three calls that act on a host.
func TestInjectorHostRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &fakeInjector{}
	inj := dispense(t, plugin.KindInjector, impl, nil).(plugin.Injector)
	if _, err := inj.CheckPrerequisites(ctx, plugin.PrerequisitesRequest{TestID: "t", Marker: "vigil-1", Host: "web1:2222"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inj.Inject(ctx, plugin.InjectRequest{TestID: "t", Marker: "vigil-1", Params: plugin.Params{"command": "true"}, Host: "web2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inj.Cleanup(ctx, plugin.CleanupRequest{TestID: "t", Marker: "vigil-1", Host: "10.0.0.3"}); err != nil {
		t.Fatal(err)
	}
	if impl.gotPrereq.Host != "web1:2222" || impl.got.Host != "web2" || impl.gotCleanup.Host != "10.0.0.3" {
		t.Fatalf("plugin got hosts %q, %q, %q", impl.gotPrereq.Host, impl.got.Host, impl.gotCleanup.Host)
	}
}

func TestInjectorRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &fakeInjector{}
	inj := dispense(t, plugin.KindInjector, impl, nil).(plugin.Injector)
	d, err := inj.Describe(ctx)
	if err != nil || d.Kind != plugin.KindInjector || !d.ShellParams()["command"] {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	req := plugin.InjectRequest{TestID: "t", Technique: "T1059.004", Marker: "vigil-1", Workdir: "/tmp/vigil-1",
		Params: plugin.Params{"command": "true", "n": 2}, Timeout: 5 * time.Second, Safety: "safe"}
	r, err := inj.Inject(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plugin.OutcomeFailed || r.ExitCode != 3 || string(r.Stdout) != "out" || r.Artifacts[0].Ref != "/tmp/x" ||
		r.MarkerLocations[0] != plugin.MarkerEnvironment || !r.StartedAt.Equal(time.Unix(10, 0)) {
		t.Fatalf("Inject = %+v", r)
	}
	if impl.got.Timeout != 5*time.Second || impl.got.Params.String("n") != "2" || impl.got.Workdir != "/tmp/vigil-1" {
		t.Fatalf("plugin got %+v", impl.got)
	}
	_, err = inj.Inject(ctx, plugin.InjectRequest{Params: plugin.Params{"command": "boom"}})
	if err == nil || err.Error() != "injector exploded" {
		t.Fatalf("Inject error = %v, want the plugin's message", err)
	}
}

func TestParamsDecodeStrict(t *testing.T) {
	var v struct {
		Command string `json:"command"`
	}
	if err := (plugin.Params{"command": "x", "comand": "typo"}).Decode(&v); err == nil {
		t.Fatal("Decode accepted an unknown param")
	}
}

func TestRegistryPanics(t *testing.T) {
	f := func() plugin.SIEM { return &fakeSIEM{} }
	plugin.RegisterSIEM("registry-test", f)
	for name, fn := range map[string]func(){
		"duplicate": func() { plugin.RegisterSIEM("registry-test", f) },
		"bad name":  func() { plugin.RegisterSIEM("Bad Name", f) },
		"nil":       func() { plugin.RegisterSIEM("nil-factory", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
