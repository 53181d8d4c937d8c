package rules_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/cloudtrail"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/awsfake"
	"github.com/vigilsec/vigil/plugins/injector/aws"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// The AWS pack (techniques/aws), its recordings (telemetry/aws-*.jsonl,
// derived from the CloudTrail of real Stratus Red Team detonations) and
// vigil's CloudTrail rules (sigma/aws) are checked together: every test
// uses one action of the aws injector, the recording holds calls the
// injector really makes (run against the fake AWS endpoint), and the local
// SIEM's rules raise the test's technique from it.

var updateRecordings = flag.Bool("update-aws-recordings", false, "derive telemetry/aws-*.jsonl again from ../shared's Stratus Red Team detonation logs")

// stratusLogs is where the Stratus Red Team detonation logs are, from this
// package's directory.
const stratusLogs = "../../shared/corpus/stratus-red-team/docs/detonation-logs"

func awsPack(t *testing.T) []*catalog.Test { return packOf(t, "techniques/aws/") }

func actionParam(tc *catalog.Test) string {
	a, _ := tc.Inject.Params["action"].(string)
	return a
}

func TestAWSPackTests(t *testing.T) {
	pack := awsPack(t)
	if len(pack) < 10 {
		t.Fatalf("%d AWS tests, want at least 10", len(pack))
	}
	actions := map[string]string{}
	for _, tc := range pack {
		t.Run(tc.ID, func(t *testing.T) {
			a := actionParam(tc)
			switch {
			case !strings.HasPrefix(tc.ID, "aws-"):
				t.Errorf("id: want the aws- prefix")
			case !slices.Contains(tc.Platforms, "iaas:aws"):
				t.Errorf("platforms %v lack iaas:aws", tc.Platforms)
			case tc.Inject.Plugin != aws.Name:
				t.Errorf("inject plugin %q, want %s", tc.Inject.Plugin, aws.Name)
			case tc.Safety != catalog.SafetyReversible:
				t.Errorf("safety %s: every action creates what it changes, and cleanup deletes it", tc.Safety)
			case tc.Cleanup != nil:
				t.Errorf("[cleanup]: the aws injector deletes by the run marker and takes no cleanup params")
			}
			probs, err := new(aws.Injector).Validate(context.Background(), plugin.ValidateRequest{TestID: tc.ID, Params: plugin.Params(tc.Inject.Params)})
			if err != nil || len(probs) > 0 {
				t.Errorf("the aws injector rejects the params: %v %v", err, probs)
			}
			if other, dup := actions[a]; dup {
				t.Errorf("action %s also used by %s", a, other)
			}
			actions[a] = tc.ID
			stratus := aws.Stratus(a)
			if !strings.Contains(tc.Description, stratus) || !slices.ContainsFunc(tc.References, func(r string) bool { return strings.Contains(r, stratus) }) {
				t.Errorf("description and references must name the Stratus technique %s", stratus)
			}
			if !strings.Contains(tc.Description, string(tc.Technique.ID)) || !strings.Contains(tc.Description, "(") {
				t.Errorf("description does not name %s and say why", tc.Technique.ID)
			}
		})
	}
	for _, a := range aws.Actions() {
		if actions[a] == "" {
			t.Errorf("no test for action %s", a)
		}
	}
}

// fakeCalls runs a test's action against the fake AWS endpoint, through
// the injector and the SDK's standard credential chain (the environment),
// and returns the calls of the injection.
func fakeCalls(t *testing.T, tc *catalog.Test) []awsfake.Call {
	t.Helper()
	fake := awsfake.New()
	t.Cleanup(fake.Close)
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": fake.AccessKey, "AWS_SECRET_ACCESS_KEY": fake.SecretKey,
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": ""} {
		t.Setenv(k, v)
	}
	x := new(aws.Injector)
	cfg := fmt.Sprintf("region = %q\naccount_ids = [%q]\nendpoint_url = %q\n", fake.Region, fake.Account, fake.URL)
	if err := x.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	res, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: tc.ID, Marker: "vigil-feedfacecafe", Params: plugin.Params(tc.Inject.Params), Timeout: time.Minute})
	if err != nil || res.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("inject against the fake: %v %s %s", err, res.Outcome, res.Error)
	}
	calls := fake.Calls()
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{TestID: tc.ID, Marker: "vigil-feedfacecafe", Params: plugin.Params(tc.Inject.Params)}); err != nil {
		t.Fatal(err)
	}
	if left := fake.Leftovers(); len(left) > 0 {
		t.Errorf("left after cleanup: %q", left)
	}
	return calls
}

// derivedKeys are request parameters CloudTrail adds on its own, or
// paging the injector needs not.
var derivedKeys = map[string]bool{"dryrun": true, "fullyqualifiedarn": true, "nexttoken": true, "publish": true}

