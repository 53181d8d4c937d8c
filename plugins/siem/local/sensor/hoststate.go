package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// savedStatus is the part of the kernel's audit status a sensor changes and
// restores.
type savedStatus struct {
	Enabled         uint32 `json:"enabled"`
	BacklogLimit    uint32 `json:"backlog_limit"`
	RateLimit       uint32 `json:"rate_limit"`
	BacklogWaitTime uint32 `json:"backlog_wait_time"`
}

// hostLease coordinates the sensors running on a host, in this process or in
// others, that change the kernel's audit status. Each running sensor holds a
// shared flock on the holders file; the state file, locked exclusively while
// a sensor starts or stops, keeps the status found by the first sensor. The
// last sensor to stop restores it. A sensor that crashed leaves the state
// file behind, so the next one still restores the status that predates it.
type hostLease struct {
	dir     string
	holders *os.File
}

const (
	stateFileName   = "audit-sensor.state"
	holdersFileName = "audit-sensor.holders"
)

// procLock serialises the lease operations of the sensors of this process
// (flock already serialises processes).
var procLock sync.Mutex

// acquireLease registers a running sensor. current is the kernel status now;
// orig is the one to restore when the last sensor stops; recovered reports
// that orig was left by a sensor that crashed.
func acquireLease(ctx context.Context, dir string, current savedStatus) (lease *hostLease, orig savedStatus, recovered bool, err error) {
	procLock.Lock()
	defer procLock.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, current, false, fmt.Errorf("sensor: state directory: %w", err)
	}
	st, err := lockFile(ctx, filepath.Join(dir, stateFileName), unix.LOCK_EX)
	if err != nil {
		return nil, current, false, err
	}
	defer st.Close() // closing releases the flock
	h, err := os.OpenFile(filepath.Join(dir, holdersFileName), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, current, false, fmt.Errorf("sensor: open holders file: %w", err)
	}
	// When the holders file can be locked exclusively no other sensor runs;
	// a state file left then is from a sensor that crashed.
	alone := unix.Flock(int(h.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
	orig, haveSaved := readSaved(st)
	if !haveSaved {
		orig = current
		if err := writeSaved(st, current); err != nil {
			h.Close()
			return nil, current, false, err
		}
	}
	recovered = alone && haveSaved
	if err := unix.Flock(int(h.Fd()), unix.LOCK_SH); err != nil {
		h.Close()
		return nil, current, false, fmt.Errorf("sensor: lock holders file: %w", err)
	}
	return &hostLease{dir: dir, holders: h}, orig, recovered, nil
}

// release unregisters the sensor. last reports whether no other sensor
// runs and a status was recorded; the caller then restores orig, the status
// before the first sensor.
func (l *hostLease) release(ctx context.Context) (orig savedStatus, last bool, err error) {
	procLock.Lock()
	defer procLock.Unlock()
	st, err := lockFile(ctx, filepath.Join(l.dir, stateFileName), unix.LOCK_EX)
	if err != nil {
		l.holders.Close()
		return orig, false, err
	}
	defer st.Close()
	saved, ok := readSaved(st)
	// Converting our shared lock to an exclusive one succeeds only when no
	// other sensor holds the file.
	last = unix.Flock(int(l.holders.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
	l.holders.Close()
	if !last {
		return orig, false, nil
	}
	if !ok {
		// Nothing recorded (the file was removed): nothing to restore.
		return orig, false, nil
	}
	if err := st.Truncate(0); err != nil {
		return saved, true, fmt.Errorf("sensor: clear state file: %w", err)
	}
	return saved, true, nil
}

// lockFile opens (creating) path and flocks it, retrying until ctx is done.
func lockFile(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sensor: open %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("sensor: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("sensor: lock %s: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func readSaved(f *os.File) (savedStatus, bool) {
	var s savedStatus
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return s, false
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return s, false
	}
	if json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

func writeSaved(f *os.File, s savedStatus) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("sensor: encode state: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("sensor: write state file: %w", err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("sensor: write state file: %w", err)
	}
	return nil
}
