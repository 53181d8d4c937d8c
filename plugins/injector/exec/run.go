package exec

import (
	"context"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
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

// outcome is how a command ended.
type outcome struct {
	started, ended time.Time
	pid            int
	exitCode       int
	// timedOut: the timeout expired; canceled: ctx was done. Either way the
	// process group was killed.
	timedOut, canceled bool
	// startErr: the shell could not be started.
	startErr error
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

	var o outcome
	if err := ctx.Err(); err != nil {
		o.started, o.ended, o.exitCode, o.canceled = now(), now(), -1, true
		return o
	}
	x.startMu.RLock()
	o.started = now()
	if err := cmd.Start(); err != nil {
		x.startMu.RUnlock()
		o.ended, o.exitCode = now(), -1
		o.startErr = fmt.Errorf("exec: start %s: %w", c.shell, err)
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
		o.timedOut = true
		killGroup(o.pid, done)
	case <-ctx.Done():
		o.canceled = true
		killGroup(o.pid, done)
	}
	o.ended = now()
	// cmd.Wait has returned: a nil error, an *ExitError, or ErrWaitDelay
	// (output pipes held open by a background process) all leave the exit
	// status in ProcessState.
	if cmd.ProcessState != nil {
		o.exitCode = exitCode(cmd.ProcessState)
	} else {
		o.exitCode = -1
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

// now is the wall clock in UTC, without the monotonic reading.
func now() time.Time { return time.Now().UTC().Round(0) }

// environ builds a minimal clean environment: the defaults, then each of
// layers in order (later layers override earlier ones), as sorted
// KEY=VALUE strings.
func environ(layers ...map[string]string) []string {
	m := map[string]string{}
	for _, l := range layers {
		for k, v := range l {
			m[k] = v
		}
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// cappedBuffer keeps the first max bytes written to it and counts the rest.
type cappedBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

func newCappedBuffer(limit int) *cappedBuffer { return &cappedBuffer{limit: limit} }

// Write keeps what fits and never fails, so the command never sees EPIPE.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := min(max(b.limit-len(b.buf), 0), len(p))
	b.buf = append(b.buf, p[:room]...)
	b.dropped += int64(len(p) - room)
	return len(p), nil
}

// Bytes returns the kept bytes, followed by "[truncated N bytes]" when some
// were dropped.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]byte(nil), b.buf...)
	if b.dropped > 0 {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = fmt.Appendf(out, "[truncated %d bytes]\n", b.dropped)
	}
	return out
}

// excerpt returns the start of b as one trimmed line of at most n bytes,
// for error messages.
func excerpt(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// failure says why a command did not run to its end ("" when it exited on
// its own), for Error fields.
func (o outcome) failure(what string, timeout time.Duration, ctxErr error) string {
	switch {
	case o.startErr != nil:
		return o.startErr.Error()
	case o.timedOut:
		return fmt.Sprintf("%s timed out after %s; process group killed", what, timeout)
	case o.canceled:
		if ctxErr == nil {
			ctxErr = context.Canceled
		}
		return fmt.Sprintf("%s canceled (%v); process group killed", what, ctxErr)
	}
	return ""
}

// isDir reports whether path is a directory (not a symlink to one).
func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}
