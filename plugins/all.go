// Package plugins links vigil's built-in plugins into the binary: each
// blank import below registers one plugin from its init function. Import
// this package (blank) from main.
package plugins

import (
	_ "github.com/vigilsec/vigil/plugins/injector/aws"    // injector "aws": performs AWS techniques in one allowed account and region
	_ "github.com/vigilsec/vigil/plugins/injector/exec"   // injector "exec": runs shell commands on the local host
	_ "github.com/vigilsec/vigil/plugins/injector/k8s"    // injector "k8s": performs Kubernetes techniques in one namespace of a cluster
	_ "github.com/vigilsec/vigil/plugins/injector/replay" // injector "replay": replays recorded telemetry instead of performing the technique
	_ "github.com/vigilsec/vigil/plugins/injector/ssh"    // injector "ssh": runs the tests' shell commands on remote hosts over SSH
	_ "github.com/vigilsec/vigil/plugins/siem/datadog"    // siem "datadog": Datadog Cloud SIEM / Workload Protection signals, replay through the logs intake
	_ "github.com/vigilsec/vigil/plugins/siem/elastic"    // siem "elastic": Elastic Security detection alerts (Elasticsearch or Kibana), replay through the bulk API
	_ "github.com/vigilsec/vigil/plugins/siem/local"      // siem "local": the embedded default SIEM (audit sensor + Sigma rules)
	_ "github.com/vigilsec/vigil/plugins/siem/sentinel"   // siem "sentinel": Microsoft Sentinel alerts (or any KQL) through the Logs query API, replay through the Logs Ingestion API
	_ "github.com/vigilsec/vigil/plugins/siem/splunk"     // siem "splunk": Splunk (ES notables or any SPL) over the REST API, replay through HEC
)
