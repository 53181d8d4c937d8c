//go:build unix

package exec

import (
	"errors"
	"io/fs"
	"os"
	osexec "os/exec"
	"syscall"
)

// setProcessGroup makes cmd the leader of a new process group, whose ID is
// its pid.
func setProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to every process of the group pgid.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return errors.New("exec: refusing to signal process group <= 1")
	}
	return syscall.Kill(-pgid, sig)
}

// exitCode is the process's exit status, or 128+N when it was killed by
// signal N, as shells report it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// ownedBy reports whether the file is owned by uid.
func ownedBy(fi fs.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}
