package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/telemetry"
)

// RecordOptions are the flags of `vigil record`.
type RecordOptions struct {
	RunOptions
	Dir string
}

func newCmdRecord(io IO, runF func(*RecordOptions) error) *cobra.Command {
	o := &RecordOptions{}
	cmd := &cobra.Command{
		Use:   "record [TEST_ID...]",
		Short: "Run tests under the local SIEM's audit sensor and save their telemetry for --replay",
		Long: `Fire the given tests (default: the selection flags, else the whole pack) on
this host with the local SIEM in live mode, and write the telemetry each one
produced (the events carrying its run marker and those of its child
processes) to DIR/<test-id>.jsonl, the format ` + "`vigil run --replay`" + ` replays.
Needs root and the kernel audit subsystem.`,
		Example: `  sudo vigil record linux-cron-decoy-job
  sudo vigil record --dir rules/telemetry   # refresh the shipped recordings`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IDs = append(o.IDs, args...)
			if runF != nil {
				return runF(o)
			}
			return runRecord(cmd.Context(), io, o)
		},
	}
	o.addFlags(cmd, false)
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "telemetry", "directory to write <test-id>.jsonl recordings to")
	f.IntVar(&o.Concurrency, "concurrency", 0, "tests in flight (default: [run] concurrency)")
	f.StringArrayVar(&o.RuleDirs, "sigma-dir", nil, "extra directory of Sigma rules for the local SIEM (repeatable)")
	return cmd
}

func runRecord(ctx context.Context, io IO, o *RecordOptions) error {
	l, err := o.load()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return usageErr(fmt.Errorf("create --dir: %w", err))
	}
	tmp, err := os.MkdirTemp("", "vigil-record-")
	if err != nil {
		return runtimeErr(err)
	}
	defer os.RemoveAll(tmp)
	events := filepath.Join(tmp, "events.jsonl")
	// One SIEM collecting live that records every event (the local SIEM),
	// and the configured targets.
	if err := l.RecordInto(events); err != nil {
		return sessionErr(err)
	}
	run, err := execute(ctx, io, l, &o.RunOptions)
	if err != nil {
		return err
	}
	f, err := os.Open(events)
	if err != nil {
		return runtimeErr(fmt.Errorf("read the recorded events: %w", err))
	}
	evs, err := telemetry.ReadEvents(f)
	f.Close()
	if err != nil {
		return runtimeErr(err)
	}
	host, _ := os.Hostname()
	failed := 0
	for _, r := range run.Results {
		if r.Marker == "" || r.Status == measure.Error || r.Status == measure.Skipped {
			fmt.Fprintf(io.Out, "%s: not recorded (%s: %s%s)\n", r.TestID, r.Status, r.Error, r.Reason)
			failed++
			continue
		}
		path := filepath.Join(o.Dir, r.TestID+telemetry.Ext)
		if err := writeRecording(path, r, host, evs); err != nil {
			fmt.Fprintf(io.Out, "%s: %v\n", r.TestID, err)
			failed++
			continue
		}
		fmt.Fprintf(io.Out, "%s: %s (%s in the live run)\n", r.TestID, path, r.Status)
	}
	printHostChanges(io.Out, run)
	if len(run.HostChanged) > 0 {
		return silentExit{ExitHostChanged}
	}
	if failed > 0 {
		return runtimeErr(fmt.Errorf("%d test(s) not recorded", failed))
	}
	return nil
}

func writeRecording(path string, r measure.Result, host string, evs []telemetry.Event) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := telemetry.Record(f, r.TestID, r.Marker, host, evs); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("record: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return os.Rename(tmp, path)
}
