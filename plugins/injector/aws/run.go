package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// run is one injection or cleanup: the clients, the names of the run's
// resources (from the marker), what it did.
type run struct {
	x      *Injector
	c      *config
	cfg    awssdk.Config
	marker string
	testID string
	id     identity

	log     []string
	details map[string]any
	// Set by the warm-up.
	vpcID, groupID, flowLogID, roleArn string
}

func newRun(x *Injector, c *config, cfg awssdk.Config, marker, testID string, id identity) *run {
	return &run{x: x, c: c, cfg: cfg, marker: marker, testID: testID, id: id, details: map[string]any{}}
}

func (r *run) logf(format string, args ...any) { r.log = append(r.log, fmt.Sprintf(format, args...)) }

// Names of the run's resources.
func (r *run) trailName() string    { return r.marker + "-trail" }
func (r *run) bucketName() string   { return r.marker + "-logs" }
func (r *run) groupName() string    { return r.marker + "-sg" }
func (r *run) userName() string     { return r.marker + "-user" }
func (r *run) roleName() string     { return r.marker + "-role" }
func (r *run) functionName() string { return r.marker + "-fn" }
func (r *run) secretName(i int) string {
	return fmt.Sprintf("%s/secret-%d", r.marker, i)
}
func (r *run) parameterName(i int) string { return fmt.Sprintf("/%s/param-%d", r.marker, i) }

// decoys is how many secrets and parameters the credential actions create.
const decoys = 3

func (r *run) s3() *s3.Client {
	return s3.NewFromConfig(r.cfg, func(o *s3.Options) { o.UsePathStyle = r.c.EndpointURL != "" })
}
func (r *run) cloudtrail() *cloudtrail.Client { return cloudtrail.NewFromConfig(r.cfg) }
func (r *run) ec2() *ec2.Client               { return ec2.NewFromConfig(r.cfg) }
func (r *run) iam() *iam.Client               { return iam.NewFromConfig(r.cfg) }
func (r *run) lambda() *lambda.Client         { return lambda.NewFromConfig(r.cfg) }
func (r *run) secrets() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(r.cfg)
}
func (r *run) ssm() *ssm.Client { return ssm.NewFromConfig(r.cfg) }

// call wraps an SDK error with the operation.
func call(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, describe(err))
}

// --- CloudTrail and its bucket

func (r *run) createBucket(ctx context.Context) error {
	in := &s3.CreateBucketInput{Bucket: awssdk.String(r.bucketName())}
	if r.c.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r.c.Region)}
	}
	if _, err := r.s3().CreateBucket(ctx, in); err != nil {
		return call("s3:CreateBucket", err)
	}
	r.logf("created bucket %s", r.bucketName())
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
		`{"Sid":"CloudTrailAcl","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::%[1]s"},`+
		`{"Sid":"CloudTrailWrite","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::%[1]s/AWSLogs/%[2]s/*","Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}},`+
		`{"Sid":"FlowLogsAcl","Effect":"Allow","Principal":{"Service":"delivery.logs.amazonaws.com"},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::%[1]s"},`+
		`{"Sid":"FlowLogsWrite","Effect":"Allow","Principal":{"Service":"delivery.logs.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::%[1]s/AWSLogs/%[2]s/*"}]}`,
		r.bucketName(), r.id.Account)
	_, err := r.s3().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: awssdk.String(r.bucketName()), Policy: awssdk.String(policy)})
	return call("s3:PutBucketPolicy", err)
}

func (r *run) createTrail(ctx context.Context) error {
	_, err := r.cloudtrail().CreateTrail(ctx, &cloudtrail.CreateTrailInput{
		Name: awssdk.String(r.trailName()), S3BucketName: awssdk.String(r.bucketName()),
		TagsList: []cttypes.Tag{{Key: awssdk.String(TagMarker), Value: awssdk.String(r.marker)}},
	})
	if err != nil {
		return call("cloudtrail:CreateTrail", err)
	}
	r.logf("created trail %s", r.trailName())
	r.details["trail"] = r.trailName()
	return r.startLogging(ctx)
}

