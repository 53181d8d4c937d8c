package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/vigilsec/vigil/core/plugin"
)

// ContainerName is the name of the container of the pods the injector
// creates.
const ContainerName = "vigil"

// maxCaptured bounds the output kept from a pod log or an exec stream.
const maxCaptured = 16 << 10

// action is one injection in progress.
type action struct {
	x      *Injector
	c      *config
	p      params
	marker string
	testID string
	ns     string

	cs *kubernetes.Clientset
	rc *rest.Config

	artifacts   []plugin.Artifact
	summary     []string
	details     map[string]any
	findings    []string
	stderr      []byte
	exitCode    int
	inContainer bool // a container ran a shell with the marker as $0
}

func (a *action) run(ctx context.Context) error {
	a.details = map[string]any{}
	defer func() {
		if len(a.findings) > 0 {
			a.details["findings"] = a.findings
		}
	}()
	if a.p.Action != ActionAnonymousProbe {
		cs, rc, err := clientFor(a.c, a.marker)
		if err != nil {
			return err
		}
		a.cs, a.rc = cs, rc
	}
	switch a.p.Action {
	case ActionAnonymousProbe:
		return a.anonymousProbe(ctx)
	case ActionPrivilegedPod:
		return a.privilegedPod(ctx)
	case ActionPodExec:
		return a.podExec(ctx)
	case ActionHostNetworkCapture:
		return a.hostNetworkCapture(ctx)
	case ActionExecNewFile:
		return a.execNewFile(ctx)
	case ActionServiceAccountList:
		return a.serviceAccountSecrets(ctx)
	case ActionMetadataProbe:
		return a.metadataProbe(ctx)
	}
	return fmt.Errorf("k8s: unknown action %q", a.p.Action)
}

func (a *action) say(format string, args ...any) {
	a.summary = append(a.summary, fmt.Sprintf(format, args...))
}

func (a *action) finding(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	a.findings = append(a.findings, s)
	a.say("FINDING: %s", s)
}

// apiError describes a failed API call by verb, resource and namespace; a
// 403 says RBAC or admission refused it. The server's message names the
// user and the permission, never a credential.
func apiError(verb, resource, ns string, err error) error {
	where := ""
	if ns != "" {
		where = fmt.Sprintf(" in namespace %q", ns)
	}
	// A refused WebSocket upgrade (exec) carries the server's status as
	// its cause.
	var ue *httpstream.UpgradeFailureError
	if errors.As(err, &ue) && ue.Cause != nil {
		var cause apierrors.APIStatus
		if errors.As(ue.Cause, &cause) {
			err = ue.Cause
		}
	}
	var se apierrors.APIStatus
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("k8s: %s %s%s: forbidden (403; RBAC or admission refused it): %w", verb, resource, where, err)
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "disallowed by cluster policy"):
		return fmt.Errorf("k8s: %s %s%s: refused by the API server itself (422; it runs with --allow-privileged=false, or its own policy forbids host namespaces): %w", verb, resource, where, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("k8s: %s %s%s: unauthorized (401; the credentials were rejected): %w", verb, resource, where, err)
	case errors.As(err, &se):
		return fmt.Errorf("k8s: %s %s%s: %d: %w", verb, resource, where, se.Status().Code, err)
	}
	return fmt.Errorf("k8s: %s %s%s: %w", verb, resource, where, err)
}

// objectMeta is the metadata of every object the injector creates.
func (a *action) objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Namespace:   a.ns,
		Labels:      map[string]string{LabelRunMarker: a.marker, LabelManagedBy: "vigil"},
		Annotations: map[string]string{AnnotationTestID: a.testID, AnnotationMarker: a.marker},
	}
}

// pod returns a pod running args ($0 is the marker) in one container.
func (a *action) pod(suffix, image string, script string, args ...string) *corev1.Pod {
	no := false
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: a.objectMeta(a.marker + "-" + suffix),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  &no,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:    ContainerName,
				Image:   image,
				Command: append([]string{"sh", "-c", script, a.marker}, args...),
			}},
		},
	}
}

