package local

import (
	"slices"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/vigilsec/vigil/core/plugin"
)

// Each session mode configures what it says: the hooks and Config agree on
// the keys, so renaming one fails here, not silently in a user's run.
func TestModes(t *testing.T) {
	m, ok := plugin.SIEMModesOf(Name)
	if !ok {
		t.Fatal("the local SIEM registers no mode hooks")
	}
	user := map[string]any{"record": "/tmp/x.jsonl", "sigma_dirs": []any{"/etc/vigil/sigma"}, "retention": "2h"}
	parse := func(t *testing.T, p map[string]any) Config {
		t.Helper()
		b, err := toml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseConfig(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		return c
	}
	tests := []struct {
		name  string
		got   map[string]any
		check func(c Config) bool
	}{
		{"replay", m.Replay(user), func(c Config) bool { return c.Mode == ModeReplay && c.Record == "/tmp/x.jsonl" }},
		{"rules only", m.RulesOnly(user), func(c Config) bool { return c.Mode == ModeReplay && c.Record == "" }},
		{"record", m.Record(user, "/run/rec.jsonl"), func(c Config) bool { return c.Mode == ModeLive && c.Record == "/run/rec.jsonl" }},
		{"rule dirs", m.AddRuleDirs(user, []string{"/a", "/b"}), func(c Config) bool {
			return slices.Equal(c.SigmaDirs, []string{"/etc/vigil/sigma", "/a", "/b"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.got)
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
			if c.Retention.String() != "2h0m0s" {
				t.Errorf("the user's retention was lost: %s", c.Retention)
			}
		})
	}
	if user["mode"] != nil || len(user["sigma_dirs"].([]any)) != 1 {
		t.Errorf("a hook changed the user's table: %v", user)
	}
}
