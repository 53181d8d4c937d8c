// Package cli is vigil's command line: one file per verb, each with an
// Options struct, over the engine (core/runner), the catalog, the config and
// the plugin host. Only cmd/ imports it.
//
// Exit codes (ExitCode): 0 every expectation met, 1 some expectation missed
// (or a negative test was noisy), 2 usage or config error, 3 runtime error
// (an injection or a plugin failed, so part of the run proves nothing), 4
// the run left this host changed.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Version is set at build time (-ldflags "-X .../core/cli.Version=...").
var Version = "dev"

// ExitCode is vigil's process exit status.
type ExitCode int

// The exit codes, documented in README.md.
const (
	ExitOK      ExitCode = 0
	ExitMissed  ExitCode = 1
	ExitUsage   ExitCode = 2
	ExitRuntime ExitCode = 3
	// ExitHostChanged: the run left this host changed (the host-integrity
	// check); it wins over every other outcome.
	ExitHostChanged ExitCode = 4
)

// exitError carries an exit code through cobra.
type exitError struct {
	code ExitCode
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage or config error (exit 2).
func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// runtimeErr marks err as a runtime error (exit 3).
func runtimeErr(err error) error { return &exitError{code: ExitRuntime, err: err} }

// silentExit ends with a code and no message (the command printed its own).
type silentExit struct{ code ExitCode }

func (s silentExit) Error() string { return fmt.Sprintf("exit %d", s.code) }

// IO is where commands read and write.
type IO struct {
	Out, Err io.Writer
	// IsTerminal says whether Err is a terminal (progress line).
	IsTerminal bool
	// Abort ends cleanups (a second interrupt); nil: cleanups run to their
	// own timeouts.
	Abort context.Context
}

// NewRoot builds the command tree.
func NewRoot(ctx context.Context, io IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "vigil",
		Short: "vigil fires ATT&CK techniques and proves, with evidence, whether your SIEM detects them",
		Long: `vigil is security chaos engineering for detection engineers: it fires MITRE
ATT&CK techniques through injector plugins, polls each SIEM for the signals
they should raise, and measures detection latency and coverage.

With no config it runs the Linux technique pack on this host against the
embedded local SIEM (a kernel audit sensor and Sigma rules).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetContext(ctx)
	root.AddCommand(
		newCmdRun(io, nil),
		newCmdList(io, nil),
		newCmdPlan(io, nil),
		newCmdValidate(io, nil),
		newCmdPlugins(io, nil),
		newCmdRecord(io, nil),
		newCmdReport(io, nil),
		newCmdHistory(io, nil),
		newCmdDiff(io, nil),
		newCmdCompare(io, nil),
		newCmdCoverage(io, nil),
		newCmdRules(io, nil),
		newCmdInit(io, nil),
		newCmdImport(io),
		newCmdVersion(io),
		newCmdPlugin(),
	)
	return root
}

// Main runs the CLI with args and returns the exit code.
func Main(ctx context.Context, args []string, io IO) ExitCode {
	root := NewRoot(ctx, io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	fmt.Fprintln(io.Err, "vigil:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own errors are flag and argument errors.
	return ExitUsage
}

// StderrIsTerminal reports whether standard error is a character device.
func StderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
