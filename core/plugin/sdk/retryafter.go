package sdk

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps what RetryAfter returns.
const MaxRetryAfter = 5 * time.Minute

// RetryAfter reads how long a throttled or unavailable service asks to
// wait: Azure's retry-after-ms or x-ms-retry-after-ms, else Retry-After in
// seconds or as an HTTP date; 0 when absent or unreadable, at most
// MaxRetryAfter.
func RetryAfter(h http.Header) time.Duration {
	for _, k := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Get(k))); err == nil && v > 0 {
			return min(time.Duration(v)*time.Millisecond, MaxRetryAfter)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(time.Duration(max(n, 0))*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), MaxRetryAfter)
	}
	return 0
}
