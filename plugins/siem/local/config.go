package local

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Modes of the local SIEM (Config.Mode).
const (
	// ModeLive starts the kernel audit sensor: needs root and the kernel
	// audit subsystem.
	ModeLive = "live"
	// ModeReplay starts no sensor: the SIEM only sees the events it is
	// given through Ingest (vigil run --replay). Needs no privilege.
	ModeReplay = "replay"
	// ModeLogs starts no kernel sensor: the SIEM sees the Kubernetes API
	// server audit logs it follows (kubernetes_audit_logs). Needs only the
	// right to read them.
	ModeLogs = "logs"
)

// DefaultKubernetesCluster is the host name of the events read from
// kubernetes_audit_logs when kubernetes_cluster is not set.
const DefaultKubernetesCluster = "kubernetes"

// Values of Config.Rules.
const (
	// RulesBuiltin loads vigil's own rules shipped in the binary
	// (rules/sigma/linux and rules/sigma/kubernetes). It is the default.
	RulesBuiltin = "builtin"
	// RulesNone loads none of vigil's own rules.
	RulesNone = "none"
)

// Defaults and limits of Config.
const (
	DefaultRetention = time.Hour
	DefaultMaxEvents = 200_000
	// MaxMaxEvents bounds max_events (each stored event costs about 1 KiB).
	MaxMaxEvents = 10_000_000
)

// Config is the local SIEM's [siem.params] table, for example
//
//	[[siem]]
//	name = "local"
//	plugin = "local"
//	[siem.params]
//	mode = "live"
//	sigma_dirs = ["/etc/vigil/sigma"]
//	sigmahq = true
//	retention = "1h"
//	max_events = 200000
//	record = "/var/tmp/vigil/record.jsonl"
//
// Every key is optional. Unknown keys are errors.
type Config struct {
	// Mode is ModeLive (default) or ModeReplay.
	Mode string `toml:"mode"`
	// Rules selects vigil's own rules: RulesBuiltin (default, also ""),
	// RulesNone, or a directory whose .yml/.yaml files replace the built-in
	// ones (for rule authors). Every file of vigil's own rules must load: a
	// problem is a Configure error naming the file and the reason.
	Rules string `toml:"rules"`
	// SigmaHQ also loads the shipped SigmaHQ Linux rules (default true).
	// Files that cannot be loaded are skipped (see LoadProblems).
	SigmaHQ *bool `toml:"sigmahq"`
	// SigmaDirs are extra directories of Sigma rules loaded as well, absolute
	// or relative to the working directory. Files that cannot be loaded are
	// skipped (see LoadProblems).
	SigmaDirs []string `toml:"sigma_dirs"`
	// Retention is how long signals and raw events are kept (default 1h).
	Retention time.Duration `toml:"retention"`
	// MaxEvents bounds the ring of raw events kept for SearchRawEvents and
	// native queries (default 200000). Signals are bounded by it too.
	MaxEvents int `toml:"max_events"`
	// Record, when set, is a file every normalised event is appended to as
	// one JSON line (event.Event), for `vigil record`.
	Record string `toml:"record"`
	// KubernetesAuditLogs are Kubernetes API server audit logs (the files
	// of kube-apiserver's --audit-log-path, audit.k8s.io/v1 events in
	// JSON lines) followed from their end in modes live and logs, as
	// tail -F does (rotation and truncation included): their events go
	// through the Kubernetes audit rules. Ignored in replay mode.
	KubernetesAuditLogs []string `toml:"kubernetes_audit_logs"`
	// KubernetesCluster is the host name of those events, as results name
	// it (default DefaultKubernetesCluster).
	KubernetesCluster string `toml:"kubernetes_cluster"`
}

// parseConfig decodes b strictly, fills in the defaults and checks the
// result. Empty b is the default config.
func parseConfig(b []byte) (Config, error) {
	var c Config
	if err := plugin.DecodeConfig(Name, b, &c); err != nil {
		return c, err
	}
	c.setDefaults()
	return c, c.validate()
}

// setDefaults fills in what the user left out.
func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeLive
	}
	if c.Rules == "" {
		c.Rules = RulesBuiltin
	}
	if c.SigmaHQ == nil {
		t := true
		c.SigmaHQ = &t
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.Record != "" {
		c.Record = filepath.Clean(c.Record)
	}
	if c.KubernetesCluster == "" {
		c.KubernetesCluster = DefaultKubernetesCluster
	}
}

// validate checks a config with its defaults.
func (c Config) validate() error {
	switch c.Mode {
	case ModeLive, ModeReplay:
	case ModeLogs:
		if len(c.KubernetesAuditLogs) == 0 {
			return fmt.Errorf("local: config: mode %q needs kubernetes_audit_logs (the files to follow)", ModeLogs)
		}
	default:
		return fmt.Errorf("local: config: mode %q: want %q, %q or %q", c.Mode, ModeLive, ModeLogs, ModeReplay)
	}
	for i, p := range c.KubernetesAuditLogs {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("local: config: kubernetes_audit_logs[%d] is empty", i)
		}
	}
	for i, d := range c.SigmaDirs {
		if strings.TrimSpace(d) == "" {
			return fmt.Errorf("local: config: sigma_dirs[%d] is empty", i)
		}
	}
	if c.Retention < time.Second {
		return fmt.Errorf("local: config: retention %s is below 1s", c.Retention)
	}
	if c.MaxEvents < 0 || c.MaxEvents > MaxMaxEvents {
		return fmt.Errorf("local: config: max_events %d out of range (1..%d)", c.MaxEvents, MaxMaxEvents)
	}
	return nil
}
