package detect

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/core/telemetry"
)

var update = flag.Bool("update", false, "rewrite testdata/sigmahq_load.golden")

const loadGolden = "testdata/sigmahq_load.golden"

// loadReport renders a Ruleset as the golden text: counts per outcome, then
// one line per file that did not load.
func loadReport(rs *Ruleset) string {
	var b strings.Builder
	sum := rs.Summary()
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("# SigmaHQ Linux, Kubernetes audit and AWS CloudTrail rules (rules/sigma/sigmahq): outcome counts\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d\n", k, sum[k])
	}
	b.WriteString("\n# files not loaded: path: reason: detail\n")
	for _, p := range rs.Problems {
		b.WriteString(p.Error() + "\n")
	}
	return b.String()
}

// TestLoadSigmaHQ loads the whole shipped SigmaHQ Linux set and compares the
// outcome with the golden list, so that any change in what loads shows up.
func TestLoadSigmaHQ(t *testing.T) {
	fsys := os.DirFS(sigmaHQDir)
	rs, err := LoadWithOptions(fsys, Options{LinkBase: SigmaHQLinkBase})
	if err != nil {
		t.Fatal(err)
	}

	// Exact numbers per outcome.
	want := map[string]int{
		"loaded":                210, // 140 Linux, 14 Kubernetes audit, 56 AWS CloudTrail
		string(ReasonLogsource): 27,
		string(ReasonKeywords):  3,
		string(ReasonValue):     2, // Kubernetes audit: field: '*' for "exists"
		string(ReasonModifier):  1, // CloudTrail: fieldref
	}
	if got := rs.Summary(); !mapsEqual(got, want) {
		t.Errorf("summary = %v, want %v", got, want)
	}

	// Every .yml file is accounted for exactly once.
	var files []string
	if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range rs.Rules {
		seen = append(seen, r.Path)
	}
	for _, p := range rs.Problems {
		seen = append(seen, p.Path)
	}
	sort.Strings(seen)
	sort.Strings(files)
	if !slices.Equal(seen, files) {
		t.Errorf("loaded+problems cover %d paths, directory has %d .yml files", len(seen), len(files))
	}

	// No rule of a supported logsource is skipped for its logsource, and
	// every problem has a specific detail.
	supported := map[telemetry.Logsource]bool{}
	for _, s := range SupportedLogsources {
		supported[s] = true
	}
	for _, p := range rs.Problems {
		if p.Detail == "" {
			t.Errorf("%s: problem without detail", p.Path)
		}
		ls := fileLogsource(t, fsys, p.Path)
		if supported[ls] && p.Reason == ReasonLogsource {
			t.Errorf("%s: supported logsource %s skipped as unsupported", p.Path, ls)
		}
		if !supported[ls] && p.Reason != ReasonLogsource {
			t.Errorf("%s: logsource %s should be reported as unsupported, got %s", p.Path, ls, p.Reason)
		}
		if p.Reason == ReasonLogsource && !strings.Contains(p.Detail, ls.String()+" is not produced by the local sensor") {
			t.Errorf("%s: detail %q does not name the logsource %s", p.Path, p.Detail, ls)
		}
	}

	// DRL 1.1 attribution: every rule keeps its author and a link.
	for _, r := range rs.Rules {
		if r.Author == "" || !strings.HasPrefix(r.Link, "https://github.com/SigmaHQ/sigma/blob/"+SigmaHQCommit+"/rules") {
			t.Errorf("%s: author %q link %q", r.Path, r.Author, r.Link)
		}
		if !supported[r.Logsource] {
			t.Errorf("%s: loaded with unsupported logsource %s", r.Path, r.Logsource)
		}
	}

	got := loadReport(rs)
	if *update {
		if err := os.WriteFile(loadGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantText, err := os.ReadFile(loadGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(wantText) {
		t.Errorf("load report differs from %s (run with -update after checking):\n%s", loadGolden, diffLines(string(wantText), got))
	}
}

// fileLogsource reads a rule file's logsource independently of the loader.
func fileLogsource(t *testing.T, fsys fs.FS, path string) telemetry.Logsource {
	t.Helper()
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Logsource telemetry.Logsource `yaml:"logsource"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return NormalizeLogsource(doc.Logsource)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// diffLines lists the lines only in want (-) or only in got (+).
func diffLines(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

const okRule = `title: Crontab Listing
id: 11111111-2222-3333-4444-555555555555
status: test
author: Jane Doe
level: low
tags:
    - attack.discovery
    - attack.T1007
    - attack.t1053.003
    - attack.privilege_escalation
    - attack.g0020
    - attack.s0508
    - detection.threat-hunting
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/crontab'
        CommandLine|contains: ' -l'
    condition: selection
`

// rule builds a rule file from okRule with the detection and logsource
// replaced.
func rule(logsource, detection string) string {
	head := okRule[:strings.Index(okRule, "logsource:")]
	return head + logsource + detection
}

const plc = "logsource:\n    product: linux\n    category: process_creation\n"

func TestParseRuleReasons(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		reason Reason // "" = loads
		detail string // substring of Problem.Detail
	}{
		{"valid rule", okRule, "", ""},
		{"yaml syntax error", "title: x\ndetection: [\n", ReasonParse, "yaml:"},
		{"tab indentation", "title: x\n\tid: y\n", ReasonParse, "yaml:"},
		{"empty file", "", ReasonNotRule, "empty file"},
		{"not a rule", "foo: bar\n", ReasonNotRule, "no detection section"},
		{"top-level list", "- a\n- b\n", ReasonNotRule, "not a mapping"},
		{"multi-document", okRule + "---\n" + okRule, ReasonNotRule, "multi-document"},
		{"correlation", "title: c\nid: x\ncorrelation:\n    type: event_count\n    rules: [a]\n", ReasonCorrelation, "correlation rules"},
		{"sigma structure error", rule(plc, "detection:\n    selection: 'scalar'\n    condition: selection\n"), ReasonParse, "sigma:"},
		{"bad condition", rule(plc, "detection:\n    selection:\n        a: b\n    condition: selection and (\n"), ReasonParse, "sigma:"},
		{"no condition", rule(plc, "detection:\n    selection:\n        a: b\n"), ReasonParse, "no condition"},
		{"missing id", strings.Replace(okRule, "id: 11111111-2222-3333-4444-555555555555\n", "", 1), ReasonMissingMeta, "no id"},
		{"missing title", strings.Replace(okRule, "title: Crontab Listing\n", "", 1), ReasonMissingMeta, "no title"},
		{"deprecated", strings.Replace(okRule, "status: test", "status: deprecated", 1), ReasonStatus, "status: deprecated"},
		{"unsupported status", strings.Replace(okRule, "status: test", "status: unsupported", 1), ReasonStatus, "status: unsupported"},
		{"aggregation", rule(plc, "detection:\n    selection:\n        a: b\n    condition: selection | count() by Image > 5\n"), ReasonCorrelation, "aggregation condition"},
		{"timeframe", rule(plc, "detection:\n    selection:\n        a: b\n    timeframe: 5m\n    condition: selection\n"), ReasonCorrelation, "timeframe"},
		{"network_connection", rule("logsource:\n    product: linux\n    category: network_connection\n", "detection:\n    selection:\n        a: b\n    condition: selection\n"),
			ReasonLogsource, "linux/network_connection is not produced by the local sensor"},
		{"windows", rule("logsource:\n    product: windows\n    category: process_creation\n", "detection:\n    selection:\n        a: b\n    condition: selection\n"),
			ReasonLogsource, "windows/process_creation is not produced"},
		{"syslog", rule("logsource:\n    product: linux\n    service: syslog\n", "detection:\n    selection:\n        a: b\n    condition: selection\n"),
			ReasonLogsource, "linux/syslog is not produced"},
		{"keyword list", rule(plc, "detection:\n    keywords:\n        - foo\n    condition: keywords\n"), ReasonKeywords, `"keywords" is a keyword list`},
		{"keyword all map", rule(plc, "detection:\n    keywords:\n        '|all':\n            - a\n            - b\n    condition: keywords\n"), ReasonKeywords, "field-less"},
		{"windash", rule(plc, "detection:\n    selection:\n        CommandLine|windash|contains: '-enc'\n    condition: selection\n"), ReasonModifier, "modifier windash"},
		{"base64offset", rule(plc, "detection:\n    selection:\n        CommandLine|base64offset|contains: 'curl'\n    condition: selection\n"), ReasonModifier, "modifier base64offset"},
		{"all not last", rule(plc, "detection:\n    selection:\n        CommandLine|all|contains:\n            - a\n    condition: selection\n"), ReasonModifier, "all must come last"},
		{"comparator not last", rule(plc, "detection:\n    selection:\n        CommandLine|contains|base64: a\n    condition: selection\n"), ReasonEvaluator, "probe"},
		{"null value with a modifier", rule(plc, "detection:\n    selection:\n        CommandLine|contains: null\n    condition: selection\n"), ReasonValue, "null value with modifiers"},
		{"placeholder", rule(plc, "detection:\n    selection:\n        User: '%admins%'\n    condition: selection\n"), ReasonValue, "placeholder"},
		{"nested map value", rule(plc, "detection:\n    selection:\n        User:\n            a: b\n    condition: selection\n"), ReasonValue, "non-scalar"},
		{"1 of identifier", rule(plc, "detection:\n    selection:\n        a: b\n    condition: 1 of selection\n"), ReasonEvaluator, "1 of selection"},
		{"undefined search", rule(plc, "detection:\n    selection:\n        a: b\n    condition: selection and not filter\n"), ReasonCondition, `search "filter" is not defined (the detection defines: selection)`},
		{"selector matching nothing", rule(plc, "detection:\n    selection:\n        a: b\n    condition: 1 of sel_*\n"), ReasonCondition, `selector "1 of sel_*" matches no search`},
		{"all-of selector matching nothing", rule(plc, "detection:\n    selection:\n        a: b\n    condition: selection and not all of filter*\n"), ReasonCondition, `selector "all of filter*" matches no search`},
		{"invalid regex", rule(plc, "detection:\n    selection:\n        CommandLine|re: '(?<=curl) -o'\n    condition: selection\n"), ReasonRegex, `CommandLine|re in search "selection": error parsing regexp`},
		{"unbalanced regex in a list", rule(plc, "detection:\n    selection:\n        - Image|endswith: /sh\n        - CommandLine|re:\n            - 'ok.*'\n            - 'bad[('\n    condition: selection\n"), ReasonRegex, "missing closing ]"},
	}
	// The text of the line each problem must be reported on.
	lineWith := map[string]string{
		"yaml syntax error": "detection: [", "undefined search": "condition:", "selector matching nothing": "condition:",
		"invalid regex": "CommandLine|re:", "unbalanced regex in a list": "CommandLine|re:", "windash": "CommandLine|windash",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p := ParseRule("x.yml", []byte(tt.file), "https://example/x.yml")
			if (r == nil) == (p == nil) {
				t.Fatalf("want exactly one of rule/problem, got %v / %v", r, p)
			}
			if tt.reason == "" {
				if p != nil {
					t.Fatalf("unexpected problem: %v", p)
				}
				return
			}
			if p == nil {
				t.Fatalf("loaded, want %s", tt.reason)
			}
			if p.Reason != tt.reason || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got %s: %s; want %s containing %q", p.Reason, p.Detail, tt.reason, tt.detail)
			}
			if p.Path != "x.yml" {
				t.Errorf("path %q", p.Path)
			}
			if text, ok := lineWith[tt.name]; ok {
				if want := lineOf(t, tt.file, text); p.Line != want {
					t.Errorf("line %d, want %d (%s)", p.Line, want, p.Error())
				}
			}
		})
	}
}

// lineOf returns the 1-based line of text that contains s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in %q", s, text)
	return 0
}

func TestParseRuleMetadata(t *testing.T) {
	r, p := ParseRule("rules/x.yml", []byte(okRule), "https://example/rules/x.yml")
	if p != nil {
		t.Fatal(p)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"title", r.Title, "Crontab Listing"},
		{"id", r.ID, "11111111-2222-3333-4444-555555555555"},
		{"level", r.Level, "low"},
		{"status", r.Status, "test"},
		{"author", r.Author, "Jane Doe"},
		{"logsource", r.Logsource, telemetry.ProcessCreation},
		{"techniques", r.Techniques, []string{"T1007", "T1053.003"}},
		{"tactics", r.Tactics, []string{"discovery", "privilege-escalation"}},
		{"tags", len(r.Tags), 7},
		{"path", r.Path, "rules/x.yml"},
		{"link", r.Link, "https://example/rules/x.yml"},
		{"string", r.String(), "Crontab Listing (11111111-2222-3333-4444-555555555555)"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !r.Matches(&telemetry.Event{Source: telemetry.ProcessCreation, Fields: map[string]any{"Image": "/usr/bin/crontab", "CommandLine": "crontab -l"}}) {
		t.Error("rule does not match its own example")
	}
	if r.Matches(&telemetry.Event{Source: telemetry.FileEvent, Fields: map[string]any{"Image": "/usr/bin/crontab", "CommandLine": "crontab -l"}}) {
		t.Error("rule matches an event of another logsource")
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"a/ok.yml":         {Data: []byte(okRule)},
		"a/dup.yaml":       {Data: []byte(strings.Replace(okRule, "Crontab Listing", "Copy", 1))},
		"a/bad.yml":        {Data: []byte("title: [\n")},
		"a/notes.txt":      {Data: []byte("not a rule")},
		"b/sub/other.yml":  {Data: []byte(strings.Replace(okRule, "11111111", "99999999", 1))},
		"c/ignored.yml":    {Data: []byte(okRule)},
		"a/UPPER.YML":      {Data: []byte(strings.Replace(okRule, "11111111", "88888888", 1))},
		"a/deprecated.yml": {Data: []byte(strings.Replace(strings.Replace(okRule, "11111111", "77777777", 1), "status: test", "status: deprecated", 1))},
	}
	rs, err := Load(fsys, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, r := range rs.Rules {
		loaded = append(loaded, r.Path)
	}
	if want := []string{"a/UPPER.YML", "a/dup.yaml", "b/sub/other.yml"}; !slices.Equal(loaded, want) {
		t.Errorf("loaded %v, want %v", loaded, want)
	}
	var probs []string
	for _, p := range rs.Problems {
		probs = append(probs, p.Path+" "+string(p.Reason))
	}
	want := []string{"a/bad.yml parse error", "a/deprecated.yml skipped status", "a/ok.yml duplicate id"}
	if !slices.Equal(probs, want) {
		t.Errorf("problems %v, want %v", probs, want)
	}
	if _, err := Load(fsys, "missing"); err == nil || !strings.Contains(err.Error(), "detect: load missing") {
		t.Errorf("missing root: err = %v", err)
	}
}
