//go:build unix && !linux

package exec

import (
	"errors"
	"syscall"
)

// groupAlive reports whether the group pgid has a process (zombies
// included: there is no /proc to tell them apart).
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// groupOwned reports whether the group pgid is alive. Without /proc the
// marker cannot be checked; a reused group ID is unlikely within a run.
func groupOwned(pgid int, marker string) bool { return groupAlive(pgid) }
