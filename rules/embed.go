// Package rules ships vigil's built-in content inside the binary: the
// technique catalog (techniques/<platform>/<tactic>/<id>.toml, one test of an
// ATT&CK technique per file, loaded by core/catalog; see README.md for the
// format).
//
// Sigma rules for the local SIEM live next to it under sigma/ (Sigma):
// vigil's own rules in sigma/linux and sigma/kubernetes, and an unmodified
// copy of the SigmaHQ Linux, Kubernetes audit and AWS CloudTrail rules in sigma/sigmahq. Recorded telemetry for replays lives under
// telemetry/ (Telemetry): one <test-id>.jsonl per test, written by
// `vigil record` and read by the replay injector.
package rules

import "embed"

// Techniques holds the built-in catalog, rooted at "techniques".
//
//go:embed techniques
var Techniques embed.FS

// TechniquesRoot is the directory of Techniques that holds the catalog.
const TechniquesRoot = "techniques"

// Sigma holds the Sigma rules of the local SIEM, rooted at "sigma".
//
//go:embed sigma
var Sigma embed.FS

// The directories of Sigma.
const (
	// SigmaOwnRoot holds vigil's own rules for Linux hosts.
	SigmaOwnRoot = "sigma/linux"
	// SigmaKubernetesRoot holds vigil's own rules for Kubernetes audit
	// events (logsource product kubernetes, service audit).
	SigmaKubernetesRoot = "sigma/kubernetes"
	// SigmaAWSRoot holds vigil's own rules for AWS CloudTrail records
	// (logsource product aws, service cloudtrail).
	SigmaAWSRoot = "sigma/aws"
	// SigmaHQRoot holds the SigmaHQ Linux, Kubernetes audit and AWS CloudTrail rules (DRL
	// 1.1), with upstream paths kept below it.
	SigmaHQRoot = "sigma/sigmahq"
)

// SigmaOwnRoots are the directories of vigil's own rules, all loaded by
// default.
var SigmaOwnRoots = []string{SigmaOwnRoot, SigmaKubernetesRoot, SigmaAWSRoot}

// Telemetry holds the recorded telemetry the replay injector replays,
// rooted at "telemetry": one <test-id>.jsonl file per test.
//
//go:embed telemetry
var Telemetry embed.FS

// TelemetryRoot is the directory of Telemetry that holds the recordings.
const TelemetryRoot = "telemetry"
