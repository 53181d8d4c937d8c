package integrity

import (
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ClockStep is how far the wall clock may move against the boot clock
// between two snapshots before it counts as set (NTP slews far less).
const ClockStep = time.Second

// Change is one difference between two snapshots.
type Change struct {
	// Path is a file, or an item: user:NAME, group:NAME, module:NAME,
	// listen:PROTO ADDR:PORT, clock.
	Path string
	// What says how it changed: "created", "removed", "content changed",
	// "mode -rw-r--r-- -> -rwxr-xr-x", "truncated from 1200 to 0 bytes".
	What string
}

// Diff lists what differs between two snapshots: paths and items by their
// state, the clock when it was stepped, and the logs that were truncated,
// removed or replaced other than by rotation.
func Diff(a, b *Snapshot) []Change {
	var out []Change
	for _, k := range unionKeys(a.state, b.state) {
		if c, ok := diffState(k, a.state, b.state); ok {
			out = append(out, c)
		}
	}
	out = append(out, diffLogs(a.logs, b.logs, a.logs)...)
	if c, ok := diffClock(a.clock, b.clock); ok {
		out = append(out, c)
	}
	return out
}

func unionKeys(a, b map[string]state) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// diffState compares one key's state in two snapshots.
func diffState(k string, a, b map[string]state) (Change, bool) {
	x, inA := a[k]
	y, inB := b[k]
	switch {
	case inA && inB && x == y:
		return Change{}, false
	case !inA:
		return Change{k, created(k, y)}, true
	case !inB:
		return Change{k, removed(k, x)}, true
	}
	var what []string
	if x.kind != y.kind {
		what = append(what, "type "+kindName(x.kind)+" -> "+kindName(y.kind))
	} else if x.sum != y.sum {
		switch x.kind {
		case 'l':
			what = append(what, "link target "+x.sum+" -> "+y.sum)
		default:
			what = append(what, "content changed")
		}
	}
	if x.mode != y.mode {
		what = append(what, "mode "+x.mode.String()+" -> "+y.mode.String())
	}
	if x.uid != y.uid || x.gid != y.gid {
		what = append(what, fmt.Sprintf("owner %d:%d -> %d:%d", x.uid, x.gid, y.uid, y.gid))
	}
	return Change{k, strings.Join(what, ", ")}, true
}

func created(k string, s state) string {
	switch {
	case strings.HasPrefix(k, "user:"), strings.HasPrefix(k, "group:"):
		return "added"
	case strings.HasPrefix(k, "module:"):
		return "loaded"
	case strings.HasPrefix(k, "listen:"):
		return "now listening"
	}
	return "created (" + kindName(s.kind) + ")"
}

func removed(k string, s state) string {
	switch {
	case strings.HasPrefix(k, "user:"), strings.HasPrefix(k, "group:"):
		return "deleted"
	case strings.HasPrefix(k, "module:"):
		return "unloaded"
	case strings.HasPrefix(k, "listen:"):
		return "no longer listening"
	}
	return "removed (" + kindName(s.kind) + ")"
}

func kindName(k byte) string {
	return map[byte]string{'f': "file", 'd': "directory", 'l': "symlink", 'o': "special file", 'i': "item"}[k]
}

// diffLogs finds logs truncated, removed or replaced between two
// snapshots, among those of base (the host before the run: a log a test
// created and removed again is no change). A log that shrank or was
// replaced while a sibling appeared or changed (syslog.1, syslog-20261207,
// system@...journal) was rotated, which is not a change.
func diffLogs(a, b, base map[string]logState) []Change {
	var out []Change
	names := make([]string, 0, len(a))
	for k := range a {
		if _, ok := base[k]; ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		x := a[k]
		y, ok := b[k]
		var what string
		switch {
		case !ok:
			what = fmt.Sprintf("removed (was %d bytes)", x.size)
		case y.ino != x.ino:
			what = fmt.Sprintf("replaced by another file (%d bytes, was %d)", y.size, x.size)
		case y.size < x.size:
			what = fmt.Sprintf("truncated from %d to %d bytes", x.size, y.size)
		default:
			continue
		}
		if rotated(k, a, b) {
			continue
		}
		out = append(out, Change{k, what})
	}
	return out
}

// rotated says whether a sibling of log k (same directory, a name that
// starts with k's name without its extension) appeared or changed.
func rotated(k string, a, b map[string]logState) bool {
	dir, base := filepath.Split(k)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	for name, y := range b {
		d, n := filepath.Split(name)
		if d != dir || name == k || !strings.HasPrefix(n, stem) {
			continue
		}
		if x, ok := a[name]; !ok || x != y {
			return true
		}
	}
	return false
}

func diffClock(a, b time.Duration) (Change, bool) {
	d := b - a
	if d < ClockStep && d > -ClockStep {
		return Change{}, false
	}
	return Change{"clock", "the wall clock was set: it moved " + d.Round(time.Millisecond).String() + " against the boot clock"}, true
}

// listening lists the TCP sockets listening and the UDP sockets bound, on
// a port below the ephemeral range (ip_local_port_range): a backdoor binds
// a port of its choosing, while test servers and clients come and go on
// ephemeral ones. As "tcp 0.0.0.0:22".
func listening(root string) []string {
	ephemeral := 32768
	if f := strings.Fields(strings.Join(readLines(filepath.Join(root, "/proc/sys/net/ipv4/ip_local_port_range")), " ")); len(f) > 0 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			ephemeral = n
		}
	}
	var out []string
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		for i, line := range readLines(filepath.Join(root, "/proc/net", proto)) {
			f := strings.Fields(line)
			if i == 0 || len(f) < 4 {
				continue
			}
			addr, port, ok := hexAddr(f[1])
			if !ok || port >= ephemeral {
				continue
			}
			switch {
			case strings.HasPrefix(proto, "tcp") && f[3] != "0A": // LISTEN
				continue
			case strings.HasPrefix(proto, "udp") && f[3] != "07":
				continue
			}
			out = append(out, strings.TrimSuffix(proto, "6")+" "+net.JoinHostPort(addr, strconv.Itoa(port)))
		}
	}
	sort.Strings(out)
	return out
}

// hexAddr decodes /proc/net's "0100007F:1F90" (the address in host order,
// 32 bits at a time).
func hexAddr(s string) (string, int, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		return "", 0, false
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", 0, false
	}
	return net.IP(b).String(), int(port), true
}
