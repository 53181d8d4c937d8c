package k8s

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vigilsec/vigil/core/plugin"
)

// The actions, the value of the "action" param.
const (
	ActionAnonymousProbe     = "anonymous-probe"
	ActionPrivilegedPod      = "privileged-pod"
	ActionPodExec            = "pod-exec"
	ActionHostNetworkCapture = "hostnetwork-capture"
	ActionExecNewFile        = "exec-new-file"
	ActionServiceAccountList = "serviceaccount-token-secrets"
	ActionMetadataProbe      = "metadata-probe"
)

// Actions lists the actions in the order the README documents them.
var Actions = []string{
	ActionAnonymousProbe, ActionPrivilegedPod, ActionPodExec, ActionHostNetworkCapture,
	ActionExecNewFile, ActionServiceAccountList, ActionMetadataProbe,
}

// Defaults of the action params.
var (
	// DefaultProbePaths are the paths the anonymous probe GETs.
	DefaultProbePaths = []string{"/api/v1/pods", "/api/v1/nodes", "/api/v1/secrets"}
	// DefaultMetadataURL is GKE's kube-env attribute, which holds the
	// kubelet's bootstrap credentials on clusters without metadata
	// concealment or Workload Identity.
	DefaultMetadataURL = "http://169.254.169.254/computeMetadata/v1/instance/attributes/kube-env"
	// DefaultMetadataHeader is the header GCE's metadata server requires.
	DefaultMetadataHeader = "Metadata-Flavor: Google"
)

// params are a test's params for the k8s injector.
type params struct {
	Action string `json:"action"`
	// Paths: anonymous-probe.
	Paths []string `json:"paths,omitempty"`
	// Pod and Container: pod-exec and exec-new-file run in this existing
	// pod instead of a victim pod the injector creates.
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	// ServiceAccount: serviceaccount-token-secrets requests a token for this
	// existing service account instead of one the injector creates.
	ServiceAccount string `json:"service_account,omitempty"`
	// MetadataURL and MetadataHeader: metadata-probe.
	MetadataURL    string `json:"metadata_url,omitempty"`
	MetadataHeader string `json:"metadata_header,omitempty"`
}

// parseParams decodes and checks a test's params.
func parseParams(p plugin.Params) (params, []plugin.Problem) {
	var out params
	if err := p.Decode(&out); err != nil {
		return out, []plugin.Problem{{Message: err.Error()}}
	}
	var probs []plugin.Problem
	bad := func(subject, format string, args ...any) {
		probs = append(probs, plugin.Problem{Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	known := false
	for _, a := range Actions {
		known = known || a == out.Action
	}
	if !known {
		bad("action", "%q is not an action (known: %s)", out.Action, strings.Join(Actions, ", "))
	}
	for _, path := range out.Paths {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# ") {
			bad("paths", "%q: want an absolute API path without query", path)
		}
	}
	for name, v := range map[string]string{"pod": out.Pod, "service_account": out.ServiceAccount} {
		if v != "" && len(validation.IsDNS1123Subdomain(v)) > 0 {
			bad(name, "%q is not a valid object name", v)
		}
	}
	if out.Container != "" && len(validation.IsDNS1123Label(out.Container)) > 0 {
		bad("container", "%q is not a valid container name", out.Container)
	}
	if out.Container != "" && out.Pod == "" {
		bad("container", "needs pod")
	}
	if out.MetadataURL != "" {
		u, err := url.Parse(out.MetadataURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(out.MetadataURL, "'\\ ") {
			bad("metadata_url", "%q: want an http(s) URL without quotes, backslashes or spaces", out.MetadataURL)
		}
	}
	if h := out.MetadataHeader; h != "" && (!strings.Contains(h, ":") || strings.ContainsAny(h, "'\\\n")) {
		bad("metadata_header", "%q: want \"Name: value\" without quotes or backslashes", h)
	}
	if len(out.Paths) == 0 {
		out.Paths = DefaultProbePaths
	}
	if out.MetadataURL == "" {
		out.MetadataURL = DefaultMetadataURL
	}
	if out.MetadataHeader == "" {
		out.MetadataHeader = DefaultMetadataHeader
	}
	return out, probs
}
