package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/vigilsec/vigil/core/integrity"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/runner"
)

// hostCheck is the host-integrity check of a run: a snapshot of this host
// before the run, after each step of a test that changes it, and after the
// run.
type hostCheck struct {
	ctx context.Context
	tr  *integrity.Tracker
}

// localJob says whether a job's injector changes this host.
func localJob(j *runner.Job) bool { return j.Target.Desc.Has(plugin.CapLocalHost) }

// startHostCheck takes the snapshot before the run, when some job of the
// plan changes this host and the check is not turned off (nil otherwise).
func startHostCheck(ctx context.Context, plan *runner.Plan, off bool) (*hostCheck, error) {
	if off {
		return nil, nil
	}
	local := false
	for _, j := range plan.Jobs {
		local = local || localJob(j)
	}
	if !local {
		return nil, nil
	}
	tr, err := integrity.Start(ctx, &integrity.Scanner{})
	if err != nil {
		return nil, runtimeErr(fmt.Errorf("host-integrity check: %w (--no-integrity-check skips it)", err))
	}
	return &hostCheck{ctx: context.WithoutCancel(ctx), tr: tr}, nil
}

// step is the engine's HostStep.
func (h *hostCheck) step(j *runner.Job, begin bool) {
	if !localJob(j) {
		return
	}
	if begin {
		h.tr.Begin(j.Test.ID)
	} else {
		h.tr.End(h.ctx, j.Test.ID)
	}
}

// finish takes the snapshot after the run and puts what changed into it.
func (h *hostCheck) finish(run *measure.Run) error {
	r, err := h.tr.Finish(h.ctx)
	if err != nil {
		run.Notes = append(run.Notes, fmt.Sprintf("host-integrity check: %v: whether the run left this host changed is not known", err))
		return err
	}
	host, _ := os.Hostname()
	run.IntegrityCheck = &measure.IntegrityCheck{Host: host, Entries: r.Entries, Snapshots: r.Snapshots, CostMS: r.Cost.Milliseconds()}
	for _, f := range r.Findings {
		run.HostChanged = append(run.HostChanged, measure.HostChange{Path: f.Path, Change: f.What, Tests: f.Tests, Attribution: f.Attribution()})
	}
	return nil
}

// printHostChanges prints what the run left changed on this host, or one
// line saying the host is unchanged.
func printHostChanges(w io.Writer, run *measure.Run) {
	ic := run.IntegrityCheck
	if ic == nil {
		return
	}
	if len(run.HostChanged) == 0 {
		fmt.Fprintf(w, "\nhost-integrity check: %s unchanged (%d paths and items, %d snapshots, %dms)\n", ic.Host, ic.Entries, ic.Snapshots, ic.CostMS)
		return
	}
	fmt.Fprintf(w, "\nHOST CHANGED (%d): the run left %s different after the cleanups (exit %d)\n", len(run.HostChanged), ic.Host, ExitHostChanged)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tCHANGE\tBY")
	for _, c := range run.HostChanged {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Path, c.Change, c.Attribution)
	}
	tw.Flush()
}
