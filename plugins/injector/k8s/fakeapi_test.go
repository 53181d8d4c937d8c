package k8s

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

func init() {
	// The fake's WebSocket server logs through klog when the client
	// closes the connection after the exec's status: expected, not news.
	fs := flag.NewFlagSet("klog", flag.PanicOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// kubeconfigToken is the runner's token in testdata/kubeconfig.yaml.
const kubeconfigToken = "kubeconfig-token-7f3a9c0e1d"

// issuedToken is the token the fake's TokenRequest hands out.
const issuedToken = "issued-sa-token-c0ffee1234"

// request is one request the fake API server received.
type request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// String is "METHOD path?sorted-query", what the tests compare.
func (r request) String() string {
	s := r.Method + " " + r.Path
	if len(r.Query) > 0 {
		s += "?" + r.Query.Encode()
	}
	return s
}

// fakeAPI is an in-process Kubernetes API server for the core/v1 calls the
// injector makes. It records every request, keeps pods and service
// accounts in memory, answers exec over WebSocket (v5.channel.k8s.io) and
// can be told to forbid calls or to answer anonymous requests. It serves
// TLS: client-go sends a kubeconfig's credentials only over TLS.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []request
	pods     map[string]*corev1.Pod
	sas      map[string]*corev1.ServiceAccount
	// forbid holds "verb resource" pairs answered 403 (e.g. "create pods").
	forbid map[string]bool
	// anon is the status of anonymous requests by path (default 403).
	anon map[string]int
	// logs is the log of pods by name suffix (after the marker).
	logs map[string]string
	// execExit and execStdout are what an exec answers.
	execExit   int
	execStdout string
	// secrets is the number of secrets a list returns to the issued token.
	secrets int
	// phase overrides the phase of created pods.
	phase corev1.PodPhase
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{
		t: t, pods: map[string]*corev1.Pod{}, sas: map[string]*corev1.ServiceAccount{},
		forbid: map[string]bool{}, anon: map[string]int{}, logs: map[string]string{},
		execStdout: "uid=0(root) gid=0(root)\nvictim\n",
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// Requests returns the recorded requests.
func (f *fakeAPI) Requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// Objects returns the names of the objects left, sorted.
func (f *fakeAPI) Objects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.pods {
		out = append(out, "pods/"+n)
	}
	for n := range f.sas {
		out = append(out, "serviceaccounts/"+n)
	}
	sort.Strings(out)
	return out
}

func (f *fakeAPI) status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
}

func (f *fakeAPI) object(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func selects(sel string, labels map[string]string) bool {
	if sel == "" {
		return true
	}
	for _, term := range strings.Split(sel, ",") {
		k, v, _ := strings.Cut(term, "=")
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()

	user := "system:anonymous"
	switch r.Header.Get("Authorization") {
	case "Bearer " + kubeconfigToken:
		user = "runner"
	case "Bearer " + issuedToken:
		user = "system:serviceaccount:vigil-test:stolen"
	case "":
	default:
		f.status(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
		return
	}
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	if user == "system:anonymous" {
		code, ok := f.anon[r.URL.Path]
		if !ok {
			code = http.StatusForbidden
		}
		if code == http.StatusOK {
			f.object(w, code, map[string]any{"kind": "List", "apiVersion": "v1", "items": []any{}})
			return
		}
		f.status(w, code, metav1.StatusReasonForbidden, fmt.Sprintf(`%s is forbidden: User "system:anonymous" cannot list resource %q in API group "" at the cluster scope`, seg[0], seg[0]))
		return
	}
	if len(seg) < 3 || seg[0] != "namespaces" {
		f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "not found")
		return
	}
	ns, resource := seg[1], seg[2]
	name, sub := "", ""
	if len(seg) > 3 {
		name = seg[3]
	}
	if len(seg) > 4 {
		sub = seg[4]
		resource += "/" + sub
	}
	verb := map[string]string{http.MethodGet: "get", http.MethodPost: "create", http.MethodDelete: "delete"}[r.Method]
	if name == "" && verb == "get" {
		verb = "list"
	}
	if name == "" && verb == "delete" {
		verb = "deletecollection"
	}
	if f.forbid[verb+" "+resource] {
		f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf(`%s is forbidden: User %q cannot %s resource %q in API group "" in the namespace %q`, resource, user, verb, resource, ns))
		return
	}
	if user != "runner" && resource != "secrets" {
		f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, "forbidden")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sel := r.URL.Query().Get("labelSelector")
	switch verb + " " + resource {
	case "create pods":
		var p corev1.Pod
		if err := json.Unmarshal(body, &p); err != nil {
			f.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		p.Namespace = ns
		p.Status.Phase = corev1.PodSucceeded
		if strings.HasSuffix(p.Name, "-victim") {
			p.Status.Phase = corev1.PodRunning
		}
		if f.phase != "" {
			p.Status.Phase = f.phase
		}
		f.pods[p.Name] = &p
		f.object(w, http.StatusCreated, &p)
	case "get pods":
		p, ok := f.pods[name]
		if !ok {
			f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "pods "+name+" not found")
			return
		}
		f.object(w, http.StatusOK, p)
	case "list pods":
		l := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range f.pods {
			if selects(sel, p.Labels) {
				l.Items = append(l.Items, *p)
			}
		}
		f.object(w, http.StatusOK, &l)
	case "delete pods":
		if _, ok := f.pods[name]; !ok {
			f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "pods "+name+" not found")
			return
		}
		delete(f.pods, name)
		f.object(w, http.StatusOK, metav1.Status{Status: metav1.StatusSuccess})
	case "deletecollection pods":
		for n, p := range f.pods {
			if selects(sel, p.Labels) {
				delete(f.pods, n)
			}
		}
		f.object(w, http.StatusOK, corev1.PodList{})
	case "get pods/log":
		for suffix, l := range f.logs {
			if strings.HasSuffix(name, "-"+suffix) {
				w.Write([]byte(l))
				return
			}
		}
	case "get pods/exec":
		if _, ok := f.pods[name]; !ok && name != "existing" {
			f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "pods "+name+" not found")
			return
		}
		f.exec(w, r)
	case "create serviceaccounts":
		var sa corev1.ServiceAccount
		json.Unmarshal(body, &sa)
		sa.Namespace = ns
		f.sas[sa.Name] = &sa
		f.object(w, http.StatusCreated, &sa)
	case "list serviceaccounts":
		l := corev1.ServiceAccountList{TypeMeta: metav1.TypeMeta{Kind: "ServiceAccountList", APIVersion: "v1"}}
		for _, s := range f.sas {
			if selects(sel, s.Labels) {
				l.Items = append(l.Items, *s)
			}
		}
		f.object(w, http.StatusOK, &l)
	case "delete serviceaccounts":
		delete(f.sas, name)
		f.object(w, http.StatusOK, metav1.Status{Status: metav1.StatusSuccess})
	case "deletecollection serviceaccounts":
		for n, s := range f.sas {
			if selects(sel, s.Labels) {
				delete(f.sas, n)
			}
		}
		f.object(w, http.StatusOK, corev1.ServiceAccountList{})
	case "create serviceaccounts/token":
		var tr authv1.TokenRequest
		json.Unmarshal(body, &tr)
		tr.Status = authv1.TokenRequestStatus{Token: issuedToken, ExpirationTimestamp: metav1.NewTime(time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC))}
		f.object(w, http.StatusCreated, &tr)
	case "list secrets":
		if user == "runner" {
			f.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the test expects the stolen token here")
			return
		}
		l := corev1.SecretList{TypeMeta: metav1.TypeMeta{Kind: "SecretList", APIVersion: "v1"}}
		for i := 0; i < f.secrets; i++ {
			l.Items = append(l.Items, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)}})
		}
		if f.secrets == 0 {
			f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, `secrets is forbidden: User "system:serviceaccount:vigil-test:stolen" cannot list resource "secrets" in API group "" in the namespace "vigil-test"`)
			return
		}
		f.object(w, http.StatusOK, &l)
	default:
		f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "fake: no route for "+verb+" "+resource)
	}
}

// exec answers an exec request as the API server (through the kubelet)
// does over WebSocket: stdout on channel 1, then the status on channel 3.
// It is called with f.mu held and releases it while streaming.
func (f *fakeAPI) exec(w http.ResponseWriter, r *http.Request) {
	exit, stdout := f.execExit, f.execStdout
	f.mu.Unlock()
	defer f.mu.Lock()
	channels := []wsstream.ChannelType{wsstream.IgnoreChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.ReadChannel}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	_, streams, err := conn.Open(w, r)
	if err != nil {
		f.t.Errorf("fake exec: websocket: %v", err)
		return
	}
	defer conn.Close()
	streams[remotecommand.StreamStdOut].Write([]byte(stdout))
	st := metav1.Status{Status: metav1.StatusSuccess}
	if exit != 0 {
		st = metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode", Message: fmt.Sprintf("command terminated with non-zero exit code: %d", exit),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: fmt.Sprint(exit)}}}}
	}
	b, _ := json.Marshal(st)
	streams[remotecommand.StreamErr].Write(b)
}
