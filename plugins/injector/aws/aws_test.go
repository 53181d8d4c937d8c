package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/awsfake"
)

const testMarker = "vigil-0a1b2c3d4e5f"

// newInjector is an injector configured for the fake, with its static
// key pair.
func newInjector(t *testing.T, fake *awsfake.Server, accounts ...string) *Injector {
	t.Helper()
	if len(accounts) == 0 {
		accounts = []string{fake.Account}
	}
	x := &Injector{wait: 5 * time.Second, extra: []func(*awsconfig.LoadOptions) error{
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(fake.AccessKey, fake.SecretKey, "")),
	}}
	cfg := fmt.Sprintf("region = %q\naccount_ids = [%q]\nendpoint_url = %q\n", fake.Region, strings.Join(accounts, `", "`), fake.URL)
	if err := x.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	return x
}

func inject(t *testing.T, x *Injector, action string) plugin.InjectResult {
	t.Helper()
	res, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: "t-" + action, Marker: testMarker, Params: plugin.Params{"action": action}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func cleanup(t *testing.T, x *Injector, action string) plugin.CleanupResult {
	t.Helper()
	res, err := x.Cleanup(context.Background(), plugin.CleanupRequest{TestID: "t-" + action, Marker: testMarker, Params: plugin.Params{"action": action}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestActions performs every action against the fake: the detonation's
// calls are made, signed (the fake checks SigV4) and carry the marker in
// their User-Agent; Cleanup leaves nothing behind, and a second Cleanup
// finds nothing to do and does not fail.
func TestActions(t *testing.T) {
	detonations := map[string][]string{
		ActionCloudTrailStop:           {"cloudtrail:StopLogging", "cloudtrail:StartLogging"},
		ActionCloudTrailDelete:         {"cloudtrail:DeleteTrail"},
		ActionCloudTrailEventSelectors: {"cloudtrail:PutEventSelectors"},
		ActionVPCFlowLogsDelete:        {"ec2:DeleteFlowLogs"},
		ActionSecurityGroupOpenSSH:     {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"},
		ActionSecretsManagerRead:       {"secretsmanager:ListSecrets", "secretsmanager:GetSecretValue"},
		ActionSSMReadSecureString:      {"ssm:DescribeParameters", "ssm:GetParameters"},
		ActionIAMCreateAdminUser:       {"iam:CreateUser", "iam:AttachUserPolicy", "iam:CreateAccessKey"},
		ActionIAMCreateLoginProfile:    {"iam:CreateLoginProfile"},
		ActionLambdaOverwriteCode:      {"lambda:UpdateFunctionCode20150331v2"},
		ActionLambdaPublicInvoke:       {"lambda:AddPermission20150331v2", "lambda:RemovePermission20150331v2"},
	}
	if len(detonations) != len(Actions()) {
		t.Fatalf("%d actions tested, %d exist", len(detonations), len(Actions()))
	}
	for _, action := range Actions() {
		t.Run(action, func(t *testing.T) {
			fake := awsfake.New()
			defer fake.Close()
			x := newInjector(t, fake)
			res := inject(t, x, action)
			if res.Outcome != plugin.OutcomeSucceeded || res.Host != fake.Account {
				t.Fatalf("outcome %s host %q: %s\n%s", res.Outcome, res.Host, res.Error, res.Stdout)
			}
			var made []string
			for _, c := range fake.Calls() {
				name := strings.TrimSuffix(c.EventSource, ".amazonaws.com") + ":" + c.EventName
				made = append(made, name)
				if !strings.Contains(c.UserAgent, "app/"+testMarker) {
					t.Errorf("%s: User-Agent %q lacks the marker", name, c.UserAgent)
				}
				if c.ErrorCode != "" {
					t.Errorf("%s: %s", name, c.ErrorCode)
				}
			}
			if made[0] != "sts:GetCallerIdentity" {
				t.Errorf("first call %s, want sts:GetCallerIdentity", made[0])
			}
			for _, want := range detonations[action] {
				if !slices.Contains(made, want) {
					t.Errorf("no %s among %q", want, made)
				}
			}
			if len(fake.Leftovers()) == 0 && action != ActionIAMCreateAdminUser && action != ActionCloudTrailDelete {
				t.Errorf("nothing exists after the injection: the warm-up created nothing")
			}
			// A bucket holds what CloudTrail or the flow log delivered.
			_ = fake.PutObject(testMarker+"-logs", "AWSLogs/"+fake.Account+"/vpcflowlogs/x.log.gz", []byte("delivered"))
			if cr := cleanup(t, x, action); cr.Error != "" {
				t.Fatalf("cleanup: %s", cr.Error)
			}
			if left := fake.Leftovers(); len(left) > 0 {
				t.Errorf("left after cleanup: %q", left)
			}
			if cr := cleanup(t, x, action); cr.Error != "" {
				t.Errorf("second cleanup: %s", cr.Error)
			}
		})
	}
}

// TestCleanupAfterHalfDoneInject: a detonation the account refuses fails
// the injection with the service's answer, and Cleanup still deletes what
// the warm-up created; with the action unknown (params lost) it looks for
// every kind of resource.
func TestCleanupAfterHalfDoneInject(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.Deny("cloudtrail:StopLogging")
	x := newInjector(t, fake)
	res := inject(t, x, ActionCloudTrailStop)
	if res.Outcome != plugin.OutcomeFailed || !strings.Contains(res.Error, "cloudtrail:StopLogging: AccessDeniedException") {
		t.Fatalf("outcome %s, error %q", res.Outcome, res.Error)
	}
	if left := fake.Leftovers(); len(left) != 2 {
		t.Fatalf("after the failed detonation: %q, want the trail and its bucket", left)
	}
	cr, err := x.Cleanup(context.Background(), plugin.CleanupRequest{TestID: "t", Marker: testMarker})
	if err != nil || cr.Error != "" {
		t.Fatalf("cleanup without params: %v %s", err, cr.Error)
	}
	if left := fake.Leftovers(); len(left) > 0 {
		t.Errorf("left after cleanup: %q", left)
	}
}

// TestRefusals: a config without region or account_ids is refused; a
// caller outside account_ids makes Inject and Cleanup refuse after
// sts:GetCallerIdentity, having changed nothing.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`account_ids = ["111122223333"]`, "aws: config: region is required"},
		{`region = "eu-west-1"`, "aws: config: account_ids is required"},
		{`region = "eu-west-1"` + "\n" + `account_ids = ["1234"]`, `"1234" is not a 12-digit account ID`},
		{`region = "Europe"` + "\n" + `account_ids = ["111122223333"]`, `region "Europe" is not an AWS region name`},
		{`region = "eu-west-1"` + "\n" + `account_ids = ["111122223333"]` + "\n" + `secret_access_key = "x"`, "secret_access_key"},
	} {
		if err := new(Injector).Configure(context.Background(), []byte(tc.cfg)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%q) = %v, want %q", tc.cfg, err, tc.want)
		}
	}

	fake := awsfake.New()
	defer fake.Close()
	x := newInjector(t, fake, "999988887777")
	res := inject(t, x, ActionIAMCreateAdminUser)
	if res.Outcome != plugin.OutcomeRefused || !strings.Contains(res.Error, "account 111122223333, which is not one of account_ids [999988887777]: nothing was done") {
		t.Errorf("outcome %s, error %q", res.Outcome, res.Error)
	}
	cr := cleanup(t, x, ActionIAMCreateAdminUser)
	if !strings.Contains(cr.Error, "not one of account_ids") {
		t.Errorf("cleanup error %q", cr.Error)
	}
	for _, c := range fake.Calls() {
		if c.EventName != "GetCallerIdentity" {
			t.Errorf("call %s %s made for a refused account", c.EventSource, c.EventName)
		}
	}
	if _, err := new(Injector).Inject(context.Background(), plugin.InjectRequest{}); err != ErrNotConfigured {
		t.Errorf("unconfigured Inject: %v", err)
	}
}

// TestNoSecretInResults: the key pair, the decoy values and the minted
// access key's secret appear in no result.
func TestNoSecretInResults(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	x := newInjector(t, fake)
	var out []string
	for _, a := range []string{ActionIAMCreateAdminUser, ActionSecretsManagerRead, ActionSSMReadSecureString, ActionIAMCreateLoginProfile} {
		res := inject(t, x, a)
		out = append(out, string(res.Stdout), string(res.Details), res.Error, string(cleanup(t, x, a).Output))
	}
	all := strings.Join(out, "\n")
	for _, secret := range []string{fake.SecretKey, "fake-user-secret", "vigil-decoy-"} {
		if strings.Contains(all, secret) {
			t.Errorf("results contain %q:\n%s", secret, all)
		}
	}
}

func TestValidate(t *testing.T) {
	x := new(Injector)
	probs, err := x.Validate(context.Background(), plugin.ValidateRequest{Params: plugin.Params{"action": "mine-bitcoin"}})
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0].Message, `"mine-bitcoin" is not an action`) {
		t.Errorf("Validate = %v, %v", probs, err)
	}
	probs, _ = x.Validate(context.Background(), plugin.ValidateRequest{Params: plugin.Params{"action": ActionCloudTrailStop}, CleanupParams: plugin.Params{"x": 1}})
	if len(probs) != 1 || probs[0].Subject != "cleanup" {
		t.Errorf("cleanup params: %v", probs)
	}
}

