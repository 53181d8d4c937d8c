// Package integrity is vigil's host-integrity check: a snapshot of the
// host state that attacks touch (accounts, sudoers, cron, the dynamic
// linker, PAM, ssh, shell profiles, systemd units, kernel modules, CA
// stores, /boot, logs, listening sockets, the clock), taken before a run,
// after each test's steps that change the host, and after the run, so that
// any difference the cleanups left is reported with the tests that were
// changing the host when it appeared.
//
// Files are compared by content (sha256), type, mode and owner, never by
// times: a cleanup that puts back the same bytes leaves the host
// unchanged. Hashes are cached by inode, size and times, so that only the
// files that changed are read again.
package integrity

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Paths are the files and directories (walked, symlinks not followed) a
// snapshot reads, besides every account's ~/.ssh and shell start-up files.
var Paths = []string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d",
	"/etc/crontab", "/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly", "/etc/cron.weekly", "/etc/cron.monthly",
	"/etc/anacrontab", "/var/spool/cron", "/var/spool/anacron",
	"/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/security/limits.conf", "/etc/security/limits.d", "/etc/pam.d", "/etc/ssh",
	"/etc/profile", "/etc/profile.d", "/etc/bash.bashrc", "/etc/environment", "/etc/shells", "/etc/login.defs",
	"/etc/systemd", "/usr/lib/systemd/system", "/etc/init.d", "/etc/rc.local", "/etc/xdg/autostart",
	"/etc/modules", "/etc/modules-load.d", "/etc/modprobe.d", "/etc/sysctl.conf", "/etc/sysctl.d",
	"/etc/hosts", "/etc/apt/apt.conf.d", "/etc/apt/sources.list", "/etc/apt/sources.list.d",
	"/etc/audit", "/etc/rsyslog.conf", "/etc/rsyslog.d", "/etc/logrotate.d",
	"/etc/ssl/certs", "/etc/ca-certificates.conf", "/usr/local/share/ca-certificates", "/usr/share/ca-certificates", "/etc/pki",
	"/boot",
}

// HomeFiles are read in every account's home directory.
var HomeFiles = []string{".ssh", ".bashrc", ".profile", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile", ".shrc", ".config/autostart", ".config/systemd"}

// LogDir's files are compared by name, inode and size: a log that grows
// is fine; one truncated, deleted or replaced (other than by rotation) is a
// change.
const LogDir = "/var/log"

// state is what a snapshot keeps of one path or item.
type state struct {
	kind     byte // 'f' file, 'd' directory, 'l' symlink, 'o' other, 'i' item
	mode     fs.FileMode
	uid, gid uint32
	sum      string // a file's sha256, a symlink's target, or why unreadable
}

type logState struct {
	ino  uint64
	size int64
}

// Snapshot is the host state at one time.
type Snapshot struct {
	At    time.Time
	state map[string]state
	logs  map[string]logState
	clock time.Duration // the wall clock minus the boot clock
	Took  time.Duration
}

// Entries is the number of paths and items the snapshot holds.
func (s *Snapshot) Entries() int { return len(s.state) + len(s.logs) }

// Scanner takes snapshots. Its zero value reads this host.
type Scanner struct {
	// Root is prefixed to every path ("" for /): tests point it at a
	// directory.
	Root string
	// Paths and HomeFiles default to the package's.
	Paths, HomeFiles []string

	mu    sync.Mutex
	cache map[string]cached
}

// cached is a file's hash and the stat fields it was read at.
type cached struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	sum          string
}

// Snapshot reads the host.
func (sc *Scanner) Snapshot(ctx context.Context) (*Snapshot, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.cache == nil {
		sc.cache = map[string]cached{}
	}
	start := time.Now()
	s := &Snapshot{At: start, state: map[string]state{}, logs: map[string]logState{}}
	paths := sc.Paths
	if paths == nil {
		paths = Paths
	}
	passwd := readColon(filepath.Join(sc.Root, "/etc/passwd"))
	paths = append(append([]string{}, paths...), sc.homePaths(passwd)...)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sc.walk(p, s); err != nil {
			return nil, fmt.Errorf("integrity: %s: %w", p, err)
		}
	}
	sc.readLogs(s)
	sc.readItems(s, passwd)
	s.clock = clockOffset()
	s.Took = time.Since(start)
	return s, nil
}