func (r *run) startLogging(ctx context.Context) error {
	_, err := r.cloudtrail().StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: awssdk.String(r.trailName())})
	if err == nil {
		r.logf("trail %s logging", r.trailName())
	}
	return call("cloudtrail:StartLogging", err)
}

func (r *run) stopLogging(ctx context.Context) error {
	_, err := r.cloudtrail().StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: awssdk.String(r.trailName())})
	if err == nil {
		r.logf("stopped logging of trail %s", r.trailName())
	}
	return call("cloudtrail:StopLogging", err)
}

func (r *run) deleteTrail(ctx context.Context) error {
	_, err := r.cloudtrail().DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: awssdk.String(r.trailName())})
	if err == nil {
		r.logf("deleted trail %s", r.trailName())
	}
	return call("cloudtrail:DeleteTrail", err)
}

// putEventSelectors narrows the trail to read-only data, without
// management events, or (restore) puts the default selector back.
func (r *run) putEventSelectors(ctx context.Context, restore bool) error {
	sel := cttypes.EventSelector{IncludeManagementEvents: awssdk.Bool(false), ReadWriteType: cttypes.ReadWriteTypeReadOnly}
	if restore {
		sel = cttypes.EventSelector{IncludeManagementEvents: awssdk.Bool(true), ReadWriteType: cttypes.ReadWriteTypeAll}
	}
	_, err := r.cloudtrail().PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: awssdk.String(r.trailName()), EventSelectors: []cttypes.EventSelector{sel}})
	if err == nil {
		r.logf("event selectors of %s: management events %v, %s", r.trailName(), restore, sel.ReadWriteType)
	}
	return call("cloudtrail:PutEventSelectors", err)
}

func (r *run) cleanTrail(ctx context.Context) error {
	_, err := r.cloudtrail().DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: awssdk.String(r.trailName())})
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return call("cleanup: cloudtrail:DeleteTrail "+r.trailName(), err)
	}
	r.logf("cleanup: deleted trail %s", r.trailName())
	return nil
}

// cleanBucket empties and deletes the run's bucket.
func (r *run) cleanBucket(ctx context.Context) error {
	cl, b := r.s3(), awssdk.String(r.bucketName())
	for {
		out, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b})
		if notFound(err) {
			return nil
		}
		if err != nil {
			return call("cleanup: s3:ListObjectsV2 "+r.bucketName(), err)
		}
		if len(out.Contents) == 0 {
			break
		}
		var ids []s3types.ObjectIdentifier
		for _, o := range out.Contents {
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		if _, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &s3types.Delete{Objects: ids, Quiet: awssdk.Bool(true)}}); err != nil {
			return call("cleanup: s3:DeleteObjects "+r.bucketName(), err)
		}
	}
	if _, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); err != nil && !notFound(err) {
		return call("cleanup: s3:DeleteBucket "+r.bucketName(), err)
	}
	r.logf("cleanup: deleted bucket %s", r.bucketName())
	return nil
}

// --- EC2: VPC, flow logs, security group

func (r *run) tags(kind ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: kind, Tags: []ec2types.Tag{
		{Key: awssdk.String(TagMarker), Value: awssdk.String(r.marker)}, {Key: awssdk.String("Name"), Value: awssdk.String(name)},
	}}}
}

func (r *run) markerFilter() []ec2types.Filter {
	return []ec2types.Filter{{Name: awssdk.String("tag:" + TagMarker), Values: []string{r.marker}}}
}

func (r *run) createVPC(ctx context.Context) error {
	out, err := r.ec2().CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: awssdk.String("10.73.0.0/16"), TagSpecifications: r.tags(ec2types.ResourceTypeVpc, r.marker+"-vpc")})
	if err != nil {
		return call("ec2:CreateVpc", err)
	}
	r.vpcID = awssdk.ToString(out.Vpc.VpcId)
	r.logf("created VPC %s", r.vpcID)
	r.details["vpc"] = r.vpcID
	return nil
}

