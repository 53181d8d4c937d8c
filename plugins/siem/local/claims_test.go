package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// taggedRule is an extra-directory Sigma rule with technique tags in both
// cases, a duplicate, tactic tags and a group tag.
const taggedRule = `title: vigil test - tagged rule
id: 6c1f0d3a-2b7e-4f10-9a44-0d5e7c9b1a02
status: test
description: Test rule of the claims test.
author: vigil tests
tags:
    - attack.execution
    - attack.t1059.004
    - attack.T1070
    - attack.t1059.004
    - attack.g0032
    - attack.defense_evasion
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        CommandLine|contains: 'vigil-claims-test'
    condition: selection
level: low
`

// brokenRule cannot work: its regular expression is not RE2 syntax.
const brokenRule = `title: vigil test - broken rule
id: 7d2e1f4b-3c8a-4e21-8b55-1e6f8d0c2b13
status: test
tags:
    - attack.t1003.008
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        CommandLine|re: '(?<=cat) /etc/shadow'
    condition: selection
level: high
`

func TestClaimedRules(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tagged.yml"), []byte(taggedRule), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.yml"), []byte(brokenRule), 0o644); err != nil {
		t.Fatal(err)
	}
	s, impl := configured(t, "mode = \"replay\"\nsigma_dirs = [\""+dir+"\"]")
	d, err := s.Describe(context.Background())
	if err != nil || !d.Has(plugin.CapRules) {
		t.Fatalf("Describe = %+v, %v: want capability %q", d, err, plugin.CapRules)
	}
	rules, err := s.ClaimedRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Every loaded rule: vigil's own, SigmaHQ's and the extra directory's;
	// then every file that did not load, refused with why.
	refused := map[string]plugin.Rule{}
	var loadedRules []plugin.Rule
	for _, r := range rules {
		if r.Refused != "" {
			refused[r.Source] = r
			if r.Enabled || len(r.Techniques) > 0 {
				t.Errorf("refused rule %+v: enabled or claiming", r)
			}
			continue
		}
		loadedRules = append(loadedRules, r)
	}
	if loaded := len(impl.Rules()); len(loadedRules) != loaded || loaded < 100 || len(refused) != len(impl.LoadProblems()) {
		t.Fatalf("%d rules listed as loaded, %d loaded; %d refused, %d problems (want the same, and SigmaHQ's among them)",
			len(loadedRules), loaded, len(refused), len(impl.LoadProblems()))
	}
	b := refused[filepath.ToSlash(filepath.Join(dir, "broken.yml"))]
	if !b.Broken || !strings.Contains(b.Refused, "broken.yml:11: invalid regular expression: CommandLine|re in search \"selection\"") {
		t.Errorf("broken rule listed as %+v, want refused, broken, with its line and reason", b)
	}
	if r, ok := refused["rules/sigma/sigmahq/rules/linux/builtin/clamav/lnx_clamav_relevant_message.yml"]; !ok || r.Broken || !strings.Contains(r.Refused, "unsupported logsource") {
		t.Errorf("SigmaHQ rule outside the scope listed as %+v", r)
	}
	byID := map[string]plugin.Rule{}
	var own, hq int
	for _, r := range loadedRules {
		byID[r.ID] = r
		if !r.Enabled || r.Language != "sigma" || r.Name == "" || r.Source == "" {
			t.Errorf("rule %+v: want enabled, sigma, with a name and a source", r)
		}
		for _, tech := range r.Techniques {
			if tech != strings.ToUpper(tech) || !strings.HasPrefix(tech, "T") {
				t.Errorf("rule %s: technique %q not normalised", r.ID, tech)
			}
		}
		switch {
		case strings.HasPrefix(r.Source, "https://github.com/SigmaHQ/sigma/"):
			hq++
		case strings.HasPrefix(r.Source, "sigma/linux/"):
			own++
		}
	}
	if hq == 0 || own == 0 {
		t.Errorf("%d SigmaHQ rules (by link) and %d own rules: want both", hq, own)
	}
	got := byID["6c1f0d3a-2b7e-4f10-9a44-0d5e7c9b1a02"]
	want := plugin.Rule{ID: "6c1f0d3a-2b7e-4f10-9a44-0d5e7c9b1a02", Name: "vigil test - tagged rule",
		Techniques: []string{"T1059.004", "T1070"}, Enabled: true, Source: filepath.Join(dir, "tagged.yml"), Language: "sigma"}
	if got.ID != want.ID || got.Name != want.Name || !slices.Equal(got.Techniques, want.Techniques) || got.Source != want.Source || !slices.Equal(got.Platforms, []string{"Linux"}) {
		t.Errorf("tagged rule = %+v\nwant %+v", got, want)
	}
}

func TestClaimedRulesNotConfigured(t *testing.T) {
	if _, err := plugintest.SIEM(t, new(SIEM)).ClaimedRules(context.Background()); err == nil || err.Error() != ErrNotConfigured.Error() {
		t.Fatalf("error = %v, want %v", err, ErrNotConfigured)
	}
}
