package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/coverage"
	"github.com/vigilsec/vigil/internal/reportcheck"
)

// coverageFixture is the claimed-versus-proven report of the fixture run:
// the local SIEM's rules known (every class but missed_unclaimed among
// them), acme's unknown.
func coverageFixture(t *testing.T) *coverage.Report {
	run := fixture(t)
	var tests []coverage.Test
	seen := map[string]bool{}
	for _, r := range run.Results {
		if !seen[r.TestID] {
			seen[r.TestID] = true
			tests = append(tests, coverage.Test{ID: r.TestID, Technique: r.Technique})
		}
	}
	tests = append(tests, coverage.Test{ID: "linux-history-clear", Technique: "T1070.003"})
	local := []coverage.Rule{
		{ID: "rule-6", Name: "Crontab Modified With The Crontab Utility", Techniques: []string{"T1053.003"}, Enabled: true},
		{ID: "rule-4", Name: "Base64 Decoding With Command Line Utilities", Techniques: []string{"T1140"}, Enabled: true},
		{ID: "rule-10", Name: "File Deletion", Techniques: []string{"T1070.004"}, Enabled: true},
		{ID: "ir-1", Name: "Indicator Removal", Techniques: []string{"T1070"}, Enabled: true},
		{ID: "shadow-1", Name: "Shadow File Read", Techniques: []string{"T1003.008"}, Enabled: true},
		{ID: "shadow-2", Name: "Unshadow", Techniques: []string{"T1003.008", "T1110.002"}, Enabled: true},
		{ID: "suid-1", Name: "Setuid Bit Set", Techniques: []string{"T1548.001"}, Enabled: true},
		{ID: "win-1", Name: "Token Theft", Techniques: []string{"T1134.001"}, Enabled: true},
		{ID: "off-1", Name: "Disabled Rule", Techniques: []string{"T1005"}},
	}
	return coverage.Compute(coverage.Input{RunID: run.RunID, Tests: tests, Results: run.Results, Claims: []coverage.Claims{
		{SIEM: "local", Known: true, Rules: local},
		{SIEM: "acme", Note: "claims unknown (plugin has no rules call)"},
	}})
}

func TestCoverageText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCoverage(&b, coverageFixture(t)); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden", "coverage.txt")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./core/report -update)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("coverage text differs from %s (run go test ./core/report -update and review the diff):\n%s", golden, b.String())
	}
}

func TestCoverageLayers(t *testing.T) {
	rep := coverageFixture(t)
	var b bytes.Buffer
	if err := WriteCoverageLayers(&b, rep); err != nil {
		t.Fatal(err)
	}
	if err := reportcheck.ValidateLayer(b.Bytes()); err != nil {
		t.Fatalf("invalid layers: %v", err)
	}
	var layers []Layer
	if err := json.Unmarshal(b.Bytes(), &layers); err != nil || len(layers) != 2 {
		t.Fatalf("want a list of 2 layers: %v", err)
	}
	byName := map[string]Layer{}
	for _, l := range layers {
		byName[strings.TrimPrefix(l.Name, "vigil claimed vs proven ")] = l
	}
	local, acme := byName["local"], byName["acme"]
	// One distinct colour per class, in the legend with the counts.
	colors := map[string]bool{}
	var legend []string
	for _, li := range local.LegendItems {
		colors[li.Color] = true
		legend = append(legend, li.Label)
	}
	wantLegend := "claimed and proven (3)|claimed, never proven (1)|proven, no rule claims it (1)|claimed, untested (10)|missed, no rule claims it (0)|no test, no claim (" +
		itoa(rep.SIEMs[1].Counts[coverage.NoTest]) + ")"
	if strings.Join(legend, "|") != wantLegend || len(colors) != 6 {
		t.Errorf("legend %q (%d colours), want %q in 6", strings.Join(legend, "|"), len(colors), wantLegend)
	}
	byID := map[string]LayerTechnique{}
	for _, lt := range local.Techniques {
		byID[lt.TechniqueID] = lt
	}
	checks := []struct {
		id    string
		class coverage.Class
		meta  string
	}{
		{"T1053.003", coverage.ClaimedProven, `detected=linux-cron-decoy-job|rule="Crontab Modified With The Crontab Utility" (rule-6) (fired)`},
		{"T1003.008", coverage.ClaimedNotProven, `missed=linux-shadow-read|rule="Shadow File Read" (shadow-1)|rule="Unshadow" (shadow-2)`},
		{"T1059.004", coverage.ProvenUnclaimed, `detected=weird-names`},
		{"T1548.001", coverage.ClaimedUntested, `not run=linux-setuid-decoy|rule="Setuid Bit Set" (suid-1)`},
		{"T1070.003", coverage.ClaimedUntested, `not run=linux-history-clear|rule="Indicator Removal" (ir-1)`},
		{"T1070.004", coverage.ClaimedProven, `detected=linux-file-delete-decoy|rule="File Deletion" (rule-10) (fired)|rule="Indicator Removal" (ir-1)`},
		{"T1005", coverage.NoTest, ``},
	}
	for _, c := range checks {
		lt, ok := byID[c.id]
		var meta []string
		for _, m := range lt.Metadata {
			meta = append(meta, m.Name+"="+m.Value)
		}
		if !ok || lt.Color != CoverageColor(c.class) || lt.Comment != c.class.Label() || strings.Join(meta, "|") != c.meta || lt.Score != nil {
			t.Errorf("%s = %+v\nwant colour %s, comment %q, metadata %s", c.id, lt, CoverageColor(c.class), c.class.Label(), c.meta)
		}
	}
	if !byID["T1070"].ShowSubtechniques || !byID["T1003"].ShowSubtechniques || byID["T1005"].ShowSubtechniques {
		t.Error("parents of classified sub-techniques must unfold them, and only those")
	}
	if _, ok := byID["T1134.001"]; ok {
		t.Error("a Windows-only claim is in the layer")
	}
	if len(acme.LegendItems) != 3 || acme.LegendItems[0].Label != "proven (claims unknown) (2)" || acme.Metadata[2].Value != "claims unknown (plugin has no rules call)" {
		t.Errorf("acme legend %+v, metadata %+v", acme.LegendItems, acme.Metadata)
	}
	// One SIEM: one layer object.
	one := *rep
	one.SIEMs = rep.SIEMs[:1]
	b.Reset()
	if err := WriteCoverageLayers(&b, &one); err != nil || !bytes.HasPrefix(b.Bytes(), []byte("{")) {
		t.Fatalf("one SIEM: %v, %.40s", err, b.String())
	}
	if err := reportcheck.ValidateLayer(b.Bytes()); err != nil {
		t.Fatalf("invalid layer: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
