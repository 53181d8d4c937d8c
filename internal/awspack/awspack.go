// Package awspack is test equipment: the AWS pack of the embedded catalog
// and the Sigma rules that detect its recordings, for the tests that
// replay the pack through each SIEM plugin.
package awspack

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// Tests returns the embedded catalog's tests for the aws injector. With
// within set, each expects its technique within it instead of the pack's
// 15 minutes (the time CloudTrail takes to reach a real SIEM): a fake is
// faster, and a miss then fails fast.
func Tests(t testing.TB, within time.Duration) []*catalog.Test {
	t.Helper()
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	var out []*catalog.Test
	for _, ts := range cat.Tests {
		if ts.Inject.Plugin != "aws" {
			continue
		}
		if within > 0 {
			c := *ts
			c.Expect = []catalog.Expectation{{Within: within}}
			ts = &c
		}
		out = append(out, ts)
	}
	if len(out) < 10 {
		t.Fatalf("%d AWS tests in the catalog, want at least 10", len(out))
	}
	return out
}

// Rules loads vigil's CloudTrail rules and SigmaHQ's rules.
func Rules(t testing.TB) []*detect.Rule {
	t.Helper()
	var all []*detect.Rule
	for _, root := range []string{rules.SigmaAWSRoot, rules.SigmaHQRoot} {
		rs, err := detect.Load(rules.Sigma, root)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rs.Rules...)
	}
	return all
}
