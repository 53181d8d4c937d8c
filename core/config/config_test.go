package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testSecret = "hunter2 s3cr3t"

// setTestEnv sets the variables the testdata files refer to.
func setTestEnv(t *testing.T) {
	t.Helper()
	t.Setenv("VIGIL_TEST_SECRET", testSecret)
	t.Setenv("VIGIL_TEST_EMPTY", "")
	t.Setenv("VIGIL_TEST_HOST", "splunk.example.com")
	t.Setenv("VIGIL_TEST_DIR", "/srv/catalog")
	t.Setenv("HOME", "/home/vigil") // for "~/" in golden files
	t.Setenv("USERPROFILE", "/home/vigil")
	for _, name := range []string{"VIGIL_TEST_UNSET", "VIGIL_TEST_UNSET_TOO", "VIGIL_TEST_MISSING_PASSWORD"} {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
}

// TestInvalidGolden loads each file of testdata/invalid and compares the
// error with the .golden file next to it. Refresh with:
// go test ./core/config -update
func TestInvalidGolden(t *testing.T) {
	setTestEnv(t)
	files, err := filepath.Glob("testdata/invalid/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	linePrefix := regexp.MustCompile(`^testdata/invalid/\S+\.toml:\d+: `)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			c, err := Load(file)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			got := err.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !linePrefix.MatchString(line) {
					t.Errorf("error line without file:line: %q", line)
				}
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "api_key=x"} {
				if strings.Contains(got, secret) {
					t.Errorf("error leaks a secret (%q):\n%s", secret, got)
				}
			}
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./core/config -update)", err)
			}
			if got != string(want) {
				t.Errorf("error:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		Run:     Run{Concurrency: 4, PollInterval: 2 * time.Second, Timeout: 60 * time.Second},
		SIEMs:   []SIEM{{Name: "local", Plugin: "local", PollInterval: 2 * time.Second, Timeout: 60 * time.Second, ClockSlack: DefaultClockSlack}},
		Targets: []Target{{Name: "localhost", Plugin: "exec"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestEmptyFileTakesDefaults(t *testing.T) {
	c, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path, want.src = "empty.toml", c.src
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

func TestLoadFull(t *testing.T) {
	setTestEnv(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load("testdata/valid/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	wantRun := Run{
		Concurrency:  8,
		PollInterval: 500 * time.Millisecond,
		Timeout:      2 * time.Minute,
		PluginDirs:   []string{filepath.Join("testdata", "valid", "plugins"), "/opt/vigil/plugins"},
		CatalogDirs:  []string{filepath.Join(home, "catalog"), "/srv/catalog"},
		History:      filepath.Join("testdata", "valid", "state", "history.db"),
	}
	if !reflect.DeepEqual(c.Run, wantRun) {
		t.Errorf("Run = %+v, want %+v", c.Run, wantRun)
	}
	wantSIEMs := []SIEM{
		{Name: "local", Plugin: "local", PollInterval: 500 * time.Millisecond, Timeout: 2 * time.Minute, ClockSlack: DefaultClockSlack},
		{Name: "splunk", Plugin: "vigil-plugin-siem-acme", PollInterval: 10 * time.Second, Timeout: 5 * time.Minute, ClockSlack: 30 * time.Second, Params: map[string]any{
			"url":         "https://splunk.example.com:8089",
			"token":       "literal-token",
			"index":       "main",
			"verify_tls":  true,
			"max_results": int64(100),
			"literal":     "${NOT_EXPANDED}",
			"auth":        map[string]any{"user": "admin"},
			"indexes":     []map[string]any{{"name": "a"}},
		}},
	}
	if !reflect.DeepEqual(c.SIEMs, wantSIEMs) {
		t.Errorf("SIEMs = %v\nwant %v", fmt.Sprint(c.SIEMs[1].Params), fmt.Sprint(wantSIEMs[1].Params))
	}
	wantTargets := []Target{
		{Name: "localhost", Plugin: "exec"},
		{Name: "web-1", Plugin: "ssh", Params: map[string]any{
			"host": "web-1.example.com", "private_key": testSecret, "users": []any{"root", "splunk.example.com"},
		}, Hosts: []string{"web-1.example.com", "10.0.0.5:2222", "[fd00::7]:22", "db-1.example.com", "db-2.example.com:2200", "fd00::8"},
			Inventory: filepath.Join("testdata", "valid", "fleet.inventory"), Runs: []string{"exec"}},
	}
	if !reflect.DeepEqual(c.Targets, wantTargets) {
		t.Errorf("Targets = %#v, want %#v (hosts %q, want %q)", c.Targets[1], wantTargets[1], c.Targets[1].Hosts, wantTargets[1].Hosts)
	}
	wantPins := []PluginPin{{Name: "vigil-plugin-siem-acme", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}
	if !reflect.DeepEqual(c.Plugins, wantPins) {
		t.Errorf("Plugins = %+v, want %+v", c.Plugins, wantPins)
	}
	if c.Path != "testdata/valid/full.toml" {
		t.Errorf("Path = %q", c.Path)
	}
}

func TestCheckHost(t *testing.T) {
	for _, tc := range []struct{ host, err string }{
		{"web-1", ""},
		{"web-1.example.com:22", ""},
		{"10.0.0.5", ""},
		{"[::1]:2222", ""},
		{"[fd00::7]", ""},
		{"fd00::8", ""},
		{"", "empty host"},
		{"web 1", `invalid host "web 1" (want a host name or address, with an optional :port)`},
		{"-oProxyCommand=x", `invalid host "-oProxyCommand=x" (want a host name or address, with an optional :port)`},
		{"web:0", `invalid host "web:0": port "0" is not a number in 1..65535`},
		{"web:", `invalid host "web:": empty port`},
		{"[10.0.0.1]:22", `invalid host "[10.0.0.1]:22": want an IPv6 address in brackets`},
		{"fd00::zz", `invalid host "fd00::zz": not an IPv6 address (write [addr]:port with a port)`},
	} {
		t.Run(tc.host, func(t *testing.T) {
			err := CheckHost(tc.host)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("CheckHost(%q) = %q, want %q", tc.host, got, tc.err)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	setTestEnv(t)
	c, err := Load("testdata/valid/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(c.Redacted(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "hunter2") || strings.Contains(string(got), "literal-token") ||
		strings.Contains(string(got), "splunk.example.com") {
		t.Fatalf("Redacted leaks a secret:\n%s", got)
	}
	golden := "testdata/valid/full.redacted.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./core/config -update)", err)
	}
	if string(got)+"\n" != string(want) {
		t.Errorf("Redacted:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

func TestParamsTOML(t *testing.T) {
	setTestEnv(t)
	c, err := Load("testdata/valid/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.SIEMs {
		b, err := s.ParamsTOML()
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := toml.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", s.Name, err, b)
		}
		want := s.Params
		if want == nil {
			want = map[string]any{}
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%s: round trip = %v, want %v", s.Name, back, want)
		}
	}
	b, err := c.Targets[1].ParamsTOML()
	if err != nil || !strings.Contains(string(b), fmt.Sprintf("private_key = %q", testSecret)) {
		t.Errorf("target params = %s, %v (the plugin gets the real secret)", b, err)
	}
}

func TestStringsDoNotLeakParams(t *testing.T) {
	s := SIEM{Name: "dd", Plugin: "datadog", Params: map[string]any{"api_key": "hunter2"}}
	tg := Target{Name: "box", Plugin: "ssh", Params: map[string]any{"password": "hunter2"}}
	c := &Config{SIEMs: []SIEM{s}, Targets: []Target{tg}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, c) + fmt.Sprintf(format, s) + fmt.Sprintf(format, tg); strings.Contains(out, "hunter2") {
			t.Errorf("%s leaks params: %s", format, out)
		}
	}
}

// TestExampleLoads loads Example as it is, then with every optional
// section enabled (lines starting with "#" followed by TOML).
func TestExampleLoads(t *testing.T) {
	c, err := Parse("example.toml", []byte(Example))
	if err != nil {
		t.Fatalf("Example: %v", err)
	}
	if len(c.SIEMs) != 1 || len(c.Targets) != 1 {
		t.Errorf("Example enables %d SIEMs and %d targets, want 1 and 1", len(c.SIEMs), len(c.Targets))
	}

	enabled := regexp.MustCompile(`(?m)^#([\[a-z])`).ReplaceAllString(Example, "$1")
	vars := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(enabled, -1)
	if len(vars) == 0 {
		t.Fatal("the optional sections use no ${VAR}")
	}
	for _, m := range vars {
		t.Setenv(m[1], "secret-"+strings.ToLower(m[1]))
	}
	c, err = Parse("example.toml", []byte(enabled))
	if err != nil {
		t.Fatalf("Example with every section enabled: %v\n%s", err, enabled)
	}
	if len(c.SIEMs) != 5 || len(c.Plugins) != 1 {
		t.Errorf("got %d SIEMs and %d pins, want 5 and 1", len(c.SIEMs), len(c.Plugins))
	}
	red, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "secret-") {
		t.Errorf("Redacted leaks an environment value: %s", red)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	c, err := Find("")
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("without vigil.toml: %+v, %v; want Default()", c, err)
	}

	if err := os.WriteFile("vigil.toml", []byte("[run]\nconcurrency = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Find("")
	if err != nil || c.Run.Concurrency != 2 || c.Path != "vigil.toml" {
		t.Errorf("with ./vigil.toml: %+v, %v", c, err)
	}

	other := filepath.Join(dir, "other.toml")
	if err := os.WriteFile(other, []byte("[run]\nconcurrency = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Find(other)
	if err != nil || c.Run.Concurrency != 3 || c.Path != other {
		t.Errorf("--config: %+v, %v", c, err)
	}

	_, err = Find(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "reading config: ") {
		t.Errorf("--config missing.toml: %v", err)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := &Config{
		Run: Run{Concurrency: 1, PollInterval: time.Second, Timeout: time.Second},
		SIEMs: []SIEM{
			{Name: "a", Plugin: "local"},
			{Name: "a", Plugin: ""},
			{Name: "bad name", Plugin: "x", Params: map[string]any{"api_key": "hunter2"}},
		},
		Targets: []Target{{Plugin: "exec"}},
		Plugins: []PluginPin{{Name: "p", SHA256: "xyz"}},
	}
	want := strings.Join([]string{
		`siem[1].name: duplicate SIEM name "a" (first at siem[0])`,
		`siem[1].plugin: missing required key (a built-in SIEM plugin such as "local", or an external plugin)`,
		`siem[2].name: invalid SIEM name "bad name" (want letters, digits, '.', '_' and '-', starting with a letter or digit)`,
		`target[0].name: missing required key (every target needs a unique name)`,
		`plugin[0].sha256: want the executable's SHA-256 as 64 hex digits (sha256sum), got 3 characters`,
	}, "\n")
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "B_2": "beta"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		in, want string
		used     bool
		wantErr  string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha", used: true},
		{in: "x-${A}-${B_2}-y", want: "x-alpha-beta-y", used: true},
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"},
		{in: "$5 and $A and $", want: "$5 and $A and $"},
		{in: "${MISSING}", wantErr: "environment variable MISSING is not set"},
		{in: "${EMPTY}", wantErr: "environment variable EMPTY is empty"},
		{in: "${A", wantErr: `unterminated "${" (write "$${" for a literal "${")`},
		{in: "${A-B}", wantErr: `invalid environment variable name "A-B" in ${...} (write "$${" for a literal "${")`},
		{in: "${}", wantErr: `invalid environment variable name "" in ${...} (write "$${" for a literal "${")`},
	}
	for _, tc := range cases {
		got, used, err := expand(tc.in, lookup)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("expand(%q) error = %v, want %s", tc.in, err, tc.wantErr)
			}
		case err != nil || got != tc.want || used != tc.used:
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tc.in, got, used, err, tc.want, tc.used)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"api_key": true, "APP_KEY": true, "password": true, "token": true, "secret": true,
		"private_key": true, "hec_token": true, "client-secret": true, "db_password": true,
		"apikey": true, "credentials": true, "ssh_key": true,
		"url": false, "index": false, "site": false, "user": false, "name": false, "sha256": false,
		"host": false, "timeout": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
	for path, want := range map[string]bool{
		"siem[0].params.url":                  false,
		"siem[0].params.api_key":              true,
		"target[1].params.credentials.user":   true,
		`target[1].params."odd.token".x`:      true,
		"target[1].params.users[1]":           false,
		"target[1].params.private_keys[0].id": false,
	} {
		if got := secretPath(path); got != want {
			t.Errorf("secretPath(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestDeployConfigLoads parses the vigil.toml of the Kubernetes CronJob's
// ConfigMap (deploy/kubernetes), so that the shipped manifest stays valid.
func TestDeployConfigLoads(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/vigil-nightly-cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "  vigil.toml: |\n")
	if !ok {
		t.Fatal("no vigil.toml in the ConfigMap")
	}
	var toml strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		toml.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	c, err := Parse("vigil-nightly-cronjob.yaml", []byte(toml.String()))
	if err != nil {
		t.Fatalf("the CronJob's vigil.toml: %v\n%s", err, toml.String())
	}
	var plugins []string
	for _, tg := range c.Targets {
		plugins = append(plugins, tg.Plugin)
	}
	if strings.Join(plugins, ",") != "exec,k8s" {
		t.Errorf("targets use %v, want the node (exec) and the cluster (k8s)", plugins)
	}
}
