// Package sensor is the local SIEM's Linux audit sensor: it configures the
// kernel audit subsystem (baseline rules tagged with the sensor's key),
// receives the audit record stream over netlink, reassembles the records of
// each audit event with go-libaudit, and normalises them into telemetry.Events
// for the Sigma detector: linux/auditd records (SYSCALL, EXECVE, PATH, ...),
// linux/process_creation for each exec and linux/file_event for each file
// created or opened for writing under a watched path.
//
// Start needs root and the kernel audit subsystem; without them it returns
// an error wrapping ErrUnavailable. Stop removes exactly the rules the sensor
// added and restores the audit status it found. The normalisation is
// available without root through Normaliser, Normalise and ParseLog, for
// replays and tests.
package sensor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/core/telemetry"
)

// ErrUnavailable is wrapped by the error Start returns when the host cannot
// run the sensor: not root, no kernel audit subsystem, or a locked audit
// configuration.
var ErrUnavailable = errors.New("local siem: the audit sensor needs root and the kernel audit subsystem")

// unavailable wraps ErrUnavailable with what is missing, in one line.
func unavailable(reason string) error {
	reason = strings.ReplaceAll(reason, "\n", " ")
	return fmt.Errorf("%w (%s): run `vigil run --replay` to replay recorded telemetry instead", ErrUnavailable, reason)
}

// Defaults of Config.
const (
	DefaultKey           = "vigil"
	DefaultBacklogLimit  = 32768
	DefaultReceiveBuffer = 32 << 20
	DefaultStateDir      = "/run/vigil"
)

// Modes in which the sensor receives the audit stream (Stats.Mode).
const (
	// ModeUnicast: the sensor is the audit daemon (the kernel's audit pid).
	ModeUnicast = "unicast"
	// ModeMulticast: another audit daemon owns the audit pid; the sensor
	// reads the read-only multicast copy of the stream.
	ModeMulticast = "multicast"
)

// Config configures a Sensor. The zero value is usable.
type Config struct {
	// Key tags every rule the sensor adds (auditctl -k); Stop removes the
	// rules by it. Default DefaultKey.
	Key string
	// Host is the host name put in every Event. Default os.Hostname().
	Host string
	// BacklogLimit is the kernel backlog limit while the sensor runs; it is
	// only ever raised. Default DefaultBacklogLimit.
	BacklogLimit uint32
	// ReceiveBuffer is the netlink socket's receive buffer size in bytes.
	// Default DefaultReceiveBuffer.
	ReceiveBuffer int
	// Rules replaces the baseline rules (auditctl syntax, without the key
	// and the pid exclusion, which the sensor adds). Nil means
	// BaselineRules.
	Rules []string
	// StateDir holds the files that coordinate sensors running at the same
	// time. Default DefaultStateDir.
	StateDir string
	// ProcDir and PasswdFile are read to fill the process table and to
	// resolve user names. Defaults "/proc" and "/etc/passwd".
	ProcDir, PasswdFile string
	// ReassemblyTimeout is how long an audit event may wait for its last
	// record. The kernel sends the records of a syscall event together, and
	// a record logged outside any syscall (CONFIG_CHANGE of a netlink
	// request, ANOM_*) gets no end-of-event record: it, and every event
	// behind it, waits this long. Default 300ms.
	ReassemblyTimeout time.Duration
	// Logger receives debug and warning logs. Default: discarded.
	Logger *slog.Logger
	// RawLog, when set, receives every record in auditd's log format
	// ("type=SYSCALL msg=audit(...): ..."), one per line, as ParseLog reads
	// it back. It is written from the processing goroutine: it should be
	// buffered.
	RawLog io.Writer
}