func (r *run) createFlowLog(ctx context.Context) error {
	out, err := r.ec2().CreateFlowLogs(ctx, &ec2.CreateFlowLogsInput{
		ResourceIds: []string{r.vpcID}, ResourceType: ec2types.FlowLogsResourceTypeVpc, TrafficType: ec2types.TrafficTypeAll,
		LogDestinationType: ec2types.LogDestinationTypeS3, LogDestination: awssdk.String("arn:aws:s3:::" + r.bucketName()),
		TagSpecifications: r.tags(ec2types.ResourceTypeVpcFlowLog, r.marker+"-flow-log"),
	})
	if err != nil {
		return call("ec2:CreateFlowLogs", err)
	}
	if len(out.Unsuccessful) > 0 {
		u := out.Unsuccessful[0]
		return fmt.Errorf("ec2:CreateFlowLogs: %s: %s", awssdk.ToString(u.Error.Code), awssdk.ToString(u.Error.Message))
	}
	if len(out.FlowLogIds) == 0 {
		return fmt.Errorf("ec2:CreateFlowLogs: no flow log ID in the answer")
	}
	r.flowLogID = out.FlowLogIds[0]
	r.logf("created flow log %s of %s", r.flowLogID, r.vpcID)
	return nil
}

func (r *run) deleteFlowLogs(ctx context.Context) error {
	out, err := r.ec2().DeleteFlowLogs(ctx, &ec2.DeleteFlowLogsInput{FlowLogIds: []string{r.flowLogID}})
	if err != nil {
		return call("ec2:DeleteFlowLogs", err)
	}
	if len(out.Unsuccessful) > 0 {
		u := out.Unsuccessful[0]
		return fmt.Errorf("ec2:DeleteFlowLogs: %s: %s", awssdk.ToString(u.Error.Code), awssdk.ToString(u.Error.Message))
	}
	r.logf("deleted flow log %s", r.flowLogID)
	return nil
}

func (r *run) createSecurityGroup(ctx context.Context) error {
	out, err := r.ec2().CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: awssdk.String(r.groupName()), Description: awssdk.String("vigil " + r.testID + " " + r.marker),
		VpcId: awssdk.String(r.vpcID), TagSpecifications: r.tags(ec2types.ResourceTypeSecurityGroup, r.groupName()),
	})
	if err != nil {
		return call("ec2:CreateSecurityGroup", err)
	}
	r.groupID = awssdk.ToString(out.GroupId)
	r.logf("created security group %s", r.groupID)
	return nil
}

// sshIngress opens (or revokes) TCP 22 from 0.0.0.0/0 on the run's group,
// with the flat parameters (CidrIp, FromPort...) Stratus Red Team uses, so
// that CloudTrail records the same shape as its detonation.
func (r *run) sshIngress(ctx context.Context, open bool) error {
	g, proto, from, to, cidr := awssdk.String(r.groupID), awssdk.String("tcp"), awssdk.Int32(22), awssdk.Int32(22), awssdk.String("0.0.0.0/0")
	if open {
		_, err := r.ec2().AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g, IpProtocol: proto, FromPort: from, ToPort: to, CidrIp: cidr})
		if err == nil {
			r.logf("opened %s to 0.0.0.0/0 on tcp/22", r.groupID)
		}
		return call("ec2:AuthorizeSecurityGroupIngress", err)
	}
	_, err := r.ec2().RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g, IpProtocol: proto, FromPort: from, ToPort: to, CidrIp: cidr})
	if err == nil {
		r.logf("revoked tcp/22 from 0.0.0.0/0 on %s", r.groupID)
	}
	return call("ec2:RevokeSecurityGroupIngress", err)
}

func (r *run) cleanFlowLogs(ctx context.Context) error {
	out, err := r.ec2().DescribeFlowLogs(ctx, &ec2.DescribeFlowLogsInput{Filter: r.markerFilter()})
	if err != nil {
		return call("cleanup: ec2:DescribeFlowLogs", err)
	}
	for _, f := range out.FlowLogs {
		id := awssdk.ToString(f.FlowLogId)
		if _, err := r.ec2().DeleteFlowLogs(ctx, &ec2.DeleteFlowLogsInput{FlowLogIds: []string{id}}); err != nil && !notFound(err) {
			return call("cleanup: ec2:DeleteFlowLogs "+id, err)
		}
		r.logf("cleanup: deleted flow log %s", id)
	}
	return nil
}

