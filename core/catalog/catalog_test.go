package catalog

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/attack"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestEmbeddedCatalogLoads(t *testing.T) {
	c, err := Load(Embedded())
	if err != nil {
		t.Fatalf("embedded catalog: %v", err)
	}
	if len(c.Tests) == 0 {
		t.Fatal("embedded catalog is empty")
	}
	for _, test := range c.Tests {
		if !strings.HasPrefix(test.Source.File, filepath.Join("rules", "techniques")+string(filepath.Separator)) {
			t.Errorf("%s: source %s is not under rules/techniques", test.ID, test.Source)
		}
		if len(test.Expect) == 0 || test.Inject.Plugin == "" || len(test.Tactics) == 0 {
			t.Errorf("%s: incomplete test %+v", test.ID, test)
		}
		if got, ok := c.Get(test.ID); !ok || got != test {
			t.Errorf("Get(%q) = %v, %v", test.ID, got, ok)
		}
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load(Dir("testdata/valid"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c.Get("full-featured")
	if !ok {
		t.Fatal("full-featured not loaded")
	}
	tech, err := attack.Lookup("T1053.003")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", "valid", "linux", "full-featured.toml")
	want := &Test{
		ID:                "full-featured",
		Technique:         tech,
		Tactics:           []string{"persistence", "privilege-escalation"}, // kill-chain order
		Name:              "Every key",
		Description:       "Uses every key of the format.",
		Platforms:         []string{"linux", "macos"},
		Safety:            SafetyReversible,
		Timeout:           45 * time.Second,
		ElevationRequired: true,
		AtomicGUID:        "435057fb-74b1-410e-9403-d81baf194f75",
		SerialGroup:       "cron/crontab",
		References:        []string{"https://attack.mitre.org/techniques/T1053/003/"},
		Tags:              []string{"cron", "sample"},
		Args:              map[string]string{"schedule": "* * * * *", "file": "{{tmpdir}}/{{marker}}.sh"},
		Prerequisites: []Prerequisite{
			{Description: "crontab is installed", Check: "command -v crontab", Get: "apt-get install -y cron"},
			{Description: "we are root", Check: "test $(id -u) -eq 0"},
		},
		Inject: Step{Plugin: "exec", Params: map[string]any{
			"command": "echo {{args.schedule}} {{args.file}} | crontab -",
			"shell":   "/bin/sh",
			"retries": int64(2),
			"env":     map[string]any{"MARK": "{{marker}}"},
		}},
		Cleanup: &Step{Plugin: "exec", Params: map[string]any{"command": "crontab -r"}},
		Expect: []Expectation{
			{
				Technique: "T1053.003", Rule: "Cron Job Added", RuleID: "abc-123", Within: 2 * time.Minute,
				SIEMs: []string{"local", "splunk"}, Query: map[string]string{"splunk": "index=main {{marker}}"},
				Source: Position{File: file, Line: 43},
			},
			{Technique: "T1053", Absent: true, Source: Position{File: file, Line: 51}},
		},
		Source: Position{File: file, Line: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded:\n%#v\nwant:\n%#v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(Dir("testdata/valid"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get("linux-wipe-destructive")
	if got.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %s, want %s", got.Timeout, DefaultTimeout)
	}
	if !reflect.DeepEqual(got.Tactics, []string{"impact"}) {
		t.Errorf("Tactics = %q, want the technique's", got.Tactics)
	}
	wantExpect := []Expectation{{Technique: "T1485", Source: got.Source}}
	if !reflect.DeepEqual(got.Expect, wantExpect) {
		t.Errorf("Expect = %+v, want %+v", got.Expect, wantExpect)
	}
	if got.Cleanup != nil || got.Args == nil || got.Inject.Params == nil {
		t.Errorf("Cleanup = %v, Args = %v, Params = %v", got.Cleanup, got.Args, got.Inject.Params)
	}
	ids := make([]string, len(c.Tests))
	for i, test := range c.Tests {
		ids[i] = test.ID
	}
	wantIDs := []string{"full-featured", "windows-clear-eventlog", "linux-log-destructive", "linux-delete-safe", "linux-wipe-destructive"}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("order = %q, want by technique then id %q", ids, wantIDs)
	}
}

// TestInvalidGolden loads each file of testdata/invalid on its own (and each
// directory as one source per sub-directory) and compares the error with the
// .golden file next to it. Refresh with: go test ./core/catalog -update
func TestInvalidGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	linePrefix := regexp.MustCompile(`^testdata/invalid/\S+\.toml:\d+: `)
	for _, e := range entries {
		name := e.Name()
		var sources []Source
		switch {
		case e.IsDir():
			subs, err := os.ReadDir(filepath.Join("testdata/invalid", name))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subs {
				sources = append(sources, Dir(filepath.Join("testdata/invalid", name, s.Name())))
			}
		case strings.HasSuffix(name, ".toml"):
			sources = []Source{{Label: "testdata/invalid", FS: os.DirFS("testdata/invalid"), Root: name}}
		default:
			continue
		}
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			c, err := Load(sources...)
			if err == nil {
				t.Fatalf("loaded without error: %d tests", len(c.Tests))
			}
			got := err.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !linePrefix.MatchString(line) {
					t.Errorf("error line without file:line: %q", line)
				}
			}
			golden := filepath.Join("testdata/invalid", strings.TrimSuffix(name, ".toml")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./core/catalog -update)", err)
			}
			if got != string(want) {
				t.Errorf("error:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

func TestLoadCollectsAllFiles(t *testing.T) {
	_, err := Load(Dir("testdata/invalid"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, f := range []string{"bad-safety.toml:6:", "syntax-error.toml:5:", "unknown-key.toml:7:", "two/dup-test.toml:2:"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not mention %s:\n%s", f, err)
		}
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := Load(Dir("testdata/no-such-dir"))
	if err == nil || err.Error() != "loading catalog testdata/no-such-dir: no such file or directory" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestSelect(t *testing.T) {
	c, err := Load(Dir("testdata/valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		filter      Filter
		want, skip  []string
		wantErr     string
		destructive bool
	}{
		{
			name: "everything skips destructive",
			want: []string{"full-featured", "windows-clear-eventlog", "linux-delete-safe"},
			skip: []string{"linux-log-destructive", "linux-wipe-destructive"},
		},
		{
			name:   "AllowDestructive does not open broad selections",
			filter: Filter{AllowDestructive: true, Platforms: []string{"linux"}},
			want:   []string{"full-featured", "linux-delete-safe"},
			skip:   []string{"linux-log-destructive", "linux-wipe-destructive"},
		},
		{
			name:   "technique prefix matches sub-techniques",
			filter: Filter{Techniques: []string{"T1070"}},
			want:   []string{"windows-clear-eventlog", "linux-delete-safe"},
			skip:   []string{"linux-log-destructive"},
		},
		{
			name:   "exact sub-technique",
			filter: Filter{Techniques: []string{"t1070.004"}},
			want:   []string{"linux-delete-safe"},
		},
		{
			name:   "sub-technique does not match its parent",
			filter: Filter{Techniques: []string{"T1053.005"}},
		},
		{
			name:   "tactic by name and platform",
			filter: Filter{Tactics: []string{"Defense Evasion"}, Platforms: []string{"windows", "macos"}},
			want:   []string{"windows-clear-eventlog"},
		},
		{
			name:   "narrowed tactics",
			filter: Filter{Tactics: []string{"execution"}},
		},
		{
			name:   "tactic by id",
			filter: Filter{Tactics: []string{"TA0003"}},
			want:   []string{"full-featured"},
		},
		{
			name:   "tag",
			filter: Filter{Tags: []string{"nope", "cron"}},
			want:   []string{"full-featured"},
		},
		{
			name:   "excluded tag",
			filter: Filter{ExcludeTags: []string{"sample"}, Platforms: []string{"linux"}},
			want:   []string{"linux-delete-safe"},
			skip:   []string{"linux-log-destructive", "linux-wipe-destructive"},
		},
		{
			name:   "destructive by id without permission",
			filter: Filter{IDs: []string{"linux-delete-safe", "linux-wipe-destructive", "linux-log-destructive"}},
			wantErr: "selecting tests linux-log-destructive, linux-wipe-destructive: " +
				"destructive tests need AllowDestructive (--allow-destructive)",
			destructive: true,
		},
		{
			name:   "destructive by id with permission",
			filter: Filter{IDs: []string{"linux-wipe-destructive", "linux-delete-safe"}, AllowDestructive: true},
			want:   []string{"linux-delete-safe", "linux-wipe-destructive"},
		},
		{
			name:   "ids and other filters combine",
			filter: Filter{IDs: []string{"linux-delete-safe", "windows-clear-eventlog"}, Platforms: []string{"windows"}},
			want:   []string{"windows-clear-eventlog"},
		},
		{
			name:   "unknown filters",
			filter: Filter{IDs: []string{"nope"}, Techniques: []string{"T1009", "T99"}, Tactics: []string{"evasion"}, Platforms: []string{"solaris"}},
			wantErr: "selecting tests: unknown test id \"nope\"\n" +
				"technique filter: T1009 \"Binary Padding\": revoked ATT&CK technique, use T1027.001 instead\n" +
				"technique filter: \"T99\": not an ATT&CK technique ID (want T1234 or T1234.567)\n" +
				"tactic filter: unknown ATT&CK tactic \"evasion\"\n" +
				"platform filter: unknown platform \"solaris\" (known: linux, macos, windows, esxi, network-devices, containers, kubernetes, iaas, iaas:aws, iaas:azure, iaas:gcp, saas, office-suite, identity-provider, and aws, azure, gcp for iaas:...)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sel, skipped, err := c.Select(tc.filter)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
				}
				if errors.Is(err, ErrDestructive) != tc.destructive {
					t.Errorf("errors.Is(err, ErrDestructive) = %v", !tc.destructive)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(sel); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("selected %q, want %q", got, tc.want)
			}
			if got := ids(skipped); !reflect.DeepEqual(got, tc.skip) {
				t.Errorf("skipped %q, want %q", got, tc.skip)
			}
		})
	}
}

func ids(tests []*Test) []string {
	var out []string
	for _, t := range tests {
		out = append(out, t.ID)
	}
	return out
}

func TestArgOverrides(t *testing.T) {
	c, err := Load(Dir("testdata/valid"))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := c.Get("full-featured")
	safe, _ := c.Get("linux-delete-safe")
	o, err := ParseArgOverrides([]string{"schedule=@hourly", "full-featured.schedule=@daily", "name=a=b", "linux-delete-safe.name="})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Resolve(full), map[string]string{"schedule": "@daily", "file": "{{tmpdir}}/{{marker}}.sh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve(full) = %v, want %v", got, want)
	}
	if got, want := o.Resolve(safe), map[string]string{"name": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve(safe) = %v, want %v", got, want)
	}
	if full.Args["schedule"] != "* * * * *" {
		t.Error("Resolve modified the test")
	}
	if err := o.Check([]*Test{full, safe}); err != nil {
		t.Errorf("Check = %v", err)
	}
	wantCheck := "--arg name: no selected test has an arg \"name\"\n" +
		"--arg linux-delete-safe.name: test \"linux-delete-safe\" is not selected"
	if err := o.Check([]*Test{full}); err == nil || err.Error() != wantCheck {
		t.Errorf("Check = %v\nwant %s", err, wantCheck)
	}
	o2, _ := ParseArgOverrides([]string{"full-featured.nope=1", "windows-clear-eventlog.x=1"})
	win, _ := c.Get("windows-clear-eventlog")
	wantCheck = "--arg full-featured.nope: test \"full-featured\" has no arg \"nope\" (its args: file, schedule)\n" +
		"--arg windows-clear-eventlog.x: test \"windows-clear-eventlog\" declares no args"
	if err := o2.Check([]*Test{full, win}); err == nil || err.Error() != wantCheck {
		t.Errorf("Check = %v\nwant %s", err, wantCheck)
	}

	_, err = ParseArgOverrides([]string{"novalue", "Bad.name=1", "xyz.Bad=1", "a=1", "a=2"})
	wantParse := "--arg \"novalue\": want NAME=VALUE or TEST_ID.NAME=VALUE\n" +
		"--arg \"Bad.name=1\": \"Bad\" is not a valid test id\n" +
		"--arg \"xyz.Bad=1\": \"Bad\" is not a valid arg name\n" +
		"--arg a given twice"
	if err == nil || err.Error() != wantParse {
		t.Errorf("ParseArgOverrides = %v\nwant %s", err, wantParse)
	}
}

func TestPositionString(t *testing.T) {
	if got := (Position{File: "rules/x.toml", Line: 12}).String(); got != "rules/x.toml:12" {
		t.Errorf("got %q", got)
	}
	if got := (Position{File: "rules/x.toml"}).String(); got != "rules/x.toml" {
		t.Errorf("got %q", got)
	}
}

// TestReadmeExample loads the complete example of rules/README.md, so that
// the documentation of the format cannot drift from the code.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../../rules/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no ```toml block in rules/README.md")
	}
	id := regexp.MustCompile(`(?m)^id = "([^"]+)"`).FindSubmatch(m[1])
	if id == nil {
		t.Fatal("the example has no id")
	}
	test, errs := parseTest("rules/README.md", string(id[1])+".toml", m[1])
	if errs != nil {
		t.Fatalf("README example: %v", errors.Join(errs...))
	}
	if test.Cleanup == nil || len(test.Prerequisites) == 0 || len(test.Expect) < 2 || len(test.Args) == 0 || test.SerialGroup == "" {
		t.Errorf("the README example should show every part of the format: %+v", test)
	}
}
