package plugintest

import (
	"context"
	"testing"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/runner"
)

// RunEngine plans tests on eng, runs the plan and returns the results by
// test ID: the vendor plugins' end-to-end tests drive the real engine with
// it.
func RunEngine(t testing.TB, eng *runner.Engine, tests ...*catalog.Test) map[string]measure.Result {
	t.Helper()
	plan, err := eng.Plan(tests)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]measure.Result{}
	for _, r := range eng.Run(context.Background(), plan) {
		out[r.TestID] = r
	}
	return out
}
