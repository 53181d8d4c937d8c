package plugin

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClockFromDate(t *testing.T) {
	sent := time.Date(2026, 12, 7, 10, 0, 0, 200_000_000, time.UTC)
	tests := []struct {
		name    string
		date    string
		rtt     time.Duration
		offset  time.Duration // the true offset the reading must contain
		wantUnc time.Duration
		wantErr string
	}{
		{name: "in sync", date: "Mon, 07 Dec 2026 10:00:00 GMT", rtt: 100 * time.Millisecond, offset: 0, wantUnc: 550 * time.Millisecond},
		{name: "30s behind", date: "Mon, 07 Dec 2026 09:59:30 GMT", rtt: 100 * time.Millisecond, offset: -30 * time.Second, wantUnc: 550 * time.Millisecond},
		{name: "5m ahead", date: "Mon, 07 Dec 2026 10:05:00 GMT", rtt: 0, offset: 5 * time.Minute, wantUnc: 500 * time.Millisecond},
		{name: "no header", wantErr: "no Date header"},
		{name: "garbage", date: "yesterday", wantErr: `Date header "yesterday"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.date != "" {
				h.Set("Date", tc.date)
			}
			r, err := ClockFromDate(h, sent, sent.Add(tc.rtt), "GET /")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Uncertainty != tc.wantUnc {
				t.Errorf("uncertainty %s, want %s", r.Uncertainty, tc.wantUnc)
			}
			if lo, hi := r.Offset-r.Uncertainty, r.Offset+r.Uncertainty; tc.offset < lo || tc.offset > hi {
				t.Errorf("offset %s +/- %s does not contain the true offset %s", r.Offset, r.Uncertainty, tc.offset)
			}
			if r.Source != "HTTP Date header of GET /" {
				t.Errorf("source %q", r.Source)
			}
		})
	}
}
