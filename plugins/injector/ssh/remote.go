package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// pipeGrace is how long a command's session may stay open after the
// command exited (background processes holding its output): after it the
// session is closed and the processes are left to Cleanup.
const pipeGrace = 2 * time.Second

// command is one remote run of `<shell> -c <line> <arg0>`, through the
// login shell as
//
//	cd -- <dir> && env -i <env> <shell> -c <line> <arg0>
//
// (with sudo, a root shell changes to dir and execs the same env -i ...),
// framed by two status lines on stderr that the injector strips: the login
// shell's PID (sshd makes it a process group leader, so it is the group of
// every process the command starts) and the exit status.
type command struct {
	shell, line, arg0 string
	dir               string   // "" to stay in the login directory
	env               []string // sorted KEY=VALUE; HOME is added from the login shell
	stdin             string
	sudo              bool
	timeout           time.Duration
	stdout, stderr    io.Writer
}

// outcome is how a remote command ended.
type outcome struct {
	shellstep.Exit
	pgid int
	// background: the command exited but processes it started kept its
	// output open; they are left running for Cleanup.
	background bool
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// script is the login shell's command line for c, with status token tok.
func (c command) script(tok string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "printf '%%s:pgid:%%s\\n' %s \"$$\" >&2; ", tok)
	switch {
	case c.sudo && c.dir != "":
		// The directory may be root's only: change to it as root.
		fmt.Fprintf(&b, `sudo -n -- /bin/sh -c 'cd -- "$1" || exit 126; shift; exec "$@"' vigil-cd %s `, shellQuote(c.dir))
	case c.sudo:
		b.WriteString("sudo -n -- ")
	case c.dir != "":
		fmt.Fprintf(&b, "cd -- %s || exit 126; ", shellQuote(c.dir))
	}
	b.WriteString("env -i")
	hasHome := false
	for _, kv := range c.env {
		hasHome = hasHome || strings.HasPrefix(kv, "HOME=")
		b.WriteString(" " + shellQuote(kv))
	}
	if !hasHome {
		b.WriteString(` "HOME=$HOME"`)
	}
	fmt.Fprintf(&b, " %s -c %s %s; ", shellQuote(c.shell), shellQuote(c.line), shellQuote(c.arg0))
	fmt.Fprintf(&b, "rc=$?; printf '%%s:exit:%%d\\n' %s \"$rc\" >&2; exit \"$rc\"", tok)
	return b.String()
}

// run runs c on the host and waits for it. On timeout or when ctx is done
// it kills the remote process group (SIGTERM, then SIGKILL after
// KillGrace) through a separate session.
func (x *Injector) run(ctx context.Context, hc *hostConn, c command) outcome {
	o := outcome{Exit: shellstep.Exit{Group: "remote process group"}}
	if err := ctx.Err(); err != nil {
		o.Started, o.Ended, o.Code, o.Canceled = shellstep.Now(), shellstep.Now(), -1, true
		return o
	}
	s, release, err := x.session(ctx, hc, false)
	if err != nil {
		o.Started, o.Ended, o.Code = shellstep.Now(), shellstep.Now(), -1
		if ctx.Err() != nil {
			o.Canceled = true
		}
		o.StartErr = err
		return o
	}
	defer release()
	tok := newToken()
	status := &statusWriter{tok: tok, out: c.stderr, exited: make(chan struct{})}
	s.Stdout, s.Stderr = c.stdout, status
	if c.stdin != "" {
		s.Stdin = strings.NewReader(c.stdin)
	}
	o.Started = shellstep.Now()
	if err := s.Start(c.script(tok)); err != nil {
		o.Ended, o.Code = shellstep.Now(), -1
		o.StartErr = fmt.Errorf("ssh: %s: start command: %w", hc.addr, err)
		return o
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-status.exited:
		// The command exited: give the session pipeGrace to close.
		grace := time.NewTimer(pipeGrace)
		select {
		case waitErr = <-done:
		case <-grace.C:
			o.background = true
			s.Close()
			<-done
		}
		grace.Stop()
	case <-timer.C:
		o.TimedOut = true
	case <-ctx.Done():
		o.Canceled = true
	}
	o.Ended = shellstep.Now()
	status.flush()
	o.pgid = status.pgidValue()
	if o.TimedOut || o.Canceled {
		x.killGroup(ctx, hc, o.pgid, c.sudo)
		s.Close()
		<-done
		o.Code = -1
		return o
	}
	o.Code = status.exitValue()
	var ee *ssh.ExitError
	switch {
	case o.Code >= 0:
	case errors.As(waitErr, &ee):
		o.Code = ee.ExitStatus()
	case waitErr == nil:
		o.Code = 0
	default:
		o.StartErr = fmt.Errorf("ssh: %s: command ended without an exit status: %w", hc.addr, waitErr)
	}
	return o
}

