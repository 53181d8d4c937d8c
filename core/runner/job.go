package runner

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// jobRun is one job being performed: the state its steps share. Each step
// is a method in the file of its name (prereq.go, inject.go, expect.go,
// verdict.go); runJob calls them in order.
type jobRun struct {
	e  *Engine
	j  *Job
	rs []measure.Result // one per SIEM of the job

	marker  string
	workdir string
	vars    catalog.Vars
	timeout time.Duration

	params, cleanupParams map[string]any

	// Set by inject.
	ir         plugin.InjectResult
	inj        *measure.Injection
	injectedAt time.Time
	host       string
}

// runJob performs one test on one target and waits for its signals:
// prerequisites, rendering, injection, cleanup (deferred as soon as the
// injector was called, so that no early return or panic skips it), replay
// of the injector's telemetry, expectations, the wait, and the verdicts.
func (e *Engine) runJob(ctx context.Context, j *Job) []measure.Result {
	jr := e.newJobRun(j)
	if j.Test.Safety == catalog.SafetyDestructive && !e.Opts.AllowDestructive {
		return setAll(jr.rs, measure.Skipped, "destructive test refused: pass --allow-destructive to run it")
	}
	if !jr.hostStep(func() bool { return jr.prerequisites(ctx) }) || !jr.render() {
		return jr.rs
	}
	defer jr.hostStep(func() bool { jr.cleanup(ctx); return true })
	if !jr.hostStep(func() bool { return jr.inject(ctx) }) {
		return jr.rs
	}
	failed := jr.replay(ctx)
	waits := jr.expect(failed)
	jr.collect(waits)
	jr.settle()
	jr.closeSignals(ctx)
	return jr.rs
}

// newJobRun draws the job's marker and lays out its work directory and
// template variables.
func (e *Engine) newJobRun(j *Job) *jobRun {
	t, tg := j.Test, j.Target
	jr := &jobRun{e: e, j: j, rs: e.baseResults(j), marker: NewMarker()}
	tmpRoot := tg.TmpRoot
	if tmpRoot == "" {
		tmpRoot = os.TempDir()
	}
	jr.workdir = path.Join(tmpRoot, jr.marker)
	jr.vars = catalog.Vars{Marker: jr.marker, TmpDir: jr.workdir, Host: j.hostName(), Target: tg.Name, TestID: t.ID, Args: e.Opts.Args.Resolve(t)}
	jr.timeout = t.Timeout
	if jr.timeout <= 0 {
		jr.timeout = catalog.DefaultTimeout
	}
	for i := range jr.rs {
		jr.rs[i].Marker = jr.marker
	}
	return jr
}

// hostStep runs a step that may change the target between the engine's
// HostStep calls.
func (jr *jobRun) hostStep(step func() bool) bool {
	if h := jr.e.Opts.HostStep; h != nil {
		h(jr.j, true)
		defer h(jr.j, false)
	}
	return step()
}

// fail sets every result to st with msg and reports false, for steps that
// end the job.
func (jr *jobRun) fail(st measure.Status, msg string) bool {
	setAll(jr.rs, st, msg)
	return false
}

// render renders the inject and cleanup params.
func (jr *jobRun) render() bool {
	t := jr.j.Test
	shell := jr.j.Target.Desc.ShellParams()
	var err error
	if jr.params, err = catalog.Render(t.Inject.Params, jr.vars, shell); err != nil {
		return jr.fail(measure.Error, fmt.Sprintf("render inject params: %v", err))
	}
	if t.Cleanup != nil {
		if jr.cleanupParams, err = catalog.Render(t.Cleanup.Params, jr.vars, shell); err != nil {
			return jr.fail(measure.Error, fmt.Sprintf("render cleanup params: %v", err))
		}
	}
	return true
}

func (e *Engine) baseResults(j *Job) []measure.Result {
	out := make([]measure.Result, len(j.SIEMs))
	for i, s := range j.SIEMs {
		out[i] = measure.Result{
			TestID: j.Test.ID, TestName: j.Test.Name, Technique: string(j.Test.Technique.ID),
			TechniqueName: j.Test.Technique.FullName(), Tactics: j.Test.Tactics,
			Target: j.TargetName(), Host: j.hostName(), SIEM: s.Name,
			PollIntervalMS: s.PollInterval.Milliseconds(),
		}
	}
	return out
}

func (e *Engine) skipAll(j *Job, reason string) []measure.Result {
	rs := e.baseResults(j)
	for i := range rs {
		rs[i].Status, rs[i].Reason = measure.Skipped, reason
	}
	return rs
}

func setAll(rs []measure.Result, st measure.Status, msg string) []measure.Result {
	for i := range rs {
		rs[i].Status = st
		if st == measure.Skipped {
			rs[i].Reason = msg
		} else {
			rs[i].Error = msg
		}
	}
	return rs
}

// excerpt returns at most n bytes of b, trimmed, marking a cut.
func excerpt(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + " [...]"
	}
	return s
}
