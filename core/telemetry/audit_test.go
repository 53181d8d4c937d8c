package telemetry

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFromAudit(t *testing.T) {
	tests := []struct {
		file string
		time string
		want map[string]any // a subset of the fields
		none []string       // fields that must be absent
	}{
		{
			file: "testdata/audit-exec.json", time: "2025-08-27T16:40:51.681Z",
			want: map[string]any{
				"verb": "get", "objectRef.resource": "pods", "objectRef.subresource": "exec", "objectRef.namespace": "pods-1229",
				"user.username": "kubernetes-admin", "user.groups": []string{"kubeadm:cluster-admins", "system:authenticated"},
				"responseStatus.code": "101", "sourceIPs": []string{"172.18.0.1"}, "stage": "ResponseComplete",
				"requestURI": "/api/v1/namespaces/pods-1229/pods/pod-exec/exec?command=echo&command=hello&container=main&stderr=1&stdout=1",
				"annotations.authorization.k8s.io/decision": "allow", "annotations.authorization.k8s.io/reason": "",
			},
			none: []string{"responseStatus.metadata", "requestObject.spec.hostNetwork"},
		},
		{
			file: "testdata/audit-privileged-pod.json", time: "2026-11-23T10:00:00.12Z",
			want: map[string]any{
				"verb": "create", "responseStatus.code": "201", "requestObject.spec.hostNetwork": "true",
				// Arrays add no path element: one value per container.
				"requestObject.spec.containers.securityContext.privileged": []string{"false", "true"},
				"requestObject.spec.containers.name":                       []string{"a", "b"},
				"requestObject.spec.containers.command":                    []string{"sleep", "3600"},
			},
			none: []string{"requestObject.spec.initContainers", "requestObject.spec.containers.0.name"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := FromAudit(b, "api.example")
			if err != nil {
				t.Fatal(err)
			}
			if ev.Source != KubernetesAudit || ev.Host != "api.example" || ev.Time.Format(time.RFC3339Nano) != tc.time {
				t.Errorf("source %v host %q time %s", ev.Source, ev.Host, ev.Time.Format(time.RFC3339Nano))
			}
			for k, v := range tc.want {
				if !reflect.DeepEqual(ev.Fields[k], v) {
					t.Errorf("%s = %#v, want %#v", k, ev.Fields[k], v)
				}
			}
			for _, k := range tc.none {
				if _, ok := ev.Fields[k]; ok {
					t.Errorf("%s present: %#v", k, ev.Fields[k])
				}
			}
		})
	}
}

func TestFromAuditRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{`, "event: audit event: unexpected EOF"},
		{`{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}`, `event: audit event: kind "EventList", want Event`},
		{`{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1"}`, `event: audit event: apiVersion "audit.k8s.io/v1beta1", want audit.k8s.io/v1`},
		{`{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}`, "event: audit event: no stageTimestamp or requestReceivedTimestamp"},
	}
	for _, tc := range tests {
		_, err := FromAudit([]byte(tc.in), "h")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}
