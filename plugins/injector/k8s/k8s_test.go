package k8s

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vigilsec/vigil/core/plugin"
)

const (
	testMarker = "vigil-0123456789ab"
	testNS     = "vigil-test"
)

// kubeconfig writes testdata/kubeconfig.yaml pointing at the fake (its URL
// and CA certificate) and returns its path.
func kubeconfig(t *testing.T, f *fakeAPI) string {
	t.Helper()
	b, err := os.ReadFile("testdata/kubeconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
	kc := strings.NewReplacer("SERVER", f.srv.URL, "CADATA", ca).Replace(string(b))
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// injector returns an injector configured for the fake API server.
func injector(t *testing.T, f *fakeAPI, extra string) *Injector {
	t.Helper()
	x := &Injector{poll: time.Millisecond}
	cfg := "kubeconfig = " + quote(kubeconfig(t, f)) + "\nnamespace = " + quote(testNS) + "\n" + extra
	if err := x.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return x
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func inject(t *testing.T, x *Injector, params plugin.Params) plugin.InjectResult {
	t.Helper()
	res, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: "k8s-test", Marker: testMarker, Params: params, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	return res
}

func cleanup(t *testing.T, x *Injector, arts []plugin.Artifact) plugin.CleanupResult {
	t.Helper()
	res, err := x.Cleanup(context.Background(), plugin.CleanupRequest{TestID: "k8s-test", Marker: testMarker, Artifacts: arts, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	return res
}

const (
	podsPath = "/api/v1/namespaces/" + testNS + "/pods"
	sasPath  = "/api/v1/namespaces/" + testNS + "/serviceaccounts"
	sel      = "labelSelector=vigil.run-marker%3D" + testMarker
)

// cleanupRequests are the requests of a Cleanup after objs were created.
func cleanupRequests(objs ...string) []string {
	var out []string
	for _, o := range objs {
		out = append(out, "DELETE /api/v1/namespaces/"+testNS+"/"+o)
	}
	return append(out,
		"DELETE "+podsPath+"?"+sel,
		"DELETE "+sasPath+"?"+sel,
		"GET "+podsPath+"?"+sel,
		"GET "+sasPath+"?"+sel,
	)
}

// podBody decodes the pod of a create request.
func podBody(t *testing.T, r request) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("%s: body: %v", r, err)
	}
	return p
}

// checkPod asserts what every pod the injector creates carries.
func checkPod(t *testing.T, p corev1.Pod, suffix, image string) {
	t.Helper()
	if p.Name != testMarker+"-"+suffix || p.Labels[LabelRunMarker] != testMarker || p.Annotations[AnnotationMarker] != testMarker || p.Annotations[AnnotationTestID] != "k8s-test" {
		t.Errorf("pod metadata %+v: want name %s-%s, the marker label and annotations", p.ObjectMeta, testMarker, suffix)
	}
	c := p.Spec.Containers
	if len(c) != 1 || c[0].Image != image || len(c[0].Command) < 4 || c[0].Command[0] != "sh" || c[0].Command[3] != testMarker {
		t.Errorf("containers %+v: want one %s container running sh -c SCRIPT %s", c, image, testMarker)
	}
	if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod spec: want no service account token and restartPolicy Never")
	}
}

func TestActions(t *testing.T) {
	victimGet := "GET " + podsPath + "/" + testMarker + "-victim"
	execPath := "GET " + podsPath + "/" + testMarker + "-victim/exec?"
	tests := []struct {
		name   string
		params plugin.Params
		setup  func(*fakeAPI)
		// want is every request, in order; then the cleanup's.
		want    []string
		created []string
		check   func(t *testing.T, rs []request, res plugin.InjectResult, details map[string]any)
	}{
		{
			name:   "anonymous probe",
			params: plugin.Params{"action": ActionAnonymousProbe},
			setup:  func(f *fakeAPI) { f.anon["/api/v1/nodes"] = 200 },
			want:   []string{"GET /api/v1/pods", "GET /api/v1/nodes", "GET /api/v1/secrets"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				for _, r := range rs[:3] {
					if h := r.Header.Get("Authorization"); h != "" {
						t.Errorf("%s carries credentials", r)
					}
					if !strings.Contains(r.Header.Get("User-Agent"), testMarker) {
						t.Errorf("%s: User-Agent %q lacks the marker", r, r.Header.Get("User-Agent"))
					}
				}
				probes, _ := json.Marshal(d["probes"])
				if string(probes) != `[{"path":"/api/v1/pods","status":403},{"path":"/api/v1/nodes","status":200},{"path":"/api/v1/secrets","status":403}]` {
					t.Errorf("probes %s", probes)
				}
				if f, _ := d["findings"].([]any); len(f) != 1 || !strings.Contains(f[0].(string), "/api/v1/nodes answered 200") {
					t.Errorf("findings %v: want the anonymous 200 on nodes", d["findings"])
				}
				if !strings.Contains(string(res.Stdout), "FINDING: anonymous GET /api/v1/nodes answered 200") {
					t.Errorf("stdout %q does not report the finding", res.Stdout)
				}
			},
		},
		{
			name:    "privileged pod",
			params:  plugin.Params{"action": ActionPrivilegedPod},
			want:    []string{"POST " + podsPath, "GET " + podsPath + "/" + testMarker + "-privileged"},
			created: []string{"pods/" + testMarker + "-privileged"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				p := podBody(t, rs[0])
				checkPod(t, p, "privileged", DefaultImage)
				sc := p.Spec.Containers[0].SecurityContext
				if sc == nil || sc.Privileged == nil || !*sc.Privileged {
					t.Errorf("securityContext %+v: want privileged: true", sc)
				}
				if !strings.Contains(string(rs[0].Body), `"privileged":true`) {
					t.Errorf("body %s lacks \"privileged\":true", rs[0].Body)
				}
			},
		},
		{
			name:    "pod exec",
			params:  plugin.Params{"action": ActionPodExec},
			want:    []string{"POST " + podsPath, victimGet, execPath + "command=sh&command=-c&command=id+%26%26+hostname&command=" + testMarker + "&container=vigil&stderr=true&stdout=true"},
			created: []string{"pods/" + testMarker + "-victim"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				checkPod(t, podBody(t, rs[0]), "victim", DefaultImage)
				h := rs[2].Header
				if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
					t.Errorf("exec headers %v: want a WebSocket upgrade", h)
				}
				if !strings.Contains(h.Get("Sec-Websocket-Protocol"), "v5.channel.k8s.io") {
					t.Errorf("Sec-Websocket-Protocol %q: want v5.channel.k8s.io", h.Get("Sec-Websocket-Protocol"))
				}
				if h.Get("Authorization") != "Bearer "+kubeconfigToken || !strings.Contains(h.Get("User-Agent"), testMarker) {
					t.Errorf("exec: want the target's credentials and the marker in the User-Agent")
				}
				if !strings.Contains(string(res.Stdout), "exit 0: uid=0(root)") {
					t.Errorf("stdout %q", res.Stdout)
				}
			},
		},
		{
			name:   "pod exec in an existing pod",
			params: plugin.Params{"action": ActionPodExec, "pod": "existing", "container": "app"},
			want:   []string{"GET " + podsPath + "/existing/exec?command=sh&command=-c&command=id+%26%26+hostname&command=" + testMarker + "&container=app&stderr=true&stdout=true"},
		},
		{
			name:   "host network capture",
			params: plugin.Params{"action": ActionHostNetworkCapture},
			setup: func(f *fakeAPI) {
				f.logs["capture"] = "10 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n"
			},
			want:    []string{"POST " + podsPath, "GET " + podsPath + "/" + testMarker + "-capture", "GET " + podsPath + "/" + testMarker + "-capture/log?container=vigil&limitBytes=16384&tailLines=20"},
			created: []string{"pods/" + testMarker + "-capture"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				p := podBody(t, rs[0])
				checkPod(t, p, "capture", DefaultCaptureImage)
				if !p.Spec.HostNetwork || !strings.Contains(string(rs[0].Body), `"hostNetwork":true`) {
					t.Errorf("body %s: want hostNetwork: true", rs[0].Body)
				}
				if !strings.Contains(p.Spec.Containers[0].Command[2], "timeout 5 tcpdump") {
					t.Errorf("command %q: want a bounded tcpdump", p.Spec.Containers[0].Command)
				}
				if d["packets_captured"] != float64(10) {
					t.Errorf("packets_captured %v", d["packets_captured"])
				}
			},
		},
		{
			name:    "new file executed in a container",
			params:  plugin.Params{"action": ActionExecNewFile},
			want:    []string{"POST " + podsPath, victimGet, execPath + "command=sh&command=-c&command=f%3D%22%2Ftmp%2F%240.sh%22%3B+printf+%27%23%21%2Fbin%2Fsh%5Cnecho+%22new+executable+%240+ran%22%5Cn%27+%3E+%22%24f%22+%26%26+chmod+%2Bx+%22%24f%22+%26%26+%22%24f%22%3B+rc%3D%24%3F%3B+rm+-f+%22%24f%22%3B+exit+%24rc&command=" + testMarker + "&container=vigil&stderr=true&stdout=true"},
			created: []string{"pods/" + testMarker + "-victim"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				if d["writable"] != true || d["file"] != "/tmp/"+testMarker+".sh" {
					t.Errorf("details %v: want writable true and the file", d)
				}
			},
		},
		{
			name:   "service account token lists secrets",
			params: plugin.Params{"action": ActionServiceAccountList},
			setup:  func(f *fakeAPI) { f.secrets = 3 },
			want: []string{
				"POST " + sasPath,
				"POST " + sasPath + "/" + testMarker + "-sa/token",
				"GET /api/v1/namespaces/" + testNS + "/secrets",
			},
			created: []string{"serviceaccounts/" + testMarker + "-sa"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				if !strings.Contains(string(rs[1].Body), `"expirationSeconds":600`) {
					t.Errorf("TokenRequest %s: want expirationSeconds 600", rs[1].Body)
				}
				if h := rs[2].Header.Get("Authorization"); h != "Bearer "+issuedToken {
					t.Errorf("secrets listed with %q, want the issued token", h)
				}
				if !strings.Contains(rs[2].Header.Get("User-Agent"), testMarker) {
					t.Errorf("the stolen-token request lacks the marker in its User-Agent")
				}
				if d["secrets_listed"] != float64(3) || d["secrets_status"] != float64(200) {
					t.Errorf("details %v", d)
				}
			},
		},
		{
			name:   "service account token denied secrets",
			params: plugin.Params{"action": ActionServiceAccountList, "service_account": "default"},
			want: []string{
				"POST " + sasPath + "/default/token",
				"GET /api/v1/namespaces/" + testNS + "/secrets",
			},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				if d["secrets_status"] != float64(403) || d["findings"] != nil {
					t.Errorf("details %v: want status 403 and no finding", d)
				}
			},
		},
		{
			name:    "metadata probe",
			params:  plugin.Params{"action": ActionMetadataProbe},
			setup:   func(f *fakeAPI) { f.logs["metadata"] = "HTTP/1.1 200 OK\n" },
			want:    []string{"POST " + podsPath, "GET " + podsPath + "/" + testMarker + "-metadata", "GET " + podsPath + "/" + testMarker + "-metadata/log?container=vigil&limitBytes=16384&tailLines=20"},
			created: []string{"pods/" + testMarker + "-metadata"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				p := podBody(t, rs[0])
				checkPod(t, p, "metadata", DefaultImage)
				cmd := p.Spec.Containers[0].Command
				if want := []string{DefaultMetadataHeader, DefaultMetadataURL}; !reflect.DeepEqual(cmd[4:], want) {
					t.Errorf("command args %q, want %q", cmd[4:], want)
				}
				if d["reachable"] != true || d["status"] != float64(200) || d["findings"] == nil {
					t.Errorf("details %v: want reachable, 200 and a finding", d)
				}
			},
		},
		{
			name:    "metadata unreachable",
			params:  plugin.Params{"action": ActionMetadataProbe},
			setup:   func(f *fakeAPI) { f.logs["metadata"] = "unreachable\n" },
			want:    []string{"POST " + podsPath, "GET " + podsPath + "/" + testMarker + "-metadata", "GET " + podsPath + "/" + testMarker + "-metadata/log?container=vigil&limitBytes=16384&tailLines=20"},
			created: []string{"pods/" + testMarker + "-metadata"},
			check: func(t *testing.T, rs []request, res plugin.InjectResult, d map[string]any) {
				if d["reachable"] != false || d["findings"] != nil {
					t.Errorf("details %v: want unreachable and no finding", d)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			x := injector(t, f, "")
			res := inject(t, x, tc.params)
			if res.Outcome != plugin.OutcomeSucceeded {
				t.Fatalf("outcome %s: %s", res.Outcome, res.Error)
			}
			rs := f.Requests()
			var got []string
			for _, r := range rs {
				got = append(got, r.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("requests:\n got %q\nwant %q", got, tc.want)
			}
			for _, r := range rs {
				if !strings.Contains(r.Header.Get("User-Agent"), testMarker) {
					t.Errorf("%s: User-Agent %q lacks the marker", r, r.Header.Get("User-Agent"))
				}
			}
			var d map[string]any
			if err := json.Unmarshal(res.Details, &d); err != nil {
				t.Fatalf("details %s: %v", res.Details, err)
			}
			if d["action"] != tc.params["action"] || d["namespace"] != testNS {
				t.Errorf("details %v: want the action and namespace", d)
			}
			var arts []string
			for _, a := range res.Artifacts {
				arts = append(arts, strings.Replace(a.Ref, testNS+"/", "", 1))
			}
			if !reflect.DeepEqual(arts, tc.created) {
				t.Errorf("artifacts %q, want %q", arts, tc.created)
			}
			if tc.check != nil && len(rs) >= len(tc.want) {
				tc.check(t, rs, res, d)
			}
			noSecrets(t, res)

			cr := cleanup(t, x, res.Artifacts)
			if cr.Error != "" {
				t.Errorf("cleanup error: %s", cr.Error)
			}
			if left := f.Objects(); len(left) > 0 {
				t.Errorf("objects left after cleanup: %v", left)
			}
			var cgot []string
			for _, r := range f.Requests()[len(rs):] {
				cgot = append(cgot, r.String())
			}
			if want := cleanupRequests(tc.created...); !reflect.DeepEqual(cgot, want) {
				t.Errorf("cleanup requests:\n got %q\nwant %q", cgot, want)
			}
		})
	}
}

// noSecrets fails if a credential shows anywhere in a result.
func noSecrets(t *testing.T, res plugin.InjectResult) {
	t.Helper()
	all := res.Error + string(res.Stdout) + string(res.Stderr) + string(res.Details)
	for _, s := range []string{kubeconfigToken, issuedToken, "other-token-0b1c2d3e4f"} {
		if strings.Contains(all, s) {
			t.Errorf("a credential shows in the result: %q", all)
		}
	}
}

// What the cluster refuses is a failed injection naming the verb, the
// resource and the namespace, and Cleanup still removes what was created.
func TestForbidden(t *testing.T) {
	tests := []struct {
		name    string
		params  plugin.Params
		forbid  string
		wantErr string
		left    []string // objects created before the refusal
	}{
		{"create pod", plugin.Params{"action": ActionPrivilegedPod}, "create pods",
			`k8s: create pods in namespace "vigil-test": forbidden (403; RBAC or admission refused it): pods is forbidden: User "runner" cannot create resource "pods" in API group "" in the namespace "vigil-test"`, nil},
		{"exec after the victim", plugin.Params{"action": ActionPodExec}, "get pods/exec",
			`k8s: exec (GET over WebSocket) pods/exec in namespace "vigil-test": forbidden (403; RBAC or admission refused it): pods/exec is forbidden: User "runner" cannot get resource "pods/exec" in API group "" in the namespace "vigil-test"`, []string{"pods/" + testMarker + "-victim"}},
		{"token request", plugin.Params{"action": ActionServiceAccountList}, "create serviceaccounts/token",
			`k8s: create serviceaccounts/token in namespace "vigil-test": forbidden (403; RBAC or admission refused it)`, []string{"serviceaccounts/" + testMarker + "-sa"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.forbid[tc.forbid] = true
			x := injector(t, f, "")
			res := inject(t, x, tc.params)
			if res.Outcome != plugin.OutcomeFailed || !strings.HasPrefix(res.Error, tc.wantErr) {
				t.Errorf("outcome %s, error %q: want failed with %q", res.Outcome, res.Error, tc.wantErr)
			}
			noSecrets(t, res)
			if left := f.Objects(); !reflect.DeepEqual(left, tc.left) {
				t.Errorf("objects after the refusal %v, want %v", left, tc.left)
			}
			// Cleanup without Inject's artifacts (a lost answer): by label.
			if cr := cleanup(t, x, nil); cr.Error != "" {
				t.Errorf("cleanup: %s", cr.Error)
			}
			if left := f.Objects(); len(left) > 0 {
				t.Errorf("objects left after cleanup: %v", left)
			}
		})
	}
}

// A new file that cannot be written (a read-only root filesystem) fails the
// injection and says so.
func TestExecNewFileRefused(t *testing.T) {
	f := newFakeAPI(t)
	f.execExit = 1
	x := injector(t, f, "")
	res := inject(t, x, plugin.Params{"action": ActionExecNewFile})
	if res.Outcome != plugin.OutcomeFailed || !strings.Contains(res.Error, "refused the new executable (exit 1; read-only root filesystem?)") || res.ExitCode != 1 {
		t.Errorf("outcome %s exit %d error %q", res.Outcome, res.ExitCode, res.Error)
	}
	if !strings.Contains(string(res.Details), `"writable":false`) {
		t.Errorf("details %s: want writable false", res.Details)
	}
	cleanup(t, x, res.Artifacts)
	if left := f.Objects(); len(left) > 0 {
		t.Errorf("objects left: %v", left)
	}
}

// Cleanup gives up after cleanup_timeout when objects stay, and names them.
func TestCleanupLeftovers(t *testing.T) {
	f := newFakeAPI(t)
	f.forbid["deletecollection pods"] = true
	f.forbid["delete pods"] = true
	x := injector(t, f, `cleanup_timeout = "50ms"`)
	res := inject(t, x, plugin.Params{"action": ActionPrivilegedPod})
	if res.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("inject: %s", res.Error)
	}
	cr, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: testMarker, Artifacts: res.Artifacts})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`k8s: delete pods in namespace "vigil-test": forbidden`, "still present after 50ms: pods/vigil-test/" + testMarker + "-privileged"} {
		if !strings.Contains(cr.Error, want) {
			t.Errorf("cleanup error %q lacks %q", cr.Error, want)
		}
	}
}

