package cli

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parse runs a command's flag parsing and argument checks up to its runF
// seam, as cli/cli's command tests do, and returns the options it built.
func parse[O any](t *testing.T, newCmd func(IO, func(*O) error) *cobra.Command, args ...string) (*O, error) {
	t.Helper()
	var got *O
	cmd := newCmd(IO{Out: io.Discard, Err: io.Discard}, func(o *O) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return got, err
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(o *RunOptions) bool
	}{
		{"defaults", nil, func(o *RunOptions) bool {
			return o.Out == "" && o.Concurrency == 0 && !o.Replay && !o.Quiet && o.MaxLatencyRegression == 2 && o.MinLatencyChange == 100*time.Millisecond
		}},
		{"selection", []string{"--id", "a", "--id", "b", "-t", "T1053", "--tactic", "persistence", "--tag", "cron", "--exclude-tag", "network", "--siem", "local", "--arg", "a.x=1"},
			func(o *RunOptions) bool {
				return slices.Equal(o.IDs, []string{"a", "b"}) && slices.Equal(o.Techniques, []string{"T1053"}) && slices.Equal(o.Tactics, []string{"persistence"}) &&
					slices.Equal(o.Tags, []string{"cron"}) && slices.Equal(o.ExcludeTags, []string{"network"}) && slices.Equal(o.SIEMs, []string{"local"}) &&
					slices.Equal(o.Args, []string{"a.x=1"})
			}},
		{"replay and rules", []string{"--replay", "--replay-dir", "rec", "--sigma-dir", "r1", "--sigma-dir", "r2", "--atomics", "art"}, func(o *RunOptions) bool {
			return o.Replay && o.ReplayDir == "rec" && slices.Equal(o.RuleDirs, []string{"r1", "r2"}) && slices.Equal(o.AtomicsDirs, []string{"art"})
		}},
		{"outputs and gate", []string{"-o", "out", "-f", "junit,html", "--baseline", "last", "-q", "--concurrency", "8", "--no-history", "--max-latency-regression", "1.5"},
			func(o *RunOptions) bool {
				return o.Out == "out" && slices.Equal(o.Formats, []string{"junit,html"}) && o.Baseline == "last" && o.Quiet && o.Concurrency == 8 &&
					o.NoHistory && o.MaxLatencyRegression == 1.5
			}},
		{"destructive", []string{"--id", "x", "--allow-destructive", "--get-prereqs", "--close-signals", "--allow-unpinned"}, func(o *RunOptions) bool {
			return o.AllowDestructive && o.GetPrereqs && o.CloseSignals && o.AllowUnpinned
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, newCmdRun, tc.args...)
			if err != nil || o == nil || !tc.check(o) {
				t.Errorf("%v: options %+v, err %v", tc.args, o, err)
			}
		})
	}
}

// Every other verb parses its flags and positional arguments into its
// options, and refuses what it must before running anything.
func TestVerbFlags(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		if o, err := parse(t, newCmdList, "--output", "json", "--platform", "linux"); err != nil || o.Output != "json" || !slices.Equal(o.Platforms, []string{"linux"}) {
			t.Errorf("%+v %v", o, err)
		}
		if _, err := parse(t, newCmdList, "--output", "yaml"); err == nil {
			t.Error("--output yaml accepted")
		}
	})
	t.Run("plan", func(t *testing.T) {
		if o, err := parse(t, newCmdPlan, "--replay", "--target", "lab"); err != nil || !o.Replay || !slices.Equal(o.Targets, []string{"lab"}) {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("validate", func(t *testing.T) {
		if o, err := parse(t, newCmdValidate, "--online", "-c", "v.toml"); err != nil || !o.Online || o.ConfigPath != "v.toml" {
			t.Errorf("%+v %v", o, err)
		}
		if _, err := parse(t, newCmdValidate, "extra"); err == nil {
			t.Error("a positional argument accepted")
		}
	})
	t.Run("plugins", func(t *testing.T) {
		if o, err := parse(t, newCmdPlugins, "--plugin-dir", "p", "--allow-unpinned"); err != nil || !slices.Equal(o.PluginDirs, []string{"p"}) || !o.AllowUnpinned {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("record", func(t *testing.T) {
		if o, err := parse(t, newCmdRecord, "linux-a", "--id", "linux-b", "--dir", "rules/telemetry"); err != nil ||
			!slices.Equal(o.IDs, []string{"linux-b", "linux-a"}) || o.Dir != "rules/telemetry" {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("report", func(t *testing.T) {
		o, err := parse(t, newCmdReport, "out/results.json", "-f", "markdown", "--out", "-")
		if err != nil || o.Ref != "out/results.json" || !slices.Equal(o.Formats, []string{"markdown"}) || o.Out != "-" {
			t.Errorf("%+v %v", o, err)
		}
		if _, err := parse(t, newCmdReport); err == nil {
			t.Error("report without a run accepted")
		}
	})
	t.Run("history", func(t *testing.T) {
		if o, err := parse(t, newCmdHistory, "--limit", "5", "-o", "json", "--history", "h.db"); err != nil || o.Limit != 5 || o.Output != "json" || o.History != "h.db" {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("diff", func(t *testing.T) {
		if o, err := parse(t, newCmdDiff, "a", "b", "--min-latency-change", "250ms"); err != nil || !slices.Equal(o.Runs, []string{"a", "b"}) || o.MinLatencyChange != 250*time.Millisecond {
			t.Errorf("%+v %v", o, err)
		}
		if _, err := parse(t, newCmdDiff, "a", "b", "c"); err == nil {
			t.Error("three runs accepted")
		}
	})
	t.Run("compare", func(t *testing.T) {
		if o, err := parse(t, newCmdCompare); err != nil || o.Ref != "last" {
			t.Errorf("%+v %v", o, err)
		}
		if o, err := parse(t, newCmdCompare, "r.json"); err != nil || o.Ref != "r.json" {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("coverage", func(t *testing.T) {
		o, err := parse(t, newCmdCoverage, "--results", "r.json", "--sigma-dir", "s", "--format", "navigator", "--platform", "Containers")
		if err != nil || o.Results != "r.json" || !slices.Equal(o.SigmaDirs, []string{"s"}) || o.Format != "navigator" || !slices.Equal(o.Platforms, []string{"Containers"}) {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("rules", func(t *testing.T) {
		if o, err := parse(t, newCmdRules, "--refused", "-o", "json", "--siem", "local"); err != nil || !o.Refused || o.Output != "json" || !slices.Equal(o.SIEMs, []string{"local"}) {
			t.Errorf("%+v %v", o, err)
		}
		if _, err := parse(t, newCmdRules, "-o", "xml"); err == nil {
			t.Error("-o xml accepted")
		}
	})
	t.Run("init", func(t *testing.T) {
		if o, err := parse(t, newCmdInit); err != nil || o.Path != "vigil.toml" || o.Force {
			t.Errorf("%+v %v", o, err)
		}
		if o, err := parse(t, newCmdInit, "x.toml", "--force"); err != nil || o.Path != "x.toml" || !o.Force {
			t.Errorf("%+v %v", o, err)
		}
	})
	t.Run("import atomics", func(t *testing.T) {
		o, err := parse(t, newCmdImportAtomics, "art", "--out", "cat", "--technique", "T1087", "--all")
		if err != nil || o.Dir != "art" || o.Out != "cat" || !slices.Equal(o.Techniques, []string{"T1087"}) || !o.All {
			t.Errorf("%+v %v", o, err)
		}
	})
}
