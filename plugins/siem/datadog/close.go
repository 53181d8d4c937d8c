package datadog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

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
		attrs := datadogV2.NewSecurityMonitoringSignalStateUpdateAttributes(datadogV2.SECURITYMONITORINGSIGNALSTATE_ARCHIVED)
		attrs.SetArchiveReason(datadogV2.SECURITYMONITORINGSIGNALARCHIVEREASON_TESTING_OR_MAINTENANCE)
		attrs.SetArchiveComment(excerpt(comment, 500))
		body := datadogV2.SecurityMonitoringSignalStateUpdateRequest{
			Data: datadogV2.SecurityMonitoringSignalStateUpdateData{
				Attributes: *attrs,
				Type:       datadogV2.SECURITYMONITORINGSIGNALMETADATATYPE_SIGNAL_METADATA.Ptr(),
			},
		}
		_, err := st.api.call(ctx, opSignalState, "archive signal "+id, func(ctx context.Context) (*http.Response, error) {
			_, resp, err := st.api.security.EditSecurityMonitoringSignalState(ctx, id, body)
			return resp, err
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