// killGroup kills the remote process group pgid: SIGTERM, then SIGKILL
// after KillGrace. It uses the host's control slot, so that it works while
// every session slot is taken, and outlives ctx.
func (x *Injector) killGroup(ctx context.Context, hc *hostConn, pgid int, sudo bool) {
	if pgid <= 1 {
		return
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), KillGrace+10*time.Second)
	defer cancel()
	s, release, err := x.session(kctx, hc, true)
	if err != nil {
		return
	}
	defer release()
	kill := "kill"
	if sudo {
		kill = "sudo -n kill"
	}
	g := strconv.Itoa(pgid)
	_ = s.Run(fmt.Sprintf("%[1]s -TERM -- -%[2]s 2>/dev/null || exit 0; i=0; while [ $i -lt %[3]d ] && kill -0 -- -%[2]s 2>/dev/null; do sleep 0.1; i=$((i+1)); done; %[1]s -KILL -- -%[2]s 2>/dev/null; exit 0",
		kill, g, int(KillGrace/(100*time.Millisecond))))
}

// runSimple runs a short helper script (no marker, no env) through the
// login shell and returns its exit status, its stdout, and its stdout and
// stderr together (for messages: sshd itself may write to stderr, e.g. when
// the home directory is missing).
func (x *Injector) runSimple(ctx context.Context, hc *hostConn, script string, timeout time.Duration) (code int, stdout, output []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, release, err := x.session(ctx, hc, false)
	if err != nil {
		return -1, nil, nil, err
	}
	defer release()
	out, all := shellstep.NewCappedBuffer(8<<10), shellstep.NewCappedBuffer(8<<10)
	s.Stdout, s.Stderr = io.MultiWriter(out, all), all
	done := make(chan error, 1)
	go func() { done <- s.Run(script) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Close()
		<-done
		return -1, out.Bytes(), all.Bytes(), fmt.Errorf("ssh: %s: %w", hc.addr, ctx.Err())
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, out.Bytes(), all.Bytes(), nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), out.Bytes(), all.Bytes(), nil
	}
	return -1, out.Bytes(), all.Bytes(), fmt.Errorf("ssh: %s: %w", hc.addr, err)
}

// newToken returns a fresh token framing a command's status lines.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "vigil-status-" + hex.EncodeToString(b[:])
}

// statusWriter passes a command's stderr on to out, line by line, taking
// out the status lines: "<tok>:pgid:N" and "<tok>:exit:N" (the latter may
// follow output that did not end with a newline).
type statusWriter struct {
	tok     string
	out     io.Writer
	mu      sync.Mutex
	line    []byte
	pgid    int
	exit    int
	gotExit bool
	exited  chan struct{} // closed when the exit line is seen
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			// A long line without newline cannot be a status line: pass
			// it on, keeping a tail that may start one.
			if len(w.line) > 8<<10 {
				keep := len(w.tok) + 32
				w.out.Write(w.line[:len(w.line)-keep])
				w.line = append([]byte(nil), w.line[len(w.line)-keep:]...)
			}
			break
		}
		w.line = append(w.line, p[:i+1]...)
		p = p[i+1:]
		w.handleLine()
	}
	return n, nil
}

// handleLine processes the complete line in w.line.
func (w *statusWriter) handleLine() {
	line := w.line
	w.line = w.line[:0]
	body := bytes.TrimSuffix(line, []byte("\n"))
	prefix := []byte(w.tok + ":")
	i := bytes.Index(body, prefix)
	if i < 0 {
		w.out.Write(line)
		return
	}
	kind, val, _ := strings.Cut(string(body[i+len(prefix):]), ":")
	n, err := strconv.Atoi(val)
	switch {
	case err != nil:
		w.out.Write(line)
		return
	case kind == "pgid" && i == 0 && w.pgid == 0:
		w.pgid = n
	case kind == "exit" && !w.gotExit:
		w.exit, w.gotExit = n, true
		close(w.exited)
	default:
		w.out.Write(line)
		return
	}
	if i > 0 {
		w.out.Write(body[:i])
	}
}

// flush passes on a last line without newline.
func (w *statusWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.line) > 0 {
		w.handleLine()
	}
}

func (w *statusWriter) pgidValue() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pgid
}

// exitValue is the exit status the status line gave, -1 if none.
func (w *statusWriter) exitValue() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.gotExit {
		return -1
	}
	return w.exit
}
