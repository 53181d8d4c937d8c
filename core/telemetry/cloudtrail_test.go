package telemetry

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFromCloudTrail reads a real detonation log: records flattened with
// dotted keys, arrays without a path element, the account as the host.
func TestFromCloudTrail(t *testing.T) {
	b, err := os.ReadFile("testdata/stratus-iam-create-admin-user.json")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadCloudTrail(b)
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v; want 3", len(recs), err)
	}
	ev, err := FromCloudTrail(recs[2], "fallback")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "readOnly": "false",
		"requestParameters.userName": "malicious-iam-user",
		"requestParameters.tags.key": []string{"StratusRedTeam"}, "requestParameters.tags.value": []string{"true"},
		"userIdentity.type": "IAMUser",
	}
	for k, v := range want {
		if !reflect.DeepEqual(ev.Fields[k], v) {
			t.Errorf("%s = %#v, want %#v", k, ev.Fields[k], v)
		}
	}
	if !strings.HasPrefix(ev.Get("userAgent"), "stratus-red-team_") || ev.Source != AWSCloudTrail || ev.Host == "fallback" || ev.Host == "" {
		t.Errorf("userAgent %q source %v host %q", ev.Get("userAgent"), ev.Source, ev.Host)
	}
	if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
		t.Errorf("time %v", ev.Time)
	}
}

func TestReadCloudTrail(t *testing.T) {
	rec := `{"eventTime":"2026-12-01T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity"}`
	tests := []struct {
		name, in string
		n        int
		err      string
	}{
		{"a log file", `{"Records": [` + rec + `,` + rec + `]}`, 2, ""},
		{"an array", `[` + rec + `]`, 1, ""},
		{"lines", rec + "\n\n" + rec + "\n", 2, ""},
		{"empty", " ", 0, "cloudtrail: empty"},
		{"garbage line", rec + "\nnot json\n", 0, "cloudtrail: line 2: not a JSON record"},
		{"broken array", `[` + rec, 0, "cloudtrail: a JSON array of records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ReadCloudTrail([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(recs) != tc.n {
				t.Errorf("%d records, %v; want %d", len(recs), err, tc.n)
			}
		})
	}
	for _, bad := range []struct{ in, want string }{
		{`{"eventSource":"x","eventName":"y"}`, "event: cloudtrail record: no eventTime"},
		{`{"eventTime":"2026-12-01T10:00:00Z","eventName":"y"}`, "event: cloudtrail record: no eventSource"},
		{`{`, "event: cloudtrail record: unexpected EOF"},
	} {
		if _, err := FromCloudTrail([]byte(bad.in), "h"); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("FromCloudTrail(%s): %v, want %q", bad.in, err, bad.want)
		}
	}
}

// TestCloudTrailRecord: a replayed CloudTrail event is nested again as
// CloudTrail delivers it; other events are not records.
func TestCloudTrailRecord(t *testing.T) {
	b, _ := os.ReadFile("testdata/stratus-iam-create-admin-user.json")
	recs, _ := ReadCloudTrail(b)
	ev, err := FromCloudTrail(recs[2], "h")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	got, rec, ok := CloudTrailRecord(raw)
	if !ok || got.Source != AWSCloudTrail {
		t.Fatalf("not a record: %s", raw)
	}
	ui, _ := rec["userIdentity"].(map[string]any)
	rp, _ := rec["requestParameters"].(map[string]any)
	tags, _ := rp["tags"].(map[string]any)
	if rec["eventName"] != "CreateUser" || ui["type"] != "IAMUser" || rp["userName"] != "malicious-iam-user" || !reflect.DeepEqual(tags["key"], []string{"StratusRedTeam"}) {
		t.Errorf("record %v", rec)
	}
	other, _ := json.Marshal(Event{Source: ProcessCreation, Fields: map[string]any{"CommandLine": "id"}})
	if _, _, ok := CloudTrailRecord(other); ok {
		t.Error("a process event taken for a CloudTrail record")
	}
}
