// Package kubeapitest starts a real Kubernetes API server for tests: the
// kube-apiserver binary `make kube-apiserver` builds (k8s.io/kubernetes
// through the module proxy, see testdata/kube-apiserver) over Debian's
// etcd-server, both on free loopback ports with their data, certificates
// and keys in t.TempDir().
//
// The server runs as a managed cluster's does where it matters to vigil:
// TLS, token authentication, RBAC, anonymous authentication on, privileged
// containers allowed, the default
// admission plugins plus NodeRestriction (ServiceAccount, PodSecurity,
// LimitRanger, ResourceQuota, the admission webhooks...), service account
// tokens signed and checked, and an audit policy in the spirit of GKE's:
// RequestResponse for everything, except Metadata for secrets, configmaps
// and token reviews and Request for serviceaccounts/token (their responses
// hold credentials), written as audit.k8s.io/v1 events to a file.
//
// There is no controller manager, scheduler or kubelet: pods are admitted
// and stay Pending. Start does the one thing the controller manager would
// have done that admission needs: the "default" service account of each
// namespace it creates.
//
// Without the two binaries the test is skipped, unless
// VIGIL_REQUIRE_KUBE_APISERVER is set (as in CI), which turns the skip into
// a failure.
package kubeapitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// Etcd is Debian's etcd-server binary.
const Etcd = "/usr/bin/etcd"

// Identities in the server's token file.
const (
	// AdminUser is in system:masters.
	AdminUser = "vigil-admin"
	// RunnerUser is the identity vigil's k8s injector runs as: it has
	// only what Role grants in the namespaces Start creates.
	RunnerUser = "vigil-runner"
	// RunnerGroup is RunnerUser's group.
	RunnerGroup = "vigil:chaos-runners"
)

// Server is a running kube-apiserver.
type Server struct {
	// URL is https://127.0.0.1:<port>.
	URL string
	// Dir holds the certificates, keys, token file, policy and logs.
	Dir string
	// CAFile is the PEM certificate the serving certificate chains to.
	CAFile string
	// AuditLog is the file of audit.k8s.io/v1 events, one per line.
	AuditLog string
	// Kubeconfig is a kubeconfig for RunnerUser (context "vigil-runner").
	Kubeconfig string
	// Admin is a client for AdminUser.
	Admin *kubernetes.Clientset
	// AdminConfig is its config.
	AdminConfig *rest.Config
	// Version is the server's gitVersion.
	Version string
}

// Binary returns the kube-apiserver to run: $VIGIL_KUBE_APISERVER, or
// bin/kube-apiserver at the root of this repository.
func Binary() string {
	if p := os.Getenv("VIGIL_KUBE_APISERVER"); p != "" {
		return p
	}
	if root := repoRoot(); root != "" {
		return filepath.Join(root, "bin", "kube-apiserver")
	}
	return ""
}

// repoRoot is the root of this repository, found upwards from the working
// directory ("" when not found).
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "testdata", "kube-apiserver")); err == nil {
				return dir
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// DeployManifest is the manifest, relative to the repository's root, whose
// Namespace and Role vigil's README tells users to apply.
const DeployManifest = "deploy/kubernetes/vigil-nightly-cronjob.yaml"

// DeployRole returns the Role of DeployManifest: the tests run the
// injector with exactly the permissions users are told to grant.
func DeployRole(t testing.TB) *rbacv1.Role {
	t.Helper()
	path := filepath.Join(repoRoot(), DeployManifest)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			continue // comments only, or kinds client-go does not know
		}
		if r, ok := obj.(*rbacv1.Role); ok {
			return r
		}
	}
	t.Fatalf("%s: no Role", path)
	return nil
}

// NamespaceState lists what a namespace holds (pods, service accounts,
// secrets, config maps, roles, role bindings) as "<resource>/<name> <uid>",
// sorted, to compare it before and after a test.
func (s *Server) NamespaceState(t testing.TB, ns string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	add := func(kind, name string, uid any) { out = append(out, fmt.Sprintf("%s/%s %v", kind, name, uid)) }
	fail := func(what string, err error) { t.Fatalf("list %s in %s: %v", what, ns, err) }
	opts := metav1.ListOptions{}
	if l, err := s.Admin.CoreV1().Pods(ns).List(ctx, opts); err != nil {
		fail("pods", err)
	} else {
		for _, o := range l.Items {
			add("pods", o.Name, o.UID)
		}
	}
	if l, err := s.Admin.CoreV1().ServiceAccounts(ns).List(ctx, opts); err != nil {
		fail("serviceaccounts", err)
	} else {
		for _, o := range l.Items {
			add("serviceaccounts", o.Name, o.UID)
		}
	}
	if l, err := s.Admin.CoreV1().Secrets(ns).List(ctx, opts); err != nil {
		fail("secrets", err)
	} else {
		for _, o := range l.Items {
			add("secrets", o.Name, o.UID)
		}
	}
	if l, err := s.Admin.CoreV1().ConfigMaps(ns).List(ctx, opts); err != nil {
		fail("configmaps", err)
	} else {
		for _, o := range l.Items {
			add("configmaps", o.Name, o.UID)
		}
	}
	if l, err := s.Admin.RbacV1().Roles(ns).List(ctx, opts); err != nil {
		fail("roles", err)
	} else {
		for _, o := range l.Items {
			add("roles", o.Name, o.UID)
		}
	}
	if l, err := s.Admin.RbacV1().RoleBindings(ns).List(ctx, opts); err != nil {
		fail("rolebindings", err)
	} else {
		for _, o := range l.Items {
			add("rolebindings", o.Name, o.UID)
		}
	}
	slices.Sort(out)
	return out
}

