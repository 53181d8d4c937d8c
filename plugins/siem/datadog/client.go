package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// api is the configured official client plus vigil's retry and rate-limit
// policy around it. Its methods are safe for concurrent use.
type api struct {
	cfg    Config
	client *datadog.APIClient

	limits *limiter
	stats  *counters

	// sleep waits d or until ctx ends (tests record the waits instead).
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

// counters are the plugin's Stats.
type counters struct {
	requests, rateLimited, retries, serverErrors, throttledMS atomic.Int64
	logsSent, logsRejected, archived                          atomic.Int64
	// signals are the distinct signals returned.
	signals sdk.SignalCount
}

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		"requests":         c.requests.Load(),
		"rate_limited":     c.rateLimited.Load(),
		"retries":          c.retries.Load(),
		"server_errors":    c.serverErrors.Load(),
		"throttled_ms":     c.throttledMS.Load(),
		"signals_seen":     c.signals.Load(),
		"logs_sent":        c.logsSent.Load(),
		"logs_rejected":    c.logsRejected.Load(),
		"signals_archived": c.archived.Load(),
	}
}

func newAPI(cfg Config, hc *http.Client) *api {
	dc := datadog.NewConfiguration()
	dc.RetryConfiguration.EnableRetry = false // vigil's own policy, see call
	dc.HTTPClient = hc
	dc.UserAgent = "vigil-datadog/" + Version + " " + dc.UserAgent
	client := datadog.NewAPIClient(dc)
	return &api{
		cfg:    cfg,
		client: client,
		limits: &limiter{state: map[string]*budget{}},
		stats:  &counters{},
		sleep:  sleepCtx,
		now:    time.Now,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// context returns ctx carrying the keys and the server routing of the
// official client: every operation goes to {protocol}://{name} of the API,
// the logs intake to its own host.
func (a *api) context(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: a.cfg.APIKey.Reveal()},
		"appKeyAuth": {Key: a.cfg.AppKey.Reveal()},
	})
	scheme, name := a.cfg.apiBase()
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, 1)
	ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"protocol": scheme, "name": name})
	ischeme, iname := a.cfg.intakeBase()
	ctx = context.WithValue(ctx, datadog.ContextOperationServerIndices, map[string]int{opSubmitLog: 1})
	ctx = context.WithValue(ctx, datadog.ContextOperationServerVariables, map[string]map[string]string{
		opSubmitLog: {"protocol": ischeme, "name": iname},
	})
	return ctx
}

// answer is one successful HTTP answer.
type answer struct {
	status int
	body   []byte
	// pace is how long the caller should wait before its next request to
	// the same endpoint to stay within the rate limit (0: no limit known).
	pace time.Duration
	// header is the answer's; sent and received bound the attempt that got
	// it (this host's clock), for clock readings.
	header         http.Header
	sent, received time.Time
}

// apiError is a Datadog answer that is not a success. Its message never
// holds a key. A 401 or a 403 is plugin.ErrDenied: asking again cannot
// succeed.
type apiError struct {
	status  int
	message string
	// permission is what the operation needs of the application key.
	permission string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	if e.message != "" {
		msg += ": " + e.message
	}
	switch {
	case e.status == http.StatusForbidden && e.permission != "":
		msg += " (the application key needs the permission " + e.permission + "; check api_key and app_key and their site)"
	case e.status == http.StatusUnauthorized, e.status == http.StatusForbidden:
		msg += " (check api_key and app_key, their site, and the permissions the README lists)"
	}
	return msg
}

// Unwrap makes a refused key or permission plugin.ErrDenied.
func (e *apiError) Unwrap() error {
	if e.status == http.StatusUnauthorized || e.status == http.StatusForbidden {
		return plugin.ErrDenied
	}
	return nil
}

