package sensor

import (
	"bytes"
	"container/list"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxAncestry bounds Event.Ancestry: the process itself plus this many - 1
// command lines of earlier images and ancestors.
const maxAncestry = 12

// maxPrevImages bounds how many earlier images (exec predecessors) of one
// pid the table remembers.
const maxPrevImages = 4

// proc is what the sensor knows about one process.
type proc struct {
	pid, ppid int
	exe       string
	cmdline   string
	// prev is the image the pid ran before its last exec (a shell that
	// exec'd its last command), nil when unknown.
	prev  *proc
	elem  *list.Element
	alive bool // seen in /proc during the last sweep, or touched since
}

// procTable maps pids to processes. It is fed by exec events, seeded from
// /proc and filled lazily from /proc/<pid> on a miss; it holds at most max
// entries, evicting the least recently used. It is not safe for concurrent
// use.
type procTable struct {
	procDir string // "" disables /proc look-ups
	max     int
	m       map[int]*proc
	lru     list.List // front = most recently used; values are *proc
}

func newProcTable(procDir string, max int) *procTable {
	if max <= 0 {
		max = 16384
	}
	return &procTable{procDir: procDir, max: max, m: make(map[int]*proc)}
}

func (t *procTable) len() int { return len(t.m) }

// put inserts or replaces the entry of p.pid.
func (t *procTable) put(p *proc) {
	if old, ok := t.m[p.pid]; ok {
		t.lru.Remove(old.elem)
	}
	p.alive = true
	p.elem = t.lru.PushFront(p)
	t.m[p.pid] = p
	for len(t.m) > t.max {
		back := t.lru.Back()
		if back == nil {
			break
		}
		old := back.Value.(*proc)
		t.lru.Remove(back)
		delete(t.m, old.pid)
	}
}

// lookup returns the entry of pid, reading /proc/<pid> on a miss; nil when
// the process is unknown and gone.
func (t *procTable) lookup(pid int) *proc {
	if pid <= 0 {
		return nil
	}
	if p, ok := t.m[pid]; ok {
		p.alive = true
		t.lru.MoveToFront(p.elem)
		return p
	}
	p := t.readProc(pid)
	if p == nil {
		return nil
	}
	t.put(p)
	return p
}

// exec records that pid (child of ppid) now runs exe with cmdline. When the
// table already knows pid under the same parent, the old image is kept as the
// new one's predecessor: the process replaced itself (exec without fork).
func (t *procTable) exec(pid, ppid int, exe, cmdline string) *proc {
	n := &proc{pid: pid, ppid: ppid, exe: exe, cmdline: cmdline}
	if old, ok := t.m[pid]; ok {
		t.lru.Remove(old.elem)
		delete(t.m, pid)
		old.elem = nil
		if old.ppid == ppid {
			n.prev = old
		}
	}
	if n.prev != nil {
		// Bound the chain of predecessors.
		q := n
		for i := 0; q.prev != nil; i++ {
			if i >= maxPrevImages-1 {
				q.prev.prev = nil
				break
			}
			q = q.prev
		}
	}
	t.put(n)
	return n
}

// observe records a process seen in a non-exec event. An entry that
// contradicts the event (another executable) is replaced: the pid was reused.
func (t *procTable) observe(pid, ppid int, exe, cmdline string) *proc {
	if pid <= 0 {
		return nil
	}
	if p := t.lookup(pid); p != nil {
		if exe == "" || p.exe == exe || p.exe == "" {
			return p
		}
	}
	n := &proc{pid: pid, ppid: ppid, exe: exe, cmdline: cmdline}
	t.put(n)
	return n
}

// ancestry returns self followed by the command lines of pid's earlier
// images and of its ancestors, nearest first, without consecutive
// duplicates, at most maxAncestry entries.
func (t *procTable) ancestry(pid int, self string) []string {
	out := make([]string, 0, 6)
	add := func(s string) {
		if s == "" || (len(out) > 0 && out[len(out)-1] == s) {
			return
		}
		out = append(out, s)
	}
	add(self)
	seen := map[int]bool{}
	cur := pid
	first := true
	for cur > 0 && len(out) < maxAncestry && !seen[cur] {
		seen[cur] = true
		p := t.lookup(cur)
		if p == nil {
			break
		}
		if !first || self == "" {
			add(p.display())
		}
		for q := p.prev; q != nil && len(out) < maxAncestry; q = q.prev {
			add(q.display())
		}
		first = false
		cur = p.ppid
	}
	if len(out) > maxAncestry {
		out = out[:maxAncestry]
	}
	return out
}

// display is the command line of p, or its executable when the command
// line is empty (kernel threads, zombies).
func (p *proc) display() string {
	if p.cmdline != "" {
		return p.cmdline
	}
	if p.exe != "" {
		return p.exe
	}
	return ""
}

// seed fills the table from every process in /proc.
func (t *procTable) seed() {
	if t.procDir == "" {
		return
	}
	ents, err := os.ReadDir(t.procDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p := t.readProc(pid); p != nil {
			t.put(p)
		}
	}
}

// sweep forgets processes that have exited since the previous sweep: an
// entry survives while /proc/<pid> exists or while it was used since the
// last sweep (a parent that exited is still needed for its children's
// late events).
func (t *procTable) sweep() {
	if t.procDir == "" {
		return
	}
	for pid, p := range t.m {
		if p.alive {
			p.alive = false
			continue
		}
		if _, err := os.Stat(filepath.Join(t.procDir, strconv.Itoa(pid))); err == nil {
			continue
		}
		t.lru.Remove(p.elem)
		delete(t.m, pid)
	}
}

// readProc reads pid's parent, executable and command line from /proc.
func (t *procTable) readProc(pid int) *proc {
	if t.procDir == "" {
		return nil
	}
	dir := filepath.Join(t.procDir, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return nil
	}
	ppid, _ := strconv.Atoi(fields[1])
	p := &proc{pid: pid, ppid: ppid}
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.exe = strings.TrimSuffix(p.exe, " (deleted)")
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = nulsToSpaces(b)
	}
	return p
}

// nulsToSpaces turns a NUL-separated argument vector into one space-separated
// command line.
func nulsToSpaces(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}
