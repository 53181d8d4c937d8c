package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// SafetyDestructive is the safety level of tests the injector refuses to
// run without AllowDestructive (the engine refuses them too).
const SafetyDestructive = "destructive"

// ArtifactProcessGroup is the kind of the artifact Inject reports when the
// command left processes running; its Ref is the process group ID. Cleanup
// and Close kill the groups this injector started, whatever the request
// says.
const ArtifactProcessGroup = "process-group"

// Inject runs the test's command in a fresh workdir. A command that fails or
// times out is a result (Outcome failed or timed_out), not an error; a
// destructive test without AllowDestructive and an unsafe or pre-existing
// workdir are refused. Inject returns an error only for invalid params or
// when the workdir cannot be created.
func (x *Injector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.InjectResult{}, err
	}
	spec, probs := shellstep.ParseInject(req.Params, c.Shell, checkShell)
	if len(probs) > 0 {
		return plugin.InjectResult{}, fmt.Errorf("exec: invalid params: %w", plugin.Problems(probs))
	}
	host, _ := os.Hostname()
	res := plugin.InjectResult{Host: host}
	refuse := func(msg string) (plugin.InjectResult, error) {
		res.Outcome, res.ExitCode, res.Error = plugin.OutcomeRefused, -1, msg
		return res, nil
	}
	if req.Safety == SafetyDestructive && !req.AllowDestructive {
		return refuse("exec: test is destructive and destructive tests are not allowed")
	}
	if err := checkMarker(req.Marker); err != nil {
		return plugin.InjectResult{}, err
	}
	workdir := c.workdirFor(req.Workdir, req.Marker)
	if err := c.checkWorkdir(workdir, req.Marker); err != nil {
		if errors.Is(err, errUnsafeWorkdir) {
			return refuse(err.Error())
		}
		return plugin.InjectResult{}, err
	}
	if err := createWorkdir(workdir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			x.markForeign(workdir)
			return refuse(err.Error() + "; refusing to use a workdir that already exists")
		}
		return plugin.InjectResult{}, err
	}
	res.Artifacts = []plugin.Artifact{{Kind: "dir", Ref: workdir}}
	res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerFilePath}
	in := &injection{marker: req.Marker, shell: spec.Shell, env: spec.Env}
	x.remember(workdir, in)

	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	stdout, stderr := shellstep.NewCappedBuffer(c.MaxOutput), shellstep.NewCappedBuffer(c.MaxOutput)
	o := x.run(ctx, command{
		shell: spec.Shell, line: spec.Command, arg0: req.Marker, dir: workdir,
		env:   x.env(c, workdir, workdir, req.Marker, req.TestID, spec.Env),
		stdin: spec.Stdin, timeout: timeout, stdout: stdout, stderr: stderr,
		marker: req.Marker,
	})
	res.StartedAt, res.EndedAt = o.Started, o.Ended
	res.ExitCode = o.Code
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if o.StartErr == nil {
		res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerEnvironment, plugin.MarkerFilePath}
	}
	details := spec.Details(timeout)
	if o.pid > 0 {
		details["pid"] = o.pid
	}
	res.Outcome, res.Error = shellstep.Verdict(spec, o.Exit, res.Stderr, timeout, ctx.Err())
	// Processes the command left in the background keep running until
	// Cleanup (or Close): the technique may need them alive to be seen.
	if o.pid > 0 && !o.TimedOut && !o.Canceled && groupAlive(o.pid) {
		x.mu.Lock()
		in.pgid = o.pid
		x.mu.Unlock()
		res.Artifacts = append(res.Artifacts, plugin.Artifact{Kind: ArtifactProcessGroup, Ref: strconv.Itoa(o.pid)})
		details["background_processes"] = true
	}
	res.Details, _ = json.Marshal(details)
	return res, nil
}

// env is the environment of a test's commands: DefaultPath, the injector's
// HOME, LANG=C and TMPDIR=tmpdir, then the config's env, the test's env,
// and VIGIL_MARKER, VIGIL_WORKDIR and VIGIL_TEST_ID (each set when
// non-empty).
func (x *Injector) env(c *config, tmpdir, workdir, marker, testID string, testEnv map[string]string) []string {
	base := map[string]string{"PATH": DefaultPath, "HOME": c.home, "LANG": "C", "TMPDIR": tmpdir}
	vigil := map[string]string{}
	for k, v := range map[string]string{"VIGIL_MARKER": marker, "VIGIL_WORKDIR": workdir, "VIGIL_TEST_ID": testID} {
		if v != "" {
			vigil[k] = v
		}
	}
	return shellstep.Environ(base, c.Env, testEnv, vigil)
}

// CheckPrerequisites returns the unmet prerequisites of a test: elevation
// when it needs root and the injector is not, and each prerequisite whose
// check command does not exit 0 (after its get command, when asked to
// fetch). Checks run in tmp_root without the marker, so that their
// activity is not attributed to the test. An error means the checks could
// not run (ctx done).
func (x *Injector) CheckPrerequisites(ctx context.Context, req plugin.PrerequisitesRequest) ([]plugin.UnmetPrerequisite, error) {
	c, err := x.config()
	if err != nil {
		return nil, err
	}
	var unmet []plugin.UnmetPrerequisite
	if req.ElevationRequired {
		if uid := x.euid(); uid != 0 {
			unmet = append(unmet, plugin.UnmetPrerequisite{
				Description: "elevation_required",
				Reason:      fmt.Sprintf("needs root (elevation_required) but runs as uid %d", uid),
			})
		}
	}
	for _, p := range req.Prerequisites {
		if p.Check == "" {
			unmet = append(unmet, plugin.UnmetPrerequisite{Description: p.Description, Reason: "no check command"})
			continue
		}
		reason, met := x.checkOne(ctx, c, req.TestID, p.Check, PrerequisiteTimeout, "check")
		if !met && req.GetPrerequisites && p.Get != "" && ctx.Err() == nil {
			if getReason, ok := x.checkOne(ctx, c, req.TestID, p.Get, GetTimeout, "get"); !ok {
				reason += "; " + getReason
			} else {
				reason, met = x.checkOne(ctx, c, req.TestID, p.Check, PrerequisiteTimeout, "check after get")
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("exec: check prerequisite %q: %w", p.Description, err)
		}
		if !met {
			unmet = append(unmet, plugin.UnmetPrerequisite{Description: p.Description, Reason: reason})
		}
	}
	return unmet, nil
}

// checkOne runs one prerequisite command; it is met when it exits 0.
func (x *Injector) checkOne(ctx context.Context, c *config, testID, line string, timeout time.Duration, what string) (string, bool) {
	stdout, stderr := shellstep.NewCappedBuffer(4<<10), shellstep.NewCappedBuffer(4<<10)
	o := x.run(ctx, command{
		shell: c.Shell, line: line, arg0: "vigil-prerequisite", dir: c.TmpRoot,
		env:     x.env(c, c.TmpRoot, "", "", testID, nil),
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
