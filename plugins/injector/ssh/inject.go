package ssh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// SafetyDestructive is the safety level of tests refused without
// AllowDestructive.
const SafetyDestructive = "destructive"

// ArtifactProcessGroup is the kind of the artifact Inject reports when the
// command left processes running on the host; its Ref is the remote process
// group ID. Cleanup and Close kill it.
const ArtifactProcessGroup = "process-group"

// probe reads the host's name and the login user's uid, once per
// connection state.
func (x *Injector) probe(ctx context.Context, hc *hostConn) (hostname string, uid int, err error) {
	hc.mu.Lock()
	if hc.probed {
		defer hc.mu.Unlock()
		return hc.hostname, hc.uid, nil
	}
	hc.mu.Unlock()
	code, out, all, err := x.runSimple(ctx, hc, "id -u && uname -n", HelperTimeout)
	if err != nil {
		return "", -1, err
	}
	lines := strings.Fields(string(out))
	if code != 0 || len(lines) < 2 {
		return "", -1, fmt.Errorf("ssh: %s: `id -u && uname -n` exited %d: %s", hc.addr, code, shellstep.Excerpt(all, 200))
	}
	uid, err = strconv.Atoi(lines[0])
	if err != nil {
		return "", -1, fmt.Errorf("ssh: %s: id -u printed %q", hc.addr, lines[0])
	}
	hc.mu.Lock()
	hc.hostname, hc.uid, hc.probed = lines[1], uid, true
	hc.mu.Unlock()
	return lines[1], uid, nil
}

// env is the environment of a test's commands, as exec's: DefaultPath,
// LANG=C and TMPDIR, the config's env, the test's env, then VIGIL_MARKER,
// VIGIL_WORKDIR and VIGIL_TEST_ID (each when non-empty). HOME is the login
// user's unless an env sets it.
func (c *config) env(tmpdir, workdir, marker, testID string, testEnv map[string]string) []string {
	base := map[string]string{"PATH": DefaultPath, "LANG": "C", "TMPDIR": tmpdir}
	vigil := map[string]string{}
	for k, v := range map[string]string{"VIGIL_MARKER": marker, "VIGIL_WORKDIR": workdir, "VIGIL_TEST_ID": testID} {
		if v != "" {
			vigil[k] = v
		}
	}
	return shellstep.Environ(base, c.Env, testEnv, vigil)
}

// Inject runs the test's command on req.Host in a fresh workdir. A command
// that fails or times out is a result (Outcome failed or timed_out), not an
// error; a destructive test without AllowDestructive and an unsafe or
// pre-existing workdir are refused. Inject returns an error for invalid
// params, a request without a host, and a host that cannot be reached or
// where the workdir cannot be created.
func (x *Injector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.InjectResult{}, err
	}
	spec, probs := shellstep.ParseInject(req.Params, c.Shell, checkShell)
	if len(probs) > 0 {
		return plugin.InjectResult{}, fmt.Errorf("ssh: invalid params: %w", plugin.Problems(probs))
	}
	if err := checkMarker(req.Marker); err != nil {
		return plugin.InjectResult{}, err
	}
	hc, err := x.conn(req.Host)
	if err != nil {
		return plugin.InjectResult{}, err
	}
	res := plugin.InjectResult{Host: hostOnly(req.Host)}
	refuse := func(msg string) (plugin.InjectResult, error) {
		res.Outcome, res.ExitCode, res.Error = plugin.OutcomeRefused, -1, msg
		return res, nil
	}
	if req.Safety == SafetyDestructive && !req.AllowDestructive {
		return refuse("ssh: test is destructive and destructive tests are not allowed")
	}
	workdir := c.workdirFor(req.Workdir, req.Marker)
	if err := c.checkWorkdir(workdir, req.Marker); err != nil {
		return refuse(err.Error())
	}
	hostname, _, err := x.probe(ctx, hc)
	if err != nil {
		return plugin.InjectResult{}, err
	}
	res.Host = hostname
	sudo := x.isElevated(req.Host, req.Marker)
	if err := x.createWorkdir(ctx, hc, workdir, sudo); err != nil {
		if errors.Is(err, errWorkdirExists) {
			x.markForeign(req.Host, workdir)
			return refuse(err.Error() + "; refusing to use a workdir that already exists")
		}
		return plugin.InjectResult{}, err
	}
	res.Artifacts = []plugin.Artifact{{Kind: "dir", Ref: workdir}}
	res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerFilePath}
	in := &injection{marker: req.Marker, shell: spec.Shell, env: spec.Env, sudo: sudo}
	x.remember(req.Host, workdir, in)

	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	stdout, stderr := shellstep.NewCappedBuffer(c.MaxOutput), shellstep.NewCappedBuffer(c.MaxOutput)
	o := x.run(ctx, hc, command{
		shell: spec.Shell, line: spec.Command, arg0: req.Marker, dir: workdir,
		env:   c.env(workdir, workdir, req.Marker, req.TestID, spec.Env),
		stdin: spec.Stdin, sudo: sudo, timeout: timeout, stdout: stdout, stderr: stderr,
	})
	res.StartedAt, res.EndedAt = o.Started, o.Ended
	res.ExitCode = o.Code
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if o.StartErr == nil {
		res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerEnvironment, plugin.MarkerFilePath}
	}
	details := spec.Details(timeout)
	details["host"], details["hostname"], details["sudo"] = req.Host, hostname, sudo
	if o.pgid > 0 {
		details["pgid"] = o.pgid
	}
	res.Outcome, res.Error = shellstep.Verdict(spec, o.Exit, res.Stderr, timeout, ctx.Err())
	if o.background && o.pgid > 0 {
		x.mu.Lock()
		in.pgid = o.pgid
		x.mu.Unlock()
		res.Artifacts = append(res.Artifacts, plugin.Artifact{Kind: ArtifactProcessGroup, Ref: strconv.Itoa(o.pgid)})
		details["background_processes"] = true
	}
	res.Details, _ = json.Marshal(details)
	return res, nil
}

