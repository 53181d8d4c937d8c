package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
)

// action is one technique: its warm-up, detonation and revert run in
// Inject; its cleanups in Cleanup, each tolerating what does not exist.
type action struct {
	name      string
	stratus   string // the Stratus Red Team technique it follows
	warmUp    []step
	detonate  step
	revert    step
	resources []resource // what Cleanup deletes, in order
}

// step is one part of an action, run with the run's clients (a method
// expression of run).
type step func(r *run, ctx context.Context) error

// resource is a kind of resource an action creates; its cleanup deletes
// the run's instance of it.
type resource int

const (
	resTrail resource = iota
	resFlowLogs
	resSecurityGroup
	resVPC
	resBucket
	resSecrets
	resParameters
	resUser
	resFunction
	resRole
)

// The actions, the value of the "action" param.
const (
	ActionCloudTrailStop           = "cloudtrail-stop"
	ActionCloudTrailDelete         = "cloudtrail-delete"
	ActionCloudTrailEventSelectors = "cloudtrail-event-selectors"
	ActionVPCFlowLogsDelete        = "vpc-flow-logs-delete"
	ActionSecurityGroupOpenSSH     = "security-group-open-ssh"
	ActionSecretsManagerRead       = "secretsmanager-read-secrets"
	ActionSSMReadSecureString      = "ssm-read-securestring"
	ActionIAMCreateAdminUser       = "iam-create-admin-user"
	ActionIAMCreateLoginProfile    = "iam-create-login-profile"
	ActionLambdaOverwriteCode      = "lambda-overwrite-code"
	ActionLambdaPublicInvoke       = "lambda-public-invoke"
)

var actions = map[string]*action{
	ActionCloudTrailStop: {
		stratus:   "aws.defense-evasion.cloudtrail-stop",
		warmUp:    []step{(*run).createBucket, (*run).createTrail},
		detonate:  func(r *run, ctx context.Context) error { return r.stopLogging(ctx) },
		revert:    func(r *run, ctx context.Context) error { return r.startLogging(ctx) },
		resources: []resource{resTrail, resBucket},
	},
	ActionCloudTrailDelete: {
		stratus:   "aws.defense-evasion.cloudtrail-delete",
		warmUp:    []step{(*run).createBucket, (*run).createTrail},
		detonate:  (*run).deleteTrail,
		resources: []resource{resTrail, resBucket},
	},
	ActionCloudTrailEventSelectors: {
		stratus:   "aws.defense-evasion.cloudtrail-event-selectors",
		warmUp:    []step{(*run).createBucket, (*run).createTrail},
		detonate:  func(r *run, ctx context.Context) error { return r.putEventSelectors(ctx, false) },
		revert:    func(r *run, ctx context.Context) error { return r.putEventSelectors(ctx, true) },
		resources: []resource{resTrail, resBucket},
	},
	ActionVPCFlowLogsDelete: {
		stratus:   "aws.defense-evasion.vpc-remove-flow-logs",
		warmUp:    []step{(*run).createVPC, (*run).createBucket, (*run).createFlowLog},
		detonate:  (*run).deleteFlowLogs,
		resources: []resource{resFlowLogs, resVPC, resBucket},
	},
	ActionSecurityGroupOpenSSH: {
		stratus:   "aws.exfiltration.ec2-security-group-open-port-22-ingress",
		warmUp:    []step{(*run).createVPC, (*run).createSecurityGroup},
		detonate:  func(r *run, ctx context.Context) error { return r.sshIngress(ctx, true) },
		revert:    func(r *run, ctx context.Context) error { return r.sshIngress(ctx, false) },
		resources: []resource{resSecurityGroup, resVPC},
	},
	ActionSecretsManagerRead: {
		stratus:   "aws.credential-access.secretsmanager-retrieve-secrets",
		warmUp:    []step{(*run).createSecrets},
		detonate:  (*run).readSecrets,
		resources: []resource{resSecrets},
	},
	ActionSSMReadSecureString: {
		stratus:   "aws.credential-access.ssm-retrieve-securestring-parameters",
		warmUp:    []step{(*run).createParameters},
		detonate:  (*run).readParameters,
		resources: []resource{resParameters},
	},
	ActionIAMCreateAdminUser: {
		stratus:   "aws.persistence.iam-create-admin-user",
		detonate:  (*run).createAdminUser,
		resources: []resource{resUser},
	},
	ActionIAMCreateLoginProfile: {
		stratus:   "aws.persistence.iam-create-user-login-profile",
		warmUp:    []step{(*run).createUser},
		detonate:  (*run).createLoginProfile,
		resources: []resource{resUser},
	},
	ActionLambdaOverwriteCode: {
		stratus:   "aws.persistence.lambda-overwrite-code",
		warmUp:    []step{(*run).createRole, (*run).createFunction},
		detonate:  (*run).updateFunctionCode,
		resources: []resource{resFunction, resRole},
	},
	ActionLambdaPublicInvoke: {
		stratus:   "aws.persistence.lambda-backdoor-function",
		warmUp:    []step{(*run).createRole, (*run).createFunction},
		detonate:  func(r *run, ctx context.Context) error { return r.publicInvoke(ctx, true) },
		revert:    func(r *run, ctx context.Context) error { return r.publicInvoke(ctx, false) },
		resources: []resource{resFunction, resRole},
	},
}

