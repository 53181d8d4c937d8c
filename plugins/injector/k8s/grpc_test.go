package k8s

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// Through the plugin protocol, as the engine runs it (vigil plugin serve
// injector k8s): the config, the params, the details, the artifacts and the
// marker locations cross gRPC, and Cleanup deletes what Inject created from
// the artifacts it got back.
func TestOverGRPC(t *testing.T) {
	f := newFakeAPI(t)
	x := plugintest.Injector(t, &Injector{poll: time.Millisecond})
	ctx := context.Background()
	d, err := x.Describe(ctx)
	if err != nil || d.Name != Name || !reflect.DeepEqual(d.MarkerLocations, []plugin.MarkerLocation{plugin.MarkerUserAgent, plugin.MarkerCommandLine}) {
		t.Fatalf("describe %+v %v", d, err)
	}
	if err := x.Configure(ctx, []byte("kubeconfig = "+quote(kubeconfig(t, f))+"\nnamespace = "+quote(testNS))); err != nil {
		t.Fatal(err)
	}
	probs, err := x.Validate(ctx, plugin.ValidateRequest{Params: plugin.Params{"action": "nope"}})
	if err != nil || len(probs) != 1 || probs[0].Subject != "action" {
		t.Errorf("validate: %v %v", probs, err)
	}
	res, err := x.Inject(ctx, plugin.InjectRequest{TestID: "k8s-test", Marker: testMarker, Params: plugin.Params{"action": ActionPodExec}, Timeout: 10 * time.Second})
	if err != nil || res.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("inject: %v %s %s", err, res.Outcome, res.Error)
	}
	want := []plugin.Artifact{{Kind: "k8s-object", Ref: "pods/" + testNS + "/" + testMarker + "-victim"}}
	if !reflect.DeepEqual(res.Artifacts, want) || !strings.Contains(string(res.Details), `"exec_pod":"`+testMarker+`-victim"`) {
		t.Errorf("artifacts %v details %s", res.Artifacts, res.Details)
	}
	if !reflect.DeepEqual(res.MarkerLocations, []plugin.MarkerLocation{plugin.MarkerUserAgent, plugin.MarkerCommandLine}) {
		t.Errorf("marker locations %v", res.MarkerLocations)
	}
	cr, err := x.Cleanup(ctx, plugin.CleanupRequest{TestID: "k8s-test", Marker: testMarker, Artifacts: res.Artifacts})
	if err != nil || cr.Error != "" {
		t.Errorf("cleanup: %v %s", err, cr.Error)
	}
	if left := f.Objects(); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}