// Require skips the test when the API server cannot run here, or fails it
// when VIGIL_REQUIRE_KUBE_APISERVER is set.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	bin := Binary()
	if _, err := os.Stat(bin); bin == "" || err != nil {
		why = "no kube-apiserver binary (make kube-apiserver, or set VIGIL_KUBE_APISERVER)"
	} else if _, err := os.Stat(Etcd); err != nil {
		why = Etcd + " is missing (Debian: apt-get install etcd-server)"
	}
	if why == "" {
		return
	}
	if os.Getenv("VIGIL_REQUIRE_KUBE_APISERVER") != "" {
		t.Fatalf("VIGIL_REQUIRE_KUBE_APISERVER is set but %s", why)
	}
	t.Skip(why)
}

// auditPolicy is the server's audit policy.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# Their bodies hold credentials: who did what, never the data.
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
  - group: "authentication.k8s.io"
    resources: ["tokenreviews"]
# The TokenRequest, not the token it returns.
- level: Request
  resources:
  - group: ""
    resources: ["serviceaccounts/token"]
- level: RequestResponse
`

// Start starts etcd and kube-apiserver, waits until the server is ready,
// and stops both when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), AuditLog: filepath.Join(dir, "audit.log")}

	etcdClient, etcdPeer := freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	start(t, "etcd", filepath.Join(dir, "etcd.log"), Etcd,
		"--name=vigil-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-cluster=vigil-test=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--log-level=error")

	writePKI(t, dir)
	saKey := filepath.Join(dir, "sa.key")
	writeKey(t, saKey)
	adminToken, runnerToken := randomToken(t), randomToken(t)
	tokens := fmt.Sprintf("%s,%s,1000,\"system:masters\"\n%s,%s,1001,\"%s\"\n", adminToken, AdminUser, runnerToken, RunnerUser, RunnerGroup)
	writeFile(t, filepath.Join(dir, "tokens.csv"), []byte(tokens))
	writeFile(t, filepath.Join(dir, "audit-policy.yaml"), []byte(auditPolicy))

	port := freePort(t)
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	exited := start(t, "kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), Binary(),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		// No kubernetes Service endpoints for a loopback-only server.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+filepath.Join(dir, "server.crt"),
		"--tls-private-key-file="+filepath.Join(dir, "server.key"),
		"--client-ca-file="+s.CAFile,
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--anonymous-auth=true",
		"--enable-admission-plugins=NodeRestriction",
		// Managed clusters (GKE, EKS, AKS) allow privileged containers;
		// the API server's own default refuses them (422).
		"--allow-privileged=true",
		"--audit-policy-file="+filepath.Join(dir, "audit-policy.yaml"),
		"--audit-log-path="+s.AuditLog,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--service-cluster-ip-range=10.96.0.0/12",
		"--v=0")

	s.AdminConfig = &rest.Config{Host: s.URL, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile}, UserAgent: "vigil-kubeapitest"}
	cs, err := kubernetes.NewForConfig(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	s.Admin = cs
	s.waitReady(t, exited)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("kube-apiserver version: %v", err)
	}
	s.Version = v.GitVersion

	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: vigil-test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: vigil-runner
  context:
    cluster: vigil-test
    user: %s
current-context: vigil-runner
`, s.URL, s.CAFile, RunnerUser, runnerToken, RunnerUser)
	writeFile(t, s.Kubeconfig, []byte(kc))
	return s
}

// waitReady polls /readyz with the admin's credentials.
func (s *Server) waitReady(t testing.TB, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := s.Admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(b) == "ok" {
			return
		}
		last = fmt.Sprintf("%v %s", err, b)
		select {
		case <-exited:
			t.Fatalf("kube-apiserver exited before it was ready (its log follows)")
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready after 90s: %s (its log follows)", last)
		}
	}
}

// Namespace creates namespace ns with labels, and in it what the controller
// manager would create (the "default" service account), role (bound to
// RunnerGroup) when it is not nil. It returns the namespace.
func (s *Server) Namespace(t testing.TB, ns string, labels map[string]string, role *rbacv1.Role) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if _, err := s.Admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount %s/default: %v", ns, err)
	}
	if role == nil {
		return
	}
	r := role.DeepCopy()
	r.Namespace = ns
	if _, err := s.Admin.RbacV1().Roles(ns).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role %s/%s: %v", ns, r.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: ns},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: RunnerGroup, APIGroup: rbacv1.GroupName}},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: r.Name, APIGroup: rbacv1.GroupName},
	}
	if _, err := s.Admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding %s/%s: %v", ns, rb.Name, err)
	}
}

// AuditMark returns where the audit log ends now, for AuditEvents.
func (s *Server) AuditMark(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(s.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// AuditEvents returns the audit events written after mark (see AuditMark)
// whose userAgent contains ua, in the order written, each as the server
// wrote it.
func (s *Server) AuditEvents(t testing.TB, mark int64, ua string) []json.RawMessage {
	t.Helper()
	f, err := os.Open(s.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			UserAgent string `json:"userAgent"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: %v", s.AuditLog, err)
		}
		if strings.Contains(ev.UserAgent, ua) {
			out = append(out, json.RawMessage(bytes.Clone(sc.Bytes())))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// start runs a server process, its output to logFile, and kills it when
// the test ends; the channel closes when it exits.
func start(t testing.TB, name, logFile, bin string, args ...string) <-chan struct{} {
	t.Helper()
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s log (end):\n%s", name, tail(logFile))
		}
	})
	return exited
}

// tail returns the end of a log file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freePort returns a loopback TCP port free now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writePKI writes ca.crt and server.crt/server.key (for 127.0.0.1 and
// localhost) to dir.
func writePKI(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil-kubeapitest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "server.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// writeKey writes an RSA key (the service account token signing key).
func writeKey(t testing.TB, path string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// randomToken returns a fresh bearer token.
func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
