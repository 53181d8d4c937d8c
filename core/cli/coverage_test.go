package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/session"
)

// Atomic Red Team checkouts: the atomic package's fixtures (techniques of
// the Linux scope, some with tests of the pack too) and an excerpt of the
// corpus whose one atomic performs T1569.002, a technique ATT&CK does not
// list for Linux.
const (
	atomicFixtures = "../atomic/testdata/atomic-red-team"
	outOfScope     = "testdata/atomic-red-team"
)

// TestCoverageAtomics: --atomics adds the converted atomics to the catalog
// coverage compares, as on vigil run: they are named among the tests of
// their technique, count for a run's results, and bring their technique
// into scope.
func TestCoverageAtomics(t *testing.T) {
	// One atomic detected, and a result of a SIEM left out by --siem.
	run := &measure.Run{RunID: "r1", Results: []measure.Result{
		{TestID: "art-t1007-8f2a5d2b", Technique: "T1007", SIEM: "local", Status: measure.Detected},
		{TestID: "art-t1016-c141bbdb", Technique: "T1016", SIEM: "other", Status: measure.Missed},
	}}
	claims := []coverage.Claims{{SIEM: "local", Known: true, Rules: []coverage.Rule{
		{ID: "r1007", Name: "Services listed", Techniques: []string{"T1007"}, Enabled: true},
	}}}
	base := computeFor(t, nil, run, claims)

	cases := []struct {
		name    string
		atomics []string
		notes   []string
		// tests are the catalog tests wanted for a technique.
		tests map[string][]string
		// extraScope is how many more techniques are in scope than without
		// atomics.
		extraScope int
	}{
		{
			name: "no atomics",
			tests: map[string][]string{
				"T1007":     {"linux-service-discovery"},
				"T1027.013": nil,
			},
		},
		{
			name:    "the atomic package's fixtures",
			atomics: []string{atomicFixtures},
			notes:   []string{"atomics " + atomicFixtures + ": 36 atomic tests imported, 47 skipped"},
			tests: map[string][]string{
				"T1007":     {"art-t1007-8f2a5d2b", "art-t1007-f4b26bce", "linux-service-discovery"},
				"T1027.013": {"art-t1027-013-c2ca068a"},
				"T1569.002": nil,
			},
		},
		{
			name:       "an atomic of a technique outside the platforms",
			atomics:    []string{outOfScope},
			notes:      []string{"atomics " + outOfScope + ": 1 atomic tests imported, 0 skipped"},
			tests:      map[string][]string{"T1569.002": {"art-t1569-002-edbcd8c9"}, "T1027.013": nil},
			extraScope: 1,
		},
		{
			name:    "repeated",
			atomics: []string{atomicFixtures, outOfScope},
			notes:   []string{"atomics " + atomicFixtures + ": 36 atomic tests", "atomics " + outOfScope + ": 1 atomic tests"},
			tests: map[string][]string{
				"T1027.013": {"art-t1027-013-c2ca068a"},
				"T1569.002": {"art-t1569-002-edbcd8c9"},
			},
			extraScope: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cat, notes, err := session.LoadCatalog(config.Default(), nil, tc.atomics)
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %d", notes, len(tc.notes))
			}
			for i, want := range tc.notes {
				if !strings.HasPrefix(notes[i], want) {
					t.Errorf("note %q, want it to start with %q", notes[i], want)
				}
			}
			in := coverageInput(cat, run, []string{"local"})
			if len(in.Results) != 1 || in.Results[0].SIEM != "local" {
				t.Fatalf("results %+v: want local's alone", in.Results)
			}
			if len(in.Tests) != len(cat.Tests) {
				t.Fatalf("%d tests compared, the catalog has %d", len(in.Tests), len(cat.Tests))
			}
			in.Claims = claims
			rep := coverage.Compute(in)
			if rep.Techniques != base.Techniques+tc.extraScope {
				t.Errorf("%d techniques in scope, want %d (%d without atomics)", rep.Techniques, base.Techniques+tc.extraScope, base.Techniques)
			}
			rows := map[string]coverage.Technique{}
			for _, r := range rep.SIEMs[0].Techniques {
				rows[r.ID] = r
			}
			for id, want := range tc.tests {
				row, ok := rows[id]
				if want == nil {
					if ok && len(row.Tests) > 0 {
						t.Errorf("%s: tests %q, want none", id, row.Tests)
					}
					continue
				}
				if !ok || !slices.Equal(row.Tests, want) {
					t.Errorf("%s: tests %q (in scope: %v), want %q", id, row.Tests, ok, want)
				}
			}
			// The detected atomic proves T1007 whether or not the catalog
			// has it; with it, it is among T1007's tests.
			t1007 := rows["T1007"]
			if t1007.Class != coverage.ClaimedProven || !slices.Equal(t1007.Detected, []string{"art-t1007-8f2a5d2b"}) {
				t.Errorf("T1007 %s detected %q, want claimed and proven by art-t1007-8f2a5d2b", t1007.Class, t1007.Detected)
			}
			if row, ok := rows["T1569.002"]; ok && row.Class != coverage.NoTest {
				t.Errorf("T1569.002 is %s, want no test (it did not run and no rule claims it)", row.Class)
			}
		})
	}
}

// computeFor is the coverage of run against the catalog with the atomics.
func computeFor(t *testing.T, atomics []string, run *measure.Run, claims []coverage.Claims) *coverage.Report {
	t.Helper()
	cat, _, err := session.LoadCatalog(config.Default(), nil, atomics)
	if err != nil {
		t.Fatal(err)
	}
	in := coverageInput(cat, run, nil)
	in.Claims = claims
	return coverage.Compute(in)
}

// TestCoverageAtomicsErrors: a checkout that cannot be read is a usage
// error naming it, before any SIEM is asked for its rules.
func TestCoverageAtomicsErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		atomics []string
		wantErr string
	}{
		{"missing checkout", []string{"testdata/nope"}, "testdata/nope"},
		{"one good, one missing", []string{outOfScope, "testdata/nope"}, "testdata/nope"},
		{"a file, not a checkout", []string{"coverage.go"}, "coverage.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Main(t.Context(), append([]string{"coverage", "--results", "testdata/none.json"}, flagEach("--atomics", tc.atomics)...),
				IO{Out: &out, Err: &errOut})
			if code != ExitUsage || !strings.Contains(errOut.String(), tc.wantErr) || out.Len() != 0 {
				t.Errorf("exit %d, stderr %q, stdout %d bytes: want exit 2, %q named, nothing on stdout", code, errOut.String(), out.Len(), tc.wantErr)
			}
			if _, _, err := session.LoadCatalog(config.Default(), nil, tc.atomics); !session.IsConfigError(err) {
				t.Errorf("LoadCatalog: %v, want a config error", err)
			}
		})
	}
}

func flagEach(flag string, vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, flag, v)
	}
	return out
}
