package shellstep

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Exit is how a command ended.
type Exit struct {
	Started, Ended time.Time
	// Code is the exit status, -1 when there is none.
	Code int
	// TimedOut: the timeout expired; Canceled: ctx was done. Either way the
	// command's process group was killed.
	TimedOut, Canceled bool
	// StartErr: the command could not be started.
	StartErr error
	// Group names what a timeout or cancellation killed ("process group",
	// "remote process group").
	Group string
}

// Failure says why a command did not run to its end ("" when it exited on
// its own), for Error fields. what names the command ("cleanup command").
func (e Exit) Failure(what string, timeout time.Duration, ctxErr error) string {
	group := e.Group
	if group == "" {
		group = "process group"
	}
	switch {
	case e.StartErr != nil:
		return e.StartErr.Error()
	case e.TimedOut:
		return fmt.Sprintf("%s timed out after %s; %s killed", what, timeout, group)
	case e.Canceled:
		if ctxErr == nil {
			ctxErr = context.Canceled
		}
		return fmt.Sprintf("%s canceled (%v); %s killed", what, ctxErr, group)
	}
	return ""
}

// Verdict is the outcome of an inject step that ended as e, and the
// result's Error: timed out, failed to start, succeeded (the expected exit
// code, or any with IgnoreExit) or failed with the code and the start of
// stderr.
func Verdict(s Step, e Exit, stderr []byte, timeout time.Duration, ctxErr error) (plugin.Outcome, string) {
	switch {
	case e.TimedOut || e.Canceled:
		return plugin.OutcomeTimedOut, e.Failure("command", timeout, ctxErr)
	case e.StartErr != nil:
		return plugin.OutcomeFailed, e.StartErr.Error()
	case s.IgnoreExit || e.Code == s.ExpectExit:
		return plugin.OutcomeSucceeded, ""
	}
	msg := fmt.Sprintf("command exited %d, want %d", e.Code, s.ExpectExit)
	if x := Excerpt(stderr, 200); x != "" {
		msg += ": " + x
	}
	return plugin.OutcomeFailed, msg
}

// Details are the result details every shell step reports.
func (s Step) Details(timeout time.Duration) map[string]any {
	d := map[string]any{"shell": s.Shell, "timeout_ms": timeout.Milliseconds()}
	if s.IgnoreExit {
		d["ignore_exit"] = true
	} else {
		d["expect_exit"] = s.ExpectExit
	}
	return d
}

// Now is the wall clock in UTC, without the monotonic reading.
func Now() time.Time { return time.Now().UTC().Round(0) }

// Environ builds a minimal clean environment from layers (later ones
// win), as sorted KEY=VALUE strings.
func Environ(layers ...map[string]string) []string {
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

// CappedBuffer keeps the first limit bytes written to it and counts the
// rest. It is safe for concurrent writes (stdout and stderr may share one).
type CappedBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

// NewCappedBuffer returns a buffer that keeps limit bytes.
func NewCappedBuffer(limit int) *CappedBuffer { return &CappedBuffer{limit: limit} }

// Write keeps what fits and never fails, so the command never sees EPIPE.
func (b *CappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := min(max(b.limit-len(b.buf), 0), len(p))
	b.buf = append(b.buf, p[:room]...)
	b.dropped += int64(len(p) - room)
	return len(p), nil
}

// Bytes returns the kept bytes, followed by "[truncated N bytes]" when some
// were dropped.
func (b *CappedBuffer) Bytes() []byte {
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

// Excerpt returns the start of b as one trimmed line of at most n bytes,
// for error messages.
func Excerpt(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
