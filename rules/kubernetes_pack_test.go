package rules_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/injector/k8s"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// The Kubernetes pack (techniques/kubernetes), its recorded audit events
// (telemetry/k8s-*.jsonl) and vigil's Kubernetes rules (sigma/kubernetes)
// are checked together: every test uses one action of the k8s injector, has
// a recording of audit.k8s.io/v1 events carrying the run marker, and each
// of its expected techniques is raised by a vigil rule from that recording.

const kubernetesTechniques = "techniques/kubernetes/"

func kubernetesPack(t *testing.T) []*catalog.Test { return packOf(t, kubernetesTechniques) }

// packOf returns the embedded catalog's tests defined below dir
// ("techniques/aws/").
func packOf(t *testing.T, dir string) []*catalog.Test {
	t.Helper()
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatalf("load the embedded catalog: %v", err)
	}
	var out []*catalog.Test
	for _, tc := range cat.Tests {
		if strings.Contains(path.Clean(strings.ReplaceAll(tc.Source.File, `\`, "/")), dir) {
			out = append(out, tc)
		}
	}
	return out
}

func TestKubernetesPackTests(t *testing.T) {
	pack := kubernetesPack(t)
	actions := map[string]string{}
	for _, tc := range pack {
		t.Run(tc.ID, func(t *testing.T) {
			if !strings.HasPrefix(tc.ID, "k8s-") {
				t.Errorf("id: want the k8s- prefix")
			}
			if !contains(tc.Platforms, "kubernetes") {
				t.Errorf("platforms %v lack kubernetes", tc.Platforms)
			}
			if tc.Inject.Plugin != k8s.Name {
				t.Errorf("inject plugin %q, want %s", tc.Inject.Plugin, k8s.Name)
			}
			probs, err := new(k8s.Injector).Validate(context.Background(), plugin.ValidateRequest{TestID: tc.ID, Params: plugin.Params(tc.Inject.Params)})
			if err != nil || len(probs) > 0 {
				t.Errorf("the k8s injector rejects the params: %v %v", err, probs)
			}
			a, _ := tc.Inject.Params["action"].(string)
			if other, dup := actions[a]; dup {
				t.Errorf("action %s also used by %s", a, other)
			}
			actions[a] = tc.ID
			if tc.Cleanup != nil {
				t.Errorf("[cleanup]: the k8s injector deletes by the run marker label and takes no cleanup params")
			}
			switch {
			case a == k8s.ActionAnonymousProbe && tc.Safety != catalog.SafetySafe:
				t.Errorf("safety %s: the anonymous probe creates nothing", tc.Safety)
			case a != k8s.ActionAnonymousProbe && tc.Safety != catalog.SafetyReversible:
				t.Errorf("safety %s: the action creates objects that cleanup deletes (reversible)", tc.Safety)
			}
			if !strings.Contains(tc.Description, string(tc.Technique.ID)) {
				t.Errorf("description does not name the technique %s", tc.Technique.ID)
			}
			if len(tc.References) == 0 {
				t.Errorf("no references")
			}
			withinSet := false
			for _, e := range tc.Expect {
				withinSet = withinSet || (!e.Absent && e.Within > 0 && e.Within <= 90*time.Second)
			}
			if !withinSet {
				t.Errorf("no [[expect]] with a within deadline")
			}
		})
	}
	for _, a := range k8s.Actions {
		if actions[a] == "" {
			t.Errorf("no test for action %s", a)
		}
	}
}

// Every Kubernetes test has a recording of audit events that vigil's own
// rules detect with each of its expected techniques, after the replay's
// marker substitution.
func TestKubernetesPackRecordingsDetected(t *testing.T) {
	rs, err := detect.Load(rules.Sigma, rules.SigmaKubernetesRoot)
	if err != nil || len(rs.Problems) > 0 || len(rs.Rules) == 0 {
		t.Fatalf("load %s: %v %v", rules.SigmaKubernetesRoot, err, rs.Problems)
	}
	eng := detect.NewEngine(rs.Rules)
	tel, err := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "vigil-00112233aabb"
	for _, tc := range kubernetesPack(t) {
		t.Run(tc.ID, func(t *testing.T) {
			rec, err := telemetry.Load(tel, tc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.TestID != tc.ID || rec.Marker == "" || len(rec.Events) == 0 {
				t.Fatalf("header %+v, %d events", rec.Header, len(rec.Events))
			}
			evs := rec.Rebase(time.Now(), marker, "replay-host")
			for i, ev := range evs {
				if ev.Source != telemetry.KubernetesAudit {
					t.Errorf("event %d: logsource %v", i, ev.Source)
				}
				for k, want := range map[string]string{"kind": "Event", "apiVersion": "audit.k8s.io/v1"} {
					if ev.Get(k) != want {
						t.Errorf("event %d: %s = %q, want %q", i, k, ev.Get(k), want)
					}
				}
				// Long-running requests (exec) are audited when the
				// response starts, too.
				if st := ev.Get("stage"); st != "ResponseComplete" && (st != "ResponseStarted" || ev.Get("objectRef.subresource") != "exec") {
					t.Errorf("event %d: stage %q on %s %s/%s", i, st, ev.Get("verb"), ev.Get("objectRef.resource"), ev.Get("objectRef.subresource"))
				}
				for _, k := range []string{"verb", "user.username", "objectRef.resource", "responseStatus.code", "requestURI", "auditID", "sourceIPs"} {
					if ev.Get(k) == "" {
						t.Errorf("event %d: no %s", i, k)
					}
				}
				if ua := ev.Get("userAgent"); ua != k8s.UserAgent(marker) {
					t.Errorf("event %d: userAgent %q, want %q (the marker replaced)", i, ua, k8s.UserAgent(marker))
				}
				if n := ev.Get("objectRef.name"); n != "" && !strings.HasPrefix(n, marker+"-") && ev.Get("objectRef.resource") != "secrets" {
					t.Errorf("event %d: objectRef.name %q does not carry the marker", i, n)
				}
				raw, _ := json.Marshal(ev.Fields)
				if strings.Contains(string(raw), rec.Marker) {
					t.Errorf("event %d: the recorded marker survived the replay", i)
				}
			}
			want := map[attack.TechniqueID]bool{tc.Technique.ID: true}
			for _, e := range tc.Expect {
				if !e.Absent && e.Technique != "" {
					want[e.Technique] = true
				}
			}
			for tech := range want {
				var by []string
				for i := range evs {
					for _, m := range eng.Match(&evs[i]) {
						for _, rt := range m.Rule.Techniques {
							if attack.TechniqueID(rt).Covers(tech) {
								by = append(by, m.Rule.Title)
							}
						}
					}
				}
				if len(by) == 0 {
					t.Errorf("no vigil rule raises %s from the recording", tech)
				}
			}
		})
	}
}

// The rules are specific: the audit events of one test do not raise the
// techniques of the others (two exec tests share T1609).
func TestKubernetesRulesSpecific(t *testing.T) {
	rs, err := detect.Load(rules.Sigma, rules.SigmaKubernetesRoot)
	if err != nil {
		t.Fatal(err)
	}
	eng := detect.NewEngine(rs.Rules)
	tel, _ := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	pack := kubernetesPack(t)
	for _, tc := range pack {
		rec, err := telemetry.Load(tel, tc.ID)
		if err != nil {
			t.Fatal(err)
		}
		own := map[string]bool{string(tc.Technique.ID): true}
		for _, e := range tc.Expect {
			own[string(e.Technique)] = true
		}
		for i := range rec.Events {
			for _, m := range eng.Match(&rec.Events[i]) {
				for _, rt := range m.Rule.Techniques {
					if !own[strings.ToUpper(rt)] && !own[rt] {
						t.Errorf("%s: rule %q raises %s, not one of the test's techniques", tc.ID, m.Rule.Title, rt)
					}
				}
			}
		}
	}
}
