//go:build live

package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/core/telemetry"
)

// The live tests start the real sensor: they need root and the kernel audit
// subsystem, and skip (saying why) without them.

// markerPrefix starts every marker the live tests plant in a shell's argv.
const markerPrefix = "vigil-marker-"

// sink collects the events a live test cares about.
type sink struct {
	mu     sync.Mutex
	events []telemetry.Event
	keep   func(*telemetry.Event) bool
}

// newSink keeps the events whose ancestry holds a test marker, plus those
// extra accepts.
func newSink(extra func(*telemetry.Event) bool) *sink {
	return &sink{keep: func(e *telemetry.Event) bool {
		if containsMarker(e.Ancestry, markerPrefix) {
			return true
		}
		return extra != nil && extra(e)
	}}
}

func (s *sink) add(evs []telemetry.Event) {
	for i := range evs {
		if s.keep(&evs[i]) {
			s.mu.Lock()
			s.events = append(s.events, evs[i])
			s.mu.Unlock()
		}
	}
}

// find returns the kept events for which match is true.
func (s *sink) find(match func(*telemetry.Event) bool) []telemetry.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []telemetry.Event
	for i := range s.events {
		if match(&s.events[i]) {
			out = append(out, s.events[i])
		}
	}
	return out
}

// waitFind waits up to 20s for at least one event matching match.
func (s *sink) waitFind(t *testing.T, what string, match func(*telemetry.Event) bool) []telemetry.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if evs := s.find(match); len(evs) > 0 {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireRoot fails a live test (built with -tags live) on a host that
// cannot run the sensor; go test without the tag leaves these tests out.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("live audit sensor test: needs root (run `make test` as root)")
	}
}

// startSensor starts a sensor for a live test and stops it at cleanup.
func startSensor(t *testing.T, cfg Config, emit func([]telemetry.Event)) *Sensor {
	t.Helper()
	requireRoot(t)
	s := New(cfg)
	// The sensor runs until ctx ends: until the test's cleanup.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx, emit); err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("live audit sensor test: %v", err)
		}
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// newMarker returns a marker unique to this test run.
func newMarker(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("%s%s-%d", markerPrefix, name, time.Now().UnixNano())
}

// runMarked runs script in /bin/sh with the marker as $0 and returns the
// marker; the command's failure is the caller's to judge.
func runMarked(t *testing.T, script string) (marker string, err error) {
	t.Helper()
	marker = newMarker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", script, marker).CombinedOutput()
	if len(out) > 0 {
		t.Logf("%s: %s", script, out)
	}
	return marker, err
}

// runHelper runs the test binary as a helper process (see TestMain).
func runHelper(t *testing.T, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper %s: %v: %s", mode, err, out)
	}
}

func fieldIs(e *telemetry.Event, k, v string) bool { return e.Get(k) == v }

func hasMarker(e *telemetry.Event, marker string) bool { return containsMarker(e.Ancestry, marker) }

func TestLiveProcessCreationAncestry(t *testing.T) {
	sk := newSink(nil)
	startSensor(t, Config{}, sk.add)
	marker, err := runMarked(t, "ls / >/dev/null; /bin/true")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := filepath.EvalSymlinks("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	evs := sk.waitFind(t, "process_creation of ls", func(e *telemetry.Event) bool {
		return e.Source == telemetry.ProcessCreation && fieldIs(e, "Image", ls) && hasMarker(e, marker)
	})
	e := evs[0]
	shell := "/bin/sh -c ls / >/dev/null; /bin/true " + marker
	if len(e.Ancestry) < 2 || e.Ancestry[0] != "ls /" || e.Ancestry[1] != shell {
		t.Errorf("ancestry = %q, want [ls / %q ...]", e.Ancestry, shell)
	}
	if got := e.Get("ParentCommandLine"); got != shell {
		t.Errorf("ParentCommandLine = %q, want %q", got, shell)
	}
	wd, _ := os.Getwd()
	for k, want := range map[string]string{"CommandLine": "ls /", "User": "root", "CurrentDirectory": wd} {
		if got := e.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if pid, _ := strconv.Atoi(e.Get("ParentProcessId")); pid <= 0 || e.Get("ProcessId") == "" {
		t.Errorf("pids: %v", e.Fields)
	}
	if e.Sequence == 0 || e.Host == "" || time.Since(e.Time) > time.Minute || time.Since(e.Time) < -time.Minute {
		t.Errorf("sequence %d, host %q, time %v", e.Sequence, e.Host, e.Time)
	}
	// The raw records of the same exec are there too.
	for _, typ := range []string{"SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"} {
		if len(sk.find(func(x *telemetry.Event) bool {
			return x.Sequence == e.Sequence && x.Source == telemetry.Auditd && fieldIs(x, "type", typ)
		})) == 0 {
			t.Errorf("no %s record for the exec of ls", typ)
		}
	}
}

