package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// corpusDir is the project's Atomic Red Team corpus (a Linux, container and
// cloud subset of the atomics), relative to the repository root; the test
// that needs it skips when it is absent.
const corpusDir = "../shared/corpus/atomic-red-team"

// TestImportAtomics converts atomics through the binary: the report counts
// imported and skipped tests by reason and names every skipped atomic by
// file and line, and the written files load with vigil validate.
func TestImportAtomics(t *testing.T) {
	cases := []struct {
		name, dir string
		want      []string // lines of the report's summary
		details   []string // lines among the skipped atomics
		files     int
	}{
		{
			name: "fixtures", dir: "core/atomic/testdata/atomic-red-team", files: 36,
			want: []string{
				"9 files, 83 atomic tests: imported 36, skipped 47",
				"skipped   33  no linux platform",
				"skipped    5  unsupported executor",
				"skipped    9  unknown technique",
				"imported   36  safe 9, reversible 14, destructive 13; tagged network 4, payload 4",
			},
			details: []string{
				`core/atomic/testdata/atomic-red-team/atomics/T1048.003/T1048.003.yaml:28: T1048.003 #1 "Exfiltration Over Alternative Protocol - HTTP" unsupported executor: executor "manual": steps for a person, nothing to run`,
				`core/atomic/testdata/atomic-red-team/atomics/T1690/T1690.yaml:54: T1690 #4 "Clear bash history" unknown technique: attack_technique T1690: unknown ATT&CK Enterprise technique (ATT&CK v18.1)`,
			},
		},
		{
			name: "one broken file and one broken atomic stop nothing", dir: "core/atomic/testdata/broken", files: 4,
			want: []string{"3 files, 15 atomic tests: imported 4, skipped 11", "skipped    3  malformed atomic", "skipped    2  invalid after conversion"},
			details: []string{
				"core/atomic/testdata/broken/atomics/T1059.004/T1059.004.yaml:3: malformed atomic: did not find expected key",
				"core/atomic/testdata/broken/atomics/T1082/T1082.yaml:16: T1082 #2 malformed atomic: cannot unmarshal !!map into []string",
			},
		},
	}
	if _, err := os.Stat(filepath.Join("../..", corpusDir, "atomics")); err == nil {
		cases = append(cases, struct {
			name, dir string
			want      []string
			details   []string
			files     int
		}{
			name: "the whole corpus", dir: corpusDir, files: 243,
			want: []string{
				"105 files, 781 atomic tests: imported 243, skipped 538",
				"skipped  474  no linux platform",
				"skipped   10  unsupported executor",
				"skipped   54  unknown technique",
				"imported  243  safe 63, reversible 107, destructive 73; tagged network 77, payload 38",
			},
		})
	} else {
		t.Logf("no corpus at %s: only the fixtures are imported", corpusDir)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			stdout, stderr, code := vigil(t, "import", "atomics", tc.dir, "--out", out)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, w := range append(tc.want, tc.details...) {
				if !strings.Contains(stdout, w) {
					t.Errorf("report lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stdout, "wrote "+strconv.Itoa(tc.files)+" catalog files under "+out) {
				t.Errorf("report does not say it wrote %d files:\n%s", tc.files, stdout)
			}
			n := 0
			filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(p, ".toml") {
					n++
				}
				return nil
			})
			if n != tc.files {
				t.Errorf("%d files written, want %d", n, tc.files)
			}
			t.Logf("%s", stdout[:strings.Index(stdout, "\n\n")+1])

			stdout, stderr, code = vigil(t, "validate", "--catalog", out)
			if code != 0 || !regexp.MustCompile(`catalog: ok \(\d+ tests`).MatchString(stdout) {
				t.Errorf("validate --catalog %s: exit %d\n%s%s", out, code, stdout, stderr)
			}
		})
	}
}

func TestImportAtomicsUsage(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no directory", []string{"import", "atomics"}, "accepts 1 arg(s), received 0"},
		{"missing directory", []string{"import", "atomics", "testdata/nope"}, "no such file or directory"},
		{"nothing to import", []string{"import", "atomics", "testdata/e2e"}, "no atomic test of testdata/e2e could be imported"},
		{"bad technique filter", []string{"import", "atomics", "core/atomic/testdata/atomic-red-team", "--technique", "T99"}, `technique filter "T99"`},
		{"import what", []string{"import"}, "import what?"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := vigil(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, want 2; stderr %q, want %q", code, stderr, tc.wantErr)
			}
		})
	}
}

// TestListAtomics: --atomics adds the converted tests to the catalog
// without writing them; --tag and --exclude-tag select them, and positions
// name the atomic's YAML file and line.
func TestListAtomics(t *testing.T) {
	stdout, stderr, code := vigil(t, "list", "--atomics", "core/atomic/testdata/atomic-red-team", "--tag", "atomic-red-team",
		"--exclude-tag", "network", "--technique", "T1560.001", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		`"id": "art-t1560-001-cde3c2af"`, `"atomic_guid": "cde3c2af-3485-49eb-9c1f-0ed60e9cc0af"`, `"injector": "exec"`,
		`"source": "core/atomic/testdata/atomic-red-team/atomics/T1560.001/T1560.001.yaml:191"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("list lacks %s:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "art-t1560-001-c51cec55") {
		t.Errorf("a network test was not excluded:\n%s", stdout)
	}
}