// createPod creates pod and records it for Cleanup.
func (a *action) createPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	created, err := a.cs.CoreV1().Pods(a.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		// The pod may exist even though the answer was lost: Cleanup
		// still finds it by label.
		return nil, apiError("create", "pods", a.ns, err)
	}
	a.artifacts = append(a.artifacts, plugin.Artifact{Kind: "k8s-object", Ref: "pods/" + a.ns + "/" + created.Name})
	a.inContainer = true
	a.details["pod"] = created.Name
	a.say("created pod %s/%s", a.ns, created.Name)
	return created, nil
}

// waitPod polls the pod until done says so; it returns the last pod seen.
func (a *action) waitPod(ctx context.Context, name string, done func(*corev1.Pod) bool) (*corev1.Pod, error) {
	for {
		pod, err := a.cs.CoreV1().Pods(a.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, apiError("get", "pods", a.ns, err)
		}
		if done(pod) {
			return pod, nil
		}
		select {
		case <-ctx.Done():
			return pod, fmt.Errorf("k8s: pod %s/%s still %s: %w", a.ns, name, pod.Status.Phase, ctx.Err())
		case <-timeAfter(a.x.interval()):
		}
	}
}

// notStarted is a pod the API server admitted that no node ran within
// pod_start_timeout.
type notStarted struct {
	pod    string
	waited time.Duration
	why    string
}

func (e *notStarted) Error() string {
	return fmt.Sprintf("pod %s is still Pending after %s: %s", e.pod, e.waited, e.why)
}

// waitStarted waits, at most pod_start_timeout, for the pod to leave
// Pending. A pod still Pending then is a *notStarted error saying why
// (recorded in the details as pending_reason), not a timeout of the test.
func (a *action) waitStarted(ctx context.Context, name string) (*corev1.Pod, error) {
	wctx, cancel := context.WithTimeout(ctx, a.c.podStartTimeout)
	defer cancel()
	pod, err := a.waitPod(wctx, name, started)
	if err == nil || pod == nil || ctx.Err() != nil {
		return pod, err
	}
	ns := &notStarted{pod: a.ns + "/" + name, waited: a.c.podStartTimeout, why: pendingReason(pod)}
	a.details["phase"] = string(pod.Status.Phase)
	a.details["ran"] = false
	a.details["pending_reason"] = ns.why
	return pod, ns
}

// pendingReason says why a pod is still Pending, from what the scheduler
// and the kubelet wrote in its status.
func pendingReason(p *corev1.Pod) string {
	if p.Spec.NodeName == "" {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				return strings.TrimSpace(fmt.Sprintf("not scheduled: %s %s", c.Reason, c.Message))
			}
		}
		return "no node was assigned and no scheduler reported on it (a cluster without a scheduler or nodes)"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return strings.TrimSpace(fmt.Sprintf("on node %s, container %s waiting: %s %s", p.Spec.NodeName, cs.Name, w.Reason, oneLine(w.Message)))
		}
	}
	return fmt.Sprintf("scheduled on node %s, which has not started it", p.Spec.NodeName)
}

func started(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodPending && p.Status.Phase != ""
}

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// runPod creates pod, waits for it to start (at most pod_start_timeout)
// and finish, and returns its log. A pod no node ran is a *notStarted.
func (a *action) runPod(ctx context.Context, pod *corev1.Pod) (string, error) {
	created, err := a.createPod(ctx, pod)
	if err != nil {
		return "", err
	}
	done, err := a.waitStarted(ctx, created.Name)
	if err != nil {
		return "", err
	}
	if !finished(done) {
		if done, err = a.waitPod(ctx, created.Name, finished); err != nil {
			return "", err
		}
	}
	a.details["phase"] = string(done.Status.Phase)
	a.details["ran"] = true
	tail := int64(20)
	limit := int64(maxCaptured)
	b, err := a.cs.CoreV1().Pods(a.ns).GetLogs(created.Name, &corev1.PodLogOptions{Container: ContainerName, TailLines: &tail, LimitBytes: &limit}).DoRaw(ctx)
	if err != nil {
		return "", apiError("get", "pods/log", a.ns, err)
	}
	return string(b), nil
}

