package rules_test

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// The Linux technique pack (techniques/linux) and the vigil Sigma rules that
// detect it (sigma/linux) are checked together: every test of the pack must
// be detectable by at least one vigil rule tagged with its technique.

const (
	linuxTechniques = "techniques/linux/"
	linuxRules      = rules.SigmaOwnRoot
	sigmaHQRules    = rules.SigmaHQRoot

	minLinuxTests   = 31
	minLinuxTactics = 8
)

// chaosExperiments are the tests of the six chaos experiments (one of them,
// boot / trust store / SSH keys, is three tests). They need no Atomic Red
// Team origin; every other test of the pack must cite one.
var chaosExperiments = map[string]bool{
	"linux-dropped-script-exec":       true, // a new executable is dropped and run
	"linux-app-crash-signals":         true, // programs crash (SIGSEGV, SIGABRT)
	"linux-clock-set-to-itself":       true, // time travel
	"linux-log-decoy-tamper":          true, // logs are tampered with and deleted
	"linux-boot-decoy-file":           true, // boot files change
	"linux-root-ca-decoy":             true, // the root certificate store changes
	"linux-ssh-authorized-keys-decoy": true, // SSH authorized keys change
	"linux-resource-limits-tamper":    true, // resource limits are lifted
}

// selfRevertingTests change the target without a cleanup step because the
// change undoes itself (the clock is set to its own value).
var selfRevertingTests = map[string]bool{
	"linux-clock-set-to-itself": true,
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// linuxPack returns the tests of the embedded catalog that live under
// techniques/linux.
func linuxPack(t *testing.T) []*catalog.Test {
	t.Helper()
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		t.Fatalf("load the embedded catalog: %v", err)
	}
	var out []*catalog.Test
	for _, tc := range cat.Tests {
		if strings.Contains(path.Clean(strings.ReplaceAll(tc.Source.File, `\`, "/")), linuxTechniques) {
			out = append(out, tc)
		}
	}
	return out
}

// vigilRules loads vigil's own rules (sigma/linux and sigma/kubernetes)
// from the embedded rules (what the binary ships) and fails on any file that
// is not a rule.
func vigilRules(t *testing.T) []*detect.Rule {
	t.Helper()
	rs, err := detect.Load(rules.Sigma, rules.SigmaOwnRoots...)
	if err != nil {
		t.Fatalf("load %v: %v", rules.SigmaOwnRoots, err)
	}
	for _, p := range rs.Problems {
		t.Errorf("%s", p.Error())
	}
	for _, root := range rules.SigmaOwnRoots {
		n := 0
		for _, r := range rs.Rules {
			if strings.HasPrefix(r.Path, root+"/") {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("no rule loaded from %s", root)
		}
	}
	return rs.Rules
}

func TestLinuxPackSize(t *testing.T) {
	tests := linuxPack(t)
	if len(tests) < minLinuxTests {
		t.Errorf("the Linux pack has %d tests, want at least %d", len(tests), minLinuxTests)
	}
	tactics := map[string]bool{}
	for _, tc := range tests {
		for _, ta := range tc.Tactics {
			tactics[ta] = true
		}
	}
	if len(tactics) < minLinuxTactics {
		t.Errorf("the Linux pack covers %d tactics (%v), want at least %d", len(tactics), tactics, minLinuxTactics)
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.ID] = true
	}
	for id := range chaosExperiments {
		if !seen[id] {
			t.Errorf("chaos experiment %s is missing from the pack", id)
		}
	}
}

// negative reports whether every expectation of tc is absent: a benign
// look-alike that must stay quiet.
func negative(tc *catalog.Test) bool {
	if len(tc.Expect) == 0 {
		return false
	}
	for _, e := range tc.Expect {
		if !e.Absent {
			return false
		}
	}
	return true
}

func TestLinuxPackTests(t *testing.T) {
	benign := 0
	for _, tc := range linuxPack(t) {
		neg := negative(tc)
		if neg {
			benign++
		}
		t.Run(tc.ID, func(t *testing.T) {
			if neg {
				// A benign look-alike: no atomic to cite, but named and
				// tagged as such.
				if !strings.HasPrefix(tc.ID, "linux-benign-") || !contains(tc.Tags, "benign") || !contains(tc.Tags, "negative") {
					t.Errorf("negative test: want an id linux-benign-* and the tags benign and negative (tags %v)", tc.Tags)
				}
			} else if tc.AtomicGUID == "" && !chaosExperiments[tc.ID] {
				t.Errorf("no atomic_guid, and not one of the chaos experiments")
			}
			if !contains(tc.Platforms, "linux") {
				t.Errorf("platforms %v lack linux", tc.Platforms)
			}
			if tc.Inject.Plugin != "exec" {
				t.Errorf("inject plugin %q, want exec", tc.Inject.Plugin)
			}
			cmd, _ := tc.Inject.Params["command"].(string)
			if strings.TrimSpace(cmd) == "" {
				t.Errorf("inject has no command")
			}
			switch tc.Safety {
			case catalog.SafetySafe:
			case catalog.SafetyReversible:
				if tc.Cleanup == nil && !selfRevertingTests[tc.ID] {
					t.Errorf("reversible test without [cleanup]")
				}
			default:
				t.Errorf("safety %q: the pack holds only safe and reversible tests", tc.Safety)
			}
			if tc.Cleanup != nil {
				if c, _ := tc.Cleanup.Params["command"].(string); strings.TrimSpace(c) == "" {
					t.Errorf("[cleanup] has no command")
				}
			}
			if tc.Timeout > 30*time.Second {
				t.Errorf("timeout %s: pack tests must stay short", tc.Timeout)
			}
			if !strings.Contains(tc.Description, string(tc.Technique.ID)) {
				t.Errorf("description does not name the technique %s (say why it maps)", tc.Technique.ID)
			}
			if !strings.Contains(cmd, "{{marker}}") && !strings.Contains(cmd, "{{args.") && !strings.Contains(cmd, "{{tmpdir}}") {
				t.Logf("inject command carries no placeholder; correlation relies on the shell's $0 only")
			}
			withinSet := false
			for _, e := range tc.Expect {
				if e.Absent == neg && e.Within > 0 && e.Within <= 90*time.Second {
					withinSet = true
				}
			}
			if !withinSet {
				t.Errorf("no [[expect]] with a within deadline")
			}
		})
	}
	if benign < 6 {
		t.Errorf("the pack has %d benign look-alikes, want at least 6", benign)
	}
}

func TestLinuxPackDetectedByVigilRules(t *testing.T) {
	vr := vigilRules(t)
	for _, tc := range linuxPack(t) {
		want := map[attack.TechniqueID]bool{tc.Technique.ID: true}
		for _, e := range tc.Expect {
			if !e.Absent {
				want[e.Technique] = true
			}
		}
		for tech := range want {
			var by []string
			for _, r := range vr {
				for _, rt := range r.Techniques {
					if attack.TechniqueID(rt).Covers(tech) {
						by = append(by, r.Title)
						break
					}
				}
			}
			if len(by) == 0 {
				t.Errorf("%s: no rule in %s is tagged with %s (or its parent)", tc.ID, linuxRules, tech)
			}
		}
	}
}

func TestVigilRules(t *testing.T) {
	vr := vigilRules(t)
	ids := map[string]string{}
	for _, r := range vr {
		t.Run(path.Base(r.Path), func(t *testing.T) {
			if !uuidV4.MatchString(r.ID) {
				t.Errorf("id %q is not a lower-case UUIDv4", r.ID)
			}
			if first, dup := ids[r.ID]; dup {
				t.Errorf("id %s also used by %s", r.ID, first)
			}
			ids[r.ID] = r.Path
			if r.Author != "vigil" {
				t.Errorf("author %q, want vigil", r.Author)
			}
			if r.Status != "test" {
				t.Errorf("status %q, want test", r.Status)
			}
			switch r.Level {
			case "informational", "low", "medium", "high", "critical":
			default:
				t.Errorf("level %q", r.Level)
			}
			if r.Description == "" || len(r.References) == 0 {
				t.Errorf("description and references are required")
			}
			for _, k := range []string{"date", "falsepositives"} {
				if r.Sigma.AdditionalFields[k] == nil {
					t.Errorf("%s is required", k)
				}
			}
			if len(r.Techniques) == 0 || len(r.Tactics) == 0 {
				t.Errorf("tags must name at least one attack.<tactic> and one attack.tNNNN technique: %v", r.Tags)
			}
			for _, id := range r.Techniques {
				tech, err := attack.Lookup(id)
				if err != nil {
					t.Errorf("tag %s: %v", id, err)
					continue
				}
				ok := false
				for _, ta := range r.Tactics {
					ok = ok || contains(tech.Tactics, ta)
				}
				if !ok {
					t.Errorf("technique %s (tactics %v) has none of the rule's tactics %v", id, tech.Tactics, r.Tactics)
				}
			}
			for _, ta := range r.Tactics {
				if _, err := attack.Default().Tactic(ta); err != nil {
					t.Errorf("tactic tag %s: %v", ta, err)
				}
			}
			// Rules detect behaviour, never vigil's run markers.
			data, err := fs.ReadFile(rules.Sigma, r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if det := string(data)[strings.Index(string(data), "detection:"):]; strings.Contains(strings.ToLower(det), "vigil") {
				t.Errorf("detection mentions vigil: rules must not match on run markers")
			}
		})
	}

	// The ids must not collide with the SigmaHQ rules shipped next to them.
	hq, err := detect.Load(rules.Sigma, sigmaHQRules)
	if err != nil {
		t.Fatalf("load %s: %v", sigmaHQRules, err)
	}
	for _, r := range hq.Rules {
		if p, dup := ids[r.ID]; dup {
			t.Errorf("%s: id %s is also the id of SigmaHQ rule %s", p, r.ID, r.Path)
		}
	}
	for _, p := range hq.Problems {
		if p.ID != "" {
			if q, dup := ids[p.ID]; dup {
				t.Errorf("%s: id %s is also the id of SigmaHQ file %s", q, p.ID, p.Path)
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