func TestConfigure(t *testing.T) {
	// Outside a pod, whatever runs the tests.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	f := newFakeAPI(t)
	kc := quote(kubeconfig(t, f))
	tests := []struct {
		name, cfg, wantErr string
	}{
		{"minimal", "kubeconfig = " + kc + "\nnamespace = 'vigil'", ""},
		{"other context", "kubeconfig = " + kc + "\ncontext = 'other'\nnamespace = 'vigil'", ""},
		{"api server only", "api_server = 'https://203.0.113.7:6443'\nnamespace = 'vigil'", ""},
		{"no namespace", "kubeconfig = " + kc, "k8s: config: namespace is required (the injector works only inside it)"},
		{"kube-system", "kubeconfig = " + kc + "\nnamespace = 'kube-system'", "k8s: config: namespace kube-system is a system namespace: refused unless allow_system_namespaces = true"},
		{"kube-public", "kubeconfig = " + kc + "\nnamespace = 'kube-public'", "k8s: config: namespace kube-public is a system namespace: refused unless allow_system_namespaces = true"},
		{"kube-system allowed", "kubeconfig = " + kc + "\nnamespace = 'kube-system'\nallow_system_namespaces = true", ""},
		{"bad namespace", "kubeconfig = " + kc + "\nnamespace = 'Not_A_Label'", `k8s: config: namespace "Not_A_Label": a lowercase RFC 1123 label must consist of`},
		{"unknown key", "kubeconfig = " + kc + "\nnamespace = 'vigil'\nnamepsace = 'x'", "k8s: config: unknown keys namepsace (known: "},
		{"bad cleanup timeout", "kubeconfig = " + kc + "\nnamespace = 'vigil'\ncleanup_timeout = 'soon'", `k8s: config: cleanup_timeout "soon": want a positive Go duration such as 60s`},
		{"bad pod start timeout", "kubeconfig = " + kc + "\nnamespace = 'vigil'\npod_start_timeout = '-3s'", `k8s: config: pod_start_timeout "-3s": want a positive Go duration such as 60s`},
		{"in cluster and kubeconfig", "kubeconfig = " + kc + "\nnamespace = 'vigil'\nin_cluster = true", "k8s: config: in_cluster excludes kubeconfig and context"},
		{"in cluster outside a cluster", "namespace = 'vigil'\nin_cluster = true", "k8s: config: in-cluster config: unable to load in-cluster configuration"},
		{"missing context", "kubeconfig = " + kc + "\ncontext = 'nope'\nnamespace = 'vigil'", "k8s: config: load "},
		{"broken kubeconfig", "kubeconfig = 'testdata/broken-kubeconfig.yaml'\nnamespace = 'vigil'", "k8s: config: load testdata/broken-kubeconfig.yaml"},
		{"missing kubeconfig", "kubeconfig = 'testdata/none.yaml'\nnamespace = 'vigil'", "k8s: config: load testdata/none.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := new(Injector).Configure(context.Background(), []byte(tc.cfg))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				for _, s := range []string{kubeconfigToken, "other-token-0b1c2d3e4f", "broken-token-5e6f7a8b9c"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error shows a token: %v", err)
					}
				}
			}
		})
	}
}

