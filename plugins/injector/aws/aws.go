// Package aws is vigil's built-in "aws" injector: it performs the AWS
// pack's tests (rules/techniques/aws) in one account and region through
// the AWS SDK for Go v2, as Stratus Red Team does, and checks no SIEM
// itself: vigil does that.
//
// Each test's "action" param picks a technique (see Actions). An action
// has a warm-up (it creates what the technique needs: a trail and its
// bucket, a VPC, secrets, a function), a detonation (the technique
// itself), a revert (where one applies: the trail is started again, the
// ingress rule revoked) and a cleanup that deletes everything the warm-up
// and detonation created, found again by name from the run marker, so
// that it works after a half-done or lost injection.
//
// Safety: the target names the accounts vigil may attack (account_ids)
// and one region; every Inject and Cleanup first calls
// sts:GetCallerIdentity and refuses to do anything in another account. The
// injector only ever changes resources it created, named after the run
// marker and tagged vigil.run-marker; the actions that read (ListSecrets,
// DescribeParameters) are filtered to those resources too.
//
// The run marker is in the User-Agent of every call (the SDK's app ID:
// "app/vigil-..."), which CloudTrail records as userAgent, and in the name
// and tags of every resource.
package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// Name is the injector's registered name.
const Name = "aws"

// Version is the injector's version.
const Version = "0.1.0"

// TagMarker is the tag key of every resource the injector creates; its
// value is the run marker.
const TagMarker = "vigil.run-marker"

// ErrNotConfigured means Inject or Cleanup came before Configure.
var ErrNotConfigured = errors.New("aws: not configured (the target's params are required: region and account_ids)")

// markerRE is what the injector accepts as a marker: it becomes part of S3
// bucket names, IAM and Lambda names and the SDK's app ID.
var markerRE = regexp.MustCompile(`^[a-z0-9][-a-z0-9]{2,30}[a-z0-9]$`)

func init() {
	plugin.RegisterInjector(Name, func() plugin.Injector { return new(Injector) })
}

// Interface guards.
var _ plugin.Injector = (*Injector)(nil)

// Injector performs AWS techniques in one account and region. New values
// need Configure; methods are safe for concurrent use.
type Injector struct {
	sdk.InjectorBase

	mu  sync.Mutex
	cfg *config

	// extra are options added to every SDK config (tests: static
	// credentials, retries, the fake's endpoint).
	extra []func(*awsconfig.LoadOptions) error
	// now is the clock (tests); default time.Now.
	now func() time.Time
	// wait bounds the waits for IAM propagation and Lambda states
	// (default 2 minutes); tests shorten it.
	wait time.Duration
}

// Describe says what the injector is.
func (x *Injector) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindInjector,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Performs AWS techniques (CloudTrail and flow logs impaired, a security group opened, secrets read, IAM users and Lambda backdoors) in one allowed account and region, on resources it creates and deletes, with the run marker in every call's User-Agent.",
		Platforms:       []string{"iaas:aws"},
		Params: []plugin.ParamSpec{
			{Name: "action", Type: "string", Required: true, Description: "what to do: " + strings.Join(Actions(), ", ")},
		},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerUserAgent},
		Capabilities:    []string{plugin.CapCleanupByMarker},
	}, nil
}

// Configure decodes the target's params strictly (see Config). It does not
// contact AWS.
func (x *Injector) Configure(ctx context.Context, b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cfg = c
	return nil
}

// Validate checks a test's params without side effects.
func (x *Injector) Validate(ctx context.Context, req plugin.ValidateRequest) ([]plugin.Problem, error) {
	var probs []plugin.Problem
	if _, err := actionOf(req.Params); err != nil {
		probs = append(probs, plugin.Problem{Subject: "action", Message: err.Error()})
	}
	if len(req.CleanupParams) > 0 {
		probs = append(probs, plugin.Problem{Subject: "cleanup", Message: "the aws injector takes no cleanup params: it deletes what it created by the run marker"})
	}
	return probs, nil
}

// actionOf reads the action param.
func actionOf(p plugin.Params) (*action, error) {
	var v struct {
		Action string `json:"action"`
	}
	if err := p.Decode(&v); err != nil {
		return nil, err
	}
	a, ok := actions[v.Action]
	if !ok {
		return nil, fmt.Errorf("%q is not an action (known: %s)", v.Action, strings.Join(Actions(), ", "))
	}
	return a, nil
}

func (x *Injector) config() (*config, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cfg == nil {
		return nil, ErrNotConfigured
	}
	return x.cfg, nil
}

func (x *Injector) clock() time.Time {
	if x.now != nil {
		return x.now()
	}
	return time.Now()
}

func (x *Injector) waitFor() time.Duration {
	if x.wait > 0 {
		return x.wait
	}
	return 2 * time.Minute
}

