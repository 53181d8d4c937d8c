package exec

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// groupMembers returns the live (not zombie) processes of the group pgid,
// read from /proc.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// groupAlive reports whether the group pgid has a live process. Zombies do
// not count: in containers whose init does not reap, orphans stay zombies.
func groupAlive(pgid int) bool { return len(groupMembers(pgid)) > 0 }

// groupOwned reports whether the group pgid is alive and still the one an
// injection started: one of its processes has VIGIL_MARKER=marker in its
// environment. It guards against the group ID having been reused since.
func groupOwned(pgid int, marker string) bool {
	want := []byte("VIGIL_MARKER=" + marker)
	for _, pid := range groupMembers(pgid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if bytes.Equal(kv, want) {
				return true
			}
		}
	}
	return false
}