func (c Config) withDefaults() Config {
	if c.Key == "" {
		c.Key = DefaultKey
	}
	if c.BacklogLimit == 0 {
		c.BacklogLimit = DefaultBacklogLimit
	}
	if c.ReceiveBuffer == 0 {
		c.ReceiveBuffer = DefaultReceiveBuffer
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.ProcDir == "" {
		c.ProcDir = "/proc"
	}
	if c.PasswdFile == "" {
		c.PasswdFile = "/etc/passwd"
	}
	if c.ReassemblyTimeout == 0 {
		c.ReassemblyTimeout = 300 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Stats are the kernel's audit counters and the sensor's own.
type Stats struct {
	// Mode is ModeUnicast or ModeMulticast ("" when not running).
	Mode string `json:"mode,omitempty"`
	// Lost is the kernel's count of audit records lost since boot (backlog
	// overflow, rate limit).
	Lost uint32 `json:"lost"`
	// Backlog is the number of records waiting in the kernel's queue.
	Backlog uint32 `json:"backlog"`
	// BacklogLimit is the kernel's current backlog limit.
	BacklogLimit uint32 `json:"backlog_limit"`
	// Records counts audit records received from the kernel.
	Records uint64 `json:"records"`
	// Events counts reassembled audit events (records sharing a serial).
	Events uint64 `json:"events"`
	// Emitted counts normalised Events passed to emit.
	Emitted uint64 `json:"emitted"`
	// Unparsed counts records whose header could not be parsed.
	Unparsed uint64 `json:"unparsed"`
	// Dropped counts socket overruns (ENOBUFS): records dropped between the
	// kernel and the sensor, possible only in multicast mode.
	Dropped uint64 `json:"dropped"`
	// SequenceGaps counts audit serials missing from the stream. Serials
	// the kernel used for records it never sent (filtered) count too, so it
	// is a hint, unlike Lost.
	SequenceGaps uint64 `json:"sequence_gaps"`
}

// Sensor is the kernel audit sensor. Create it with New, run it with Start
// and Stop; a Sensor cannot be restarted.
type Sensor struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards the fields below and the control socket
	started  bool
	ctrl     *nlSocket
	data     *nlSocket
	wakeFD   int
	mode     string
	ownPID   bool // the sensor set itself as the kernel's audit pid
	added    []Rule
	lease    *hostLease
	records  chan rawRecord
	reasm    *libaudit.Reassembler
	norm     *Normaliser
	emit     func([]telemetry.Event)
	readDone chan struct{}
	procDone chan struct{}
	stopped  chan struct{}

	stopOnce sync.Once
	stopErr  error

	nRecords, nEvents, nEmitted, nUnparsed, nDropped, nGaps atomic.Uint64
}

// rawRecord is one audit record as received.
type rawRecord struct {
	typ  uint16
	data string
}

// New returns a Sensor configured by cfg. It has no side effect.
func New(cfg Config) *Sensor {
	cfg = cfg.withDefaults()
	return &Sensor{cfg: cfg, log: cfg.Logger, wakeFD: -1, stopped: make(chan struct{})}
}

// Start configures the kernel and starts receiving: emit is called with the
// Events of each audit event, in serial order, from a single goroutine; it
// should return quickly (the kernel throttles audited processes while the
// sensor lags). Start records the audit status, becomes the audit daemon (or
// listens to the multicast stream when another daemon owns the audit pid),
// enables auditing, raises the backlog limit, lifts the rate limit and adds
// the rules. The sensor stops when ctx is cancelled, or on Stop.
func (s *Sensor) Start(ctx context.Context, emit func([]telemetry.Event)) (err error) {
	if emit == nil {
		return errors.New("sensor: start: emit is nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sensor: start: already started")
	}
	s.started = true
	s.emit = emit

	if euid := os.Geteuid(); euid != 0 {
		return unavailable(fmt.Sprintf("running as uid %d, not root", euid))
	}
	ctrl, err := openNetlink(0, 0)
	if err != nil {
		return unavailable("no kernel audit netlink: " + err.Error())
	}
	st, err := ctrl.status(ctx)
	if err != nil {
		ctrl.close()
		if ctx.Err() != nil {
			return fmt.Errorf("sensor: start: %w", err)
		}
		return unavailable("cannot query the kernel audit status: " + err.Error())
	}
	if st.Enabled == 2 {
		ctrl.close()
		return unavailable("the audit configuration is locked (enabled=2) until reboot")
	}
	s.ctrl = ctrl

	// From here on, undo everything on failure.
	defer func() {
		if err != nil {
			if terr := s.teardown(context.WithoutCancel(ctx)); terr != nil {
				s.log.Warn("audit sensor: undo a failed start", "err", terr)
			}
		}
	}()

	host := s.cfg.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	s.norm = NewNormaliser(NormaliserConfig{
		Host: host, ProcDir: s.cfg.ProcDir, PasswdFile: s.cfg.PasswdFile,
		IgnorePID: os.Getpid(), IgnoreKey: s.cfg.Key,
	})
	s.norm.SeedProcesses()

	current := savedStatus{Enabled: st.Enabled, BacklogLimit: st.BacklogLimit, RateLimit: st.RateLimit, BacklogWaitTime: st.BacklogWaitTime}
	lease, orig, recovered, err := acquireLease(ctx, s.cfg.StateDir, current)
	if err != nil {
		return err
	}
	s.lease = lease
	if recovered {
		s.log.Info("audit sensor: a previous sensor did not restore the audit status; restoring its saved status on stop", "saved", orig)
	}

	// The record pipeline runs before the kernel sends anything.
	s.records = make(chan rawRecord, 1<<16)
	s.reasm, err = libaudit.NewReassembler(256, s.cfg.ReassemblyTimeout, stream{s})
	if err != nil {
		return fmt.Errorf("sensor: start: reassembler: %w", err)
	}
	s.procDone = make(chan struct{})
	go s.process()

	if err := s.openData(ctx, st); err != nil {
		return err
	}

	// Kernel settings for the run.
	sets := []struct {
		what string
		st   libaudit.AuditStatus
		skip bool
	}{
		{"enable auditing", libaudit.AuditStatus{Mask: libaudit.AuditStatusEnabled, Enabled: 1}, st.Enabled == 1},
		{"raise backlog_limit", libaudit.AuditStatus{Mask: libaudit.AuditStatusBacklogLimit, BacklogLimit: s.cfg.BacklogLimit}, st.BacklogLimit >= s.cfg.BacklogLimit},
		{"lift rate_limit", libaudit.AuditStatus{Mask: libaudit.AuditStatusRateLimit, RateLimit: 0}, st.RateLimit == 0},
		// Without a wait time the kernel drops records as soon as the
		// backlog is full instead of throttling the audited processes.
		// 6000 jiffies is accepted whatever HZ is (the kernel's maximum
		// is 600*HZ) and waits 6s to 60s.
		{"set backlog_wait_time", libaudit.AuditStatus{Mask: libaudit.AuditStatusBacklogWaitTime, BacklogWaitTime: 6000}, st.BacklogWaitTime != 0},
	}
	for _, set := range sets {
		if set.skip {
			continue
		}
		if err := s.ctrl.setStatus(ctx, set.st, nil); err != nil {
			return fmt.Errorf("sensor: %s: %w", set.what, err)
		}
	}

	if err := s.installRules(ctx); err != nil {
		return err
	}

	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Stop(sctx); err != nil {
				s.log.Warn("audit sensor: stop on cancel", "err", err)
			}
		case <-s.stopped:
		}
	}()
	s.log.Debug("audit sensor: started", "mode", s.mode, "rules", len(s.added), "host", host)
	return nil
}

