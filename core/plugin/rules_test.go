package plugin_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/vigilsec/vigil/core/plugin"
	pluginv1 "github.com/vigilsec/vigil/core/plugin/proto/v1"
)

// rulesSIEM answers ClaimedRules with canned rules or an error.
type rulesSIEM struct {
	fakeSIEM
	rules []plugin.Rule
	err   error
}

func (f *rulesSIEM) ClaimedRules(context.Context) ([]plugin.Rule, error) { return f.rules, f.err }

// oldSIEMPlugin serves a SIEM server generated before the Rules call
// existed: every call it lacks answers UNIMPLEMENTED, as an old plugin
// binary does.
type oldSIEMPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (oldSIEMPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterSIEMServer(s, pluginv1.UnimplementedSIEMServer{})
	return nil
}

func (oldSIEMPlugin) GRPCClient(ctx context.Context, b *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return (&plugin.SIEMPlugin{}).GRPCClient(ctx, b, c)
}

func TestClaimedRulesRoundTrip(t *testing.T) {
	rules := []plugin.Rule{
		{ID: "r1", Name: "Cron edited", Techniques: []string{"T1053.003"}, Enabled: true, Source: "rules/sigma/linux/cron.yml", Language: "sigma"},
		{ID: "r2", Name: "Shell spawned", Techniques: []string{"T1059", "T1059.004"}, Source: "saved search SA/Shell", Query: "index=main sh", Language: "spl"},
		{ID: "r3", Name: "Untagged"},
	}
	cases := []struct {
		name    string
		impl    plugin.SIEM
		want    []plugin.Rule
		wantErr string
		unsupp  bool
	}{
		{name: "rules", impl: &rulesSIEM{rules: rules}, want: rules},
		{name: "no rules", impl: &rulesSIEM{}, want: []plugin.Rule{}},
		{name: "plugin error", impl: &rulesSIEM{err: errors.New("acme: list rules: 403 Forbidden")}, wantErr: "acme: list rules: 403 Forbidden"},
		{name: "SIEMBase default", impl: &fakeSIEM{}, unsupp: true},
		{name: "wrapped ErrUnsupported", impl: &rulesSIEM{err: errors.Join(errors.New("acme: no rules API"), plugin.ErrUnsupported)}, unsupp: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := dispense(t, plugin.KindSIEM, nil, tc.impl).(plugin.SIEM)
			got, err := s.ClaimedRules(context.Background())
			switch {
			case tc.unsupp:
				if !errors.Is(err, plugin.ErrUnsupported) {
					t.Fatalf("error = %v, want ErrUnsupported", err)
				}
			case tc.wantErr != "":
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tc.want):
				t.Fatalf("ClaimedRules = %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestClaimedRulesOldPlugin: a plugin built before the call existed is
// "unsupported", not an error.
func TestClaimedRulesOldPlugin(t *testing.T) {
	client, _ := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.KindSIEM: oldSIEMPlugin{}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(plugin.KindSIEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.(plugin.SIEM).ClaimedRules(context.Background()); !errors.Is(err, plugin.ErrUnsupported) {
		t.Fatalf("error = %v, want ErrUnsupported", err)
	}
}
