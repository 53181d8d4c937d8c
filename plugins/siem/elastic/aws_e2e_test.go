package elastic

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/awspack"
	"github.com/vigilsec/vigil/internal/elasticfake"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/plugins/injector/replay"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// threatOf is a rule's ATT&CK mapping as Kibana writes it: a technique,
// with its sub-technique when the tag names one.
func threatOf(techniques []string) []any {
	var out []any
	for _, id := range techniques {
		parent, _, sub := strings.Cut(id, ".")
		tech := map[string]any{"id": parent, "name": parent, "reference": "https://attack.mitre.org/techniques/" + parent + "/"}
		if sub {
			tech["subtechnique"] = []any{map[string]any{"id": id, "name": id}}
		}
		out = append(out, map[string]any{"framework": "MITRE ATT&CK", "technique": []any{tech}})
	}
	return out
}

// The AWS pack replayed from its recordings through the bulk API: the
// records land in logs-aws.cloudtrail-default as Elastic's AWS integration
// indexes them, and the fake's detection rules (the local SIEM's Sigma
// rules, over the record in event.original, as Elastic's CloudTrail rules
// read the same fields) raise alerts copying the source document. Every
// test is detected, tied by its marker.
func TestEndToEndAWSPackReplay(t *testing.T) {
	tests := awspack.Tests(t, 10*time.Second)
	eng := detect.NewEngine(awspack.Rules(t))
	f := elasticfake.New(t)
	var mu sync.Mutex
	n := 0
	f.SetOnIngest(func(docs []map[string]any) {
		for _, d := range docs {
			if first(d, "event.dataset") != CloudTrailDataset {
				t.Errorf("a replayed record outside the CloudTrail dataset: %v", d["data_stream"])
				continue
			}
			ev, err := telemetry.FromCloudTrail([]byte(first(d, "event.original")), first(d, "host.name"))
			if err != nil {
				t.Errorf("event.original: %v", err)
				continue
			}
			for _, m := range eng.Match(&ev) {
				mu.Lock()
				n++
				id := fmt.Sprintf("alert-%d", n)
				mu.Unlock()
				at, _ := time.Parse(time.RFC3339Nano, first(d, "@timestamp"))
				at = at.Add(200 * time.Millisecond)
				doc := withFields(t, alert8x(t, id, at, first(d, MarkerField)), map[string]any{
					"kibana.alert.rule.name": m.Rule.Title, "kibana.alert.rule.rule_id": m.Rule.ID, "kibana.alert.rule.uuid": m.Rule.ID,
					"kibana.alert.rule.threat": threatOf(m.Rule.Techniques), "kibana.alert.rule.parameters": map[string]any{"rule_id": m.Rule.ID},
					"user_agent": map[string]any{"original": first(d, "user_agent.original")}, "event": map[string]any{"dataset": CloudTrailDataset, "action": first(d, "event.action")},
				})
				f.Add(".alerts-security.alerts-default", id, doc, at)
			}
		}
	})
	siem, _ := configured(t, f, esConfig(f, true))
	ctx := t.Context()
	sd, _ := siem.Describe(ctx)
	inj := new(replay.Injector)
	id, _ := inj.Describe(ctx)
	e := &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "elastic", Plugin: Name, Impl: siem, Desc: sd, PollInterval: 100 * time.Millisecond, Timeout: 5 * time.Second}},
		Targets: []*runner.Target{{Name: "replay", Plugin: "aws", Impl: inj, Desc: id, Host: testHost, TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 11},
	}
	rs := plugintest.RunEngine(t, e, tests...)
	if len(rs) != len(tests) || len(tests) < 10 {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	for tid, r := range rs {
		if r.Status != measure.Detected || !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s: %s (%s%s), correlation %q; want detected by marker", tid, r.Status, r.Error, r.Reason, r.Correlation)
		}
	}
	b, _ := json.Marshal(f.Docs("logs-aws.cloudtrail-default"))
	t.Logf("%d AWS tests replayed: %d CloudTrail documents (%d bytes), %d alerts", len(tests), len(f.Docs("logs-aws.cloudtrail-default")), len(b), n)
}
