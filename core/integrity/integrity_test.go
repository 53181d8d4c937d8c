package integrity

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// host is a fake host under a temporary root: a few of the checked files,
// /proc/modules and /proc/net/tcp, and logs.
type host struct {
	t    *testing.T
	root string
}

func newHost(t *testing.T) *host {
	h := &host{t: t, root: t.TempDir()}
	h.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	h.write("/etc/group", "root:x:0:\n")
	h.write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
	h.write("/etc/cron.d/e2scrub_all", "30 3 * * 0 root test -e /run/systemd/system || /sbin/e2scrub_all\n")
	h.write("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA admin\n")
	h.write("/root/.bashrc", "PS1='# '\n")
	h.write("/proc/modules", "ext4 1000 1 - Live 0x0\n")
	h.write("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A\n   1: 0100007F:9C40 0100007F:0016 01\n")
	h.write("/var/log/syslog", strings.Repeat("x", 100))
	h.write("/var/log/auth.log", strings.Repeat("y", 50))
	return h
}

func (h *host) path(p string) string { return filepath.Join(h.root, p) }

func (h *host) write(p, content string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(h.path(p)), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.path(p), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) scanner() *Scanner {
	return &Scanner{Root: h.root, Paths: []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/cron.d", "/etc/ld.so.preload"}}
}

func (h *host) snap(sc *Scanner) *Snapshot {
	h.t.Helper()
	s, err := sc.Snapshot(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name   string
		change func(h *host)
		want   []Change
	}{
		{"nothing", func(h *host) {}, nil},
		{"same bytes written again, later", func(h *host) {
			h.write("/etc/cron.d/e2scrub_all", "30 3 * * 0 root test -e /run/systemd/system || /sbin/e2scrub_all\n")
			later := time.Now().Add(time.Hour)
			os.Chtimes(h.path("/etc/cron.d/e2scrub_all"), later, later)
		}, nil},
		{"a file created", func(h *host) { h.write("/etc/cron.d/persistevil", "* * * * * root id\n") },
			[]Change{{"/etc/cron.d/persistevil", "created (file)"}}},
		{"a file removed", func(h *host) { os.Remove(h.path("/etc/cron.d/e2scrub_all")) },
			[]Change{{"/etc/cron.d/e2scrub_all", "removed (file)"}}},
		{"same size, times put back", func(h *host) {
			p := h.path("/root/.ssh/authorized_keys")
			fi, _ := os.Stat(p)
			h.write("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA hacker")
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}, []Change{{"/root/.ssh/authorized_keys", "content changed"}}},
		{"mode", func(h *host) { os.Chmod(h.path("/etc/shadow"), 0o666) },
			[]Change{{"/etc/shadow", "mode -rw-r--r-- -> -rw-rw-rw-"}}},
		{"a symlink", func(h *host) { os.Symlink("/tmp/evil.so", h.path("/etc/ld.so.preload")) },
			[]Change{{"/etc/ld.so.preload", "created (symlink)"}}},
		{"an account added", func(h *host) {
			h.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nart:x:0:0::/root:/bin/bash\n")
		}, []Change{{"/etc/passwd", "content changed"}, {"user:art", "added"}}},
		{"a shell profile", func(h *host) { h.write("/root/.bashrc", "PS1='# '\nset +o history\n") },
			[]Change{{"/root/.bashrc", "content changed"}}},
		{"a module and a listener", func(h *host) {
			h.write("/proc/modules", "ext4 1000 1 - Live 0x0\ndiamorphine 16384 0 - Live 0x0\n")
			h.write("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A\n   1: 00000000:115C 00000000:0000 0A\n")
		}, []Change{{"listen:tcp 0.0.0.0:4444", "now listening"}, {"module:diamorphine", "loaded"}}},
		{"a listener on an ephemeral port", func(h *host) {
			h.write("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A\n   1: 0100007F:8CF5 00000000:0000 0A\n")
		}, nil},
		{"a log grows", func(h *host) { h.write("/var/log/syslog", strings.Repeat("x", 200)) }, nil},
		{"a log truncated", func(h *host) { os.Truncate(h.path("/var/log/auth.log"), 0) },
			[]Change{{"/var/log/auth.log", "truncated from 50 to 0 bytes"}}},
		{"a log deleted", func(h *host) { os.Remove(h.path("/var/log/auth.log")) },
			[]Change{{"/var/log/auth.log", "removed (was 50 bytes)"}}},
		{"a log rotated", func(h *host) {
			os.Rename(h.path("/var/log/syslog"), h.path("/var/log/syslog.1"))
			h.write("/var/log/syslog", "")
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			sc := h.scanner()
			before := h.snap(sc)
			tc.change(h)
			if got := Diff(before, h.snap(sc)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTracker: a change is attributed to the tests that were in a step
// that changes the host when it appeared, and one made while no test was
// is said to be someone else's.
func TestTracker(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	tr, err := Start(ctx, h.scanner())
	if err != nil {
		t.Fatal(err)
	}
	// a leaves a cron file; b changes nothing.
	tr.Begin("a")
	h.write("/etc/cron.d/a", "* * * * * root id\n")
	tr.End(ctx, "a")
	tr.Begin("b")
	tr.End(ctx, "b")
	// c and d overlap, and one of them truncates a log.
	tr.Begin("c")
	tr.Begin("d")
	os.Truncate(h.path("/var/log/syslog"), 10)
	tr.End(ctx, "c")
	tr.End(ctx, "d")
	// e changes .bashrc and puts it back; f changes it for good.
	tr.Begin("e")
	h.write("/root/.bashrc", "evil\n")
	tr.End(ctx, "e")
	tr.Begin("e")
	h.write("/root/.bashrc", "PS1='# '\n")
	tr.End(ctx, "e")
	tr.Begin("f")
	h.write("/root/.bashrc", "evil again\n")
	tr.End(ctx, "f")
	// g creates a log of its own, and its cleanup removes it: no change.
	tr.Begin("g")
	h.write("/var/log/vigil-decoy.log", "")
	tr.End(ctx, "g")
	tr.Begin("g")
	os.Remove(h.path("/var/log/vigil-decoy.log"))
	tr.End(ctx, "g")
	// Between tests, something else adds an account.
	h.write("/etc/group", "root:x:0:\nintruder:x:1000:\n")

	r, err := tr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range r.Findings {
		got[f.Path] = f.What + " by " + f.Attribution()
	}
	want := map[string]string{
		"/etc/cron.d/a":   "created (file) by a",
		"/root/.bashrc":   "content changed by f",
		"/var/log/syslog": "truncated from 100 to 10 bytes by one of c, d (they were changing the host at the same time; it cannot tell which)",
		"/etc/group":      "content changed by no test was changing the host when it appeared: something else on the host did it",
		"group:intruder":  "added by no test was changing the host when it appeared: something else on the host did it",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%v\nwant\n%v", got, want)
	}
	if r.Snapshots != 11 || r.Entries == 0 || r.Cost <= 0 {
		t.Errorf("snapshots %d entries %d cost %v; want 11 snapshots", r.Snapshots, r.Entries, r.Cost)
	}
}

func TestHexAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0016":                         "0.0.0.0:22",
		"00000000000000000000000001000000:0016": "[::1]:22",
	} {
		addr, port, ok := hexAddr(in)
		if got := strings.Replace(addr, "::1", "[::1]", 1) + ":" + strconv.Itoa(port); !ok || got != want {
			t.Errorf("hexAddr(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
}

func TestDiffClock(t *testing.T) {
	if _, ok := diffClock(0, 900*time.Millisecond); ok {
		t.Error("a slew under a second counts as a clock change")
	}
	if c, ok := diffClock(0, -2*time.Minute); !ok || !strings.Contains(c.What, "-2m0s") {
		t.Errorf("clock set back 2 minutes: %v %v", c, ok)
	}
}

// BenchmarkSnapshot measures a snapshot of this host once its hashes are
// cached (every snapshot after a run's first).
func BenchmarkSnapshot(b *testing.B) {
	sc := &Scanner{}
	s, err := sc.Snapshot(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.Entries()), "entries")
	b.ResetTimer()
	for b.Loop() {
		if _, err := sc.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