func (a *action) privilegedPod(ctx context.Context) error {
	priv := true
	pod := a.pod("privileged", a.c.Image, `echo "privileged container $0 running as uid $(id -u)"`)
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &priv}
	created, err := a.createPod(ctx, pod)
	if err != nil {
		return err
	}
	a.finding("the cluster admitted a privileged pod in namespace %s", a.ns)
	got, err := a.waitStarted(ctx, created.Name)
	var ns *notStarted
	switch {
	case errors.As(err, &ns):
		// The admission is what this test checks, and it happened; say
		// that the container never ran.
		a.say("%v: the pod was admitted, but no privileged container ran", ns)
		return nil
	case err != nil:
		return err
	}
	a.details["phase"] = string(got.Status.Phase)
	a.details["ran"] = true
	a.say("pod %s reached phase %s", created.Name, got.Status.Phase)
	return nil
}

var tcpdumpSummaryRE = regexp.MustCompile(`(?m)^(\d+) packets? captured`)

func (a *action) hostNetworkCapture(ctx context.Context) error {
	pod := a.pod("capture", a.c.CaptureImage, `timeout 5 tcpdump -i any -n -q -c 10 >/dev/null 2>"/tmp/$0.err"; rc=$?; tail -n 3 "/tmp/$0.err"; exit $rc`)
	pod.Spec.HostNetwork = true
	logs, err := a.runPod(ctx, pod)
	var ns *notStarted
	if errors.As(err, &ns) {
		return fmt.Errorf("k8s: hostnetwork-capture: the API server admitted the host-network pod, but %v: nothing was captured", ns)
	}
	if err != nil {
		return err
	}
	a.details["capture_summary"] = strings.TrimSpace(logs)
	if m := tcpdumpSummaryRE.FindStringSubmatch(logs); m != nil {
		n, _ := strconv.Atoi(m[1])
		a.details["packets_captured"] = n
		a.finding("a host-network pod captured %d packets on the node", n)
		return nil
	}
	return fmt.Errorf("k8s: host-network capture pod %s/%s captured nothing (phase %v): %s", a.ns, a.details["pod"], a.details["phase"], oneLine(logs))
}

var httpStatusRE = regexp.MustCompile(`HTTP/[0-9.]+ ([0-9]{3})`)

func (a *action) metadataProbe(ctx context.Context) error {
	// Only the status line is kept: the body (kube-env holds the kubelet's
	// credentials) never leaves the pod.
	pod := a.pod("metadata", a.c.Image,
		`wget -S -q -T 3 --header "$1" -O /dev/null "$2" 2>&1 | grep -m 1 -o 'HTTP/[0-9.]* [0-9]*.*' || echo unreachable`,
		a.p.MetadataHeader, a.p.MetadataURL)
	logs, err := a.runPod(ctx, pod)
	var ns *notStarted
	if errors.As(err, &ns) {
		return fmt.Errorf("k8s: metadata-probe: the API server admitted the probing pod, but %v: the metadata endpoint was not probed", ns)
	}
	if err != nil {
		return err
	}
	line := oneLine(logs)
	a.details["url"] = a.p.MetadataURL
	a.details["answer"] = line
	m := httpStatusRE.FindStringSubmatch(line)
	if m == nil {
		a.details["reachable"] = false
		a.say("metadata endpoint %s unreachable from pods of %s", a.p.MetadataURL, a.ns)
		return nil
	}
	code, _ := strconv.Atoi(m[1])
	a.details["reachable"] = true
	a.details["status"] = code
	if code == http.StatusOK {
		a.finding("pods of %s can read %s (HTTP 200)", a.ns, a.p.MetadataURL)
	} else {
		a.say("metadata endpoint %s answered %d from pods of %s", a.p.MetadataURL, code, a.ns)
	}
	return nil
}

