package ssh

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// errUnsafeWorkdir marks a workdir the injector refuses to create or
// remove.
var errUnsafeWorkdir = errors.New("unsafe workdir")

// checkMarker says why m cannot be used as a marker.
func checkMarker(m string) error {
	switch {
	case m == "":
		return ErrNoMarker
	case len(m) > 128, m == ".", m == "..", strings.ContainsAny(m, "/\x00\n'"):
		return fmt.Errorf("ssh: marker %q is not a valid path component", m)
	}
	return nil
}

// workdirFor returns the workdir of a request: dir, or tmp_root/<marker>.
func (c *config) workdirFor(dir, marker string) string {
	if dir == "" {
		return path.Join(c.TmpRoot, marker)
	}
	return path.Clean(dir)
}

// checkWorkdir says why dir is not a workdir the injector may create or
// remove on a host: it must be absolute, strictly under tmp_root, and
// contain the marker in its path below tmp_root.
func (c *config) checkWorkdir(dir, marker string) error {
	if err := checkMarker(marker); err != nil {
		return err
	}
	if !path.IsAbs(dir) || strings.ContainsAny(dir, "\x00\n") {
		return fmt.Errorf("ssh: workdir %q: %w: not an absolute path", dir, errUnsafeWorkdir)
	}
	dir = path.Clean(dir)
	rel, ok := strings.CutPrefix(dir, strings.TrimSuffix(c.TmpRoot, "/")+"/")
	if !ok || rel == "" {
		return fmt.Errorf("ssh: workdir %s: %w: not under tmp_root %s", dir, errUnsafeWorkdir, c.TmpRoot)
	}
	if !strings.Contains(rel, marker) {
		return fmt.Errorf("ssh: workdir %s: %w: does not contain the marker %s", dir, errUnsafeWorkdir, marker)
	}
	return nil
}

// within reports whether p lies strictly under root.
func within(root, p string) bool {
	rel, ok := strings.CutPrefix(path.Clean(p), strings.TrimSuffix(root, "/")+"/")
	return ok && rel != ""
}

// asRoot wraps a helper script in `sudo -n sh -c` when sudo is set.
func asRoot(script string, sudo bool) string {
	if !sudo {
		return script
	}
	return "sudo -n -- /bin/sh -c " + shellQuote(script)
}

// Exit statuses of the workdir scripts.
const (
	exitWorkdirExists = 17
	exitNotADir       = 18
	exitNotOwned      = 19
)

// createWorkdir creates dir on the host with mode 0700; it fails with
// errWorkdirExists when anything (a symlink included) is there.
func (x *Injector) createWorkdir(ctx context.Context, hc *hostConn, dir string, sudo bool) error {
	q := shellQuote(dir)
	script := fmt.Sprintf("if [ -e %[1]s ] || [ -L %[1]s ]; then exit %[2]d; fi; umask 077; mkdir -m 0700 -- %[1]s && chmod 0700 -- %[1]s",
		q, exitWorkdirExists)
	code, _, out, err := x.runSimple(ctx, hc, asRoot(script, sudo), HelperTimeout)
	switch {
	case err != nil:
		return fmt.Errorf("ssh: create workdir %s on %s: %w", dir, hc.addr, err)
	case code == exitWorkdirExists:
		return fmt.Errorf("ssh: create workdir %s on %s: %w", dir, hc.addr, errWorkdirExists)
	case code != 0:
		return fmt.Errorf("ssh: create workdir %s on %s: exit %d: %s", dir, hc.addr, code, shellstep.Excerpt(out, 200))
	}
	return nil
}

// errWorkdirExists means the workdir was already there.
var errWorkdirExists = errors.New("it already exists")

// removeWorkdir removes dir on the host after checking that it is a real
// directory (not a symlink) owned by the user the commands ran as. A
// missing dir is not an error.
func (x *Injector) removeWorkdir(ctx context.Context, hc *hostConn, dir string, sudo bool) error {
	q := shellQuote(dir)
	script := fmt.Sprintf(`if [ ! -e %[1]s ] && [ ! -L %[1]s ]; then exit 0; fi
if [ -L %[1]s ] || [ ! -d %[1]s ]; then exit %[2]d; fi
if [ ! -O %[1]s ]; then id -u; exit %[3]d; fi
rm -rf -- %[1]s 2>/dev/null || { chmod -R u+rwx -- %[1]s; rm -rf -- %[1]s; }`, q, exitNotADir, exitNotOwned)
	code, out, all, err := x.runSimple(ctx, hc, asRoot(script, sudo), HelperTimeout)
	switch {
	case err != nil:
		return fmt.Errorf("ssh: remove workdir %s on %s: %w", dir, hc.addr, err)
	case code == exitNotADir:
		return fmt.Errorf("ssh: remove workdir %s on %s: %w: not a directory", dir, hc.addr, errUnsafeWorkdir)
	case code == exitNotOwned:
		return fmt.Errorf("ssh: remove workdir %s on %s: %w: not owned by uid %s", dir, hc.addr, errUnsafeWorkdir, strings.TrimSpace(string(out)))
	case code != 0:
		return fmt.Errorf("ssh: remove workdir %s on %s: exit %d: %s", dir, hc.addr, code, shellstep.Excerpt(all, 200))
	}
	return nil
}

// exists reports whether anything is at p on the host.
func (x *Injector) exists(ctx context.Context, hc *hostConn, p string) (bool, error) {
	q := shellQuote(p)
	code, _, _, err := x.runSimple(ctx, hc, fmt.Sprintf("[ -e %[1]s ] || [ -L %[1]s ]", q), HelperTimeout)
	if err != nil {
		return false, err
	}
	return code == 0, nil
}

// killOwnedGroup kills the remote process group pgid if one of its
// processes still has VIGIL_MARKER=marker in its environment (the group ID
// may have been reused otherwise). Linux hosts: it reads /proc.
func (x *Injector) killOwnedGroup(ctx context.Context, hc *hostConn, pgid int, marker string, sudo bool) {
	if pgid <= 1 {
		return
	}
	check := fmt.Sprintf(`for p in $(pgrep -g %s); do if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qxF %s; then exit 0; fi; done; exit 1`,
		strconv.Itoa(pgid), shellQuote("VIGIL_MARKER="+marker))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), HelperTimeout)
	defer cancel()
	if code, _, _, err := x.runSimple(cctx, hc, asRoot(check, sudo), HelperTimeout); err != nil || code != 0 {
		return
	}
	x.killGroup(ctx, hc, pgid, sudo)
}
