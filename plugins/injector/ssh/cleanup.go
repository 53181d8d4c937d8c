package ssh

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Cleanup undoes an injection on req.Host, whether or not Inject ran or
// finished: it runs the cleanup command there (with the shell, env and
// elevation of the injection, in the workdir if it still exists, else in
// tmp_root), kills the processes the command left in the background, and
// removes the workdir. It removes the workdir only if it is a directory
// owned by the commands' user, under tmp_root, with the marker in its
// path, and not one that Inject found already there.
//
// A failing cleanup command is reported in the result. Cleanup returns an
// error when the workdir could not be removed, the host cannot be reached,
// or the request has no marker or host.
func (x *Injector) Cleanup(ctx context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.CleanupResult{}, err
	}
	if err := checkMarker(req.Marker); err != nil {
		return plugin.CleanupResult{}, err
	}
	hc, err := x.conn(req.Host)
	if err != nil {
		return plugin.CleanupResult{}, err
	}
	var res plugin.CleanupResult
	var notes []string
	workdir := c.workdirFor(req.Workdir, req.Marker)
	in, injected := x.take(req.Host, workdir)
	shell, testEnv, sudo := c.Shell, map[string]string(nil), x.isElevated(req.Host, req.Marker)
	if injected {
		shell, testEnv, sudo = in.shell, in.env, in.sudo
	}
	x.mu.Lock()
	delete(x.elevated, key(req.Host, req.Marker))
	x.mu.Unlock()
	foreign := x.isForeign(req.Host, workdir)
	unsafe := c.checkWorkdir(workdir, req.Marker)

	cp, probs := shellstep.ParseCleanup(req.Params)
	switch {
	case len(probs) > 0:
		notes = append(notes, "cleanup command not run: invalid params: "+plugin.Problems(probs).Error())
	case strings.TrimSpace(cp.Command) != "":
		timeout := req.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		cwd := c.TmpRoot
		if unsafe == nil && !foreign {
			if ok, err := x.exists(ctx, hc, workdir); err != nil {
				return res, fmt.Errorf("ssh: cleanup on %s: %w", hc.addr, err)
			} else if ok {
				cwd = workdir
			}
		}
		out := shellstep.NewCappedBuffer(c.MaxOutput)
		o := x.run(ctx, hc, command{
			shell: shell, line: cp.Command, arg0: req.Marker, dir: cwd,
			env:  c.env(cwd, workdir, req.Marker, req.TestID, testEnv),
			sudo: sudo, timeout: timeout, stdout: out, stderr: out,
		})
		res.ExitCode, res.Output = o.Code, out.Bytes()
		if msg := o.Failure("cleanup command", timeout, ctx.Err()); msg != "" {
			notes = append(notes, msg)
		} else if o.Code != 0 {
			notes = append(notes, fmt.Sprintf("cleanup command exited %d", o.Code))
		}
	}

	if injected && in.pgid != 0 {
		x.killOwnedGroup(ctx, hc, in.pgid, in.marker, in.sudo)
	}
	for _, a := range req.Artifacts {
		switch a.Kind {
		case "file", "dir":
			if a.Ref != workdir && !within(workdir, a.Ref) {
				notes = append(notes, fmt.Sprintf("%s artifact %s left in place: outside the workdir", a.Kind, a.Ref))
			}
		case ArtifactProcessGroup:
			if pg, err := strconv.Atoi(a.Ref); err != nil || !injected || pg != in.pgid {
				notes = append(notes, fmt.Sprintf("process group %s left alone: not started by this injector", a.Ref))
			}
		}
	}

	switch {
	case foreign:
		notes = append(notes, fmt.Sprintf("workdir %s existed before the injection: left in place", workdir))
	case unsafe != nil:
		if ok, err := x.exists(ctx, hc, workdir); err == nil && !ok {
			break // nothing there, nothing to refuse
		}
		err := fmt.Errorf("ssh: refusing to remove workdir on %s: %w", hc.addr, unsafe)
		res.Error = strings.Join(append(notes, err.Error()), "; ")
		return res, err
	default:
		if err := x.removeWorkdir(ctx, hc, workdir, sudo); err != nil {
			res.Error = strings.Join(append(notes, err.Error()), "; ")
			return res, err
		}
	}
	res.Error = strings.Join(notes, "; ")
	return res, nil
}