// retryable reports whether a status is worth another attempt.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// call runs fn (one official-client call) under vigil's policy: it waits
// out a spent rate-limit budget before sending, honours X-RateLimit-* on
// every answer, waits X-RateLimit-Reset after a 429, retries 5xx, 408 and
// network timeouts with capped exponential backoff, and bounds every
// attempt by the configured timeout. Errors are prefixed with what (such as
// "search signals") and never contain a key.
func (a *api) call(ctx context.Context, op, what string, fn func(ctx context.Context) (*http.Response, error)) (answer, error) {
	fail := func(err error) (answer, error) {
		return answer{}, fmt.Errorf("datadog: %s: %w", what, a.redact(err))
	}
	attempts := 1 + *a.cfg.MaxRetries
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if wait := a.limits.waitBefore(op, a.now()); wait > 0 {
			if wait > a.cfg.MaxWait {
				return fail(fmt.Errorf("rate limit spent for %s (max_wait %s)", wait.Round(time.Second), a.cfg.MaxWait))
			}
			a.stats.throttledMS.Add(wait.Milliseconds())
			if err := a.sleep(ctx, wait); err != nil {
				return fail(err)
			}
		}
		if attempt > 0 {
			a.stats.retries.Add(1)
		}
		a.stats.requests.Add(1)
		actx, cancel := context.WithTimeout(a.context(ctx), a.cfg.Timeout)
		sent := time.Now()
		resp, err := fn(actx)
		received := time.Now()
		var body []byte
		status := 0
		if resp != nil {
			status = resp.StatusCode
			// The official client has read the body and left a copy.
			body, _ = datadog.ReadBody(resp)
		}
		timedOut := actx.Err() != nil
		cancel()

		if resp == nil {
			if err == nil {
				err = errors.New("no answer")
			}
			if ctx.Err() != nil {
				return fail(context.Cause(ctx))
			}
			if !timedOut && !isTransient(err) {
				return fail(err)
			}
			if timedOut {
				err = fmt.Errorf("no answer within %s: %w", a.cfg.Timeout, err)
			}
			lastErr = err
			if attempt+1 < attempts {
				if pastDeadline(ctx, backoff(attempt)) {
					return fail(fmt.Errorf("giving up after %d attempts, the next would come after the caller's deadline: %w", attempt+1, lastErr))
				}
				if err := a.sleep(ctx, backoff(attempt)); err != nil {
					return fail(err)
				}
			}
			continue
		}

		pace, reset := a.limits.observe(op, resp.Header, a.now())
		if status >= 200 && status < 300 {
			return answer{status: status, body: body, pace: pace, header: resp.Header, sent: sent, received: received}, nil
		}
		apiErr := &apiError{status: status, message: errorMessage(body), permission: permissions[op]}
		if !retryable(status) {
			return fail(apiErr)
		}
		lastErr = apiErr
		switch {
		case status == http.StatusTooManyRequests:
			a.stats.rateLimited.Add(1)
		case status >= 500:
			a.stats.serverErrors.Add(1)
		}
		if attempt+1 >= attempts {
			break
		}
		wait := backoff(attempt)
		if status == http.StatusTooManyRequests {
			if reset > 0 {
				wait = reset
			}
			if wait > a.cfg.MaxWait {
				return fail(fmt.Errorf("%w; reset in %s exceeds max_wait %s", apiErr, wait.Round(time.Second), a.cfg.MaxWait))
			}
			a.stats.throttledMS.Add(wait.Milliseconds())
		}
		if pastDeadline(ctx, wait) {
			return fail(fmt.Errorf("giving up after %d attempts, the next would come after the caller's deadline: %w", attempt+1, lastErr))
		}
		if err := a.sleep(ctx, wait); err != nil {
			return fail(err)
		}
	}
	return fail(fmt.Errorf("giving up after %d attempts: %w", attempts, lastErr))
}

// pastDeadline reports whether waiting d would end after ctx's deadline
// (the engine's: the time a pending test is due to end). Then the plugin
// answers with the error it has, rather than being cut off with none.
func pastDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}

// backoff is the wait before retry attempt+1: 250ms doubled per attempt,
// capped at 5s.
func backoff(attempt int) time.Duration {
	d := defaultBackoffBase
	for i := 0; i < attempt && d < defaultBackoffCap; i++ {
		d *= 2
	}
	if d > defaultBackoffCap {
		d = defaultBackoffCap
	}
	return d
}

// isTransient reports network errors worth a retry: timeouts, refused or
// reset connections.
func isTransient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "EOF") || strings.Contains(s, "connection refused")
}

// redact removes the keys from an error's text (defence in depth: neither
// the official client nor vigil puts them there).
func (a *api) redact(err error) error {
	msg := err.Error()
	clean := plugin.RedactSecrets(msg, a.cfg.APIKey, a.cfg.AppKey)
	if clean == msg {
		return err
	}
	return redactedError{msg: clean, err: err}
}

// redactedError shows a cleaned message but keeps the chain for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// errorMessage extracts the message of a Datadog error body: {"errors":
// ["..."]}, {"errors":[{"title","detail"}]} (sometimes sent as text/plain),
// else a short excerpt of the body.
func errorMessage(body []byte) string {
	var v struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Errors) > 0 {
		var parts []string
		for _, e := range v.Errors {
			var s string
			if json.Unmarshal(e, &s) == nil {
				parts = append(parts, s)
				continue
			}
			var o struct{ Title, Detail string }
			if json.Unmarshal(e, &o) == nil {
				p := o.Title
				if o.Detail != "" {
					p = strings.TrimSpace(p + ": " + o.Detail)
				}
				parts = append(parts, p)
			}
		}
		return excerpt(strings.Join(parts, "; "), 300)
	}
	return excerpt(string(body), 200)
}

// excerpt returns at most n bytes of s, on one line, marking a cut.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + " [...]"
	}
	return s
}

// limiter keeps the rate-limit budget Datadog reports per endpoint.
type limiter struct {
	mu    sync.Mutex
	state map[string]*budget
}

// budget is the last X-RateLimit-* answer of one endpoint.
type budget struct {
	remaining int
	resetAt   time.Time
}

// observe records the rate-limit headers of an answer and returns the
// pace (reset spread over the remaining requests) and, when the headers say
// so, the time to the reset.
func (l *limiter) observe(op string, h http.Header, now time.Time) (pace, reset time.Duration) {
	remStr, resetStr := h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset")
	if resetStr == "" {
		return 0, 0
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(resetStr), 64)
	if err != nil || secs < 0 {
		return 0, 0
	}
	reset = time.Duration(secs * float64(time.Second))
	rem, err := strconv.Atoi(strings.TrimSpace(remStr))
	if err != nil {
		return 0, reset
	}
	if rem < 0 {
		rem = 0
	}
	l.mu.Lock()
	l.state[op] = &budget{remaining: rem, resetAt: now.Add(reset)}
	l.mu.Unlock()
	return reset / time.Duration(rem+1), reset
}

// waitBefore returns how long to wait before the next request to op: until
// the reset when the budget is spent, else 0. It counts the request against
// the budget.
func (l *limiter) waitBefore(op string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.state[op]
	if b == nil {
		return 0
	}
	if !now.Before(b.resetAt) {
		delete(l.state, op)
		return 0
	}
	if b.remaining > 0 {
		b.remaining--
		return 0
	}
	return b.resetAt.Sub(now)
}
