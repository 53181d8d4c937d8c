package k8s

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/rules"
)

// The shipped recordings of the Kubernetes pack (rules/telemetry/k8s-*.jsonl)
// stay true to the injector: every recorded audit event is a request the
// injector really sends, run with the recording's marker and namespace
// against the fake API server, with the same verb, requestURI and
// User-Agent and, for writes, the same requestObject (both flattened by
// telemetry.FromAudit), but for the fields the API server defaults
// (serverDefaulted). The recordings themselves come from a real API server
// (TestPackAgainstAPIServer -update-k8s-recordings).
func TestRecordingsMatchRequests(t *testing.T) {
	tel, err := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"k8s-anonymous-api-probe":          ActionAnonymousProbe,
		"k8s-privileged-pod":               ActionPrivilegedPod,
		"k8s-pod-exec":                     ActionPodExec,
		"k8s-exec-new-file":                ActionExecNewFile,
		"k8s-hostnetwork-capture":          ActionHostNetworkCapture,
		"k8s-serviceaccount-token-secrets": ActionServiceAccountList,
		"k8s-metadata-probe":               ActionMetadataProbe,
	}
	for id, action := range tests {
		t.Run(id, func(t *testing.T) {
			rec, err := telemetry.Load(tel, id)
			if err != nil {
				t.Fatal(err)
			}
			ns := rec.Events[0].Get("objectRef.namespace")
			if ns == "" {
				ns = "vigil-chaos"
			}
			f := newFakeAPI(t)
			f.logs["capture"] = "10 packets captured\n"
			f.logs["metadata"] = "HTTP/1.1 200 OK\n"
			x := &Injector{poll: time.Millisecond}
			if err := x.Configure(context.Background(), []byte("kubeconfig = "+quote(kubeconfig(t, f))+"\nnamespace = "+quote(ns))); err != nil {
				t.Fatal(err)
			}
			res, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: id, Marker: rec.Marker, Params: plugin.Params{"action": action}, Timeout: 10 * time.Second})
			if err != nil || res.Outcome != plugin.OutcomeSucceeded {
				t.Fatalf("inject: %v %s %s", err, res.Outcome, res.Error)
			}
			sent := map[string]telemetry.Event{} // "verb requestURI" → the request as an audit event
			for _, r := range f.Requests() {
				uri := r.Path
				if len(r.Query) > 0 {
					uri += "?" + r.Query.Encode()
				}
				verb := map[string]string{http.MethodPost: "create", http.MethodGet: "get", http.MethodDelete: "delete"}[r.Method]
				a := map[string]any{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "requestURI": uri,
					"userAgent": r.Header.Get("User-Agent"), "stageTimestamp": "2026-11-23T10:00:00Z"}
				if len(r.Body) > 0 {
					a["requestObject"] = json.RawMessage(r.Body)
				}
				b, _ := json.Marshal(a)
				ev, err := telemetry.FromAudit(b, "")
				if err != nil {
					t.Fatal(err)
				}
				sent[verb+" "+uri] = ev
			}
			for i, ev := range rec.Events {
				verb := ev.Get("verb")
				if verb == "list" {
					verb = "get"
				}
				key := verb + " " + ev.Get("requestURI")
				req, ok := sent[key]
				if !ok {
					t.Errorf("event %d: %s: the injector sends no such request", i, key)
					continue
				}
				if ua := req.Get("userAgent"); ua != ev.Get("userAgent") {
					t.Errorf("event %d: userAgent %q, the injector sends %q", i, ev.Get("userAgent"), ua)
				}
				got, want := prefixed(&ev, "requestObject."), prefixed(&req, "requestObject.")
				if lvl := ev.Get("level"); (lvl == "Request" || lvl == "RequestResponse") && len(want) > 0 && len(got) == 0 {
					t.Errorf("event %d (%s): level %s without requestObject", i, key, lvl)
				}
				for k := range got {
					if _, sent := want[k]; !sent && serverDefaulted[strings.TrimPrefix(k, "requestObject.")] {
						delete(got, k)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("event %d (%s): requestObject differs\nrecorded %v\nsent     %v", i, key, got, want)
				}
			}
		})
	}
}

// serverDefaulted are the pod fields the API server fills in with their
// defaults before it writes requestObject to the audit log (seen in the
// audit log of TestPackAgainstAPIServer): a recording may hold them though
// the injector does not send them.
var serverDefaulted = map[string]bool{
	"spec.containers.imagePullPolicy":          true,
	"spec.containers.terminationMessagePath":   true,
	"spec.containers.terminationMessagePolicy": true,
	"spec.dnsPolicy":                           true,
	"spec.enableServiceLinks":                  true,
	"spec.schedulerName":                       true,
}

// prefixed returns the fields of ev under prefix.
func prefixed(ev *telemetry.Event, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range ev.Fields {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}