func TestLiveFileEvents(t *testing.T) {
	sk := newSink(nil)
	startSensor(t, Config{}, sk.add)
	decoy := fmt.Sprintf("/var/log/vigil-decoy-%d.log", time.Now().UnixNano())
	moved := decoy + ".old"
	t.Cleanup(func() { os.Remove(decoy); os.Remove(moved) })
	marker, err := runMarked(t, fmt.Sprintf("echo x > %s && mv %s %s && rm -f %s", decoy, decoy, moved, moved))
	if err != nil {
		t.Fatal(err)
	}
	path := func(name, nametype string) func(*telemetry.Event) bool {
		return func(e *telemetry.Event) bool {
			return e.Source == telemetry.Auditd && fieldIs(e, "type", "PATH") && fieldIs(e, "name", name) &&
				fieldIs(e, "nametype", nametype) && hasMarker(e, marker)
		}
	}
	steps := []struct{ name, nametype, syscall string }{
		{decoy, "CREATE", "openat"},
		{decoy, "DELETE", "rename"},
		{moved, "CREATE", "rename"},
		{moved, "DELETE", "unlink"},
	}
	for _, st := range steps {
		e := sk.waitFind(t, st.nametype+" of "+st.name, path(st.name, st.nametype))[0]
		if got := e.Get("syscall"); !strings.HasPrefix(got, st.syscall) {
			t.Errorf("%s %s: syscall = %q, want %s*", st.nametype, st.name, got, st.syscall)
		}
		if e.Get("key") != DefaultKey {
			t.Errorf("%s %s: key = %q", st.nametype, st.name, e.Get("key"))
		}
	}
	for _, target := range []string{decoy, moved} {
		sk.waitFind(t, "file_event for "+target, func(e *telemetry.Event) bool {
			return e.Source == telemetry.FileEvent && fieldIs(e, "TargetFilename", target) && e.Get("Image") != ""
		})
	}
}

func TestLiveAnomAbend(t *testing.T) {
	sk := newSink(nil)
	startSensor(t, Config{}, sk.add)
	marker, err := runMarked(t, "ulimit -c 0; kill -SEGV $$")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSEGV {
		t.Fatalf("the shell did not die of SIGSEGV: %v", err)
	}
	e := sk.waitFind(t, "ANOM_ABEND", func(e *telemetry.Event) bool {
		return e.Source == telemetry.Auditd && fieldIs(e, "type", "ANOM_ABEND") && hasMarker(e, marker)
	})[0]
	if e.Get("sig") != "11" || e.Get("comm") != "sh" {
		t.Errorf("ANOM_ABEND fields: %v", e.Fields)
	}
}

func TestLiveClockChange(t *testing.T) {
	sk := newSink(func(e *telemetry.Event) bool {
		return e.Source == telemetry.Auditd && fieldIs(e, "type", "SYSCALL") && strings.HasPrefix(e.Get("syscall"), "clock_settime") ||
			e.Get("syscall") == "settimeofday"
	})
	startSensor(t, Config{}, sk.add)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"settimeofday", "clock_settime"} {
		t.Run(sc, func(t *testing.T) {
			runHelper(t, sc)
			e := sk.waitFind(t, sc+" SYSCALL", func(e *telemetry.Event) bool {
				return fieldIs(e, "type", "SYSCALL") && fieldIs(e, "syscall", sc) && fieldIs(e, "exe", self)
			})[0]
			if e.Get("SYSCALL") != sc || e.Get("success") != "yes" || e.Get("key") != DefaultKey {
				t.Errorf("fields: %v", e.Fields)
			}
		})
	}
}

func TestLivePrlimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	sk := newSink(nil)
	startSensor(t, Config{}, sk.add)
	marker, err := runMarked(t, "sleep 5 & prlimit --pid $! --nofile=256:256; kill $!")
	if err != nil {
		t.Fatal(err)
	}
	e := sk.waitFind(t, "prlimit64 SYSCALL", func(e *telemetry.Event) bool {
		return fieldIs(e, "type", "SYSCALL") && fieldIs(e, "syscall", "prlimit64") && fieldIs(e, "comm", "prlimit") && hasMarker(e, marker)
	})[0]
	// a1 is the resource (RLIMIT_NOFILE = 7), a0 the target pid in hex.
	if e.Get("a1") != "7" || e.Get("a0") == "0" {
		t.Errorf("prlimit64 arguments: a0=%s a1=%s", e.Get("a0"), e.Get("a1"))
	}
	// A read of the limits (a2 = NULL) is not audited.
	if reads := sk.find(func(e *telemetry.Event) bool {
		return fieldIs(e, "syscall", "prlimit64") && fieldIs(e, "a2", "0") && hasMarker(e, marker)
	}); len(reads) > 0 {
		t.Errorf("prlimit64 reads audited: %v", reads[0].Fields)
	}
}

// otherSensorRunning reports whether a sensor of another process holds the
// host lease (then the audit status is not this test's to check).
func otherSensorRunning(t *testing.T) bool {
	f, err := os.OpenFile(filepath.Join(DefaultStateDir, holdersFileName), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// kernelRules lists the kernel's rules in auditctl syntax.
func kernelRules(t *testing.T, ctrl *nlSocket) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wires, err := ctrl.listRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range wires {
		s, err := rule.ToCommandLine(w, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func countContaining(list []string, sub string) int {
	n := 0
	for _, s := range list {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func TestLiveStopRestoresStatusAndForeignRules(t *testing.T) {
	requireRoot(t)
	if otherSensorRunning(t) {
		t.Skip("another process runs an audit sensor: the audit status is not this test's to check")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctrl, err := openNetlink(0, 0)
	if err != nil {
		t.Fatalf("live audit sensor test: %v", err)
	}
	t.Cleanup(func() { ctrl.close() }) // after the cleanups below, which use it
	before, err := ctrl.status(ctx)
	if err != nil {
		t.Fatalf("live audit sensor test: %v", err)
	}
	// A distinctive status to restore, put back as found at the end.
	setup := []libStatus{
		{mask: libaudit.AuditStatusBacklogLimit, val: 321, old: before.BacklogLimit},
		{mask: libaudit.AuditStatusRateLimit, val: 5000, old: before.RateLimit},
	}
	for _, s := range setup {
		if err := setStatusField(ctx, ctrl, s.mask, s.val); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = setStatusField(context.Background(), ctrl, s.mask, s.old) })
	}
	// Rules of the administrator, one even with the sensor's key.
	foreign := []string{
		"-a always,exit -F arch=b64 -S acct -k vigil-test-foreign",
		"-a always,exit -F arch=b64 -S swapon -k " + DefaultKey,
	}
	for _, text := range foreign {
		r, err := BuildRule(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := ctrl.request(ctx, auditAddRule, r.Wire, nil); err != nil {
			t.Fatalf("add foreign rule: %v", err)
		}
		t.Cleanup(func() { _ = ctrl.request(context.Background(), auditDelRule, r.Wire, nil) })
	}
	status0, err := ctrl.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rules0 := kernelRules(t, ctrl)

	s := New(Config{})
	if err := s.Start(ctx, func([]telemetry.Event) {}); err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("live audit sensor test: %v", err)
		}
		t.Fatal(err)
	}
	self := "pid!=" + strconv.Itoa(os.Getpid())
	baseline, err := BaselineRules(DefaultKey, os.Getpid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	running := kernelRules(t, ctrl)
	// Every baseline rule was accepted by the kernel.
	if got := countContaining(running, self); got != len(baseline) || len(s.added) != len(baseline) {
		t.Errorf("%d kernel rules and %d added, want the %d baseline rules", got, len(s.added), len(baseline))
	}
	st, err := ctrl.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enabled != 1 || st.BacklogLimit < DefaultBacklogLimit || st.RateLimit != 0 {
		t.Errorf("running status: enabled %d backlog_limit %d rate_limit %d", st.Enabled, st.BacklogLimit, st.RateLimit)
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Mode == ModeUnicast && st.PID != uint32(os.Getpid()) {
		t.Errorf("unicast mode but the audit pid is %d", st.PID)
	}
	if out, err := exec.Command("auditctl", "-l").Output(); err == nil {
		if n := strings.Count(string(out), self); n != len(baseline) {
			t.Errorf("auditctl -l shows %d sensor rules, want %d", n, len(baseline))
		}
	}

	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	after := kernelRules(t, ctrl)
	if countContaining(after, self) != 0 {
		t.Errorf("sensor rules left after Stop: %q", after)
	}
	if strings.Join(after, "\n") != strings.Join(rules0, "\n") {
		t.Errorf("rules after Stop:\n%s\nwant the rules before Start:\n%s", strings.Join(after, "\n"), strings.Join(rules0, "\n"))
	}
	for _, want := range []string{"key=vigil-test-foreign", "-S swapon -F key=" + DefaultKey} {
		if countContaining(after, want) != 1 {
			t.Errorf("foreign rule %q lost", want)
		}
	}
	status1, err := ctrl.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status1.Enabled != status0.Enabled || status1.BacklogLimit != status0.BacklogLimit ||
		status1.RateLimit != status0.RateLimit || status1.BacklogWaitTime != status0.BacklogWaitTime || status1.PID != status0.PID {
		t.Errorf("status after Stop %+v, want as before Start %+v", *status1, *status0)
	}
	if out, err := exec.Command("auditctl", "-s").Output(); err == nil {
		for _, want := range []string{"backlog_limit 321", "rate_limit 5000", fmt.Sprintf("enabled %d", status0.Enabled)} {
			if !strings.Contains(string(out), want) {
				t.Errorf("auditctl -s lacks %q:\n%s", want, out)
			}
		}
	}
}

// libStatus is one audit status field a test sets and puts back.
type libStatus struct {
	mask     libaudit.AuditStatusMask
	val, old uint32
}

func setStatusField(ctx context.Context, ctrl *nlSocket, mask libaudit.AuditStatusMask, val uint32) error {
	st := libaudit.AuditStatus{Mask: mask}
	switch mask {
	case libaudit.AuditStatusBacklogLimit:
		st.BacklogLimit = val
	case libaudit.AuditStatusRateLimit:
		st.RateLimit = val
	default:
		return fmt.Errorf("setStatusField: unsupported mask %d", mask)
	}
	return ctrl.setStatus(ctx, st, nil)
}

func TestLiveCancelStops(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Config{})
	if err := s.Start(ctx, func([]telemetry.Event) {}); err != nil {
		cancel()
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("live audit sensor test: %v", err)
		}
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the sensor did not stop within 20s of its context being cancelled")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop after cancel: %v", err)
	}
	ctrl, err := openNetlink(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.close()
	if n := countContaining(kernelRules(t, ctrl), "pid!="+strconv.Itoa(os.Getpid())); n != 0 {
		t.Errorf("%d sensor rules left after cancel", n)
	}
}

func TestLiveTwoSensors(t *testing.T) {
	sk1, sk2 := newSink(nil), newSink(nil)
	s1 := startSensor(t, Config{}, sk1.add)
	s2 := startSensor(t, Config{}, sk2.add)
	ctx := context.Background()
	st1, err := s1.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := s2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Mode != ModeMulticast {
		t.Errorf("second sensor mode %q (first %q), want %q", st2.Mode, st1.Mode, ModeMulticast)
	}
	pwd, err := filepath.EvalSymlinks("/bin/pwd")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(marker string) func(*telemetry.Event) bool {
		return func(e *telemetry.Event) bool {
			return e.Source == telemetry.ProcessCreation && fieldIs(e, "Image", pwd) && hasMarker(e, marker)
		}
	}
	marker, err := runMarked(t, "/bin/pwd >/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	sk1.waitFind(t, "exec seen by the first sensor", exec(marker))
	sk2.waitFind(t, "exec seen by the second sensor", exec(marker))

	// The first stops: the second keeps its rules and the audit status.
	if err := s1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	marker, err = runMarked(t, "/bin/pwd >/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	sk2.waitFind(t, "exec seen by the second sensor after the first stopped", exec(marker))
}

func TestLiveSelfExcluded(t *testing.T) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	selfFile := "/var/log/vigil-self-" + stamp
	sk := newSink(func(e *telemetry.Event) bool { return strings.Contains(e.Get("name"), "vigil-self-"+stamp) })
	startSensor(t, Config{}, sk.add)
	if err := os.WriteFile(selfFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(selfFile); err != nil {
		t.Fatal(err)
	}
	// The child's write proves the stream is flowing past the test's own.
	childFile := "/var/log/vigil-child-" + stamp
	marker, err := runMarked(t, "echo x > "+childFile+"; rm -f "+childFile)
	if err != nil {
		t.Fatal(err)
	}
	sk.waitFind(t, "the child's PATH CREATE", func(e *telemetry.Event) bool {
		return fieldIs(e, "name", childFile) && fieldIs(e, "nametype", "CREATE") && hasMarker(e, marker)
	})
	if evs := sk.find(func(e *telemetry.Event) bool { return strings.Contains(e.Get("name"), "vigil-self-") }); len(evs) > 0 {
		t.Errorf("events of the sensor's own process: %v", evs[0].Fields)
	}
}

func TestLiveBurst(t *testing.T) {
	const execs = 10000
	trueImage, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	marker := newMarker(t)
	sentinel := marker + "-done"
	var seen, sentinelSeen, all atomic.Int64
	emit := func(evs []telemetry.Event) {
		all.Add(int64(len(evs)))
		for i := range evs {
			e := &evs[i]
			if e.Source != telemetry.ProcessCreation {
				continue
			}
			switch {
			case e.Fields["Image"] == trueImage && containsMarker(e.Ancestry, marker) && !containsMarker(e.Ancestry, sentinel):
				seen.Add(1)
			case containsMarker(e.Ancestry, sentinel):
				sentinelSeen.Add(1)
			}
		}
	}
	s := startSensor(t, Config{}, emit)
	ctx := context.Background()
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Two loops of 5000 execs, one per core of a 2-core machine.
	script := `for j in 1 2; do ( i=0; while [ $i -lt 5000 ]; do /bin/true; i=$((i+1)); done ) & done; wait`
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "/bin/sh", "-c", script, marker).CombinedOutput(); err != nil {
		t.Fatalf("burst: %v: %s", err, out)
	}
	ran := time.Since(start)
	// Events arrive in serial order: once the sentinel's exec is seen,
	// every burst exec before it has been handled.
	if out, err := exec.CommandContext(cctx, "/bin/sh", "-c", "/bin/true", sentinel).CombinedOutput(); err != nil {
		t.Fatalf("sentinel: %v: %s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for sentinelSeen.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	drained := time.Since(start)
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("burst: %d execs of %s in %v (%.0f execs/s); all handled %v after the start; sensor: %d records, %d audit events, %d events emitted (%.0f events/s); kernel lost %d -> %d, sequence gaps %d, socket overruns %d",
		execs, trueImage, ran.Round(time.Millisecond), float64(execs)/ran.Seconds(), drained.Round(time.Millisecond),
		after.Records-before.Records, after.Events-before.Events, all.Load(), float64(all.Load())/drained.Seconds(),
		before.Lost, after.Lost, after.SequenceGaps-before.SequenceGaps, after.Dropped-before.Dropped)
	if sentinelSeen.Load() == 0 {
		t.Fatalf("the sentinel exec was not seen within 2 minutes (%d burst execs seen)", seen.Load())
	}
	if got := seen.Load(); got != execs {
		t.Errorf("saw %d execve of %s, want %d", got, trueImage, execs)
	}
	if after.Lost != before.Lost {
		t.Errorf("kernel lost counter went from %d to %d", before.Lost, after.Lost)
	}
	if after.Dropped != before.Dropped {
		t.Errorf("%d socket overruns", after.Dropped-before.Dropped)
	}
}

func TestLiveUnavailableAsNonRoot(t *testing.T) {
	requireRoot(t) // to switch to an unprivileged user
	dir, err := os.MkdirTemp("", "vigil-sensor-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sensor.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = []string{helperEnv + "=start", "TMPDIR=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("helper as nobody: %v (want exit 3, ErrUnavailable): %s", err, out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("message is not one line: %q", msg)
	}
	for _, want := range []string{"needs root and the kernel audit subsystem", "not root", "vigil run --replay"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestLiveFailedStartUndoes(t *testing.T) {
	requireRoot(t)
	if otherSensorRunning(t) {
		t.Skip("another process runs an audit sensor: the audit status is not this test's to check")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctrl, err := openNetlink(0, 0)
	if err != nil {
		t.Fatalf("live audit sensor test: %v", err)
	}
	defer ctrl.close()
	before, err := ctrl.status(ctx)
	if err != nil {
		t.Fatalf("live audit sensor test: %v", err)
	}
	rulesBefore := kernelRules(t, ctrl)
	// The second rule is refused by the kernel: a tree watch on a missing
	// directory.
	s := New(Config{Rules: []string{
		"-a always,exit -F arch=b64 -S execve",
		"-a always,exit -F dir=/nonexistent-vigil-test-dir -F perm=wa",
	}})
	err = s.Start(ctx, func([]telemetry.Event) {})
	if err == nil || !strings.Contains(err.Error(), "sensor: add rule") || !strings.Contains(err.Error(), "/nonexistent-vigil-test-dir") {
		t.Fatalf("Start err = %v, want the refused rule named", err)
	}
	if got := kernelRules(t, ctrl); strings.Join(got, "\n") != strings.Join(rulesBefore, "\n") {
		t.Errorf("rules after a failed Start: %q, want %q", got, rulesBefore)
	}
	after, err := ctrl.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Enabled != before.Enabled || after.BacklogLimit != before.BacklogLimit || after.PID != before.PID {
		t.Errorf("status after a failed Start %+v, want %+v", *after, *before)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}

func TestLiveRemovesStaleRules(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctrl, err := openNetlink(0, 0)
	if err != nil {
		t.Fatalf("live audit sensor test: %v", err)
	}
	t.Cleanup(func() { ctrl.close() })
	// A rule left by a sensor that died: its key, a pid that is gone.
	dead := 0
	for pid := 4000000; pid > 100000; pid -= 9973 {
		if !processAlive(pid) {
			dead = pid
			break
		}
	}
	if dead == 0 {
		t.Skip("no free pid found")
	}
	stale, err := BuildRule(fmt.Sprintf("-a always,exit -F arch=b64 -S acct -F pid!=%d -k %s", dead, DefaultKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctrl.request(ctx, auditAddRule, stale.Wire, nil); err != nil {
		t.Fatalf("live audit sensor test: add rule: %v", err)
	}
	t.Cleanup(func() { _ = ctrl.request(context.Background(), auditDelRule, stale.Wire, nil) })
	startSensor(t, Config{}, func([]telemetry.Event) {})
	if n := countContaining(kernelRules(t, ctrl), fmt.Sprintf("pid!=%d", dead)); n != 0 {
		t.Errorf("the stale rule survived Start")
	}
}
