package catalog

import (
	"strings"
	"testing"
)

// A filter names a platform as tests list it, a cloud provider alone (aws
// for iaas:aws), or iaas for every provider.
func TestOnPlatform(t *testing.T) {
	aws := &Test{Platforms: []string{"iaas:aws"}}
	linux := &Test{Platforms: []string{"linux", "containers"}}
	cases := []struct {
		t    *Test
		p    string
		want bool
	}{
		{aws, "iaas:aws", true}, {aws, "aws", true}, {aws, "iaas", true}, {aws, "azure", false}, {aws, "linux", false},
		{linux, "containers", true}, {linux, "iaas", false}, {linux, "aws", false},
	}
	for _, tc := range cases {
		if got := onPlatform(tc.t, tc.p); got != tc.want {
			t.Errorf("onPlatform(%v, %q) = %v", tc.t.Platforms, tc.p, got)
		}
	}
	if _, _, err := (&Catalog{}).Select(Filter{Platforms: []string{"aws"}}); err != nil && !strings.Contains(err.Error(), "nothing") {
		t.Errorf("--platform aws refused: %v", err)
	}
}
