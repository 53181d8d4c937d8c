package cloudtrail

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/telemetry"
)

func stratus(t *testing.T) File {
	t.Helper()
	b, err := os.ReadFile("../telemetry/testdata/stratus-iam-create-admin-user.json")
	if err != nil {
		t.Fatal(err)
	}
	return File{Name: "aws.persistence.iam-create-admin-user.json", Data: b}
}

// TestImportStratus: a Stratus Red Team detonation log becomes a replay
// test and a recording whose marker is Stratus's User-Agent.
func TestImportStratus(t *testing.T) {
	r, err := Import([]File{stratus(t)}, Options{Technique: "t1098"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "ct-aws-persistence-iam-create-admin-user" || !strings.HasPrefix(r.Marker, "stratus-red-team_") || r.Records != 3 || r.Kept != 3 {
		t.Errorf("id %s marker %s records %d kept %d", r.ID, r.Marker, r.Records, r.Kept)
	}
	// The three calls share one second: they keep the file's order.
	if want := []string{"iam.amazonaws.com AttachUserPolicy", "iam.amazonaws.com CreateAccessKey", "iam.amazonaws.com CreateUser"}; !slices.Equal(r.Calls, want) {
		t.Errorf("calls %q, want %q (in time order, ties in file order)", r.Calls, want)
	}
	for _, want := range []string{`id = "ct-aws-persistence-iam-create-admin-user"`, `technique = "T1098"`, `plugin = "replay"`, `platforms = ["iaas:aws"]`, "Stratus Red Team, Datadog, Apache-2.0"} {
		if !strings.Contains(string(r.TOML), want) {
			t.Errorf("test lacks %q:\n%s", want, r.TOML)
		}
	}
	rec, err := telemetry.Read(bytes.NewReader(r.Recording))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Header.TestID != r.ID || rec.Header.Marker != r.Marker || len(rec.Events) != 3 || rec.Events[0].Source != telemetry.AWSCloudTrail {
		t.Errorf("recording header %+v, %d events", rec.Header, len(rec.Events))
	}
}

func TestImportErrors(t *testing.T) {
	rec := func(ua string) string {
		return `{"eventTime":"2026-12-01T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","userAgent":"` + ua + `"}`
	}
	cases := []struct {
		name  string
		files []File
		o     Options
		want  string
	}{
		{"no technique", []File{stratus(t)}, Options{}, "cloudtrail: --technique is required"},
		{"unknown technique", []File{stratus(t)}, Options{Technique: "T1685.002"}, "cloudtrail: --technique T1685.002: unknown"},
		{"no marker", []File{{"x.json", []byte("[" + rec("aws-cli/2.15") + "]")}}, Options{Technique: "T1087.004"}, "cloudtrail: none of the 1 records has a marker in userAgent"},
		{"two detonations", []File{{"x.json", []byte("[" + rec("vigil-0123456789ab") + "," + rec("vigil-ba9876543210") + "]")}}, Options{Technique: "T1087.004"}, `x.json: record 2: a second marker "vigil-ba9876543210"`},
		{"garbage", []File{{"x.json", []byte("[{")}}, Options{Technique: "T1087.004"}, "x.json: cloudtrail: a JSON array of records"},
		{"bad record", []File{{"x.json", []byte(`[{"eventName":"x"}]`)}}, Options{Technique: "T1087.004"}, "x.json: record 1: event: cloudtrail record: no eventSource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(tc.files, tc.o)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// A field and pattern of the user's.
	r, err := Import([]File{{"incident.json", []byte("[" + rec("aws-cli/2.15 md/ticket#4711") + "]")}},
		Options{Technique: "T1087.004", MarkerPattern: regexp.MustCompile(`ticket#\d+`)})
	if err != nil || r.Marker != "ticket#4711" || r.ID != "ct-incident" {
		t.Errorf("custom marker: %v, %+v", err, r)
	}
}