// openData opens the data socket: unicast as the audit daemon when nobody
// else is, else multicast; and starts the reader.
func (s *Sensor) openData(ctx context.Context, st *libaudit.AuditStatus) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("sensor: eventfd: %w", err)
	}
	s.wakeFD = wake

	owner := int(st.PID)
	if owner != 0 && processAlive(owner) {
		s.log.Debug("audit sensor: another audit daemon owns the audit pid, reading the multicast stream", "pid", owner)
		if err := s.openMulticast(); err != nil {
			return err
		}
	} else {
		data, err := openNetlink(0, s.cfg.ReceiveBuffer)
		if err != nil {
			return fmt.Errorf("sensor: %w", err)
		}
		set := libaudit.AuditStatus{Mask: libaudit.AuditStatusPID, PID: uint32(os.Getpid())}
		err = data.setStatus(ctx, set, s.enqueue)
		switch {
		case err == nil:
			s.data, s.mode, s.ownPID = data, ModeUnicast, true
		case errors.Is(err, syscall.EEXIST):
			// Lost a race with another daemon.
			data.close()
			if err := s.openMulticast(); err != nil {
				return err
			}
		default:
			data.close()
			return fmt.Errorf("sensor: become the audit daemon: %w", err)
		}
	}
	s.readDone = make(chan struct{})
	go s.read()
	return nil
}

func (s *Sensor) openMulticast() error {
	data, err := openNetlink(auditNlgrpReadlog, s.cfg.ReceiveBuffer)
	if err != nil {
		return fmt.Errorf("sensor: multicast: %w", err)
	}
	s.data, s.mode = data, ModeMulticast
	return nil
}

// installRules removes rules left by crashed sensors, then adds the rules.
func (s *Sensor) installRules(ctx context.Context) error {
	var rules []Rule
	var err error
	if s.cfg.Rules == nil {
		rules, err = BaselineRules(s.cfg.Key, os.Getpid(), s.log)
		if err != nil {
			return err
		}
	} else {
		suffix := fmt.Sprintf(" -F pid!=%d -k %s", os.Getpid(), s.cfg.Key)
		for _, t := range s.cfg.Rules {
			r, err := BuildRule(t + suffix)
			if err != nil {
				return err
			}
			rules = append(rules, r)
		}
	}
	s.removeStaleRules(ctx)
	for _, r := range rules {
		if err := addRule(ctx, s.ctrl, r); err != nil {
			return fmt.Errorf("sensor: add rule %q: %w", r.Text, err)
		}
		s.added = append(s.added, r)
	}
	return nil
}