func (r *run) cleanSecurityGroups(ctx context.Context) error {
	out, err := r.ec2().DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: r.markerFilter()})
	if err != nil {
		return call("cleanup: ec2:DescribeSecurityGroups", err)
	}
	for _, g := range out.SecurityGroups {
		id := awssdk.ToString(g.GroupId)
		if _, err := r.ec2().DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: awssdk.String(id)}); err != nil && !notFound(err) {
			return call("cleanup: ec2:DeleteSecurityGroup "+id, err)
		}
		r.logf("cleanup: deleted security group %s", id)
	}
	return nil
}

func (r *run) cleanVPCs(ctx context.Context) error {
	out, err := r.ec2().DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: r.markerFilter()})
	if err != nil {
		return call("cleanup: ec2:DescribeVpcs", err)
	}
	for _, v := range out.Vpcs {
		id := awssdk.ToString(v.VpcId)
		if _, err := r.ec2().DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: awssdk.String(id)}); err != nil && !notFound(err) {
			return call("cleanup: ec2:DeleteVpc "+id, err)
		}
		r.logf("cleanup: deleted VPC %s", id)
	}
	return nil
}

// --- Secrets Manager and SSM Parameter Store

func (r *run) createSecrets(ctx context.Context) error {
	for i := 1; i <= decoys; i++ {
		_, err := r.secrets().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: awssdk.String(r.secretName(i)), SecretString: awssdk.String(randomValue()),
			Description: awssdk.String("vigil decoy for " + r.testID),
			Tags:        []smtypes.Tag{{Key: awssdk.String(TagMarker), Value: awssdk.String(r.marker)}},
		})
		if err != nil {
			return call("secretsmanager:CreateSecret", err)
		}
	}
	r.logf("created %d decoy secrets %s/...", decoys, r.marker)
	return nil
}

// readSecrets lists the run's secrets (filtered by name: no other secret
// is read) and reads each value, which is dropped.
func (r *run) readSecrets(ctx context.Context) error {
	out, err := r.secrets().ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: awssdk.Int32(100), Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{r.marker + "/"}}}})
	if err != nil {
		return call("secretsmanager:ListSecrets", err)
	}
	n := 0
	for _, s := range out.SecretList {
		name := awssdk.ToString(s.Name)
		if !strings.HasPrefix(name, r.marker+"/") {
			continue // never another secret, whatever the filter returned
		}
		if _, err := r.secrets().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: awssdk.String(name)}); err != nil {
			return call("secretsmanager:GetSecretValue", err)
		}
		n++
	}
	r.logf("read %d secret values (not kept)", n)
	r.details["secrets_read"] = n
	return nil
}

func (r *run) cleanSecrets(ctx context.Context) error {
	for i := 1; i <= decoys; i++ {
		_, err := r.secrets().DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: awssdk.String(r.secretName(i)), ForceDeleteWithoutRecovery: awssdk.Bool(true)})
		if err != nil && !notFound(err) {
			return call("cleanup: secretsmanager:DeleteSecret "+r.secretName(i), err)
		}
	}
	r.logf("cleanup: deleted secrets %s/...", r.marker)
	return nil
}

func (r *run) parameterNames() []string {
	out := make([]string, decoys)
	for i := range out {
		out[i] = r.parameterName(i + 1)
	}
	return out
}

func (r *run) createParameters(ctx context.Context) error {
	for _, name := range r.parameterNames() {
		_, err := r.ssm().PutParameter(ctx, &ssm.PutParameterInput{
			Name: awssdk.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: awssdk.String(randomValue()),
			Description: awssdk.String("vigil decoy for " + r.testID),
			Tags:        []ssmtypes.Tag{{Key: awssdk.String(TagMarker), Value: awssdk.String(r.marker)}},
		})
		if err != nil {
			return call("ssm:PutParameter", err)
		}
	}
	r.logf("created %d SecureString parameters /%s/...", decoys, r.marker)
	return nil
}