// recordKeys are a record's top-level request parameters, lower-case,
// without empty ones, CloudTrail's own additions, and EC2's *Request
// wrapper.
func recordKeys(ev *telemetry.Event) []string {
	seen := map[string]bool{}
	for k, v := range ev.Fields {
		rest, ok := strings.CutPrefix(k, "requestParameters.")
		if !ok || v == "" {
			continue
		}
		parts := strings.Split(rest, ".")
		if strings.HasSuffix(parts[0], "Request") && len(parts) > 1 {
			parts = parts[1:]
		}
		if key := strings.ToLower(parts[0]); !derivedKeys[key] {
			seen[key] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func callKeys(c awsfake.Call) map[string]bool {
	out := map[string]bool{}
	for k := range c.Params {
		out[strings.ToLower(strings.Split(k, ".")[0])] = true
	}
	return out
}

// TestAWSRecordings: each recording's records are calls the injector
// makes (same eventSource and eventName, and request parameters it
// sends), and, with ../shared present, are what Derive makes from the
// Stratus detonation log (-update-aws-recordings writes them).
func TestAWSRecordings(t *testing.T) {
	tel, err := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range awsPack(t) {
		t.Run(tc.ID, func(t *testing.T) {
			calls := fakeCalls(t, tc)
			made := func(src, name string) bool {
				return slices.ContainsFunc(calls, func(c awsfake.Call) bool { return c.EventSource == src && c.EventName == name })
			}
			if logFile := filepath.Join(stratusLogs, aws.Stratus(actionParam(tc))+".json"); fileExists(logFile) {
				b, err := os.ReadFile(logFile)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := telemetry.ReadCloudTrail(b)
				if err != nil {
					t.Fatal(err)
				}
				derived, err := cloudtrail.Derive(tc.ID, recs, made)
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join("telemetry", tc.ID+telemetry.Ext)
				if *updateRecordings {
					if err := os.WriteFile(out, derived, 0o644); err != nil {
						t.Fatal(err)
					}
				} else if committed, err := os.ReadFile(out); err != nil || !sameRecording(t, committed, derived) {
					t.Errorf("%s is not what Derive makes of %s (run go test ./rules -run TestAWSRecordings -update-aws-recordings): %v", out, logFile, err)
				}
			} else {
				t.Logf("no Stratus Red Team log at %s: the derivation is not checked", logFile)
			}
			rec, err := telemetry.Load(tel, tc.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i, ev := range rec.Events {
				src, name := ev.Get("eventSource"), ev.Get("eventName")
				if ev.Source != telemetry.AWSCloudTrail || !strings.Contains(ev.Get("userAgent"), "app/"+rec.Marker) {
					t.Errorf("record %d: logsource %v, userAgent %q without the marker", i, ev.Source, ev.Get("userAgent"))
				}
				var match []awsfake.Call
				for _, c := range calls {
					if c.EventSource == src && c.EventName == name {
						match = append(match, c)
					}
				}
				if len(match) == 0 {
					t.Errorf("record %d: %s %s is not a call the injector makes", i, src, name)
					continue
				}
				keys := recordKeys(&rec.Events[i])
				if !slices.ContainsFunc(match, func(c awsfake.Call) bool {
					ck := callKeys(c)
					return !slices.ContainsFunc(keys, func(k string) bool { return !ck[k] })
				}) {
					t.Errorf("record %d: %s %s has request parameters %v; the injector's call sends %v", i, src, name, keys, callKeys(match[0]))
				}
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// sameRecording compares two recordings but for when they were written.
func sameRecording(t *testing.T, a, b []byte) bool {
	t.Helper()
	ra, err1 := telemetry.Read(bytes.NewReader(a))
	rb, err2 := telemetry.Read(bytes.NewReader(b))
	if err1 != nil || err2 != nil {
		return false
	}
	ra.RecordedAt, rb.RecordedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(ra, rb)
}

// Every AWS test's recording, replayed, makes the local SIEM's rules
// (vigil's and SigmaHQ's) raise the test's technique.
func TestAWSPackRecordingsDetected(t *testing.T) {
	var all []*detect.Rule
	for _, root := range []string{rules.SigmaAWSRoot, rules.SigmaHQRoot} {
		rs, err := detect.Load(rules.Sigma, root)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rs.Rules...)
	}
	eng := detect.NewEngine(all)
	tel, _ := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	const marker = "vigil-00112233aabb"
	for _, tc := range awsPack(t) {
		t.Run(tc.ID, func(t *testing.T) {
			rec, err := telemetry.Load(tel, tc.ID)
			if err != nil {
				t.Fatal(err)
			}
			evs := rec.Rebase(time.Now(), marker, "replay-host")
			var by []string
			for i := range evs {
				if !strings.Contains(evs[i].Get("userAgent"), marker) {
					t.Errorf("record %d: the replay's marker is not in userAgent %q", i, evs[i].Get("userAgent"))
				}
				for _, m := range eng.Match(&evs[i]) {
					if slices.ContainsFunc(m.Rule.Techniques, func(rt string) bool { return attack.TechniqueID(rt).Covers(tc.Technique.ID) }) {
						by = append(by, m.Rule.Title)
					}
				}
			}
			if len(by) == 0 {
				t.Errorf("no rule raises %s from the recording", tc.Technique.ID)
			}
		})
	}
}
