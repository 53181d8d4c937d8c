package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
)

func TestKillChainOrder(t *testing.T) {
	m := map[string]int{"impact": 1, "discovery": 1, "persistence": 1, "execution": 1, "zz-custom": 1, "collection": 1}
	want := []string{"execution", "persistence", "discovery", "collection", "impact", "zz-custom"}
	if got := killChainOrder(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("killChainOrder = %v, want %v", got, want)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// The console output of a run, like every other output format, is checked
// against a golden file: the result table, the summary per SIEM and
// tactic, why each test was missed, and the budget breaches. The run is
// the report package's fixture (every status, several diagnoses, a budget
// breach, names full of markup).
func TestConsoleGolden(t *testing.T) {
	b, err := os.ReadFile("../report/testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	run.Summary = measure.Summarise(run.Results) // as a run computes it
	var out bytes.Buffer
	printResults(&out, &run)
	printSummary(&out, &run)
	printDiagnoses(&out, &run)
	printBreaches(&out, &run)
	printHostChanges(&out, &run)
	golden := filepath.Join("testdata", "golden", "console.txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./core/cli -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("console output differs from %s (run go test ./core/cli -update and review the diff):\n%s", golden, out.String())
	}
}
