package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/kubeapitest"
)

var updateK8sRecordings = flag.Bool("update-k8s-recordings", false, "write rules/telemetry/k8s-*.jsonl from the audit log of TestPackAgainstAPIServer's real API server")

// recordingMarker is the run marker of the shipped Kubernetes recordings.
const recordingMarker = "vigil-5e1f0c3a9b7d"

// recordingHost is the host the shipped Kubernetes recordings name.
const recordingHost = "kube-apiserver.test"

// auditCheck is one audit event a test must cause: the first event with
// these field values (flattened by telemetry.FromAudit).
type auditCheck map[string]string

// TestPackAgainstAPIServer runs every action of the Kubernetes pack
// against a real kube-apiserver (internal/kubeapitest: real etcd, RBAC with
// the Role of vigil's deploy manifest, Pod Security admission, a
// RequestResponse audit policy) with no node: pods are admitted and stay
// Pending. Each test must report what happened honestly (the admission or
// the API call the technique is about succeeded; what needed a running
// container failed, saying so), cause the audit events its rules read, and
// leave the namespace as it found it. With -update-k8s-recordings the audit
// events of each test become rules/telemetry/k8s-<test>.jsonl.
func TestPackAgainstAPIServer(t *testing.T) {
	s := kubeapitest.Start(t)
	t.Logf("kube-apiserver %s at %s", s.Version, s.URL)
	role := kubeapitest.DeployRole(t)
	s.Namespace(t, "vigil-chaos", map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}, role)
	// Where Pod Security admission enforces baseline, the privileged and
	// host-network pods are refused: the hardened answer.
	s.Namespace(t, "vigil-hardened", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}, role)

	cfg := "kubeconfig = " + quote(s.Kubeconfig) + "\npod_start_timeout = '3s'\ncleanup_timeout = '30s'"
	tests := []struct {
		id, action string
		namespace  string // default vigil-chaos
		outcome    plugin.Outcome
		errHas     []string
		details    map[string]any
		audit      []auditCheck
	}{
		{
			id: "k8s-anonymous-api-probe", action: ActionAnonymousProbe, outcome: plugin.OutcomeSucceeded,
			details: map[string]any{"probes": []any{
				map[string]any{"path": "/api/v1/pods", "status": 403.0},
				map[string]any{"path": "/api/v1/nodes", "status": 403.0},
				map[string]any{"path": "/api/v1/secrets", "status": 403.0},
			}},
			audit: []auditCheck{
				{"verb": "list", "objectRef.resource": "pods", "user.username": "system:anonymous", "responseStatus.code": "403"},
				{"verb": "list", "objectRef.resource": "secrets", "user.username": "system:anonymous", "responseStatus.code": "403"},
			},
		},
		{
			id: "k8s-privileged-pod", action: ActionPrivilegedPod, outcome: plugin.OutcomeSucceeded,
			details: map[string]any{"ran": false, "phase": "Pending", "findings": []any{"the cluster admitted a privileged pod in namespace vigil-chaos"}},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "pods", "user.username": kubeapitest.RunnerUser, "responseStatus.code": "201",
					"requestObject.spec.containers.securityContext.privileged": "true", "responseObject.status.phase": "Pending"},
			},
		},
		{
			id: "k8s-pod-exec", action: ActionPodExec, outcome: plugin.OutcomeFailed,
			errHas:  []string{"no command ran", "Pending after 3s", "no node was assigned", "does not have a host assigned"},
			details: map[string]any{"ran": false},
			audit: []auditCheck{
				{"objectRef.resource": "pods", "objectRef.subresource": "exec", "user.username": kubeapitest.RunnerUser, "responseStatus.code": "400"},
			},
		},
		{
			id: "k8s-hostnetwork-capture", action: ActionHostNetworkCapture, outcome: plugin.OutcomeFailed,
			errHas:  []string{"admitted the host-network pod, but pod vigil-chaos/vigil-5e1f0c3a9b7d-capture is still Pending after 3s", "nothing was captured"},
			details: map[string]any{"ran": false},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "pods", "responseStatus.code": "201", "requestObject.spec.hostNetwork": "true"},
			},
		},
		{
			id: "k8s-exec-new-file", action: ActionExecNewFile, outcome: plugin.OutcomeFailed,
			errHas:  []string{"no command ran", "does not have a host assigned"},
			details: map[string]any{"ran": false},
			audit: []auditCheck{
				{"objectRef.resource": "pods", "objectRef.subresource": "exec", "responseStatus.code": "400"},
			},
		},
		{
			id: "k8s-serviceaccount-token-secrets", action: ActionServiceAccountList, outcome: plugin.OutcomeSucceeded,
			details: map[string]any{"secrets_status": 403.0},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "serviceaccounts", "objectRef.subresource": "token", "responseStatus.code": "201"},
				{"verb": "list", "objectRef.resource": "secrets", "user.username": "system:serviceaccount:vigil-chaos:" + recordingMarker + "-sa", "responseStatus.code": "403"},
			},
		},
		{
			id: "k8s-metadata-probe", action: ActionMetadataProbe, outcome: plugin.OutcomeFailed,
			errHas:  []string{"admitted the probing pod, but pod vigil-chaos/vigil-5e1f0c3a9b7d-metadata is still Pending after 3s", "the metadata endpoint was not probed"},
			details: map[string]any{"ran": false},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "pods", "responseStatus.code": "201"},
			},
		},
		{
			id: "k8s-privileged-pod", action: ActionPrivilegedPod, namespace: "vigil-hardened", outcome: plugin.OutcomeFailed,
			errHas: []string{`create pods in namespace "vigil-hardened": forbidden (403; RBAC or admission refused it)`, `violates PodSecurity "baseline:latest": privileged`},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "pods", "responseStatus.code": "403", "annotations.pod-security.kubernetes.io/enforce-policy": "baseline:latest"},
			},
		},
		{
			id: "k8s-hostnetwork-capture", action: ActionHostNetworkCapture, namespace: "vigil-hardened", outcome: plugin.OutcomeFailed,
			errHas: []string{"forbidden (403", `violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)`},
			audit: []auditCheck{
				{"verb": "create", "objectRef.resource": "pods", "responseStatus.code": "403", "requestObject.spec.hostNetwork": "true"},
			},
		},
	}
	for _, tc := range tests {
		ns := tc.namespace
		if ns == "" {
			ns = "vigil-chaos"
		}
		t.Run(ns+"/"+tc.id, func(t *testing.T) {
			before := s.NamespaceState(t, ns)
			mark := s.AuditMark(t)
			x := &Injector{poll: 500 * time.Millisecond}
			if err := x.Configure(context.Background(), []byte(cfg+"\nnamespace = "+quote(ns))); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			res, err := x.Inject(ctx, plugin.InjectRequest{TestID: tc.id, Marker: recordingMarker, Params: plugin.Params{"action": tc.action}, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s %s\n%s", tc.id, res.Outcome, res.Error, res.Stdout)
			if res.Outcome != tc.outcome {
				t.Errorf("outcome %s (%s), want %s", res.Outcome, res.Error, tc.outcome)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(res.Error, s) {
					t.Errorf("error %q does not say %q", res.Error, s)
				}
			}
			var details map[string]any
			if err := json.Unmarshal(res.Details, &details); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.details {
				if got := details[k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("details[%s] = %v, want %v", k, got, want)
				}
			}

			raw := s.AuditEvents(t, mark, recordingMarker)
			var events []telemetry.Event
			for _, r := range raw {
				ev, err := telemetry.FromAudit(r, recordingHost)
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, ev)
			}
			for _, want := range tc.audit {
				if !slices.ContainsFunc(events, func(ev telemetry.Event) bool { return matches(&ev, want) }) {
					t.Errorf("no audit event with %v among the %d of the test:\n%s", want, len(events), summary(events))
				}
			}
			if *updateK8sRecordings && ns == "vigil-chaos" {
				var buf bytes.Buffer
				if err := telemetry.Record(&buf, tc.id, recordingMarker, recordingHost, events); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("..", "..", "..", "rules", "telemetry", tc.id+".jsonl"), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			cr, err := x.Cleanup(ctx, plugin.CleanupRequest{TestID: tc.id, Marker: recordingMarker, Artifacts: res.Artifacts, Timeout: 30 * time.Second})
			if err != nil || cr.Error != "" {
				t.Errorf("cleanup: %v %s", err, cr.Error)
			}
			if after := s.NamespaceState(t, ns); !slices.Equal(after, before) {
				t.Errorf("namespace after cleanup:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}
}

// matches says whether ev has every field value of want (a list field
// matches when it holds the value).
func matches(ev *telemetry.Event, want auditCheck) bool {
	for k, v := range want {
		got, ok := ev.Fields[k]
		if !ok {
			return false
		}
		switch g := got.(type) {
		case string:
			if g != v {
				return false
			}
		case []string:
			if !slices.Contains(g, v) {
				return false
			}
		default:
			if fmt.Sprint(g) != v {
				return false
			}
		}
	}
	return true
}

// summary lists events by verb, resource, code and user, one per line.
func summary(events []telemetry.Event) string {
	var b strings.Builder
	for i := range events {
		ev := &events[i]
		fmt.Fprintf(&b, "  %s %s/%s %s by %s: %s\n", ev.Get("verb"), ev.Get("objectRef.resource"), ev.Get("objectRef.subresource"), ev.Get("requestURI"), ev.Get("user.username"), ev.Get("responseStatus.code"))
	}
	return b.String()
}

// An API server started with --allow-privileged=false answers a privileged
// pod with 422 Invalid ("disallowed by cluster policy"): the error says it
// was the server's own flag, not RBAC or admission.
func TestAPIErrorNamesTheRefuser(t *testing.T) {
	gr := schema.GroupKind{Kind: "Pod"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"allow-privileged", apierrors.NewInvalid(gr, "p", field.ErrorList{field.Forbidden(field.NewPath("spec", "containers").Index(0).Child("securityContext", "privileged"), "disallowed by cluster policy")}),
			`k8s: create pods in namespace "ns": refused by the API server itself (422; it runs with --allow-privileged=false, or its own policy forbids host namespaces): Pod "p" is invalid: spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy`},
		{"other invalid", apierrors.NewInvalid(gr, "p", field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}),
			`k8s: create pods in namespace "ns": 422: Pod "p" is invalid: spec.containers: Required value`},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p", errors.New("nope")),
			`k8s: create pods in namespace "ns": forbidden (403; RBAC or admission refused it): pods "p" is forbidden: nope`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiError("create", "pods", "ns", tc.err).Error(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A pod still Pending is reported with what the scheduler and the kubelet
// wrote in its status.
func TestPendingReason(t *testing.T) {
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"no scheduler", corev1.Pod{}, "no node was assigned and no scheduler reported on it (a cluster without a scheduler or nodes)"},
		{"unschedulable", corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 node(s) had untolerated taint."}}}},
			"not scheduled: Unschedulable 0/3 nodes are available: 3 node(s) had untolerated taint."},
		{"image pull", corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "vigil", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image \"busybox:1.36\""}}}}}},
			`on node node-1, container vigil waiting: ImagePullBackOff Back-off pulling image "busybox:1.36"`},
		{"scheduled, no status yet", corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}}, "scheduled on node node-1, which has not started it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pendingReason(&tc.pod); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
