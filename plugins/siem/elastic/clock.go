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

// clockPipeline is a simulated ingest pipeline that stamps a document with
// the node's time: Elasticsearch sends no Date header (before 9.x), so this
// is how its clock is read, to the millisecond.
const clockPipeline = `{"pipeline":{"processors":[{"set":{"field":"now","value":"{{_ingest.timestamp}}"}}]},"docs":[{"_source":{}}]}`

// Clock reads the SIEM's clock: with Elasticsearch, its time from a
// simulated ingest pipeline (needs the read_pipeline cluster privilege),
// else the Date header of its answer; with Kibana only, the Date header of
// GET /api/status.
func (s *SIEM) Clock(ctx context.Context) (plugin.ClockReading, error) {
	st, err := s.state()
	if err != nil {
		return plugin.ClockReading{}, err
	}
	if st.cl.es == nil {
		return st.cl.kbClock(ctx)
	}
	return st.cl.esClock(ctx)
}

// esClock reads Elasticsearch's clock.
func (c *clients) esClock(ctx context.Context) (plugin.ClockReading, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	sent := time.Now()
	res, err := esapi.IngestSimulateRequest{Body: bytes.NewReader([]byte(clockPipeline))}.Do(ctx, c.es)
	received := time.Now()
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: %w", c.transportErr(ctx, err))
	}
	header := res.Header
	b, err := c.readAnswer(res.StatusCode, res.Body)
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: POST /_ingest/pipeline/_simulate: %w", err)
	}
	var doc struct {
		Docs []struct {
			Doc struct {
				Source struct {
					Now string `json:"now"`
				} `json:"_source"`
			} `json:"doc"`
		} `json:"docs"`
	}
	if json.Unmarshal(b, &doc) == nil && len(doc.Docs) == 1 && doc.Docs[0].Doc.Source.Now != "" {
		now, err := time.Parse(time.RFC3339Nano, doc.Docs[0].Doc.Source.Now)
		if err == nil {
			rtt := received.Sub(sent)
			return plugin.ClockReading{
				Offset: now.Sub(sent.Add(rtt / 2)), Uncertainty: rtt/2 + time.Millisecond,
				Source: "the ingest timestamp of POST /_ingest/pipeline/_simulate",
			}, nil
		}
	}
	r, err := plugin.ClockFromDate(header, sent, received, "POST /_ingest/pipeline/_simulate")
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: no ingest timestamp in the answer and %w", err)
	}
	return r, nil
}

// kbClock reads Kibana's clock from its Date header.
func (c *clients) kbClock(ctx context.Context) (plugin.ClockReading, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/api/status", nil)
	if err != nil {
		return plugin.ClockReading{}, err
	}
	req.Header.Set("Accept", "application/json")
	sent := time.Now()
	res, err := c.kb.Perform(req)
	received := time.Now()
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: %w", c.transportErr(ctx, err))
	}
	header := res.Header
	if _, err := c.readAnswer(res.StatusCode, res.Body); err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: GET /api/status: %w", err)
	}
	r, err := plugin.ClockFromDate(header, sent, received, "Kibana's GET /api/status")
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("elastic: read the clock: %w", err)
	}
	return r, nil
}