// victim returns the pod and container to exec into: the configured ones,
// or a victim pod the injector creates and waits for. A victim no node ran
// is returned with a *notStarted error: the exec request is still sent (it
// is what the API server's audit log shows), but no command can run.
func (a *action) victim(ctx context.Context) (string, string, error) {
	if a.p.Pod != "" {
		return a.p.Pod, a.p.Container, nil
	}
	pod := a.pod("victim", a.c.Image, `trap 'exit 0' TERM; sleep 600 & wait`)
	created, err := a.createPod(ctx, pod)
	if err != nil {
		return "", "", err
	}
	got, err := a.waitStarted(ctx, created.Name)
	var ns *notStarted
	switch {
	case errors.As(err, &ns):
		return created.Name, ContainerName, err
	case err != nil:
		return "", "", err
	case got.Status.Phase != corev1.PodRunning:
		return "", "", fmt.Errorf("k8s: victim pod %s/%s is %s, not Running", a.ns, created.Name, got.Status.Phase)
	}
	return created.Name, ContainerName, nil
}

// execIn runs command in the victim (see victim) and returns the pod,
// stdout, stderr and the exit code; the victim no node ran, or the
// server's refusal, is an error saying that no command ran.
func (a *action) execIn(ctx context.Context, command []string) (pod, stdout, stderr string, code int, err error) {
	pod, container, verr := a.victim(ctx)
	var ns *notStarted
	if verr != nil && !errors.As(verr, &ns) {
		return "", "", "", 0, verr
	}
	out, serr, code, err := a.exec(ctx, pod, container, command)
	a.inContainer = true
	a.exitCode, a.stderr = code, []byte(serr)
	if ns != nil {
		// The API server cannot have run it: say what it answered.
		answer := "accepted it"
		if err != nil {
			answer = "answered: " + strings.TrimPrefix(err.Error(), "k8s: ")
		}
		a.details["exec_answer"] = answer
		return pod, out, serr, code, fmt.Errorf("k8s: exec in pods/%s: no command ran: the victim was admitted, but %v; the exec request was sent and the API server %s", pod, ns, answer)
	}
	return pod, out, serr, code, err
}

// exec runs command in the pod's container over the pods/exec subresource
// (WebSocket, protocol v5.channel.k8s.io, as kubectl 1.30+ does) and
// returns stdout, stderr and the exit code.
func (a *action) exec(ctx context.Context, pod, container string, command []string) (string, string, int, error) {
	req := a.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(a.ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewWebSocketExecutor(a.rc, http.MethodGet, req.URL().String())
	if err != nil {
		return "", "", 0, fmt.Errorf("k8s: exec in pods/%s: %w", pod, err)
	}
	a.details["exec_pod"] = pod
	a.details["exec_command"] = command
	var stdout, stderr limitedBuffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	var ce utilexec.CodeExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0, nil
	case errors.As(err, &ce):
		return stdout.String(), stderr.String(), ce.Code, nil
	}
	return stdout.String(), stderr.String(), -1, apiError("exec (GET over WebSocket)", "pods/exec", a.ns, err)
}

func (a *action) podExec(ctx context.Context) error {
	pod, out, serr, code, err := a.execIn(ctx, []string{"sh", "-c", "id && hostname", a.marker})
	if err != nil {
		return err
	}
	a.details["exit_code"] = code
	a.say("exec in %s/%s: exit %d: %s", a.ns, pod, code, oneLine(out))
	if code != 0 {
		return fmt.Errorf("k8s: exec in pods/%s: command exited %d: %s", pod, code, oneLine(serr))
	}
	return nil
}

func (a *action) execNewFile(ctx context.Context) error {
	script := `f="/tmp/$0.sh"; printf '#!/bin/sh\necho "new executable $0 ran"\n' > "$f" && chmod +x "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc`
	pod, out, serr, code, err := a.execIn(ctx, []string{"sh", "-c", script, a.marker})
	if err != nil {
		return err
	}
	a.details["file"] = "/tmp/" + a.marker + ".sh"
	a.details["exit_code"] = code
	if code != 0 {
		a.details["writable"] = false
		return fmt.Errorf("k8s: the container of pods/%s refused the new executable (exit %d; read-only root filesystem?): %s", pod, code, oneLine(serr))
	}
	a.details["writable"] = true
	a.finding("a new executable was written and run in %s/%s: the container is not immutable (%s)", a.ns, pod, oneLine(out))
	return nil
}

