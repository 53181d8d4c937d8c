package detect

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/telemetry"
)

// SigmaHQ's CloudTrail rules (product aws, service cloudtrail) load and
// match CloudTrail records flattened by telemetry.FromCloudTrail, through
// the engine and through sigma-go alike; Sigma's null ("errorCode: null")
// matches a record without the field, as a successful call is logged.
func TestCloudTrailRules(t *testing.T) {
	rs, err := LoadWithOptions(os.DirFS(sigmaHQDir), Options{LinkBase: SigmaHQLinkBase}, "rules/cloud/aws")
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, p := range rs.Problems {
		refused = append(refused, p.Path[strings.LastIndex(p.Path, "/")+1:]+": "+p.Detail)
	}
	// fieldref compares two fields of the event, which sigma-go cannot.
	if want := []string{`aws_update_login_profile.yml: modifier fieldref (userIdentity.arn|fieldref in search "filter_main_user_identity")`}; !slices.Equal(refused, want) || len(rs.Rules) != 56 {
		t.Fatalf("%d rules, refused %q; want 56 and %q", len(rs.Rules), refused, want)
	}
	for _, r := range rs.Rules {
		if r.Logsource != telemetry.AWSCloudTrail {
			t.Errorf("%s: logsource %v", r.Path, r.Logsource)
		}
	}
	e := NewEngine(rs.Rules)
	record := func(source, name, extra string) string {
		return `{"eventVersion":"1.10","eventTime":"2026-12-01T10:00:00Z","eventSource":"` + source + `","eventName":"` + name +
			`","awsRegion":"eu-west-1","userAgent":"vigil/dev (aws injector; vigil-0123456789ab)","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ci"},"recipientAccountId":"111122223333"` + extra + `}`
	}
	tests := []struct {
		name, record string
		want         []string
	}{
		{"trail stopped", record("cloudtrail.amazonaws.com", "StopLogging", `,"requestParameters":{"name":"vigil-trail"}`), []string{"AWS CloudTrail Important Change"}},
		{"flow logs deleted", record("ec2.amazonaws.com", "DeleteFlowLogs", `,"requestParameters":{"DeleteFlowLogsRequest":{"FlowLogId":{"content":"fl-1","tag":1}}}`), []string{"AWS VPC Flow Logs Deleted"}},
		{"flow logs deletion refused", record("ec2.amazonaws.com", "DeleteFlowLogs", `,"errorCode":"Client.UnauthorizedOperation"`), nil},
		{"caller identity", record("sts.amazonaws.com", "GetCallerIdentity", ""), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := telemetry.FromCloudTrail([]byte(tc.record), "h")
			if err != nil {
				t.Fatal(err)
			}
			checkMatches(t, e, rs.Rules, &ev, tc.want)
		})
	}
}

// An escaped wildcard is a literal: principal '\*' matches the principal
// "*" only, through the engine and sigma-go alike.
func TestEscapedWildcard(t *testing.T) {
	r, p := ParseRule("x.yml", []byte(`title: Any principal
id: 0b7c1f52-3a9d-4c55-9e1a-6f0d2b8c4e11
status: test
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        requestParameters.principal: '\*'
        requestParameters.statementId: 'a\?b'
    condition: selection
level: high
`), "")
	if p != nil {
		t.Fatal(p)
	}
	e := NewEngine([]*Rule{r})
	for _, tc := range []struct {
		principal, sid string
		want           bool
	}{
		{"*", "a?b", true},
		{"arn:aws:iam::111122223333:root", "a?b", false},
		{"*", "axb", false},
	} {
		ev := telemetry.Event{Source: telemetry.AWSCloudTrail, Fields: map[string]any{"requestParameters.principal": tc.principal, "requestParameters.statementId": tc.sid}}
		if got, plain := len(e.Match(&ev)) == 1, r.Matches(&ev); got != tc.want || plain != tc.want {
			t.Errorf("principal %q sid %q: engine %v, sigma-go %v, want %v", tc.principal, tc.sid, got, plain, tc.want)
		}
	}
}