// TestPolicyCoversCalls: iam-policy.json, the policy README tells users to
// give vigil, allows every call the injector makes (injection and
// cleanup), and nothing it does not use.
func TestPolicyCoversCalls(t *testing.T) {
	b, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Statement []struct {
			Effect string
			Action any
		}
	}
	if err := json.Unmarshal(b, &pol); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, s := range pol.Statement {
		switch a := s.Action.(type) {
		case string:
			allowed[a] = true
		case []any:
			for _, x := range a {
				allowed[x.(string)] = true
			}
		}
	}
	s3 := map[string]string{"ListObjects": "ListBucket", "DeleteObjects": "DeleteObject"}
	used := map[string]bool{}
	for _, action := range Actions() {
		fake := awsfake.New()
		x := newInjector(t, fake)
		inject(t, x, action)
		_ = fake.PutObject(testMarker+"-logs", "AWSLogs/"+fake.Account+"/CloudTrail/x.json.gz", []byte("delivered")) // where there is a bucket
		cleanup(t, x, action)
		for _, c := range fake.Calls() {
			svc := strings.TrimSuffix(c.EventSource, ".amazonaws.com")
			name := strings.TrimSuffix(c.EventName, "20150331v2")
			if svc == "s3" && s3[name] != "" {
				name = s3[name]
			}
			used[svc+":"+name] = true
			if !allowed[svc+":"+name] {
				t.Errorf("%s calls %s:%s, which iam-policy.json does not allow", action, svc, name)
			}
		}
		fake.Close()
	}
	// Tagging and delivery permissions are needed by calls, not calls.
	implied := map[string]bool{"cloudtrail:AddTags": true, "ec2:CreateTags": true, "secretsmanager:TagResource": true, "ssm:AddTagsToResource": true,
		"iam:TagUser": true, "iam:TagRole": true, "iam:PassRole": true, "lambda:TagResource": true, "logs:CreateLogDelivery": true, "logs:DeleteLogDelivery": true}
	for a := range allowed {
		if !used[a] && !implied[a] {
			t.Errorf("iam-policy.json allows %s, which no action uses", a)
		}
	}
}

// TestFakeChecksSignatures: the fake refuses a request signed with
// another secret, so every passing test above was signed right.
func TestFakeChecksSignatures(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	x := newInjector(t, fake)
	x.extra = []func(*awsconfig.LoadOptions) error{
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(fake.AccessKey, "not-the-secret", "")),
		awsconfig.WithRetryMaxAttempts(1),
	}
	res := inject(t, x, ActionCloudTrailStop)
	if res.Outcome != plugin.OutcomeRefused || !strings.Contains(res.Error, "SignatureDoesNotMatch") {
		t.Errorf("outcome %s, error %q; want refused with SignatureDoesNotMatch", res.Outcome, res.Error)
	}
	if strings.Contains(res.Error, "not-the-secret") || strings.Contains(res.Error, fake.SecretKey) {
		t.Errorf("a secret in the error: %s", res.Error)
	}
}