// homePaths are HomeFiles in each home directory of passwd.
func (sc *Scanner) homePaths(passwd [][]string) []string {
	files := sc.HomeFiles
	if files == nil {
		files = HomeFiles
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range passwd {
		if len(f) < 6 || f[5] == "" || seen[f[5]] {
			continue
		}
		seen[f[5]] = true
		for _, name := range files {
			out = append(out, filepath.Join(f[5], name))
		}
	}
	sort.Strings(out)
	return out
}

// walk records p and, for a directory, everything under it.
func (sc *Scanner) walk(p string, s *Snapshot) error {
	err := filepath.WalkDir(filepath.Join(sc.Root, p), func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // absent, or gone while walking
			}
			if d == nil || !d.IsDir() {
				s.state[sc.rel(full)] = state{kind: 'o', sum: "unreadable: " + err.Error()}
				return nil
			}
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		s.state[sc.rel(full)] = sc.stateOf(full, info)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (sc *Scanner) rel(full string) string {
	if sc.Root == "" {
		return full
	}
	r, _ := filepath.Rel(sc.Root, full)
	return "/" + r
}

// stateOf reads one path's state, the hash from the cache when the file
// has not changed.
func (sc *Scanner) stateOf(full string, info fs.FileInfo) state {
	st := state{mode: info.Mode()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.uid, st.gid = sys.Uid, sys.Gid
	}
	switch {
	case info.Mode().IsRegular():
		st.kind = 'f'
		st.sum = sc.hash(full, info)
	case info.IsDir():
		st.kind = 'd'
	case info.Mode()&fs.ModeSymlink != 0:
		st.kind = 'l'
		st.sum, _ = os.Readlink(full)
	default:
		st.kind = 'o'
	}
	return st
}

func (sc *Scanner) hash(full string, info fs.FileInfo) string {
	sys, ok := info.Sys().(*syscall.Stat_t)
	var key cached
	if ok {
		key = cached{dev: uint64(sys.Dev), ino: sys.Ino, size: info.Size(), mtime: sys.Mtim.Nano(), ctime: sys.Ctim.Nano()}
		if c, hit := sc.cache[full]; hit && c.dev == key.dev && c.ino == key.ino && c.size == key.size && c.mtime == key.mtime && c.ctime == key.ctime {
			return c.sum
		}
	}
	f, err := os.Open(full)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	key.sum = hex.EncodeToString(h.Sum(nil))
	if ok {
		sc.cache[full] = key
	}
	return key.sum
}

// readLogs records the regular files under LogDir.
func (sc *Scanner) readLogs(s *Snapshot) {
	_ = filepath.WalkDir(filepath.Join(sc.Root, LogDir), func(full string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		ls := logState{size: info.Size()}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			ls.ino = sys.Ino
		}
		s.logs[sc.rel(full)] = ls
		return nil
	})
}

// readItems records the accounts (of passwd), groups, kernel modules and listening
// sockets.
func (sc *Scanner) readItems(s *Snapshot, passwd [][]string) {
	for _, f := range passwd {
		s.state["user:"+f[0]] = state{kind: 'i'}
	}
	for _, f := range readColon(filepath.Join(sc.Root, "/etc/group")) {
		s.state["group:"+f[0]] = state{kind: 'i'}
	}
	for _, line := range readLines(filepath.Join(sc.Root, "/proc/modules")) {
		if f := strings.Fields(line); len(f) > 0 {
			s.state["module:"+f[0]] = state{kind: 'i'}
		}
	}
	for _, l := range listening(sc.Root) {
		s.state["listen:"+l] = state{kind: 'i'}
	}
}

// readColon reads a colon-separated file (passwd, group).
func readColon(path string) [][]string {
	var out [][]string
	for _, line := range readLines(path) {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// clockOffset is the wall clock minus the boot clock: it moves only when
// the wall clock is set (or slewed).
func clockOffset() time.Duration {
	var rt, bt unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &rt) != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt) != nil {
		return 0
	}
	return time.Duration(rt.Nano() - bt.Nano())
}
