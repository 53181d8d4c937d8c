package aws

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Config is the target's params table for the aws injector, for example
//
//	[[target]]
//	name = "sandbox-account"
//	plugin = "aws"
//	[target.params]
//	region = "eu-west-1"
//	account_ids = ["111122223333"]
//	profile = "vigil-chaos"
//
// Credentials come from the AWS SDK's standard chain (environment, shared
// config and credentials files with profile, SSO, web identity, container
// and instance roles), never from this file. Unknown keys are errors.
type Config struct {
	// Region is the only region the injector works in. Required.
	Region string `toml:"region"`
	// AccountIDs are the accounts the injector may work in: before any
	// test, sts:GetCallerIdentity must name one of them. Required.
	AccountIDs []string `toml:"account_ids"`
	// Profile is a profile of the shared config files (default: the
	// chain's own choice, AWS_PROFILE or default).
	Profile string `toml:"profile"`
	// EndpointURL sends every service's calls to one endpoint (LocalStack,
	// a proxy); path-style S3 addressing follows. Default: AWS.
	EndpointURL string `toml:"endpoint_url"`
	// CleanupTimeout bounds Cleanup, as a Go duration (default 2m).
	CleanupTimeout string `toml:"cleanup_timeout"`
}

// Defaults.
const (
	DefaultCleanupTimeout = 2 * time.Minute
	DefaultTimeout        = 3 * time.Minute
)

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

// config is a Config checked and completed.
type config struct {
	Config
	cleanupTimeout time.Duration
}

func parseConfig(b []byte) (*config, error) {
	var c Config
	if err := plugin.DecodeConfig("aws", b, &c); err != nil {
		return nil, err
	}
	out := &config{Config: c, cleanupTimeout: DefaultCleanupTimeout}
	if c.CleanupTimeout != "" {
		d, err := time.ParseDuration(c.CleanupTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("aws: config: cleanup_timeout %q is not a positive Go duration", c.CleanupTimeout)
		}
		out.cleanupTimeout = d
	}
	return out, out.validate()
}

func (c *config) validate() error {
	switch {
	case c.Region == "":
		return fmt.Errorf("aws: config: region is required: the injector works in one region only")
	case !regionRE.MatchString(c.Region):
		return fmt.Errorf("aws: config: region %q is not an AWS region name (e.g. eu-west-1)", c.Region)
	case len(c.AccountIDs) == 0:
		return fmt.Errorf("aws: config: account_ids is required: the accounts vigil may attack, checked with sts:GetCallerIdentity before any test")
	}
	for _, a := range c.AccountIDs {
		if !accountRE.MatchString(a) {
			return fmt.Errorf("aws: config: account_ids: %q is not a 12-digit account ID", a)
		}
	}
	return nil
}

// allowed says whether account is one of account_ids.
func (c *config) allowed(account string) bool { return slices.Contains(c.AccountIDs, account) }
