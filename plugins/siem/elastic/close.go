package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/plugin"
)

// kibanaStatusPath is the detection engine's alert status endpoint.
const kibanaStatusPath = "/api/detection_engine/signals/status"

// closeScript closes an alert in either layout: 7.x signal.status, 8.x
// kibana.alert.workflow_status (a literal dotted key) and its update time.
const closeScript = `if (ctx._source.signal instanceof Map) { ctx._source.signal.status = params.status } ` +
	`else { ctx._source['kibana.alert.workflow_status'] = params.status; ctx._source['kibana.alert.workflow_status_updated_at'] = params.at }`

// CloseSignals sets the alerts' workflow status to closed, leaving the SOC
// queue clean: through Kibana's signals status API when kibana_url is set,
// else by update-by-query on the alerts index. Alerts that were not found
// or could not be updated make an error naming how many.
func (s *SIEM) CloseSignals(ctx context.Context, req plugin.CloseSignalsRequest) error {
	st, err := s.state()
	if err != nil {
		return err
	}
	if len(req.SignalIDs) == 0 {
		return nil
	}
	var b []byte
	if st.cl.kb != nil {
		body, _ := json.Marshal(obj{"signal_ids": req.SignalIDs, "status": "closed"})
		b, err = st.cl.kbDo(ctx, http.MethodPost, kibanaStatusPath, nil, body)
	} else {
		body, _ := json.Marshal(obj{
			"query": obj{"ids": obj{"values": req.SignalIDs}},
			"script": obj{"lang": "painless", "source": closeScript,
				"params": obj{"status": "closed", "at": st.now().UTC().Format(time.RFC3339Nano)}},
		})
		refresh := true
		b, err = st.cl.esDo(ctx, esapi.UpdateByQueryRequest{
			Index: []string{st.cfg.Index}, Body: bytes.NewReader(body), Conflicts: "proceed", Refresh: &refresh,
		})
	}
	if err != nil {
		return fmt.Errorf("elastic: close alerts: %w", err)
	}
	var r struct {
		Total            *int `json:"total"`
		Updated          int  `json:"updated"`
		Noops            int  `json:"noops"`
		VersionConflicts int  `json:"version_conflicts"`
		Failures         []struct {
			ID    string `json:"id"`
			Cause struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"cause"`
		} `json:"failures"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Total == nil {
		return fmt.Errorf("elastic: close alerts: malformed answer: %s", excerpt(b, 200))
	}
	done := r.Updated + r.Noops
	st.stats.closed.Add(int64(r.Updated))
	switch {
	case len(r.Failures) > 0:
		f := r.Failures[0]
		return fmt.Errorf("elastic: close alerts: %d of %d closed; alert %q: %s: %s", done, len(req.SignalIDs), f.ID, f.Cause.Type, st.cl.redact(f.Cause.Reason))
	case r.VersionConflicts > 0:
		return fmt.Errorf("elastic: close alerts: %d of %d closed; %d changed meanwhile (version conflict)", done, len(req.SignalIDs), r.VersionConflicts)
	case done < len(req.SignalIDs):
		return fmt.Errorf("elastic: close alerts: %d of %d closed; the others were not found", done, len(req.SignalIDs))
	}
	return nil
}
