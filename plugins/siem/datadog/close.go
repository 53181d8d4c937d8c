package datadog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
)

// ErrCloseDisabled is returned by CloseSignals when the config does not
// set close_signals = true.
var ErrCloseDisabled = errors.New("archiving signals is disabled (set close_signals = true in [siem.params])")

// CloseSignals archives the given signals (PATCH
// /api/v2/security_monitoring/signals/{id}/state, state "archived", reason
// "testing_or_maintenance", the request's reason as comment), so that
// vigil's signals leave the SOC queue. It needs close_signals = true and an
// application key with security_monitoring_signals_write. Every signal is
// tried; the error lists those that could not be archived.
func (s *SIEM) CloseSignals(ctx context.Context, req plugin.CloseSignalsRequest) error {
	st, err := s.state()
	if err != nil {
		return err
	}
	if !st.cfg.CloseSignals {
		return fmt.Errorf("datadog: close signals: %w", ErrCloseDisabled)
	}
	comment := req.Reason
	if comment == "" {
		comment = "testing or maintenance (vigil)"
	}
	var failed []string
	var firstErr error
	for _, id := range req.SignalIDs {
		if id == "" {
			continue
		}
		body := signalStateRequest{Data: signalStateData{
			Attributes: signalStateAttributes{ArchiveComment: excerpt(comment, 500), ArchiveReason: "testing_or_maintenance", State: "archived"},
			Type:       "signal_metadata",
		}}
		_, err := st.api.call(ctx, opSignalState, "archive signal "+id, func(ctx context.Context) (*http.Response, error) {
			return st.api.send(ctx, epSignalState, request{params: map[string]string{"signal_id": id}, body: &body})
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, id)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		st.api.stats.archived.Add(1)
	}
	if len(failed) > 0 {
		return fmt.Errorf("datadog: close signals: %d of %d not archived (%s): %w", len(failed), len(req.SignalIDs), strings.Join(failed, ", "), firstErr)
	}
	return nil
}
