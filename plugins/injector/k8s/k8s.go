// Package k8s is vigil's built-in "k8s" injector: it performs the
// Kubernetes pack's tests (rules/techniques/kubernetes) against a cluster
// through its API server, with k8s.io/client-go.
//
// A target names one cluster (a kubeconfig and context, or the in-cluster
// service account) and one namespace; the injector creates and deletes
// objects only in that namespace and refuses kube-system, kube-public and
// kube-node-lease unless allow_system_namespaces is set. Each test's
// "action" param picks what it does (see Actions and README.md).
//
// The run marker is planted where the cluster's audit log and runtime
// sensors show it:
//
//   - in the User-Agent of every API request (the audit event's userAgent),
//     including the anonymous and stolen-token requests;
//   - in the name, the vigil.run-marker label and the vigil.dev/marker
//     annotation of every object created (objectRef.name and
//     requestObject.metadata in the audit event);
//   - as $0 of every shell the injector starts in a container (pod
//     commands and exec commands: the process command line a runtime
//     sensor such as Falco sees, and the exec request's command= params).
//
// Cleanup deletes what the injection created: the recorded artifacts, then
// every pod and service account in the namespace carrying the run's
// vigil.run-marker label (so it works after a half-done or lost Inject), and
// waits, bounded by cleanup_timeout, until they are gone.
package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// Name is the injector's registered name.
const Name = "k8s"

// Version is the injector's version, reported by Describe and sent in the
// User-Agent.
const Version = "0.1.0"

// Labels and annotations the injector puts on every object it creates.
const (
	// LabelRunMarker holds the run marker; Cleanup deletes by it.
	LabelRunMarker = "vigil.run-marker"
	// LabelManagedBy is app.kubernetes.io/managed-by=vigil.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationTestID holds the test's ID.
	AnnotationTestID = "vigil.dev/test-id"
	// AnnotationMarker holds the run marker too (annotations reach audit
	// events' requestObject even where labels are dropped).
	AnnotationMarker = "vigil.dev/marker"
)

// ErrNotConfigured means Inject or Cleanup came before Configure.
var ErrNotConfigured = errors.New("k8s: not configured (the target's params are required: namespace at least)")