// readParameters describes the run's parameters (filtered by path) and
// reads them decrypted; the values are dropped.
func (r *run) readParameters(ctx context.Context) error {
	_, err := r.ssm().DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: awssdk.Int32(10), ParameterFilters: []ssmtypes.ParameterStringFilter{
		{Key: awssdk.String("Name"), Option: awssdk.String("BeginsWith"), Values: []string{"/" + r.marker + "/"}},
	}})
	if err != nil {
		return call("ssm:DescribeParameters", err)
	}
	out, err := r.ssm().GetParameters(ctx, &ssm.GetParametersInput{Names: r.parameterNames(), WithDecryption: awssdk.Bool(true)})
	if err != nil {
		return call("ssm:GetParameters", err)
	}
	r.logf("read %d parameters decrypted (not kept)", len(out.Parameters))
	r.details["parameters_read"] = len(out.Parameters)
	return nil
}

func (r *run) cleanParameters(ctx context.Context) error {
	_, err := r.ssm().DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: r.parameterNames()})
	if err != nil && !notFound(err) {
		return call("cleanup: ssm:DeleteParameters", err)
	}
	r.logf("cleanup: deleted parameters /%s/...", r.marker)
	return nil
}

// --- IAM users

func (r *run) iamTags() []iamtypes.Tag {
	return []iamtypes.Tag{{Key: awssdk.String(TagMarker), Value: awssdk.String(r.marker)}}
}

func (r *run) createUser(ctx context.Context) error {
	_, err := r.iam().CreateUser(ctx, &iam.CreateUserInput{UserName: awssdk.String(r.userName()), Tags: r.iamTags()})
	if err == nil {
		r.logf("created IAM user %s", r.userName())
		r.details["user"] = r.userName()
	}
	return call("iam:CreateUser", err)
}

// AdministratorAccess is the managed policy iam-create-admin-user attaches.
const AdministratorAccess = "arn:aws:iam::aws:policy/AdministratorAccess"

func (r *run) createAdminUser(ctx context.Context) error {
	if err := r.createUser(ctx); err != nil {
		return err
	}
	if _, err := r.iam().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: awssdk.String(r.userName()), PolicyArn: awssdk.String(AdministratorAccess)}); err != nil {
		return call("iam:AttachUserPolicy", err)
	}
	out, err := r.iam().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: awssdk.String(r.userName())})
	if err != nil {
		return call("iam:CreateAccessKey", err)
	}
	out.AccessKey.SecretAccessKey = nil // never kept
	r.logf("attached AdministratorAccess to %s and created access key %s (its secret dropped)", r.userName(), awssdk.ToString(out.AccessKey.AccessKeyId))
	return nil
}

func (r *run) createLoginProfile(ctx context.Context) error {
	_, err := r.iam().CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: awssdk.String(r.userName()), Password: awssdk.String(randomValue() + "-Aa1!"), PasswordResetRequired: true})
	if err == nil {
		r.logf("created a login profile (console password, not kept) for %s", r.userName())
	}
	return call("iam:CreateLoginProfile", err)
}

// cleanUser deletes the run's user with its access keys, login profile
// and attached policy.
func (r *run) cleanUser(ctx context.Context) error {
	cl, u := r.iam(), awssdk.String(r.userName())
	keys, err := cl.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: u})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return call("cleanup: iam:ListAccessKeys", err)
	}
	for _, k := range keys.AccessKeyMetadata {
		if _, err := cl.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: u, AccessKeyId: k.AccessKeyId}); err != nil && !notFound(err) {
			return call("cleanup: iam:DeleteAccessKey", err)
		}
	}
	if _, err := cl.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: u}); err != nil && !notFound(err) {
		return call("cleanup: iam:DeleteLoginProfile", err)
	}
	if _, err := cl.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: u, PolicyArn: awssdk.String(AdministratorAccess)}); err != nil && !notFound(err) {
		return call("cleanup: iam:DetachUserPolicy", err)
	}
	if _, err := cl.DeleteUser(ctx, &iam.DeleteUserInput{UserName: u}); err != nil && !notFound(err) {
		return call("cleanup: iam:DeleteUser", err)
	}
	r.logf("cleanup: deleted IAM user %s", r.userName())
	return nil
}

