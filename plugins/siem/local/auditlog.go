package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// auditLogPoll is how often a followed audit log is read for new lines.
const auditLogPoll = 100 * time.Millisecond

// maxAuditLine bounds one audit event (a RequestResponse event of a big
// object can be large); a longer line is counted unparsed and skipped.
const maxAuditLine = 4 << 20

// auditLogs follows Kubernetes API server audit logs (audit.k8s.io/v1
// events, one JSON object per line, as --audit-log-path writes them) from
// their end, as `tail -F` does: new lines are read every auditLogPoll, a
// file truncated or replaced by log rotation is read again from its start,
// and one that does not exist yet is waited for.
type auditLogs struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	lines, unparsed atomic.Uint64
}

// followAuditLogs starts following paths; every complete line becomes an
// event of host (telemetry.FromAudit) passed to emit as it is read. Each file is read from its end at the time of the call: only
// events written from then on are seen.
func followAuditLogs(paths []string, host string, emit func([]telemetry.Event)) (*auditLogs, error) {
	ctx, cancel := context.WithCancel(context.Background())
	a := &auditLogs{cancel: cancel}
	for _, p := range paths {
		f := &followed{path: p, host: host, emit: emit, a: a}
		if err := f.open(true); err != nil && !errors.Is(err, fs.ErrNotExist) {
			cancel()
			a.wg.Wait()
			return nil, fmt.Errorf("local: kubernetes_audit_logs: %w", err)
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			f.run(ctx)
		}()
	}
	return a, nil
}

// stop stops following and waits until every file is closed. Lines
// already written are read first.
func (a *auditLogs) stop() {
	if a == nil {
		return
	}
	a.cancel()
	a.wg.Wait()
}

// followed is one audit log being followed.
type followed struct {
	path string
	host string
	emit func([]telemetry.Event)
	a    *auditLogs

	f        *os.File
	ino      uint64
	off      int64
	partial  []byte // the start of a line not complete yet
	skipping bool   // in a line longer than maxAuditLine
	buf      []byte // read buffer, kept across polls
}

// open opens the file, at its end when atEnd, and remembers its inode.
func (f *followed) open(atEnd bool) error {
	h, err := os.Open(f.path)
	if err != nil {
		return err
	}
	fi, err := h.Stat()
	if err != nil {
		h.Close()
		return err
	}
	f.f, f.off, f.partial, f.skipping = h, 0, nil, false
	if atEnd {
		f.off = fi.Size()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.ino = st.Ino
	}
	return nil
}

func (f *followed) run(ctx context.Context) {
	defer func() {
		if f.f != nil {
			f.f.Close()
		}
	}()
	t := time.NewTicker(auditLogPoll)
	defer t.Stop()
	for {
		f.poll()
		select {
		case <-ctx.Done():
			f.poll() // what was written before the stop
			return
		case <-t.C:
		}
	}
}

// poll reads what was appended since the last poll, and reopens the file
// when it was truncated or replaced.
func (f *followed) poll() {
	if f.f == nil {
		// Created after the run started: everything in it is new.
		if f.open(false) != nil {
			return
		}
	}
	f.read()
	fi, err := os.Stat(f.path)
	if err != nil {
		return // removed: keep the old one until a new one appears
	}
	cur, _ := f.f.Stat()
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case ok && st.Ino != f.ino: // rotated: the rest of the old one was read above
		f.f.Close()
		f.f = nil
		if f.open(false) == nil {
			f.read()
		}
	case cur != nil && cur.Size() < f.off: // truncated
		f.off, f.partial, f.skipping = 0, nil, false
		f.read()
	}
}

// read reads from the offset to the end and emits the complete lines.
func (f *followed) read() {
	if f.buf == nil {
		f.buf = make([]byte, 256<<10)
	}
	var evs []telemetry.Event
	for {
		n, err := f.f.ReadAt(f.buf, f.off)
		f.off += int64(n)
		data := f.buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				switch {
				case f.skipping:
				case len(f.partial)+len(data) > maxAuditLine:
					f.a.unparsed.Add(1)
					f.partial, f.skipping = nil, true
				default:
					f.partial = append(f.partial, data...)
				}
				break
			}
			line := data[:i]
			data = data[i+1:]
			if f.skipping {
				f.skipping = false
				continue
			}
			if len(f.partial) > 0 {
				line = append(f.partial, line...)
				f.partial = nil
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			f.a.lines.Add(1)
			ev, perr := telemetry.FromAudit(line, f.host)
			if perr != nil {
				f.a.unparsed.Add(1)
				continue
			}
			evs = append(evs, ev)
		}
		if err != nil || n < len(f.buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				f.a.unparsed.Add(1)
			}
			break
		}
	}
	if len(evs) > 0 {
		f.emit(evs)
	}
}
