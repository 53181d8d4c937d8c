package sentinel

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// clockKQL asks the workspace for its own time: the cheapest query there
// is, and the one Check runs to prove the search role.
const clockKQL = "print vigil_now = now()"

// Clock reads the workspace's clock: now() of a one-row query, against the
// middle of the round trip here, good to half the round trip.
func (p *SIEM) Clock(ctx context.Context) (plugin.ClockReading, error) {
	st, err := p.state()
	if err != nil {
		return plugin.ClockReading{}, err
	}
	sent := time.Now()
	rows, err := st.runQuery(ctx, clockKQL, sent.Add(-time.Minute), sent)
	received := time.Now()
	if err != nil {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: %w", err))
	}
	if len(rows) != 1 {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: %d rows for %q", len(rows), clockKQL))
	}
	now, err := rows[0].time("vigil_now")
	if err != nil || now.IsZero() {
		return plugin.ClockReading{}, st.fail(fmt.Errorf("read the clock: %q: no time in the answer (%v)", clockKQL, err))
	}
	rtt := received.Sub(sent)
	return plugin.ClockReading{
		Offset:      now.Sub(sent.Add(rtt / 2)),
		Uncertainty: rtt/2 + time.Millisecond,
		Source:      "now() of the workspace (" + clockKQL + ")",
	}, nil
}
