package elastic

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// RetryOnStatus are the HTTP statuses the transport retries with backoff:
// the go-elasticsearch defaults (502, 503, 504) plus 500. A 429
// (Elasticsearch's es_rejected_execution_exception back-pressure, Kibana's
// rate limit) is retried as well, up to MaxRetries times, by the clients'
// interceptor: after the answer's Retry-After, else the same backoff.
var RetryOnStatus = []int{http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// MaxRetries is how many times a call is retried after its first attempt.
const MaxRetries = 3

// maxBody bounds the answer of one call read into memory.
const maxBody = 256 << 20

// backoff is the wait before retry attempt n (1-based): base doubled per
// attempt, capped at 10s.
func backoff(base time.Duration) func(int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < 10*time.Second; i++ {
			d *= 2
		}
		return min(d, 10*time.Second)
	}
}

// counters are the plugin's Stats.
type counters struct {
	searches atomic.Int64
	// alerts are the distinct alerts returned.
	alerts                                      sdk.SignalCount
	throttled, serverErrors                     atomic.Int64
	ingested, ingestRejected, ingestItemRetries atomic.Int64
	closed, rawSearches, rawEvents              atomic.Int64
}

// throttleNote collects what the answers of one call said about rate
// limits; the interceptor fills it through the request context.
type throttleNote struct {
	mu         sync.Mutex
	throttled  int
	retryAfter time.Duration
}

type noteKey struct{}