// sdkConfig loads the SDK config of one run: the standard credential
// chain, the target's region, profile and endpoint, and the marker as the
// app ID of the User-Agent.
func (x *Injector) sdkConfig(ctx context.Context, c *config, marker string) (awssdk.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.Region), awsconfig.WithAppID(marker)}
	if c.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.Profile))
	}
	if c.EndpointURL != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(c.EndpointURL))
	}
	opts = append(opts, x.extra...)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("aws: load the SDK config (region %s, profile %q): %w", c.Region, c.Profile, err)
	}
	return cfg, nil
}

// identity is the caller sts:GetCallerIdentity names.
type identity struct{ Account, Arn string }

// checkIdentity asks STS who the caller is and refuses an account that is
// not one of account_ids.
func checkIdentity(ctx context.Context, c *config, cfg awssdk.Config) (identity, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return identity{}, fmt.Errorf("aws: sts:GetCallerIdentity: %w", describe(err))
	}
	id := identity{Account: awssdk.ToString(out.Account), Arn: awssdk.ToString(out.Arn)}
	if !c.allowed(id.Account) {
		return id, fmt.Errorf("aws: the credentials are %s in account %s, which is not one of account_ids %v: nothing was done", id.Arn, id.Account, c.AccountIDs)
	}
	return id, nil
}

// Inject runs the action's warm-up, detonation and revert.
func (x *Injector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.InjectResult{}, err
	}
	res := plugin.InjectResult{StartedAt: x.clock(), MarkerLocations: []plugin.MarkerLocation{plugin.MarkerUserAgent}}
	finish := func(o plugin.Outcome, msg string) (plugin.InjectResult, error) {
		res.EndedAt = x.clock()
		res.Outcome, res.Error = o, msg
		return res, nil
	}
	if !markerRE.MatchString(req.Marker) {
		return finish(plugin.OutcomeRefused, fmt.Sprintf("aws: marker %q cannot name resources (lower-case letters, digits and dashes, 4 to 32)", req.Marker))
	}
	a, err := actionOf(req.Params)
	if err != nil {
		return finish(plugin.OutcomeFailed, "aws: params: action: "+err.Error())
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := x.sdkConfig(ctx, c, req.Marker)
	if err != nil {
		return finish(plugin.OutcomeFailed, err.Error())
	}
	id, err := checkIdentity(ctx, c, cfg)
	res.Host = id.Account
	if err != nil {
		return finish(plugin.OutcomeRefused, err.Error())
	}
	r := newRun(x, c, cfg, req.Marker, req.TestID, id)
	err = r.inject(ctx, a)
	res.Stdout = []byte(strings.Join(r.log, "\n") + "\n")
	r.details["action"], r.details["account"], r.details["region"], r.details["caller"] = a.name, id.Account, c.Region, id.Arn
	res.Details, _ = json.Marshal(r.details)
	switch {
	case err == nil:
		return finish(plugin.OutcomeSucceeded, "")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return finish(plugin.OutcomeTimedOut, fmt.Sprintf("aws: %s: timed out after %s: %v", a.name, timeout, err))
	default:
		return finish(plugin.OutcomeFailed, err.Error())
	}
}

// Cleanup deletes what the action's warm-up and detonation created, found
// by name from the marker, whatever the injection got to.
func (x *Injector) Cleanup(ctx context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.CleanupResult{}, err
	}
	if !markerRE.MatchString(req.Marker) {
		return plugin.CleanupResult{}, nil // Inject refused it: nothing was created
	}
	a, err := actionOf(req.Params)
	if err != nil && len(req.Params) > 0 {
		return plugin.CleanupResult{Error: "aws: params: action: " + err.Error()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cleanupTimeout)
	defer cancel()
	cfg, err := x.sdkConfig(ctx, c, req.Marker)
	if err != nil {
		return plugin.CleanupResult{Error: err.Error()}, nil
	}
	id, err := checkIdentity(ctx, c, cfg)
	if err != nil {
		return plugin.CleanupResult{Error: err.Error()}, nil
	}
	r := newRun(x, c, cfg, req.Marker, req.TestID, id)
	var errs []string
	for _, step := range r.cleanups(a) {
		if err := step(ctx); err != nil {
			errs = append(errs, err.Error())
		}
	}
	out := plugin.CleanupResult{Output: []byte(strings.Join(r.log, "\n") + "\n")}
	if len(errs) > 0 {
		out.Error = strings.Join(errs, "; ")
	}
	return out, nil
}

// describe shortens an SDK error to the service's code and message (the
// SDK's own errors say which operation failed; no credential is in them).
func describe(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// notFound says whether err is the service saying the resource is gone.
func notFound(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "TrailNotFoundException", "NoSuchBucket", "NoSuchEntity", "ResourceNotFoundException", "ParameterNotFound",
		"InvalidVpcID.NotFound", "InvalidGroup.NotFound", "InvalidFlowLogId.NotFound", "InvalidPermission.NotFound", "NotFound", "404":
		return true
	}
	return false
}