// --- Lambda and its role

const lambdaTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func (r *run) createRole(ctx context.Context) error {
	out, err := r.iam().CreateRole(ctx, &iam.CreateRoleInput{RoleName: awssdk.String(r.roleName()), AssumeRolePolicyDocument: awssdk.String(lambdaTrust), Tags: r.iamTags()})
	if err != nil {
		return call("iam:CreateRole", err)
	}
	r.roleArn = awssdk.ToString(out.Role.Arn)
	r.logf("created role %s", r.roleName())
	return nil
}

// functionZip is a zip holding index.py, a handler returning text.
func functionZip(text string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("index.py")
	fmt.Fprintf(f, "def handler(event, context):\n    return %q\n", text)
	_ = w.Close()
	return b.Bytes()
}

// createFunction creates the run's function, retrying while IAM has not
// yet propagated the new role, and waits until it is active.
func (r *run) createFunction(ctx context.Context) error {
	in := &lambda.CreateFunctionInput{
		FunctionName: awssdk.String(r.functionName()), Role: awssdk.String(r.roleArn), Runtime: lambdatypes.RuntimePython312,
		Handler: awssdk.String("index.handler"), Code: &lambdatypes.FunctionCode{ZipFile: functionZip("vigil " + r.marker)},
		Tags: map[string]string{TagMarker: r.marker},
	}
	deadline := r.x.clock().Add(r.x.waitFor())
	for {
		_, err := r.lambda().CreateFunction(ctx, in)
		var ae smithy.APIError
		if err != nil && errors.As(err, &ae) && ae.ErrorCode() == "InvalidParameterValueException" && strings.Contains(ae.ErrorMessage(), "assume") && r.x.clock().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(3 * time.Second): // IAM is eventually consistent
			}
			continue
		}
		if err != nil {
			return call("lambda:CreateFunction", err)
		}
		break
	}
	r.logf("created function %s", r.functionName())
	r.details["function"] = r.functionName()
	err := lambda.NewFunctionActiveV2Waiter(r.lambda()).Wait(ctx, &lambda.GetFunctionInput{FunctionName: awssdk.String(r.functionName())}, r.x.waitFor())
	return call("lambda:GetFunction (wait until active)", err)
}

func (r *run) updateFunctionCode(ctx context.Context) error {
	_, err := r.lambda().UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: awssdk.String(r.functionName()), ZipFile: functionZip("overwritten by vigil " + r.marker)})
	if err == nil {
		r.logf("overwrote the code of %s", r.functionName())
	}
	return call("lambda:UpdateFunctionCode", err)
}

// publicInvoke adds (or removes) a statement letting any principal invoke
// the run's function.
func (r *run) publicInvoke(ctx context.Context, add bool) error {
	if add {
		_, err := r.lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: awssdk.String(r.functionName()), StatementId: awssdk.String(r.marker),
			Action: awssdk.String("lambda:InvokeFunction"), Principal: awssdk.String("*")})
		if err == nil {
			r.logf("%s now invokable by any principal", r.functionName())
		}
		return call("lambda:AddPermission", err)
	}
	_, err := r.lambda().RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: awssdk.String(r.functionName()), StatementId: awssdk.String(r.marker)})
	if err == nil {
		r.logf("removed the public invoke statement of %s", r.functionName())
	}
	return call("lambda:RemovePermission", err)
}

func (r *run) cleanFunction(ctx context.Context) error {
	_, err := r.lambda().DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: awssdk.String(r.functionName())})
	if err != nil && !notFound(err) {
		return call("cleanup: lambda:DeleteFunction", err)
	}
	r.logf("cleanup: deleted function %s", r.functionName())
	return nil
}

func (r *run) cleanRole(ctx context.Context) error {
	_, err := r.iam().DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: awssdk.String(r.roleName())})
	if err != nil && !notFound(err) {
		return call("cleanup: iam:DeleteRole", err)
	}
	r.logf("cleanup: deleted role %s", r.roleName())
	return nil
}