func withNote(ctx context.Context) (context.Context, *throttleNote) {
	n := &throttleNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func (n *throttleNote) get() (int, time.Duration) {
	if n == nil {
		return 0, 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.throttled, n.retryAfter
}

// clients are the configured Elasticsearch and Kibana clients.
type clients struct {
	cfg *config
	// es is nil when only Kibana is configured.
	es *elasticsearch.Client
	// kb is nil without kibana_url. Kibana is not Elasticsearch (no product
	// header), so it is reached through the same transport layer the
	// Elasticsearch client uses, with the same auth, TLS and retries.
	kb    *elastictransport.Client
	stats *counters
	// retryBase is the first retry's backoff.
	retryBase time.Duration
	// sleep waits before a 429's retry.
	sleep func(ctx context.Context, d time.Duration) error
	// secrets are redacted from every text a server sends back.
	secrets []string
}

// newClients builds the clients of cfg. retryBase is the first retry's
// backoff.
func newClients(cfg *config, retryBase time.Duration, stats *counters, sleep func(context.Context, time.Duration) error) (*clients, error) {
	if sleep == nil {
		sleep = sleepCtx
	}
	c := &clients{cfg: cfg, stats: stats, retryBase: retryBase, secrets: cfg.secrets(), sleep: sleep}
	newTransport := func() *http.Transport {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, warned about
		tr.ResponseHeaderTimeout = cfg.Timeout
		return tr
	}
	if cfg.hasES() {
		es, err := elasticsearch.NewClient(elasticsearch.Config{
			Addresses:              cfg.Addresses,
			CloudID:                cfg.CloudID,
			APIKey:                 cfg.apiKey.Reveal(),
			Username:               cfg.Username,
			Password:               cfg.Password.Reveal(),
			CACert:                 cfg.caPEM,
			CertificateFingerprint: cfg.fingerprint,
			RetryOnStatus:          RetryOnStatus,
			MaxRetries:             MaxRetries,
			RetryBackoff:           backoff(retryBase),
			Transport:              newTransport(),
			Interceptors:           []elastictransport.InterceptorFunc{c.observe},
		})
		if err != nil {
			return nil, fmt.Errorf("elastic: elasticsearch client: %w", err)
		}
		c.es = es
	}
	if cfg.kibana != nil {
		opts := []elastictransport.Option{
			elastictransport.WithURLs(cfg.kibana),
			elastictransport.WithUserAgent("vigil-elastic/" + Version),
			elastictransport.WithHeader(http.Header{"Kbn-Xsrf": {"true"}}),
			elastictransport.WithTransport(newTransport()),
			elastictransport.WithRetryOnStatus(RetryOnStatus...),
			elastictransport.WithMaxRetries(MaxRetries),
			elastictransport.WithRetryBackoff(backoff(retryBase)),
			elastictransport.WithInterceptors(c.observe),
		}
		switch {
		case cfg.apiKey != "":
			opts = append(opts, elastictransport.WithAPIKey(cfg.apiKey.Reveal()))
		case cfg.Username != "":
			opts = append(opts, elastictransport.WithBasicAuth(cfg.Username, cfg.Password.Reveal()))
		}
		if cfg.caPEM != nil {
			opts = append(opts, elastictransport.WithCACert(cfg.caPEM))
		}
		if cfg.fingerprint != "" {
			opts = append(opts, elastictransport.WithCertificateFingerprint(cfg.fingerprint))
		}
		kb, err := elastictransport.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("elastic: kibana client: %w", err)
		}
		c.kb = kb
	}
	return c, nil
}

// observe counts the answers that ask to slow down or report a server
// error, every attempt included, notes rate limits in the call's note, and
// retries a 429 up to MaxRetries times: after its Retry-After when it has
// one (Elasticsearch and Kibana say how long to back off), else after the
// transport's backoff; never past the call's deadline, and only a request
// whose body can be sent again.
func (c *clients) observe(next elastictransport.RoundTripFunc) elastictransport.RoundTripFunc {
	return func(req *http.Request) (*http.Response, error) {
		for retry := 1; ; retry++ {
			res, err := next(req)
			if res == nil {
				return res, err
			}
			switch {
			case res.StatusCode == http.StatusTooManyRequests:
				c.stats.throttled.Add(1)
				if n, ok := req.Context().Value(noteKey{}).(*throttleNote); ok {
					n.mu.Lock()
					n.throttled++
					if d := sdk.RetryAfter(res.Header); d > n.retryAfter {
						n.retryAfter = d
					}
					n.mu.Unlock()
				}
			case res.StatusCode >= 500:
				c.stats.serverErrors.Add(1)
			}
			if res.StatusCode != http.StatusTooManyRequests || retry > MaxRetries || (req.Body != nil && req.GetBody == nil) {
				return res, err
			}
			wait := sdk.RetryAfter(res.Header)
			if wait == 0 {
				wait = backoff(c.retryBase)(retry)
			}
			if dl, ok := req.Context().Deadline(); ok && time.Until(dl) < wait {
				return res, err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err := c.sleep(req.Context(), wait); err != nil {
				return nil, err
			}
			if req.GetBody != nil {
				if req.Body, err = req.GetBody(); err != nil {
					return nil, err
				}
			}
		}
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ErrNoElasticsearch is returned by the calls that need Elasticsearch
// itself (raw-event search, ingest) when only kibana_url is configured.
var ErrNoElasticsearch = errors.New("needs Elasticsearch: set addresses or cloud_id")

// HTTPError is a non-2xx answer of Elasticsearch or Kibana. Its text is
// the server's own error type and reason, with secrets redacted.
type HTTPError struct {
	Status int
	// Type is Elasticsearch's error type (es_rejected_execution_exception,
	// security_exception, ...) or Kibana's error ("Bad Request").
	Type   string
	Reason string
}

// Error says the status, the server's error type and reason, and a hint
// for 401 and 403.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Type != "" {
		s += ": " + e.Type
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	switch e.Status {
	case http.StatusUnauthorized:
		s += " (check api_key or username/password)"
	case http.StatusForbidden:
		s += " (the credentials lack a privilege: see the plugin's README)"
	}
	return s
}

// Is makes a refused credential or privilege (401, 403) plugin.ErrDenied:
// asking again cannot succeed.
func (e *HTTPError) Is(target error) bool {
	return target == plugin.ErrDenied && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// esDo performs an Elasticsearch API request bounded by the config timeout
// and returns the body of a 2xx answer.
func (c *clients) esDo(ctx context.Context, req esapi.Request) ([]byte, error) {
	if c.es == nil {
		return nil, ErrNoElasticsearch
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := req.Do(ctx, c.es)
	if err != nil {
		return nil, c.transportErr(ctx, err)
	}
	return c.readAnswer(res.StatusCode, res.Body)
}

// kbDo performs a Kibana API request (path relative to the space) bounded
// by the config timeout and returns the body of a 2xx answer.
func (c *clients) kbDo(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	if c.kb == nil {
		return nil, errors.New("needs Kibana: set kibana_url")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	p := path
	if c.cfg.Space != DefaultSpace {
		p = "/s/" + c.cfg.Space + path
	}
	u := &url.URL{Path: p, RawQuery: query.Encode()}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.kb.Perform(req)
	if err != nil {
		return nil, c.transportErr(ctx, err)
	}
	return c.readAnswer(res.StatusCode, res.Body)
}

// transportErr explains a call that got no answer.
func (c *clients) transportErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), c.redact(err.Error()))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
	}
	return errors.New(c.redact(err.Error()))
}

// readAnswer reads and closes body: its content for a 2xx status, an
// *HTTPError otherwise.
func (c *clients) readAnswer(status int, body io.ReadCloser) ([]byte, error) {
	if body == nil {
		body = io.NopCloser(bytes.NewReader(nil))
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read answer (HTTP %d): %w", status, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("answer (HTTP %d) larger than %d MiB", status, maxBody>>20)
	}
	if status < 200 || status > 299 {
		return nil, c.httpError(status, b)
	}
	return b, nil
}

// httpError decodes the error answers of Elasticsearch
// ({"error":{"type","reason",...},"status"}, or {"error":"text"}) and
// Kibana ({"statusCode","error","message"}, {"message","status_code"}).
func (c *clients) httpError(status int, b []byte) *HTTPError {
	e := &HTTPError{Status: status}
	var doc struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(b, &doc) != nil {
		e.Reason = c.redact(excerpt(b, 200))
		return e
	}
	var cause struct {
		Type      string `json:"type"`
		Reason    string `json:"reason"`
		RootCause []struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"root_cause"`
		CausedBy *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	}
	var text string
	switch {
	case json.Unmarshal(doc.Error, &cause) == nil && cause.Type != "":
		e.Type, e.Reason = cause.Type, cause.Reason
		if cause.CausedBy != nil && cause.CausedBy.Reason != "" && cause.CausedBy.Reason != cause.Reason {
			e.Reason += " (caused by " + cause.CausedBy.Type + ": " + cause.CausedBy.Reason + ")"
		} else if e.Reason == "" && len(cause.RootCause) > 0 {
			e.Reason = cause.RootCause[0].Reason
		}
	case json.Unmarshal(doc.Error, &text) == nil && text != "":
		e.Type, e.Reason = text, doc.Message
	case doc.Message != "":
		e.Reason = doc.Message
	default:
		e.Reason = excerpt(b, 200)
	}
	e.Type, e.Reason = c.redact(e.Type), c.redact(excerpt([]byte(e.Reason), 500))
	return e
}

// redact removes the configured secrets from s.
func (c *clients) redact(s string) string {
	for _, x := range c.secrets {
		if len(x) >= 4 {
			s = strings.ReplaceAll(s, x, "[REDACTED]")
		}
	}
	return s
}

// excerpt returns at most n bytes of b on one line, marking a cut.
func excerpt(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + " [...]"
	}
	return s
}

// isStatus reports whether err is an *HTTPError with one of the statuses.
func isStatus(err error, statuses ...int) bool {
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	for _, s := range statuses {
		if he.Status == s {
			return true
		}
	}
	return false
}
