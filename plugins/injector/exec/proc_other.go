//go:build !unix

package exec

import (
	"errors"
	"io/fs"
	"os"
	osexec "os/exec"
	"syscall"
)

var errNoProcessGroups = errors.New("exec: process groups are not supported on this platform")

func setProcessGroup(*osexec.Cmd) {}

func signalGroup(int, syscall.Signal) error { return errNoProcessGroups }

func exitCode(ps *os.ProcessState) int { return ps.ExitCode() }

func ownedBy(fs.FileInfo, int) bool { return true }

func groupAlive(int) bool { return false }

func groupOwned(int, string) bool { return false }