// markerRE is what the injector accepts as a marker: it must be a label
// value and a DNS label prefix short enough for the object names built on
// it.
var markerRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$`)

func init() {
	plugin.RegisterInjector(Name, func() plugin.Injector { return new(Injector) })
}

// Interface guards.
var _ plugin.Injector = (*Injector)(nil)

// Injector performs Kubernetes techniques through a cluster's API server.
// New values need Configure; methods are safe for concurrent use.
type Injector struct {
	sdk.InjectorBase // prerequisites: none to check; nothing to close

	mu  sync.Mutex
	cfg *config

	// poll is the interval of the waits for pods and deletions (default
	// time.Second); tests shorten it.
	poll time.Duration
	// now is the clock (tests); default time.Now.
	now func() time.Time
}

// Describe says what the injector is.
func (x *Injector) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindInjector,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Performs Kubernetes techniques (anonymous API probes, privileged and host-network pods, exec, token theft, metadata probes) in one namespace of a cluster, and deletes what it created.",
		Platforms:       []string{"kubernetes", "containers"},
		Params: []plugin.ParamSpec{
			{Name: "action", Type: "string", Required: true, Description: "what to do: " + strings.Join(Actions, ", ")},
			{Name: "paths", Type: "list", Description: "anonymous-probe: API paths to GET without credentials (default /api/v1/pods, /api/v1/nodes, /api/v1/secrets)"},
			{Name: "pod", Type: "string", Description: "pod-exec, exec-new-file: an existing pod of the namespace to exec into (default: a victim pod the injector creates)"},
			{Name: "container", Type: "string", Description: "pod-exec, exec-new-file: the container of pod (default: its first)"},
			{Name: "service_account", Type: "string", Description: "serviceaccount-token-secrets: an existing service account to request a token for (default: one the injector creates)"},
			{Name: "metadata_url", Type: "string", Description: "metadata-probe: URL to fetch from a pod (default GKE's kube-env attribute)"},
			{Name: "metadata_header", Type: "string", Description: "metadata-probe: request header (default Metadata-Flavor: Google)"},
		},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerUserAgent, plugin.MarkerCommandLine},
		Capabilities:    []string{plugin.CapCleanupByMarker},
	}, nil
}

// Configure decodes the target's params strictly (see Config) and loads the
// client config. It does not contact the cluster.
func (x *Injector) Configure(ctx context.Context, b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cfg = c
	return nil
}

// Validate checks a test's params without side effects. Cleanup params are
// not used: cleanup is always by label.
func (x *Injector) Validate(ctx context.Context, req plugin.ValidateRequest) ([]plugin.Problem, error) {
	_, probs := parseParams(req.Params)
	if len(req.CleanupParams) > 0 {
		probs = append(probs, plugin.Problem{Subject: "cleanup", Message: "the k8s injector takes no cleanup params: it deletes what it created by the run marker label"})
	}
	return probs, nil
}

func (x *Injector) config() (*config, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cfg == nil {
		return nil, ErrNotConfigured
	}
	return x.cfg, nil
}

func (x *Injector) clock() time.Time {
	if x.now != nil {
		return x.now()
	}
	return time.Now()
}

func (x *Injector) interval() time.Duration {
	if x.poll > 0 {
		return x.poll
	}
	return time.Second
}

// UserAgent is the User-Agent of every request of a run marked marker.
func UserAgent(marker string) string {
	return fmt.Sprintf("vigil/%s (k8s injector; %s)", Version, marker)
}

// checkMarker refuses markers that cannot be a label value or name prefix.
func checkMarker(m string) error {
	if !markerRE.MatchString(m) {
		return fmt.Errorf("k8s: marker %q cannot be a label value and object name prefix (want lower-case letters, digits and dashes, at most 40)", m)
	}
	return nil
}

// clientFor returns a clientset whose requests carry the marker in their
// User-Agent, and that config.
func clientFor(c *config, marker string) (*kubernetes.Clientset, *rest.Config, error) {
	if c.rest == nil {
		return nil, nil, fmt.Errorf("k8s: this target has only api_server: set kubeconfig or in_cluster for actions other than %s", ActionAnonymousProbe)
	}
	rc := rest.CopyConfig(c.rest)
	rc.UserAgent = UserAgent(marker)
	// JSON rather than protobuf: what kubectl sends for writes, readable
	// in proxies and tests.
	rc.ContentType = "application/json"
	rc.AcceptContentTypes = "application/json"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("k8s: client: %w", err)
	}
	return cs, rc, nil
}

// Inject performs the test's action. What the cluster refused (RBAC,
// admission) is Outcome failed with an error naming the verb, resource and
// namespace; a finding (an anonymous 200, a reachable metadata endpoint) is
// reported in Details and Stdout.
func (x *Injector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.InjectResult{}, err
	}
	res := plugin.InjectResult{StartedAt: x.clock(), Host: hostOf(c.host)}
	finish := func(o plugin.Outcome, errMsg string) (plugin.InjectResult, error) {
		res.EndedAt = x.clock()
		res.Outcome, res.Error = o, errMsg
		return res, nil
	}
	if err := checkMarker(req.Marker); err != nil {
		return finish(plugin.OutcomeRefused, err.Error())
	}
	p, probs := parseParams(req.Params)
	if len(probs) > 0 {
		return finish(plugin.OutcomeFailed, fmt.Sprintf("k8s: params: %v", plugin.Problems(probs)))
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	a := &action{x: x, c: c, p: p, marker: req.Marker, testID: req.TestID, ns: c.Namespace}
	err = a.run(ctx)
	res.Artifacts = a.artifacts
	res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerUserAgent}
	if a.inContainer {
		res.MarkerLocations = append(res.MarkerLocations, plugin.MarkerCommandLine)
	}
	res.ExitCode = a.exitCode
	res.Stdout = []byte(strings.Join(a.summary, "\n"))
	if len(a.summary) > 0 {
		res.Stdout = append(res.Stdout, '\n')
	}
	res.Stderr = a.stderr
	a.details["action"] = p.Action
	a.details["namespace"] = a.ns
	if b, jerr := json.Marshal(a.details); jerr == nil {
		res.Details = b
	}
	switch {
	case err == nil:
		return finish(plugin.OutcomeSucceeded, "")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return finish(plugin.OutcomeTimedOut, fmt.Sprintf("k8s: %s: timed out after %s: %v", p.Action, timeout, err))
	default:
		return finish(plugin.OutcomeFailed, err.Error())
	}
}

// hostOf returns the host of the API server URL, as results name it.
func hostOf(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return server
	}
	return u.Hostname()
}