// The other context's credentials are the ones sent.
func TestContextCredentials(t *testing.T) {
	f := newFakeAPI(t)
	x := injector(t, f, "context = 'other'")
	res := inject(t, x, plugin.Params{"action": ActionPrivilegedPod})
	if res.Outcome != plugin.OutcomeFailed || !strings.Contains(res.Error, "unauthorized (401") {
		t.Errorf("outcome %s %q: want the fake's 401 for the other user's token", res.Outcome, res.Error)
	}
	if h := f.Requests()[0].Header.Get("Authorization"); h != "Bearer other-token-0b1c2d3e4f" {
		t.Errorf("Authorization %q", h)
	}
	noSecrets(t, res)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params plugin.Params
		clean  plugin.Params
		want   []string
	}{
		{"ok", plugin.Params{"action": ActionPodExec, "pod": "web-0", "container": "app"}, nil, nil},
		{"no action", plugin.Params{}, nil, []string{`action: "" is not an action (known: anonymous-probe, privileged-pod, pod-exec, hostnetwork-capture, exec-new-file, serviceaccount-token-secrets, metadata-probe)`}},
		{"unknown param", plugin.Params{"action": ActionPodExec, "command": "x"}, nil, []string{`params: json: unknown field "command"`}},
		{"container without pod", plugin.Params{"action": ActionPodExec, "container": "app"}, nil, []string{"container: needs pod"}},
		{"bad pod", plugin.Params{"action": ActionPodExec, "pod": "Web_0"}, nil, []string{`pod: "Web_0" is not a valid object name`}},
		{"bad path", plugin.Params{"action": ActionAnonymousProbe, "paths": []any{"api/v1/pods"}}, nil, []string{`paths: "api/v1/pods": want an absolute API path without query`}},
		{"quoted url", plugin.Params{"action": ActionMetadataProbe, "metadata_url": "http://x/'"}, nil, []string{`metadata_url: "http://x/'": want an http(s) URL without quotes, backslashes or spaces`}},
		{"cleanup params", plugin.Params{"action": ActionPrivilegedPod}, plugin.Params{"command": "x"}, []string{"cleanup: the k8s injector takes no cleanup params: it deletes what it created by the run marker label"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs, err := new(Injector).Validate(context.Background(), plugin.ValidateRequest{Params: tc.params, CleanupParams: tc.clean})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range probs {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInjectRefusesBadMarker(t *testing.T) {
	f := newFakeAPI(t)
	x := injector(t, f, "")
	res, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: "Bad Marker", Params: plugin.Params{"action": ActionPrivilegedPod}})
	if err != nil || res.Outcome != plugin.OutcomeRefused {
		t.Errorf("outcome %s err %v: want refused", res.Outcome, err)
	}
	if len(f.Requests()) != 0 {
		t.Errorf("requests sent for a refused injection: %v", f.Requests())
	}
}

func TestNotConfigured(t *testing.T) {
	if _, err := new(Injector).Inject(context.Background(), plugin.InjectRequest{Marker: testMarker}); err != ErrNotConfigured {
		t.Errorf("Inject before Configure: %v", err)
	}
}
