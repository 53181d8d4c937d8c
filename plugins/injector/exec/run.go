package exec

import (
	"context"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// pipeGrace is how long Wait waits for the output pipes to close once the
// shell has exited: a background process that keeps them open must not hang
// the injection.
const pipeGrace = 2 * time.Second

// command is one run of `<shell> -c <line> <arg0>`.
type command struct {
	shell, line, arg0 string
	dir               string
	env               []string
	stdin             string
	timeout           time.Duration
	// stdout and stderr may be the same writer.
	stdout, stderr io.Writer
	// marker tags the process group for Close ("" for prerequisites).
	marker string
}

// outcome is how a command ended, and the pid of its shell (the leader
// of its process group).
type outcome struct {
	shellstep.Exit
	pid int
}

// run runs c in a new process group and waits for the shell to exit. On
// timeout or when ctx is done it kills the group: SIGTERM, then SIGKILL
// after KillGrace. It does not wait for background processes that outlive
// the shell.
func (x *Injector) run(ctx context.Context, c command) outcome {
	cmd := &osexec.Cmd{
		Path:      c.shell,
		Args:      []string{c.shell, "-c", c.line, c.arg0},
		Dir:       c.dir,
		Env:       c.env,
		Stdout:    c.stdout,
		Stderr:    c.stderr,
		WaitDelay: pipeGrace,
	}
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	setProcessGroup(cmd)

	o := outcome{Exit: shellstep.Exit{Group: "process group"}}
	if err := ctx.Err(); err != nil {
		o.Started, o.Ended, o.Code, o.Canceled = shellstep.Now(), shellstep.Now(), -1, true
		return o
	}
	x.startMu.RLock()
	o.Started = shellstep.Now()
	if err := cmd.Start(); err != nil {
		x.startMu.RUnlock()
		o.Ended, o.Code = shellstep.Now(), -1
		o.StartErr = fmt.Errorf("exec: start %s: %w", c.shell, err)
		return o
	}
	o.pid = cmd.Process.Pid
	x.track(o.pid, c.marker)
	x.startMu.RUnlock()
	defer x.untrack(o.pid)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		o.TimedOut = true
		killGroup(o.pid, done)
	case <-ctx.Done():
		o.Canceled = true
		killGroup(o.pid, done)
	}
	o.Ended = shellstep.Now()
	// cmd.Wait has returned: a nil error, an *ExitError, or ErrWaitDelay
	// (output pipes held open by a background process) all leave the exit
	// status in ProcessState.
	if cmd.ProcessState != nil {
		o.Code = exitCode(cmd.ProcessState)
	} else {
		o.Code = -1
	}
	return o
}

// killGroup terminates the process group pgid, whose leader's Wait reports
// on done, and returns once the leader has been waited for. The group is
// sent SIGTERM; once KillGrace has passed, or earlier if the leader exited
// but other processes remain, it is sent SIGKILL.
func killGroup(pgid int, done <-chan error) {
	_ = signalGroup(pgid, syscall.SIGTERM)
	start := time.Now()
	grace := time.NewTimer(KillGrace)
	defer grace.Stop()
	select {
	case <-done:
		// The leader is gone; give the rest of the group what is left of
		// the grace period.
		if !waitGroupGone(context.Background(), pgid, KillGrace-time.Since(start)) {
			_ = signalGroup(pgid, syscall.SIGKILL)
		}
		return
	case <-grace.C:
	}
	_ = signalGroup(pgid, syscall.SIGKILL)
	<-done // SIGKILL ends the leader; WaitDelay bounds the pipes.
}

// waitGroupGone polls until the group pgid has no live process, for at
// most d or until ctx is done. It reports whether the group is gone.
func waitGroupGone(ctx context.Context, pgid int, d time.Duration) bool {
	stop := time.NewTimer(d)
	defer stop.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for groupAlive(pgid) {
		select {
		case <-tick.C:
		case <-stop.C:
			return !groupAlive(pgid)
		case <-ctx.Done():
			return !groupAlive(pgid)
		}
	}
	return true
}

// isDir reports whether path is a directory (not a symlink to one).
func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}
