package plugin

import (
	"fmt"
	"net/http"
	"time"
)

// ClockFromDate reads a server's clock from the Date header of an HTTP
// answer to a request sent at sent and answered at received (this host's
// clock). The header has a one-second resolution: the server's time when it
// wrote the header is in [Date, Date+1s), and that instant is in [sent,
// received] here, so the offset is the middle of the interval these bound,
// good to half a second plus half the round trip.
func ClockFromDate(h http.Header, sent, received time.Time, source string) (ClockReading, error) {
	v := h.Get("Date")
	if v == "" {
		return ClockReading{}, fmt.Errorf("%s: the answer has no Date header", source)
	}
	d, err := http.ParseTime(v)
	if err != nil {
		return ClockReading{}, fmt.Errorf("%s: Date header %q: %w", source, v, err)
	}
	rtt := received.Sub(sent)
	mid := sent.Add(rtt / 2)
	return ClockReading{
		Offset:      d.Add(500 * time.Millisecond).Sub(mid),
		Uncertainty: 500*time.Millisecond + rtt/2,
		Source:      "HTTP Date header of " + source,
	}, nil
}