// hostOnly is a target host without its port or brackets.
func hostOnly(h string) string {
	if i := strings.LastIndex(h, "]"); strings.HasPrefix(h, "[") && i > 0 {
		return h[1:i]
	}
	if strings.Count(h, ":") == 1 {
		return h[:strings.IndexByte(h, ':')]
	}
	return h
}

// CheckPrerequisites returns the unmet prerequisites of a test on
// req.Host: elevation when the test needs root, the user is not root and
// sudo is off or refused, and each prerequisite whose check command does
// not exit 0 (after its get command, when asked to fetch). Checks run in
// tmp_root without the marker. An error means the host could not be
// reached or ctx is done.
func (x *Injector) CheckPrerequisites(ctx context.Context, req plugin.PrerequisitesRequest) ([]plugin.UnmetPrerequisite, error) {
	c, err := x.config()
	if err != nil {
		return nil, err
	}
	hc, err := x.conn(req.Host)
	if err != nil {
		return nil, err
	}
	_, uid, err := x.probe(ctx, hc)
	if err != nil {
		return nil, err
	}
	var unmet []plugin.UnmetPrerequisite
	sudo := false
	if req.ElevationRequired && uid != 0 {
		switch {
		case !c.Sudo:
			unmet = append(unmet, plugin.UnmetPrerequisite{
				Description: "elevation_required",
				Reason:      fmt.Sprintf("needs root (elevation_required) but %s logs in as uid %d on %s (set sudo = true for passwordless sudo)", c.User, uid, hc.addr),
			})
		default:
			code, _, out, err := x.runSimple(ctx, hc, "sudo -n true", HelperTimeout)
			if err != nil {
				return nil, err
			}
			if code != 0 {
				unmet = append(unmet, plugin.UnmetPrerequisite{
					Description: "elevation_required",
					Reason:      fmt.Sprintf("needs root (elevation_required) but `sudo -n true` exited %d on %s: %s", code, hc.addr, shellstep.Excerpt(out, 200)),
				})
			} else {
				sudo = true
				if req.Marker != "" {
					x.setElevated(req.Host, req.Marker)
				}
			}
		}
	}
	for _, p := range req.Prerequisites {
		if p.Check == "" {
			unmet = append(unmet, plugin.UnmetPrerequisite{Description: p.Description, Reason: "no check command"})
			continue
		}
		reason, met := x.checkOne(ctx, hc, c, req.TestID, p.Check, sudo, PrerequisiteTimeout, "check")
		if !met && req.GetPrerequisites && p.Get != "" && ctx.Err() == nil {
			if getReason, ok := x.checkOne(ctx, hc, c, req.TestID, p.Get, sudo, GetTimeout, "get"); !ok {
				reason += "; " + getReason
			} else {
				reason, met = x.checkOne(ctx, hc, c, req.TestID, p.Check, sudo, PrerequisiteTimeout, "check after get")
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ssh: check prerequisite %q on %s: %w", p.Description, hc.addr, err)
		}
		if !met {
			unmet = append(unmet, plugin.UnmetPrerequisite{Description: p.Description, Reason: reason})
		}
	}
	return unmet, nil
}

// checkOne runs one prerequisite command; it is met when it exits 0.
func (x *Injector) checkOne(ctx context.Context, hc *hostConn, c *config, testID, line string, sudo bool, timeout time.Duration, what string) (string, bool) {
	stdout, stderr := shellstep.NewCappedBuffer(4<<10), shellstep.NewCappedBuffer(4<<10)
	o := x.run(ctx, hc, command{
		shell: c.Shell, line: line, arg0: "vigil-prerequisite", dir: c.TmpRoot,
		env: c.env(c.TmpRoot, "", "", testID, nil), sudo: sudo,
		timeout: timeout, stdout: stdout, stderr: stderr,
	})
	if msg := o.Failure(what, timeout, ctx.Err()); msg != "" {
		return msg, false
	}
	if o.Code == 0 {
		return "", true
	}
	reason := fmt.Sprintf("%s exited %d", what, o.Code)
	e := shellstep.Excerpt(stderr.Bytes(), 200)
	if e == "" {
		e = shellstep.Excerpt(stdout.Bytes(), 200)
	}
	if e != "" {
		reason += ": " + e
	}
	return reason, false
}
