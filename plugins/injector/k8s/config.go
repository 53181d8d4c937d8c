package k8s

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vigilsec/vigil/core/plugin"
)

// Config is the target's params table for the k8s injector, for example
//
//	[[target]]
//	name = "staging-cluster"
//	injector = "k8s"
//	[target.params]
//	kubeconfig = "/home/me/.kube/config"
//	context = "staging"
//	namespace = "vigil-chaos"
//
// Unknown keys are errors.
type Config struct {
	// Kubeconfig is the path of a kubeconfig file (default: $KUBECONFIG,
	// then ~/.kube/config, as kubectl does). Ignored with InCluster.
	Kubeconfig string `toml:"kubeconfig"`
	// Context is the kubeconfig context to use (default: its current
	// context).
	Context string `toml:"context"`
	// Namespace is the only namespace the injector works in. Required.
	Namespace string `toml:"namespace"`
	// InCluster uses the pod's service account (vigil running in the
	// cluster, e.g. as a CronJob) instead of a kubeconfig.
	InCluster bool `toml:"in_cluster"`
	// Image is the image of the pods the injector creates (default
	// DefaultImage). It needs sh, sleep and wget (busybox has them).
	Image string `toml:"image"`
	// CaptureImage is the image of the host-network capture pod (default
	// DefaultCaptureImage); it needs tcpdump and timeout.
	CaptureImage string `toml:"capture_image"`
	// APIServer is the URL the anonymous probes are sent to (default: the
	// kubeconfig's server). With it alone (no kubeconfig), only the
	// anonymous-probe action works.
	APIServer string `toml:"api_server"`
	// AllowSystemNamespaces lets Namespace be kube-system, kube-public or
	// kube-node-lease.
	AllowSystemNamespaces bool `toml:"allow_system_namespaces"`
	// CleanupTimeout bounds how long Cleanup waits for the created objects
	// to be gone, as a Go duration (default 60s).
	CleanupTimeout string `toml:"cleanup_timeout"`
	// PodStartTimeout bounds how long an action waits for a pod it created
	// to leave Pending (scheduled, image pulled, container started), as a
	// Go duration (default 90s). A pod still Pending then is reported with
	// the reason (unscheduled, image pull, no node at all), never waited
	// for until the test's own timeout.
	PodStartTimeout string `toml:"pod_start_timeout"`
}

// Defaults.
const (
	// DefaultImage runs the injector's pods.
	DefaultImage = "docker.io/library/busybox:1.36"
	// DefaultCaptureImage runs the host-network packet capture.
	DefaultCaptureImage = "docker.io/nicolaka/netshoot:v0.13"
	// DefaultCleanupTimeout bounds the wait for deleted objects.
	DefaultCleanupTimeout = 60 * time.Second
	// DefaultPodStartTimeout bounds the wait for a created pod to start.
	DefaultPodStartTimeout = 90 * time.Second
	// DefaultTimeout bounds an injection when the request sets none.
	DefaultTimeout = 2 * time.Minute
)

// systemNamespaces are refused unless allow_system_namespaces is set.
var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	cleanupTimeout  time.Duration
	podStartTimeout time.Duration
	// rest is the client config (nil when only api_server is set).
	rest *rest.Config
	// host is where anonymous probes go.
	host string
}

// parseConfig decodes b strictly, checks it and loads the client config.
// Errors never carry credentials: they name the file and the key at fault.
func parseConfig(b []byte) (*config, error) {
	var c Config
	if err := plugin.DecodeConfig("k8s", b, &c); err != nil {
		return nil, err
	}
	c.setDefaults()
	timeouts, err := c.validate()
	if err != nil {
		return nil, fmt.Errorf("k8s: config: %w", err)
	}
	out := &config{Config: c, cleanupTimeout: timeouts.cleanup, podStartTimeout: timeouts.podStart}
	if err := out.connect(); err != nil {
		return nil, fmt.Errorf("k8s: config: %w", err)
	}
	return out, nil
}

// setDefaults fills in what the config leaves out.
func (c *Config) setDefaults() {
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if c.CaptureImage == "" {
		c.CaptureImage = DefaultCaptureImage
	}
}

// timeouts are a config's durations.
type timeouts struct{ cleanup, podStart time.Duration }

// validate checks a config with its defaults, without reading any file,
// and returns its durations.
func (c Config) validate() (timeouts, error) {
	if c.Namespace == "" {
		return timeouts{}, fmt.Errorf("namespace is required (the injector works only inside it)")
	}
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return timeouts{}, fmt.Errorf("namespace %q: %s", c.Namespace, strings.Join(errs, "; "))
	}
	if systemNamespaces[c.Namespace] && !c.AllowSystemNamespaces {
		return timeouts{}, fmt.Errorf("namespace %s is a system namespace: refused unless allow_system_namespaces = true", c.Namespace)
	}
	if c.InCluster && (c.Kubeconfig != "" || c.Context != "") {
		return timeouts{}, fmt.Errorf("in_cluster excludes kubeconfig and context")
	}
	out := timeouts{cleanup: DefaultCleanupTimeout, podStart: DefaultPodStartTimeout}
	for _, d := range []struct {
		key, val string
		to       *time.Duration
	}{{"cleanup_timeout", c.CleanupTimeout, &out.cleanup}, {"pod_start_timeout", c.PodStartTimeout, &out.podStart}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v <= 0 {
			return timeouts{}, fmt.Errorf("%s %q: want a positive Go duration such as 60s", d.key, d.val)
		}
		*d.to = v
	}
	return out, nil
}

// connect resolves the API server and the credentials: the pod's service
// account, a kubeconfig and context, or api_server alone for anonymous
// probes.
func (c *config) connect() error {
	switch {
	case c.InCluster:
		rc, err := rest.InClusterConfig()
		if err != nil {
			return fmt.Errorf("in-cluster config: %w", err)
		}
		c.rest = rc
	case c.Kubeconfig == "" && c.APIServer != "" && c.Context == "":
		// Anonymous probes only.
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if c.Kubeconfig != "" {
			rules.ExplicitPath = c.Kubeconfig
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
		rc, err := cc.ClientConfig()
		if err != nil {
			where := c.Kubeconfig
			if where == "" {
				where = "the default kubeconfig"
			}
			return fmt.Errorf("load %s (context %q): %w", where, c.Context, err)
		}
		c.rest = rc
	}
	c.host = c.APIServer
	if c.host == "" && c.rest != nil {
		c.host = c.rest.Host
	}
	if c.host == "" {
		return fmt.Errorf("no API server: set kubeconfig, in_cluster or api_server")
	}
	return nil
}