// Stop removes the sensor's rules, gives up the audit pid, restores the
// audit status found at Start (when no other sensor still runs), and stops
// the pipeline after delivering the events already received. It is safe to
// call more than once and concurrently; later calls return the first one's
// result.
func (s *Sensor) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		if s.ctrl != nil {
			s.stopErr = s.teardown(ctx)
		}
		s.mu.Unlock()
		close(s.stopped)
	})
	return s.stopErr
}

// teardown undoes what Start did, as far as it got. s.mu must be held.
func (s *Sensor) teardown(ctx context.Context) error {
	var errs []error
	if s.ctrl != nil {
		for _, r := range s.added {
			if err := deleteRule(ctx, s.ctrl, r); err != nil {
				errs = append(errs, fmt.Errorf("sensor: delete rule %q: %w", r.Text, err))
			}
		}
		s.added = nil
		if s.ownPID {
			if err := s.ctrl.setStatus(ctx, libaudit.AuditStatus{Mask: libaudit.AuditStatusPID, PID: 0}, nil); err != nil {
				errs = append(errs, fmt.Errorf("sensor: give up the audit pid: %w", err))
			}
			s.ownPID = false
		}
	}
	if s.lease != nil {
		orig, last, err := s.lease.release(ctx)
		s.lease = nil
		if err != nil {
			errs = append(errs, err)
		}
		if last && s.ctrl != nil {
			if err := s.restore(ctx, orig); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Stop the reader after it drained the socket, then the processor after
	// it handled every record (the reassembler flushes incomplete events).
	if s.readDone != nil {
		unix.Write(s.wakeFD, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		if err := waitDone(ctx, s.readDone); err != nil {
			errs = append(errs, fmt.Errorf("sensor: stop reader: %w", err))
		}
		s.readDone = nil
	}
	if s.procDone != nil {
		close(s.records)
		if err := waitDone(ctx, s.procDone); err != nil {
			errs = append(errs, fmt.Errorf("sensor: stop processor: %w", err))
		}
		s.procDone = nil
	}
	if s.data != nil {
		s.data.close()
		s.data = nil
	}
	if s.wakeFD >= 0 {
		unix.Close(s.wakeFD)
		s.wakeFD = -1
	}
	if s.ctrl != nil {
		s.ctrl.close()
		s.ctrl = nil
	}
	s.mode = ""
	return errors.Join(errs...)
}

// restore sets the audit status fields the sensor may have changed back.
func (s *Sensor) restore(ctx context.Context, orig savedStatus) error {
	cur, err := s.ctrl.status(ctx)
	if err != nil {
		return fmt.Errorf("sensor: restore audit status: %w", err)
	}
	var errs []error
	set := func(what string, st libaudit.AuditStatus) {
		if err := s.ctrl.setStatus(ctx, st, nil); err != nil {
			errs = append(errs, fmt.Errorf("sensor: restore %s: %w", what, err))
		}
	}
	if cur.BacklogLimit != orig.BacklogLimit {
		set("backlog_limit", libaudit.AuditStatus{Mask: libaudit.AuditStatusBacklogLimit, BacklogLimit: orig.BacklogLimit})
	}
	if cur.RateLimit != orig.RateLimit {
		set("rate_limit", libaudit.AuditStatus{Mask: libaudit.AuditStatusRateLimit, RateLimit: orig.RateLimit})
	}
	if cur.BacklogWaitTime != orig.BacklogWaitTime {
		set("backlog_wait_time", libaudit.AuditStatus{Mask: libaudit.AuditStatusBacklogWaitTime, BacklogWaitTime: orig.BacklogWaitTime})
	}
	if cur.Enabled != orig.Enabled {
		set("enabled", libaudit.AuditStatus{Mask: libaudit.AuditStatusEnabled, Enabled: orig.Enabled})
	}
	return errors.Join(errs...)
}

// Stats returns the kernel's audit counters and the sensor's own.
func (s *Sensor) Stats(ctx context.Context) (Stats, error) {
	out := Stats{
		Records:      s.nRecords.Load(),
		Events:       s.nEvents.Load(),
		Emitted:      s.nEmitted.Load(),
		Unparsed:     s.nUnparsed.Load(),
		Dropped:      s.nDropped.Load(),
		SequenceGaps: s.nGaps.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.Mode = s.mode
	ctrl := s.ctrl
	if ctrl == nil {
		if os.Geteuid() != 0 {
			return out, unavailable("running as a non-root user")
		}
		c, err := openNetlink(0, 0)
		if err != nil {
			return out, unavailable("no kernel audit netlink: " + err.Error())
		}
		defer c.close()
		ctrl = c
	}
	st, err := ctrl.status(ctx)
	if err != nil {
		return out, fmt.Errorf("sensor: stats: %w", err)
	}
	out.Lost, out.Backlog, out.BacklogLimit = st.Lost, st.Backlog, st.BacklogLimit
	return out, nil
}

// read receives records from the data socket until woken through wakeFD,
// then drains what is left and returns. It does nothing else, so that the
// socket is emptied as fast as the kernel fills it.
func (s *Sensor) read() {
	defer close(s.readDone)
	buf := make([]byte, 1<<16)
	fds := []unix.PollFd{{Fd: int32(s.data.fd), Events: unix.POLLIN}, {Fd: int32(s.wakeFD), Events: unix.POLLIN}}
	stopping := false
	for {
		n, from, err := unix.Recvfrom(s.data.fd, buf, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 || n < unix.NLMSG_HDRLEN {
				continue
			}
			s.enqueue(binary.NativeEndian.Uint16(buf[4:6]), buf[unix.NLMSG_HDRLEN:n])
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			s.nDropped.Add(1)
			continue
		case errors.Is(err, unix.EAGAIN):
			if stopping {
				return
			}
		default:
			s.log.Warn("audit sensor: receive failed, stopping the reader", "err", err)
			return
		}
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			s.log.Warn("audit sensor: poll failed, stopping the reader", "err", err)
			return
		}
		if fds[1].Revents&unix.POLLIN != 0 {
			stopping = true
		}
	}
}

// enqueue passes one netlink message to the processor if it is a record.
func (s *Sensor) enqueue(typ uint16, data []byte) {
	if !isRecord(typ) {
		return
	}
	for len(data) > 0 && (data[len(data)-1] == 0 || data[len(data)-1] == '\n') {
		data = data[:len(data)-1]
	}
	s.nRecords.Add(1)
	s.records <- rawRecord{typ: typ, data: string(data)}
}

// process parses records, feeds the reassembler (whose callbacks normalise
// and emit) and runs its maintenance, until the records channel closes.
func (s *Sensor) process() {
	defer close(s.procDone)
	tick := time.NewTicker(s.cfg.ReassemblyTimeout / 3)
	defer tick.Stop()
	lastSweep := time.Now()
	for {
		select {
		case r, ok := <-s.records:
			if !ok {
				_ = s.reasm.Close() // flushes what is in flight
				return
			}
			s.push(r)
		case now := <-tick.C:
			_ = s.reasm.Maintain()
			if now.Sub(lastSweep) > 30*time.Second {
				s.norm.ExpireProcesses()
				lastSweep = now
			}
		}
	}
}

func (s *Sensor) push(r rawRecord) {
	typ := auparse.AuditMessageType(r.typ)
	if s.cfg.RawLog != nil {
		if _, err := fmt.Fprintf(s.cfg.RawLog, "type=%s msg=%s\n", typ, r.data); err != nil {
			s.log.Debug("audit sensor: raw log write failed", "err", err)
		}
	}
	msg, err := auparse.Parse(typ, r.data)
	if err != nil {
		s.nUnparsed.Add(1)
		return
	}
	s.reasm.PushMessage(msg)
	if typ == auparse.AUDIT_ANOM_ABEND {
		// A core dump is logged outside any syscall: no EOE follows.
		s.reasm.PushMessage(&auparse.AuditMessage{RecordType: auparse.AUDIT_EOE, Sequence: msg.Sequence, Timestamp: msg.Timestamp})
	}
}

// stream receives the reassembler's callbacks.
type stream struct{ s *Sensor }

// ReassemblyComplete normalises one audit event and emits its Events.
func (st stream) ReassemblyComplete(msgs []*auparse.AuditMessage) {
	s := st.s
	s.nEvents.Add(1)
	evs := s.norm.Normalise(msgs)
	if len(evs) == 0 {
		return
	}
	s.nEmitted.Add(uint64(len(evs)))
	s.emit(evs)
}

// EventsLost counts serials missing from the stream. A record arriving
// after its event was flushed makes the reassembler's unsigned arithmetic
// wrap: such counts are not gaps.
func (st stream) EventsLost(n int) {
	if n > 0 && n < 1<<31 {
		st.s.nGaps.Add(uint64(n))
	}
}

// waitDone waits for done to close or ctx to end.
func waitDone(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// processAlive reports whether pid exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
