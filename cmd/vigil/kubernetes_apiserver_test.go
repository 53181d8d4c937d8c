package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/internal/kubeapitest"
)

// `vigil run --platform kubernetes` against a real kube-apiserver
// (internal/kubeapitest: no node, so pods stay Pending), with the local
// SIEM following that server's audit log (mode logs): the tests whose
// technique is an API call the control plane sees are detected, tied by
// the marker in the audit event's userAgent; those that need a running
// container are errors that say no command ran, never misses; the
// namespace is left as it was.
func TestKubernetesPackAgainstAPIServer(t *testing.T) {
	s := kubeapitest.Start(t)
	s.Namespace(t, "vigil-chaos", map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}, kubeapitest.DeployRole(t))
	before := s.NamespaceState(t, "vigil-chaos")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.toml")
	toml := fmt.Sprintf(`[run]
poll_interval = "500ms"
timeout = "20s"

[[siem]]
name = "cluster-audit"
plugin = "local"
[siem.params]
mode = "logs"
kubernetes_audit_logs = [%q]
kubernetes_cluster = "kube-apiserver.test"

[[target]]
name = "cluster"
plugin = "k8s"
[target.params]
kubeconfig = %q
namespace = "vigil-chaos"
pod_start_timeout = "3s"
`, s.AuditLog, s.Kubeconfig)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	stdout, stderr, code := vigil(t, "run", "--config", cfg, "--platform", "kubernetes", "--out", out, "--no-history")
	t.Logf("exit %d\n%s%s", code, stdout, stderr)
	if code != 3 {
		t.Errorf("exit %d, want 3 (errors, no miss: four tests need a running container)", code)
	}

	want := map[string]struct {
		status measure.Status
		errHas string
	}{
		"k8s-anonymous-api-probe":          {status: measure.Detected},
		"k8s-privileged-pod":               {status: measure.Detected},
		"k8s-serviceaccount-token-secrets": {status: measure.Detected},
		"k8s-pod-exec":                     {measure.Error, "no command ran: the victim was admitted, but pod vigil-chaos/"},
		"k8s-exec-new-file":                {measure.Error, "does not have a host assigned"},
		"k8s-hostnetwork-capture":          {measure.Error, "nothing was captured"},
		"k8s-metadata-probe":               {measure.Error, "the metadata endpoint was not probed"},
	}
	run := readResults(t, out)
	seen := map[string]int{}
	for _, r := range run.Results {
		seen[r.TestID]++
		w, ok := want[r.TestID]
		if !ok {
			t.Errorf("unexpected result for %s", r.TestID)
			continue
		}
		if r.Status != w.status {
			t.Errorf("%s (%s): %s %s%s, want %s", r.TestID, r.Technique, r.Status, r.Error, r.Reason, w.status)
		}
		switch w.status {
		case measure.Detected:
			if r.Correlation != "marker:user_agent" || r.LatencyMS == nil || r.Host != "127.0.0.1" {
				t.Errorf("%s: correlation %q latency %v host %q, want the marker in the userAgent", r.TestID, r.Correlation, r.LatencyMS, r.Host)
			}
		case measure.Error:
			if !strings.Contains(r.Error, w.errHas) {
				t.Errorf("%s: error %q does not say %q", r.TestID, r.Error, w.errHas)
			}
		}
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("no result for %s", id)
		}
	}
	// The token test has two expectations (T1528, T1552.007): both met.
	if n := seen["k8s-serviceaccount-token-secrets"]; n != 1 {
		t.Errorf("%d results for k8s-serviceaccount-token-secrets", n)
	}
	if after := s.NamespaceState(t, "vigil-chaos"); !slices.Equal(after, before) {
		t.Errorf("namespace after the run:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}
