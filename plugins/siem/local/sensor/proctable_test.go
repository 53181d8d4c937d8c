package sensor

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// fakeProc writes a /proc/<pid> with stat, cmdline and exe under root.
func fakeProc(t *testing.T, root string, pid, ppid int, exe string, argv ...string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := strconv.Itoa(pid) + " (a (b) c) S " + strconv.Itoa(ppid) + " 1 1 0 -1\n"
	cmd := ""
	for _, a := range argv {
		cmd += a + "\x00"
	}
	for name, content := range map[string]string{"stat": stat, "cmdline": cmd} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if exe != "" {
		if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProcTableAncestry(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 1, 0, "/sbin/init", "/sbin/init")
	fakeProc(t, root, 10, 1, "/usr/bin/bash", "bash", "-l")
	pt := newProcTable(root, 100)
	pt.seed()
	if pt.len() != 2 {
		t.Fatalf("seeded %d processes, want 2", pt.len())
	}
	pt.exec(20, 10, "/usr/bin/dash", "sh -c x marker")
	pt.exec(21, 20, "/usr/bin/ls", "ls /")
	if got, want := pt.ancestry(21, "ls /"), []string{"ls /", "sh -c x marker", "bash -l", "/sbin/init"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry = %q, want %q", got, want)
	}
	// An unknown pid with a live /proc entry is read lazily.
	fakeProc(t, root, 30, 10, "/usr/bin/python3", "python3", "x.py")
	if got, want := pt.ancestry(31, "child"), []string{"child"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry of an unknown pid = %q, want %q", got, want)
	}
	pt.exec(31, 30, "/usr/bin/id", "id")
	if got, want := pt.ancestry(31, "id"), []string{"id", "python3 x.py", "bash -l", "/sbin/init"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry = %q, want %q", got, want)
	}
	// A kernel thread (empty cmdline) shows its exe.
	fakeProc(t, root, 40, 1, "/usr/sbin/cron")
	pt.exec(41, 40, "/usr/bin/true", "true")
	if got, want := pt.ancestry(41, "true"), []string{"true", "/usr/sbin/cron", "/sbin/init"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry = %q, want %q", got, want)
	}
}

func TestProcTableExecChain(t *testing.T) {
	pt := newProcTable("", 100)
	pt.exec(5, 1, "/usr/bin/dash", "sh -c exec curl marker")
	pt.exec(5, 1, "/usr/bin/curl", "curl")
	if got, want := pt.ancestry(5, "curl"), []string{"curl", "sh -c exec curl marker"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry = %q, want %q", got, want)
	}
	// A reused pid under another parent is a new process.
	pt.exec(5, 2, "/usr/bin/top", "top")
	if got, want := pt.ancestry(5, "top"), []string{"top"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry after pid reuse = %q, want %q", got, want)
	}
	// The chain of earlier images is bounded.
	for i := 0; i < 20; i++ {
		pt.exec(6, 1, "/bin/x", "x"+strconv.Itoa(i))
	}
	if got := pt.ancestry(6, "x19"); len(got) != maxPrevImages+1 {
		t.Errorf("ancestry has %d entries, want %d: %q", len(got), maxPrevImages+1, got)
	}
	// observe replaces an entry whose executable contradicts the event.
	pt.observe(5, 2, "/usr/bin/vim", "vim")
	if p := pt.lookup(5); p.exe != "/usr/bin/vim" || p.cmdline != "vim" {
		t.Errorf("observe kept a stale entry: %+v", p)
	}
	pt.observe(5, 2, "/usr/bin/vim", "vim other-title")
	if p := pt.lookup(5); p.cmdline != "vim" {
		t.Errorf("observe replaced a consistent entry: %+v", p)
	}
}

func TestProcTableBounds(t *testing.T) {
	pt := newProcTable("", 10)
	for pid := 1; pid <= 100; pid++ {
		pt.exec(pid, pid-1, "/bin/x", "x")
	}
	if pt.len() != 10 {
		t.Fatalf("table holds %d entries, want 10", pt.len())
	}
	if pt.lookup(1) != nil || pt.lookup(100) == nil {
		t.Error("the least recently used entries were not the ones evicted")
	}
	// Ancestry is bounded even on a long chain and on a cycle.
	long := newProcTable("", 1000)
	for pid := 1; pid <= 50; pid++ {
		long.exec(pid, pid-1, "/bin/x", "x"+strconv.Itoa(pid))
	}
	if got := long.ancestry(50, "self"); len(got) != maxAncestry {
		t.Errorf("ancestry has %d entries, want %d", len(got), maxAncestry)
	}
	cyc := newProcTable("", 10)
	cyc.exec(1, 2, "/bin/a", "a")
	cyc.exec(2, 1, "/bin/b", "b")
	if got, want := cyc.ancestry(1, "a"), []string{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ancestry on a cycle = %q, want %q", got, want)
	}
}

func TestProcTableSweep(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 7, 1, "/bin/alive", "alive")
	pt := newProcTable(root, 100)
	pt.exec(7, 1, "/bin/alive", "alive")
	pt.exec(8, 1, "/bin/gone", "gone")
	pt.sweep() // both were just used: kept
	if pt.len() != 2 {
		t.Fatalf("first sweep left %d entries, want 2", pt.len())
	}
	pt.sweep() // 8 has no /proc entry and was not used since
	if pt.lookup(8) != nil || pt.lookup(7) == nil {
		t.Error("sweep did not forget exactly the exited process")
	}
}

func TestUserNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if err := os.WriteFile(path, []byte("root:x:0:0::/root:/bin/sh\n# c\nbad\nalice:x:1000:1000::/h:/bin/sh\nalias:x:1000:1000::/h:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	u := newUserNames(path)
	u.now = func() time.Time { return now }
	for uid, want := range map[string]string{"0": "root", "1000": "alice", "4242": "4242", "": ""} {
		if got := u.name(uid); got != want {
			t.Errorf("name(%q) = %q, want %q", uid, got, want)
		}
	}
	// A changed file is re-read after the re-check interval.
	if err := os.WriteFile(path, []byte("bob:x:4242:4242::/h:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := u.name("4242"); got != "4242" {
		t.Errorf("re-read before the interval: %q", got)
	}
	now = now.Add(2 * userRecheck)
	if got := u.name("4242"); got != "bob" {
		t.Errorf("name after change = %q, want bob", got)
	}
	if got := newUserNames("").name("0"); got != "0" {
		t.Errorf("without a passwd file name = %q, want 0", got)
	}
}
