package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// recordFlushEvery bounds how long a recorded event may sit in the buffer.
const recordFlushEvery = time.Second

// recorder appends events to the record file as JSON lines. It is safe for
// concurrent use; a nil recorder records nothing.
type recorder struct {
	mu        sync.Mutex
	f         *os.File
	w         *bufio.Writer
	lastFlush time.Time
	err       error // the first write error; later writes are dropped
	errors    uint64
}

// openRecorder opens path for appending (creating it 0600).
func openRecorder(path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: record: %w", err)
	}
	return &recorder{f: f, w: bufio.NewWriterSize(f, 256<<10), lastFlush: time.Now()}, nil
}

// write appends evs, flushing when the buffer is older than
// recordFlushEvery.
func (r *recorder) write(evs []telemetry.Event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil || r.err != nil {
		if r.w != nil {
			r.errors += uint64(len(evs))
		}
		return
	}
	for i := range evs {
		b, err := evs[i].MarshalJSONL()
		if err == nil {
			b = append(b, '\n')
			_, err = r.w.Write(b)
		}
		if err != nil {
			r.err = err
			r.errors += uint64(len(evs) - i)
			return
		}
	}
	if now := time.Now(); now.Sub(r.lastFlush) >= recordFlushEvery {
		r.lastFlush = now
		if err := r.w.Flush(); err != nil {
			r.err = err
		}
	}
}

// flush writes out the buffer.
func (r *recorder) flush() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return r.err
	}
	if r.err == nil {
		r.err = r.w.Flush()
		r.lastFlush = time.Now()
	}
	return r.err
}

// close flushes and closes the file; it returns the first error the
// recorder met.
func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	ferr := r.flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return ferr
	}
	cerr := r.f.Close()
	r.f, r.w = nil, nil
	if err := errors.Join(ferr, cerr); err != nil {
		return fmt.Errorf("local: record: %w", err)
	}
	return nil
}

// dropped counts events that could not be recorded.
func (r *recorder) dropped() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors
}
