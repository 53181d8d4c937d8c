package runner

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// prerequisites renders the test's prerequisite checks and asks the
// injector to run them: an unmet one skips the job, saying which and why.
func (jr *jobRun) prerequisites(ctx context.Context) bool {
	t, tg := jr.j.Test, jr.j.Target
	prq := plugin.PrerequisitesRequest{
		TestID: t.ID, ElevationRequired: t.ElevationRequired, GetPrerequisites: jr.e.Opts.GetPrereqs,
		Marker: jr.marker, Host: jr.j.Host,
	}
	for _, p := range t.Prerequisites {
		check, err := catalog.RenderString(p.Check, jr.vars, true)
		if err != nil {
			return jr.fail(measure.Error, fmt.Sprintf("prerequisite %q: %v", p.Description, err))
		}
		get, err := catalog.RenderString(p.Get, jr.vars, true)
		if err != nil {
			return jr.fail(measure.Error, fmt.Sprintf("prerequisite %q: %v", p.Description, err))
		}
		prq.Prerequisites = append(prq.Prerequisites, plugin.Prerequisite{Description: p.Description, Check: check, Get: get})
	}
	unmet, err := tg.Impl.CheckPrerequisites(ctx, prq)
	if err != nil {
		return jr.fail(measure.Error, fmt.Sprintf("injector %q: check prerequisites: %v", tg.Plugin, err))
	}
	if len(unmet) > 0 {
		var why []string
		for _, u := range unmet {
			why = append(why, u.Description+": "+u.Reason)
		}
		return jr.fail(measure.Skipped, "prerequisite not met: "+strings.Join(why, "; "))
	}
	return true
}
