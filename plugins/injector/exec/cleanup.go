package exec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Cleanup undoes an injection, whether or not Inject ran or finished: it
// runs the cleanup command (with the shell and env of the injection, in the
// workdir if it still exists, else in tmp_root), kills the processes the
// command left in the background, and removes the workdir. It removes the
// workdir only if it is a directory owned by the injector's user, under
// tmp_root, with the marker in its path, and not one that Inject found
// already there. File artifacts under the workdir go with it; others are
// left and reported.
//
// A failing cleanup command is reported in the result (ExitCode, Output,
// Error). Cleanup returns an error only when the workdir could not be
// removed, or a request without a marker.
func (x *Injector) Cleanup(ctx context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.CleanupResult{}, err
	}
	if err := checkMarker(req.Marker); err != nil {
		return plugin.CleanupResult{}, err
	}
	var res plugin.CleanupResult
	var notes []string
	workdir := c.workdirFor(req.Workdir, req.Marker)
	in, injected := x.take(workdir)
	shell, testEnv := c.Shell, map[string]string(nil)
	if injected {
		shell, testEnv = in.shell, in.env
	}
	foreign := x.isForeign(workdir)
	unsafe := c.checkWorkdir(workdir, req.Marker)
	cwd := c.TmpRoot
	if unsafe == nil && !foreign && isDir(workdir) {
		cwd = workdir
	}

	cp, probs := shellstep.ParseCleanup(req.Params)
	switch {
	case len(probs) > 0:
		notes = append(notes, "cleanup command not run: invalid params: "+plugin.Problems(probs).Error())
	case strings.TrimSpace(cp.Command) != "":
		timeout := req.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		out := shellstep.NewCappedBuffer(c.MaxOutput)
		o := x.run(ctx, command{
			shell: shell, line: cp.Command, arg0: req.Marker, dir: cwd,
			env:     x.env(c, cwd, workdir, req.Marker, req.TestID, testEnv),
			timeout: timeout, stdout: out, stderr: out, marker: req.Marker,
		})
		res.ExitCode, res.Output = o.Code, out.Bytes()
		if msg := o.Failure("cleanup command", timeout, ctx.Err()); msg != "" {
			notes = append(notes, msg)
		} else if o.Code != 0 {
			notes = append(notes, fmt.Sprintf("cleanup command exited %d", o.Code))
		}
	}

	if injected && in.pgid != 0 {
		groupRef{pgid: in.pgid, marker: in.marker}.terminate(ctx)
	}
	for _, a := range req.Artifacts {
		switch a.Kind {
		case "file", "dir":
			if p := filepath.Clean(a.Ref); p != workdir {
				if _, ok := within(workdir, p); !ok {
					notes = append(notes, fmt.Sprintf("%s artifact %s left in place: outside the workdir", a.Kind, a.Ref))
				}
			}
		}
	}

	switch {
	case foreign:
		notes = append(notes, fmt.Sprintf("workdir %s existed before the injection: left in place", workdir))
	case unsafe != nil:
		if _, err := os.Lstat(workdir); errors.Is(err, fs.ErrNotExist) {
			break // nothing there, nothing to refuse
		}
		err := fmt.Errorf("exec: refusing to remove workdir: %w", unsafe)
		res.Error = strings.Join(append(notes, err.Error()), "; ")
		return res, err
	default:
		if err := removeWorkdir(workdir, x.euid()); err != nil {
			res.Error = strings.Join(append(notes, err.Error()), "; ")
			return res, err
		}
	}
	res.Error = strings.Join(notes, "; ")
	return res, nil
}