func (a *action) serviceAccountSecrets(ctx context.Context) error {
	sa := a.p.ServiceAccount
	if sa == "" {
		created, err := a.cs.CoreV1().ServiceAccounts(a.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: a.objectMeta(a.marker + "-sa")}, metav1.CreateOptions{})
		if err != nil {
			return apiError("create", "serviceaccounts", a.ns, err)
		}
		sa = created.Name
		a.artifacts = append(a.artifacts, plugin.Artifact{Kind: "k8s-object", Ref: "serviceaccounts/" + a.ns + "/" + sa})
		a.say("created service account %s/%s", a.ns, sa)
	}
	a.details["service_account"] = sa
	exp := int64(600)
	tr, err := a.cs.CoreV1().ServiceAccounts(a.ns).CreateToken(ctx, sa, &authv1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelRunMarker: a.marker}},
		Spec:       authv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return apiError("create", "serviceaccounts/token", a.ns, err)
	}
	if tr.Status.Token == "" {
		return fmt.Errorf("k8s: create serviceaccounts/token in namespace %q: the answer holds no token", a.ns)
	}
	a.details["token_expires"] = tr.Status.ExpirationTimestamp.UTC().Format(time.RFC3339)
	a.say("obtained a token for service account %s/%s (valid %ds)", a.ns, sa, exp)

	// Use the stolen token, and nothing else of the target's credentials.
	stolen := rest.AnonymousClientConfig(a.rc)
	stolen.BearerToken = tr.Status.Token
	stolen.UserAgent = UserAgent(a.marker)
	cs, err := kubernetes.NewForConfig(stolen)
	if err != nil {
		return fmt.Errorf("k8s: client with the service account token: %w", err)
	}
	list, err := cs.CoreV1().Secrets(a.ns).List(ctx, metav1.ListOptions{})
	var se apierrors.APIStatus
	switch {
	case err == nil:
		a.details["secrets_status"] = http.StatusOK
		a.details["secrets_listed"] = len(list.Items)
		a.finding("the token of service account %s/%s lists %d secrets", a.ns, sa, len(list.Items))
	case errors.As(err, &se):
		a.details["secrets_status"] = int(se.Status().Code)
		a.say("listing secrets with the token of %s/%s: %d %s", a.ns, sa, se.Status().Code, se.Status().Reason)
	default:
		return apiError("list", "secrets (with the service account token)", a.ns, err)
	}
	return nil
}

// probe is the answer to one anonymous request.
type probe struct {
	Path   string `json:"path"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (a *action) anonymousProbe(ctx context.Context) error {
	anon := &rest.Config{Host: a.c.host}
	if a.c.rest != nil {
		anon = rest.AnonymousClientConfig(a.c.rest)
		anon.Host = a.c.host
	}
	anon.UserAgent = UserAgent(a.marker)
	hc, err := rest.HTTPClientFor(anon)
	if err != nil {
		return fmt.Errorf("k8s: anonymous client: %w", err)
	}
	base := strings.TrimSuffix(a.c.host, "/")
	var probes []probe
	answered := 0
	for _, path := range a.p.Paths {
		pr := probe{Path: path}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return fmt.Errorf("k8s: anonymous GET %s: %w", path, err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", anon.UserAgent)
		resp, err := hc.Do(req)
		if err != nil {
			pr.Error = err.Error()
			a.say("anonymous GET %s: %v", path, err)
		} else {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			pr.Status = resp.StatusCode
			answered++
			if resp.StatusCode == http.StatusOK {
				a.finding("anonymous GET %s answered 200: unauthenticated users can read it", path)
			} else {
				a.say("anonymous GET %s: %d", path, resp.StatusCode)
			}
		}
		probes = append(probes, pr)
	}
	a.details["server"] = a.c.host
	a.details["probes"] = probes
	if answered == 0 {
		return fmt.Errorf("k8s: anonymous probes: the API server %s answered none of %d requests", a.c.host, len(a.p.Paths))
	}
	return nil
}

// oneLine returns s on one line, trimmed and bounded.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// limitedBuffer keeps the first maxCaptured bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxCaptured - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
