package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errUnsafeWorkdir marks a workdir the injector refuses to create or
// remove.
var errUnsafeWorkdir = errors.New("unsafe workdir")

// checkMarker says why m cannot be used as a marker: it must be non-empty
// and fit in one path component.
func checkMarker(m string) error {
	switch {
	case m == "":
		return ErrNoMarker
	case len(m) > 128, m == ".", m == "..", strings.ContainsAny(m, "/\x00"):
		return fmt.Errorf("exec: marker %q is not a valid path component", m)
	}
	return nil
}

// workdirFor returns the workdir of a request: dir, or when the engine sent
// none, tmp_root/<marker>.
func (c *config) workdirFor(dir, marker string) string {
	if dir == "" {
		return filepath.Join(c.TmpRoot, marker)
	}
	return filepath.Clean(dir)
}

// checkWorkdir says why dir is not a workdir the injector may create or
// remove: it must be absolute, strictly under tmp_root, contain the marker
// in its path below tmp_root, and its parent must resolve (through
// symlinks) to a directory under tmp_root. dir itself is not looked at.
func (c *config) checkWorkdir(dir, marker string) error {
	if err := checkMarker(marker); err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("exec: workdir %q: %w: not an absolute path", dir, errUnsafeWorkdir)
	}
	dir = filepath.Clean(dir)
	rel, ok := within(c.TmpRoot, dir)
	if !ok {
		return fmt.Errorf("exec: workdir %s: %w: not under tmp_root %s", dir, errUnsafeWorkdir, c.TmpRoot)
	}
	if !strings.Contains(rel, marker) {
		return fmt.Errorf("exec: workdir %s: %w: does not contain the marker %s", dir, errUnsafeWorkdir, marker)
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return fmt.Errorf("exec: workdir %s: resolve parent: %w", dir, err)
	}
	if _, ok := within(c.realTmpRoot, parent); !ok && parent != c.realTmpRoot {
		return fmt.Errorf("exec: workdir %s: %w: its parent resolves to %s, outside tmp_root %s", dir, errUnsafeWorkdir, parent, c.realTmpRoot)
	}
	return nil
}

// within reports whether path lies strictly under root, and its path
// relative to root.
func within(root, path string) (string, bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// createWorkdir creates dir with mode 0700. It fails with fs.ErrExist if
// anything (a symlink included) is already there: os.Mkdir does not follow
// a symlink in the last component.
func createWorkdir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("exec: create workdir %s: %w", dir, err)
	}
	// The umask may have dropped bits; set exactly 0700.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("exec: chmod workdir %s: %w", dir, err)
	}
	return nil
}

// removeWorkdir removes dir and everything in it, after checking it is a
// real directory (not a symlink) owned by uid. A missing dir is not an
// error.
func removeWorkdir(dir string, uid int) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("exec: remove workdir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("exec: remove workdir %s: %w: not a directory (%s)", dir, errUnsafeWorkdir, fi.Mode().Type())
	}
	if !ownedBy(fi, uid) {
		return fmt.Errorf("exec: remove workdir %s: %w: not owned by uid %d", dir, errUnsafeWorkdir, uid)
	}
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	// A test may have left read-only directories: make every directory
	// writable (WalkDir does not follow symlinks) and try again.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("exec: remove workdir %s: %w", dir, err)
	}
	return nil
}
