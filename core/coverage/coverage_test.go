package coverage_test

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/core/measure"
)

// table is a small ATT&CK table: Linux techniques in four tactics, and
// T1059.001 and T1134 for Windows only (out of the default scope).
func table(t *testing.T) *attack.Table {
	t.Helper()
	tb, err := attack.Parse([]byte(`{"attack_version":"18.1","domain":"enterprise-attack",
	"tactics":[{"id":"TA0002","shortname":"execution","name":"Execution"},{"id":"TA0003","shortname":"persistence","name":"Persistence"},
		{"id":"TA0005","shortname":"defense-evasion","name":"Defense Evasion"},{"id":"TA0006","shortname":"credential-access","name":"Credential Access"}],
	"techniques":[
		{"id":"T1059","name":"Command and Scripting Interpreter","tactics":["execution"],"platforms":["Linux","Windows"]},
		{"id":"T1059.004","name":"Unix Shell","tactics":["execution"],"platforms":["Linux"],"subtechnique":true},
		{"id":"T1059.001","name":"PowerShell","tactics":["execution"],"platforms":["Windows"],"subtechnique":true},
		{"id":"T1053.003","name":"Cron","tactics":["execution","persistence"],"platforms":["Linux"],"subtechnique":true},
		{"id":"T1070.002","name":"Clear Linux or Mac System Logs","tactics":["defense-evasion"],"platforms":["Linux"],"subtechnique":true},
		{"id":"T1003.008","name":"/etc/passwd and /etc/shadow","tactics":["credential-access"],"platforms":["Linux"],"subtechnique":true},
		{"id":"T1610","name":"Deploy Container","tactics":["defense-evasion","execution"],"platforms":["Containers"]},
		{"id":"T1134","name":"Access Token Manipulation","tactics":["defense-evasion"],"platforms":["Windows"]},
		{"id":"T1000","name":"Revoked","tactics":["execution"],"platforms":["Linux"],"revoked":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func result(test, tech string, st measure.Status, rules ...string) measure.Result {
	r := measure.Result{TestID: test, Technique: tech, SIEM: "s", Target: "local", Status: st}
	for _, id := range rules {
		r.Signals = append(r.Signals, measure.SignalRef{ID: "sig-" + id, RuleID: id, Rule: "name of " + id})
	}
	return r
}

func rule(id string, techs ...string) coverage.Rule {
	return coverage.Rule{ID: id, Name: "rule " + id, Techniques: techs, Enabled: true}
}

func TestCompute(t *testing.T) {
	cases := []struct {
		name    string
		tests   []coverage.Test
		results []measure.Result
		rules   []coverage.Rule
		unknown bool
		// want: technique → class; techniques not listed must be no_test.
		want map[string]coverage.Class
		// wantRules: technique → claiming rule IDs ("!" suffix: fired).
		wantRules map[string][]string
		// wantSilent: silent rule ID → the techniques it claims.
		wantSilent map[string][]string
		outside    int
	}{
		{
			name:      "claimed and proven, the claiming rule fired",
			results:   []measure.Result{result("shell", "T1059.004", measure.Detected, "r1")},
			rules:     []coverage.Rule{rule("r1", "T1059.004")},
			want:      map[string]coverage.Class{"T1059.004": coverage.ClaimedProven},
			wantRules: map[string][]string{"T1059.004": {"r1!"}},
		},
		{
			name:      "claimed and proven by another rule: the claiming rule is silent",
			results:   []measure.Result{result("shell", "T1059.004", measure.Detected, "other")},
			rules:     []coverage.Rule{rule("r1", "T1059.004")},
			want:      map[string]coverage.Class{"T1059.004": coverage.ClaimedProven},
			wantRules: map[string][]string{"T1059.004": {"r1"}}, wantSilent: map[string][]string{"r1": {"T1059.004"}},
		},
		{
			name:      "claimed, tested, missed: the claiming rules are named",
			results:   []measure.Result{result("cron", "T1053.003", measure.Missed)},
			rules:     []coverage.Rule{rule("r1", "T1053.003"), rule("r2", "T1053.003", "T1070.002")},
			want:      map[string]coverage.Class{"T1053.003": coverage.ClaimedNotProven, "T1070.002": coverage.ClaimedUntested},
			wantRules: map[string][]string{"T1053.003": {"r1", "r2"}, "T1070.002": {"r2"}}, wantSilent: map[string][]string{"r1": {"T1053.003"}, "r2": {"T1053.003"}},
		},
		{
			name:    "proven without a claiming rule",
			results: []measure.Result{result("shadow", "T1003.008", measure.Detected, "x")},
			want:    map[string]coverage.Class{"T1003.008": coverage.ProvenUnclaimed},
		},
		{
			name:  "claimed, untested: a catalog test that did not run, errors and skips prove nothing",
			tests: []coverage.Test{{ID: "logs", Technique: "T1070.002"}},
			results: []measure.Result{result("logs", "T1070.002", measure.Error), result("logs", "T1070.002", measure.Skipped),
				result("neg", "T1059.004", measure.Quiet), result("neg2", "T1053.003", measure.Noisy)},
			rules:     []coverage.Rule{rule("r1", "T1070.002")},
			want:      map[string]coverage.Class{"T1070.002": coverage.ClaimedUntested},
			wantRules: map[string][]string{"T1070.002": {"r1"}},
		},
		{
			name:    "missed without a claiming rule",
			results: []measure.Result{result("shadow", "T1003.008", measure.Missed)},
			want:    map[string]coverage.Class{"T1003.008": coverage.MissedUnclaimed},
		},
		{
			name: "nothing claimed, nothing tested",
			want: map[string]coverage.Class{},
		},
		{
			name:      "a rule claiming the parent claims the sub-technique; a test proves only its own technique",
			results:   []measure.Result{result("shell", "T1059.004", measure.Detected, "r1")},
			rules:     []coverage.Rule{rule("r1", "T1059")},
			want:      map[string]coverage.Class{"T1059.004": coverage.ClaimedProven, "T1059": coverage.ClaimedUntested},
			wantRules: map[string][]string{"T1059.004": {"r1!"}, "T1059": {"r1"}},
		},
		{
			name:      "a rule claiming a sub-technique claims neither the parent nor a sibling",
			results:   []measure.Result{result("interp", "T1059", measure.Detected, "x"), result("ps", "T1059.001", measure.Missed)},
			rules:     []coverage.Rule{rule("r1", "T1059.004")},
			want:      map[string]coverage.Class{"T1059": coverage.ProvenUnclaimed, "T1059.004": coverage.ClaimedUntested, "T1059.001": coverage.MissedUnclaimed},
			wantRules: map[string][]string{"T1059.004": {"r1"}},
		},
		{
			name:    "disabled rules claim nothing",
			results: []measure.Result{result("cron", "T1053.003", measure.Missed)},
			rules:   []coverage.Rule{{ID: "off", Techniques: []string{"T1053.003"}}},
			want:    map[string]coverage.Class{"T1053.003": coverage.MissedUnclaimed},
		},
		{
			name:      "claims as written: lower case, spaces, matched by rule name",
			results:   []measure.Result{{TestID: "shell", Technique: "T1059.004", SIEM: "s", Status: measure.Detected, Signals: []measure.SignalRef{{Rule: "Shell Rule"}}}},
			rules:     []coverage.Rule{{ID: "uuid-1", Name: "shell rule", Techniques: []string{" t1059.004"}, Enabled: true}},
			want:      map[string]coverage.Class{"T1059.004": coverage.ClaimedProven},
			wantRules: map[string][]string{"T1059.004": {"uuid-1!"}},
		},
		{
			name:    "detected on one target and missed on another is detected",
			results: []measure.Result{result("shell", "T1059.004", measure.Missed), result("shell", "T1059.004", measure.Detected, "r1")},
			rules:   []coverage.Rule{rule("r1", "T1059.004")},
			want:    map[string]coverage.Class{"T1059.004": coverage.ClaimedProven}, wantRules: map[string][]string{"T1059.004": {"r1!"}},
		},
		{
			name:    "claims outside the scope are counted, a tested technique outside it is classified",
			results: []measure.Result{result("ps", "T1059.001", measure.Detected, "r1")},
			rules:   []coverage.Rule{rule("r1", "T1059.001", "T1134", "not-an-id")},
			want:    map[string]coverage.Class{"T1059.001": coverage.ClaimedProven}, wantRules: map[string][]string{"T1059.001": {"r1!"}},
			outside: 1,
		},
		{
			name:    "claims unknown",
			results: []measure.Result{result("shell", "T1059.004", measure.Detected, "r1"), result("cron", "T1053.003", measure.Missed)},
			unknown: true,
			want:    map[string]coverage.Class{"T1059.004": coverage.Proven, "T1053.003": coverage.Missed},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := []coverage.Claims{{SIEM: "s", Known: true, Rules: tc.rules}}
			if tc.unknown {
				claims = []coverage.Claims{{SIEM: "s", Note: "claims unknown (plugin has no rules call)"}}
			}
			rep := coverage.Compute(coverage.Input{RunID: "run1", Tests: tc.tests, Results: tc.results, Claims: claims, Table: table(t)})
			if len(rep.SIEMs) != 1 || rep.SIEMs[0].Name != "s" {
				t.Fatalf("SIEMs = %+v", rep.SIEMs)
			}
			s := rep.SIEMs[0]
			got := map[string]coverage.Class{}
			gotRules := map[string][]string{}
			for _, tech := range s.Techniques {
				if tech.Class != coverage.NoTest {
					got[tech.ID] = tech.Class
				}
				for _, r := range tech.Rules {
					id := r.ID
					if r.Fired {
						id += "!"
					}
					gotRules[tech.ID] = append(gotRules[tech.ID], id)
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("classes = %v\nwant %v", got, tc.want)
			}
			if !maps.EqualFunc(gotRules, nonNil(tc.wantRules), slices.Equal) {
				t.Errorf("claiming rules = %v\nwant %v", gotRules, tc.wantRules)
			}
			gotSilent := map[string][]string{}
			for _, r := range s.SilentRules {
				gotSilent[r.ID] = r.Claims
			}
			if !maps.EqualFunc(gotSilent, nonNil(tc.wantSilent), slices.Equal) {
				t.Errorf("silent rules = %v\nwant %v", gotSilent, tc.wantSilent)
			}
			if s.ClaimedOutOfScope != tc.outside {
				t.Errorf("claimed out of scope = %d, want %d", s.ClaimedOutOfScope, tc.outside)
			}
			total := 0
			for _, n := range s.Counts {
				total += n
			}
			if total != rep.Techniques || total != len(s.Techniques) {
				t.Errorf("counts %v sum to %d; %d techniques in scope, %d rows", s.Counts, total, rep.Techniques, len(s.Techniques))
			}
		})
	}
}

func nonNil(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// TestScopeAndTactics: the scope is the platforms' techniques (current
// ones) plus the tested ones; a technique counts under each of its
// tactics, in kill-chain order.
func TestScopeAndTactics(t *testing.T) {
	rep := coverage.Compute(coverage.Input{
		Tests:   []coverage.Test{{ID: "cron", Technique: "T1053.003"}, {ID: "ps", Technique: "T1059.001"}},
		Results: []measure.Result{result("cron", "T1053.003", measure.Detected, "r1")},
		Claims:  []coverage.Claims{{SIEM: "s", Known: true, Rules: []coverage.Rule{rule("r1", "T1053.003"), rule("r2", "T1003.008")}}},
		Table:   table(t),
	})
	var ids []string
	for _, tech := range rep.SIEMs[0].Techniques {
		ids = append(ids, tech.ID)
	}
	want := []string{"T1003.008", "T1053.003", "T1059", "T1059.001", "T1059.004", "T1070.002", "T1610"}
	if !slices.Equal(ids, want) || rep.Techniques != len(want) {
		t.Fatalf("techniques in scope %v (%d), want %v", ids, rep.Techniques, want)
	}
	if !slices.Equal(rep.Platforms, coverage.DefaultPlatforms) {
		t.Errorf("platforms = %v", rep.Platforms)
	}
	var got []string
	for _, tc := range rep.SIEMs[0].Tactics {
		var parts []string
		for _, c := range coverage.Classes {
			if n := tc.Counts[c]; n > 0 {
				parts = append(parts, string(c)+"="+itoa(n))
			}
		}
		got = append(got, tc.Tactic+": "+strings.Join(parts, " "))
	}
	wantTactics := []string{
		"execution: claimed_proven=1 no_test=4",
		"persistence: claimed_proven=1",
		"defense-evasion: no_test=2",
		"credential-access: claimed_untested=1",
	}
	if !slices.Equal(got, wantTactics) {
		t.Errorf("tactics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTactics, "\n"))
	}
	if tech := rep.SIEMs[0].Techniques[3]; tech.ID != "T1059.001" || !slices.Equal(tech.Tests, []string{"ps"}) || tech.Class != coverage.NoTest {
		t.Errorf("T1059.001 = %+v: want its catalog test listed, no_test (it did not run)", tech)
	}
}

// TestSIEMOrder: the SIEMs of the results in order, then SIEMs with claims
// but no results; a SIEM of the results without claims has unknown claims.
func TestSIEMOrder(t *testing.T) {
	rs := []measure.Result{result("a", "T1059.004", measure.Detected), result("a", "T1059.004", measure.Detected)}
	rs[0].SIEM, rs[1].SIEM = "zeta", "alpha"
	rep := coverage.Compute(coverage.Input{Results: rs, Table: table(t), Claims: []coverage.Claims{
		{SIEM: "omega", Known: true}, {SIEM: "alpha", Known: true}, {SIEM: "beta", Known: true},
	}})
	var names []string
	for _, s := range rep.SIEMs {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"zeta", "alpha", "beta", "omega"}) {
		t.Fatalf("SIEMs = %v", names)
	}
	if rep.SIEMs[0].ClaimsKnown || rep.SIEMs[0].Counts[coverage.Proven] != 1 || !rep.SIEMs[1].ClaimsKnown || rep.SIEMs[1].Counts[coverage.ProvenUnclaimed] != 1 {
		t.Errorf("zeta %+v\nalpha %+v", rep.SIEMs[0].Counts, rep.SIEMs[1].Counts)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRulePlatforms: a rule claims techniques only within its platforms
// (a CloudTrail rule tagged T1053.003 is no claim on Linux hosts); a rule
// without platforms claims everywhere.
func TestRulePlatforms(t *testing.T) {
	iaas := rule("ct", "T1053.003")
	iaas.Platforms = []string{"IaaS"}
	linux := rule("lx", "T1003.008")
	linux.Platforms = []string{"linux"} // compared case-insensitively
	rep := coverage.Compute(coverage.Input{
		Tests:  []coverage.Test{{ID: "cron", Technique: "T1053.003"}},
		Claims: []coverage.Claims{{SIEM: "s", Known: true, Rules: []coverage.Rule{iaas, linux, rule("any", "T1610")}}},
		Table:  table(t),
	})
	s := rep.SIEMs[0]
	claimed := map[string][]string{}
	for _, tech := range s.Techniques {
		for _, r := range tech.Rules {
			claimed[tech.ID] = append(claimed[tech.ID], r.ID)
		}
	}
	want := map[string][]string{"T1003.008": {"lx"}, "T1610": {"any"}}
	if !reflect.DeepEqual(claimed, want) {
		t.Errorf("claims %v, want %v (the IaaS rule claims nothing on Linux and Containers)", claimed, want)
	}
	if s.EnabledRules != 3 {
		t.Errorf("enabled rules %d, want 3: a rule outside the scope still counts as enabled", s.EnabledRules)
	}
}
