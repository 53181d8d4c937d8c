package splunk

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Clock reads splunkd's clock from the Date header of GET
// /services/server/info, which every role may read.
func (p *SIEM) Clock(ctx context.Context) (plugin.ClockReading, error) {
	st, err := p.state()
	if err != nil {
		return plugin.ClockReading{}, err
	}
	c := st.client
	auth, err := c.authorization(ctx)
	if err != nil {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: %w", err))
	}
	sent := time.Now()
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: "/services/server/info", query: url.Values{"output_mode": {"json"}}}, auth)
	received := time.Now()
	if err != nil {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: %w", err))
	}
	defer cancel()
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: GET /services/server/info: %w", httpError(resp, b)))
	}
	r, err := plugin.ClockFromDate(resp.Header, sent, received, "GET /services/server/info")
	if err != nil {
		return plugin.ClockReading{}, fmt.Errorf("splunk: read the clock: %w", err)
	}
	return r, nil
}
