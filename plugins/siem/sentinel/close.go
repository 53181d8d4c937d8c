package sentinel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/securityinsights/armsecurityinsights"

	"github.com/vigilsec/vigil/core/plugin"
)

// closeKQL finds the incidents that hold the alerts, in their latest
// state.
func (c *config) closeKQL(alertIDs []string, since time.Time) string {
	return securityIncidentTable +
		"\n| where TimeGenerated >= " + kqlTime(since) +
		"\n| where AlertIds has_any (" + kqlDynamic(alertIDs) + ")" +
		"\n| summarize arg_max(TimeGenerated, *) by IncidentName" +
		"\n| project IncidentName, Status, AlertIds"
}

// CloseSignals sets the incidents of the signals to Closed, classified
// classification (BenignPositive) with classification_reason
// (SuspiciousButExpected) and Reason as the comment, through the
// incidents API (read, then written back with its etag). It needs
// close_signals = true. The incidents of alerts are found in
// SecurityIncident (AlertIds) over close_lookback; alerts without an
// incident (their rule creates none) are an error after the others are
// closed.
func (p *SIEM) CloseSignals(ctx context.Context, req plugin.CloseSignalsRequest) error {
	st, err := p.state()
	if err != nil {
		return err
	}
	if !st.cfg.CloseSignals {
		return st.fail(errors.New("close signals: close_signals is not enabled in the sentinel params (it needs Microsoft Sentinel Responder)"))
	}
	incidents := map[string]bool{}
	var alerts []string
	others := 0
	for _, id := range req.SignalIDs {
		switch {
		case strings.HasPrefix(id, "incident/"):
			incidents[strings.TrimPrefix(id, "incident/")] = true
		case strings.HasPrefix(id, "row/") || id == "":
			others++
		case !slices.Contains(alerts, id):
			alerts = append(alerts, id)
		}
	}
	orphans := 0
	if len(alerts) > 0 {
		now := time.Now()
		since := now.Add(-st.cfg.CloseLookback)
		rows, err := st.runQuery(ctx, st.cfg.closeKQL(alerts, since), since, now)
		if err != nil {
			return st.fail(fmt.Errorf("close signals: find the incidents: %w", err))
		}
		found := map[string]bool{}
		for _, r := range rows {
			name := r.str("IncidentName")
			if name == "" {
				continue
			}
			ids := r.str("AlertIds")
			hit := false
			for _, a := range alerts {
				if strings.Contains(ids, a) {
					found[a] = true
					hit = true
				}
			}
			if hit && !strings.EqualFold(r.str("Status"), "Closed") {
				incidents[name] = true
			}
			if hit && strings.EqualFold(r.str("Status"), "Closed") {
				delete(incidents, name)
			}
		}
		for _, a := range alerts {
			if !found[a] {
				orphans++
			}
		}
	}
	names := make([]string, 0, len(incidents))
	for n := range incidents {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := st.closeIncident(ctx, n, req.Reason); err != nil {
			errs = append(errs, fmt.Errorf("close incident %s: %w", n, err))
			continue
		}
		st.stats.closed.Add(1)
	}
	if orphans > 0 {
		errs = append(errs, fmt.Errorf("%d alert(s) belong to no incident within close_lookback (%s) and were left as they are", orphans, st.cfg.CloseLookback))
	}
	if others > 0 {
		errs = append(errs, fmt.Errorf("%d signal(s) are native query rows, not alerts or incidents, and were left as they are", others))
	}
	if len(errs) > 0 {
		return st.fail(fmt.Errorf("close signals: %w", errors.Join(errs...)))
	}
	return nil
}

// closeIncident reads the incident and writes it back Closed, with its
// etag so that a concurrent change is not overwritten.
func (st *state) closeIncident(ctx context.Context, name, reason string) error {
	got, err := st.cl.incidents.Get(ctx, st.cfg.ResourceGroup, st.cfg.WorkspaceName, name, nil)
	if err != nil {
		return classify(err, roleClose)
	}
	inc := got.Incident
	if inc.Properties == nil {
		return errors.New("the incident has no properties")
	}
	p := inc.Properties
	if p.Status != nil && *p.Status == armsecurityinsights.IncidentStatusClosed {
		return nil
	}
	comment := defaultCloseComment
	if reason != "" {
		comment = reason
	}
	p.Status = ptr(armsecurityinsights.IncidentStatusClosed)
	p.Classification = ptr(armsecurityinsights.IncidentClassification(st.cfg.Classification))
	p.ClassificationReason = nil
	if st.cfg.Classification != string(armsecurityinsights.IncidentClassificationUndetermined) {
		p.ClassificationReason = ptr(armsecurityinsights.IncidentClassificationReason(st.cfg.ClassificationReason))
	}
	p.ClassificationComment = &comment
	upd := armsecurityinsights.Incident{Etag: inc.Etag, Properties: &armsecurityinsights.IncidentProperties{
		Title: p.Title, Severity: p.Severity, Status: p.Status, Classification: p.Classification,
		ClassificationReason: p.ClassificationReason, ClassificationComment: p.ClassificationComment,
		Description: p.Description, Owner: p.Owner, Labels: p.Labels,
	}}
	if _, err := st.cl.incidents.CreateOrUpdate(ctx, st.cfg.ResourceGroup, st.cfg.WorkspaceName, name, upd, nil); err != nil {
		return classify(err, roleClose)
	}
	return nil
}
