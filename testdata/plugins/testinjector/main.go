// Command testinjector is a scripted injector plugin for vigil's engine
// tests, served as vigil-plugin-injector-testinjector. It performs nothing:
// it reports an injection (or a failure, a hang, a crash) as its params say,
// and appends "inject MARKER" and "cleanup MARKER" lines to the file named by
// the `log` param, so tests can prove cleanup always runs.
//
// Params: log (path), fail (bool), crash (bool), sleep (duration), events
// (a number: the injection reports that many telemetry events to replay,
// {"n": i} each).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

type testInjector struct{ sdk.InjectorBase }

func (testInjector) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name: "testinjector", Version: "0.0.1", Platforms: []string{"linux"},
		Params: []plugin.ParamSpec{
			{Name: "log", Type: "string"}, {Name: "fail", Type: "bool"},
			{Name: "crash", Type: "bool"}, {Name: "sleep", Type: "duration"},
			{Name: "events", Type: "int"},
		},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
	}, nil
}

func (testInjector) Configure(context.Context, []byte) error { return nil }

func appendLine(path, line string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

func (testInjector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	start := time.Now()
	appendLine(req.Params.String("log"), "inject "+req.Marker)
	if req.Params.String("crash") == "true" {
		os.Exit(4)
	}
	if d, err := time.ParseDuration(req.Params.String("sleep")); err == nil && d > 0 {
		select {
		case <-ctx.Done():
			return plugin.InjectResult{StartedAt: start, EndedAt: time.Now(), Outcome: plugin.OutcomeTimedOut}, nil
		case <-time.After(d):
		}
	}
	r := plugin.InjectResult{
		StartedAt: start, EndedAt: time.Now(), Outcome: plugin.OutcomeSucceeded, Host: "testhost",
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine},
		Stdout:          []byte("injected " + req.Marker),
	}
	if n, err := strconv.Atoi(req.Params.String("events")); err == nil {
		for i := 0; i < n; i++ {
			r.Events = append(r.Events, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		}
	}
	if req.Params.String("fail") == "true" {
		r.Outcome, r.ExitCode, r.Stderr = plugin.OutcomeFailed, 2, []byte("scripted failure")
	}
	return r, nil
}

func (testInjector) Cleanup(_ context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	appendLine(req.Params.String("log"), "cleanup "+req.Marker)
	return plugin.CleanupResult{}, nil
}

func main() { sdk.ServeInjector(testInjector{}) }