func init() {
	for name, a := range actions {
		a.name = name
	}
}

// Actions lists the actions, sorted.
func Actions() []string {
	out := make([]string, 0, len(actions))
	for n := range actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Stratus returns the Stratus Red Team technique an action follows.
func Stratus(actionName string) string {
	if a, ok := actions[actionName]; ok {
		return a.stratus
	}
	return ""
}

// inject runs the warm-up, the detonation and the revert. A failed
// warm-up step ends it (Cleanup deletes what was made); the revert runs
// even when the detonation failed half-way.
func (r *run) inject(ctx context.Context, a *action) error {
	for _, s := range a.warmUp {
		if err := s(r, ctx); err != nil {
			return fmt.Errorf("aws: %s: warm-up: %w", a.name, err)
		}
	}
	r.logf("detonation (%s)", a.stratus)
	err := a.detonate(r, ctx)
	if err != nil {
		err = fmt.Errorf("aws: %s: detonation: %w", a.name, err)
	}
	if a.revert != nil {
		if rerr := a.revert(r, ctx); rerr != nil && err == nil {
			err = fmt.Errorf("aws: %s: revert: %w", a.name, rerr)
		}
	}
	return err
}

// cleanups are the deletions of an action's resources, or of every kind
// when the action is not known (the params were lost).
func (r *run) cleanups(a *action) []func(context.Context) error {
	kinds := []resource{resTrail, resFlowLogs, resSecurityGroup, resVPC, resBucket, resSecrets, resParameters, resUser, resFunction, resRole}
	if a != nil {
		kinds = a.resources
	}
	del := map[resource]step{
		resTrail: (*run).cleanTrail, resFlowLogs: (*run).cleanFlowLogs, resSecurityGroup: (*run).cleanSecurityGroups,
		resVPC: (*run).cleanVPCs, resBucket: (*run).cleanBucket, resSecrets: (*run).cleanSecrets,
		resParameters: (*run).cleanParameters, resUser: (*run).cleanUser, resFunction: (*run).cleanFunction, resRole: (*run).cleanRole,
	}
	out := make([]func(context.Context) error, len(kinds))
	for i, k := range kinds {
		s := del[k]
		out[i] = func(ctx context.Context) error { return s(r, ctx) }
	}
	return out
}

// randomValue is a decoy secret: random, never reported.
func randomValue() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "vigil-decoy-" + hex.EncodeToString(b)
}
