package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// maxIngestReasons bounds the rejection reasons kept per replay.
const maxIngestReasons = 3

// inject performs the technique. A failed call or a failed injection ends
// the job with an error (never a miss); cleanup runs all the same.
func (jr *jobRun) inject(ctx context.Context) bool {
	t, tg := jr.j.Test, jr.j.Target
	injCtx, cancel := context.WithTimeout(ctx, jr.timeout+10*time.Second)
	ir, err := tg.Impl.Inject(injCtx, plugin.InjectRequest{
		TestID: t.ID, Technique: string(t.Technique.ID), Marker: jr.marker, Workdir: jr.workdir,
		Params: jr.params, Timeout: jr.timeout, AllowDestructive: jr.e.Opts.AllowDestructive, Safety: string(t.Safety),
		Host: jr.j.Host,
	})
	cancel()
	if err != nil {
		jr.inj = &measure.Injection{Outcome: "error"}
		setAll(jr.rs, measure.Error, fmt.Sprintf("injector %q: inject: %v", tg.Plugin, err))
		for i := range jr.rs {
			jr.rs[i].Injection = jr.inj
		}
		return false
	}
	jr.ir = ir
	jr.inj = &measure.Injection{
		Outcome: string(ir.Outcome), ExitCode: ir.ExitCode, StartedAt: ir.StartedAt, EndedAt: ir.EndedAt,
		DurationMS: ir.EndedAt.Sub(ir.StartedAt).Milliseconds(), Output: injectionOutput(ir),
	}
	jr.injectedAt = ir.StartedAt
	jr.host = ir.Host
	if jr.host == "" {
		jr.host = jr.j.hostName()
	}
	for i := range jr.rs {
		jr.rs[i].Injection = jr.inj
		jr.rs[i].InjectedAt = &jr.injectedAt
		jr.rs[i].Host = jr.host
	}
	if ir.Outcome != plugin.OutcomeSucceeded {
		why := ir.Error
		if why == "" {
			why = fmt.Sprintf("exit code %d", ir.ExitCode)
			if ex := excerpt(ir.Stderr, 300); ex != "" {
				why += ": " + ex
			}
		}
		return jr.fail(measure.Error, fmt.Sprintf("injection %s: %s", ir.Outcome, why))
	}
	return true
}

// cleanup undoes the injection, with the artifacts it reported. It runs
// from a defer once the injector was called. Its problems are recorded with
// the injection but never turn a result into a miss.
func (jr *jobRun) cleanup(ctx context.Context) {
	t, tg := jr.j.Test, jr.j.Target
	cctx := jr.e.Opts.CleanupContext
	if cctx == nil {
		cctx = context.WithoutCancel(ctx)
	}
	cctx, cancel := context.WithTimeout(cctx, jr.timeout+10*time.Second)
	defer cancel()
	cr, err := tg.Impl.Cleanup(cctx, plugin.CleanupRequest{
		TestID: t.ID, Marker: jr.marker, Workdir: jr.workdir, Params: jr.cleanupParams, Artifacts: jr.ir.Artifacts,
		Timeout: jr.timeout, Host: jr.j.Host,
	})
	msg := ""
	switch {
	case err != nil:
		msg = fmt.Sprintf("cleanup failed: %v", err)
	case cr.Error != "":
		msg = "cleanup: " + cr.Error
	case cr.ExitCode != 0:
		msg = fmt.Sprintf("cleanup command exited %d: %s", cr.ExitCode, excerpt(cr.Output, 300))
	}
	if jr.inj != nil {
		jr.inj.Cleanup = msg
	}
}

// replay sends the telemetry the injector produced to every SIEM of the
// job that ingests, and returns, per SIEM, why its results are errors: it
// cannot ingest, or it rejected some of the events (a partly ingested
// replay would make a miss mean nothing).
func (jr *jobRun) replay(ctx context.Context) map[string]string {
	failed := map[string]string{}
	evs := jr.ir.Events
	if len(evs) == 0 {
		return failed
	}
	for i, s := range jr.j.SIEMs {
		if !s.Desc.Has(plugin.CapIngest) {
			failed[s.Name] = fmt.Sprintf("siem %q cannot ingest replayed telemetry", s.Name)
			continue
		}
		res, err := s.Impl.Ingest(ctx, plugin.IngestRequest{Events: evs, Marker: jr.marker})
		if err != nil {
			failed[s.Name] = fmt.Sprintf("siem %q: ingest: %v", s.Name, err)
			continue
		}
		ing := &measure.Ingest{Sent: len(evs), Accepted: res.Accepted, Rejected: len(evs) - res.Accepted}
		for k, p := range res.Problems {
			if k == maxIngestReasons {
				break
			}
			ing.Reasons = append(ing.Reasons, p.String())
		}
		jr.rs[i].Ingest = ing
		if ing.Rejected > 0 || len(res.Problems) > 0 {
			why := strings.Join(ing.Reasons, "; ")
			if why == "" {
				why = "no reason given"
			}
			failed[s.Name] = fmt.Sprintf("siem %q rejected %d of the %d replayed events (%d accepted): %s", s.Name, max(ing.Rejected, len(res.Problems)), len(evs), res.Accepted, why)
		}
	}
	return failed
}

func injectionOutput(ir plugin.InjectResult) string {
	out := excerpt(ir.Stdout, 500)
	if errOut := excerpt(ir.Stderr, 500); errOut != "" {
		if out != "" {
			out += "\n"
		}
		out += "stderr: " + errOut
	}
	return out
}
