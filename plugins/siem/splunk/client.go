package splunk

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/vigilsec/vigil/core/plugin"
)

// ErrBusy means Splunk refused a request for load: HTTP 503 (the
// concurrent-search quota of the role, a restarting search head) or 429.
var ErrBusy = errors.New("splunk is busy")

// ErrAuth means Splunk rejected the credentials (HTTP 401).
var ErrAuth = errors.New("credentials rejected")

// maxBody caps what is read of one answer: results pages are the largest.
const maxBody = 256 << 20

// utf8BOM starts some Splunk answers (the export stream of the recorded
// fixtures); it is stripped before decoding.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Message is one entry of the messages[] of a Splunk answer.
type Message struct {
	Type string `json:"type"` // FATAL, ERROR, WARN, INFO or DEBUG
	Text string `json:"text"`
}

// String renders the message as "TYPE: text".
func (m Message) String() string { return m.Type + ": " + m.Text }

// messages decodes messages[] in either shape Splunk uses: a list of
// {type, text}, or an object of lists keyed by type (job status).
type messages []Message

// UnmarshalJSON accepts both shapes.
func (ms *messages) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		*ms = nil
		return nil
	}
	if b[0] == '[' {
		var l []Message
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*ms = l
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var out []Message
	for typ, raw := range m {
		var texts []string
		if err := json.Unmarshal(raw, &texts); err != nil {
			var one string
			if err := json.Unmarshal(raw, &one); err != nil {
				continue
			}
			texts = []string{one}
		}
		for _, t := range texts {
			out = append(out, Message{Type: strings.ToUpper(typ), Text: t})
		}
	}
	*ms = out
	return nil
}

// failures returns the FATAL and ERROR messages.
func (ms messages) failures() []Message {
	var out []Message
	for _, m := range ms {
		switch strings.ToUpper(m.Type) {
		case "FATAL", "ERROR":
			out = append(out, m)
		}
	}
	return out
}

// HTTPError is an answer with a non-2xx status.
type HTTPError struct {
	Status int
	// Messages are the body's messages[], when it had any (JSON or XML).
	Messages []Message
	// Body is an excerpt of a body without messages.
	Body string
	// RetryAfter is the Retry-After header, when set.
	RetryAfter time.Duration
}

// Error renders the status and what the body said.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	switch {
	case len(e.Messages) > 0:
		parts := make([]string, len(e.Messages))
		for i, m := range e.Messages {
			parts[i] = m.String()
		}
		s += ": " + strings.Join(parts, "; ")
	case e.Body != "":
		s += ": " + e.Body
	}
	return s
}

// Is makes errors.Is(err, ErrBusy), errors.Is(err, ErrAuth) and
// errors.Is(err, plugin.ErrDenied) work: a 401 or a 403 cannot succeed on
// retry.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrBusy:
		return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests
	case ErrAuth:
		return e.Status == http.StatusUnauthorized
	case plugin.ErrDenied:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// client speaks Splunk's REST API on the management port.
type client struct {
	cfg  *config
	http *http.Client

	mu      sync.Mutex
	session plugin.Secret // session key (username/password auth)
	logins  int64
	// refused is the answer that refused the credentials: a failed login,
	// or a 401 to the token. Every later call returns it without asking
	// Splunk again: repeated failed logins can lock the account.
	refused error
}

func newClient(cfg *config) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.tls
	return &client{cfg: cfg, http: &http.Client{Transport: tr}}
}

// path returns the URL of a REST path ("search/v2/jobs") in the configured
// namespace.
func (c *client) path(p string) string {
	ns := "/services/"
	if c.cfg.App != "" || c.cfg.Owner != "" {
		owner, app := c.cfg.Owner, c.cfg.App
		if owner == "" {
			owner = "-"
		}
		if app == "" {
			app = "-"
		}
		ns = "/servicesNS/" + url.PathEscape(owner) + "/" + url.PathEscape(app) + "/"
	}
	return ns + p
}

// jobsPath is the jobs collection of the configured API generation.
func (c *client) jobsPath() string {
	if c.cfg.API == APIv1 {
		return c.path("search/jobs")
	}
	return c.path("search/v2/jobs")
}

// request is one REST call.
type request struct {
	method string
	path   string     // absolute path on the management URL
	query  url.Values // added to the URL
	form   url.Values // form-encoded body (POST)
	// retry lets an idempotent request be retried on ErrBusy and 502/504.
	retry bool
}

// do sends r with the credentials, retrying once after a new login when a
// session key expired, and returns the body of a 2xx answer (BOM
// stripped). Other answers are *HTTPError.
func (c *client) do(ctx context.Context, r request) ([]byte, int, error) {
	body, status, err := c.doOnce(ctx, r)
	if errors.Is(err, ErrAuth) && c.cfg.Token == "" && !c.isRefused() {
		c.mu.Lock()
		c.session = ""
		c.mu.Unlock()
		body, status, err = c.doOnce(ctx, r)
	}
	if errors.Is(err, ErrAuth) && c.cfg.Token != "" {
		c.refuse(fmt.Errorf("token: %w (not sent again in this run)", err))
	}
	for attempt, wait := 0, 200*time.Millisecond; err != nil && r.retry && attempt < 3 && transient(err); attempt++ {
		if err := sleep(ctx, max(wait, retryAfter(err))); err != nil {
			return nil, 0, err
		}
		wait *= 2
		body, status, err = c.doOnce(ctx, r)
	}
	return body, status, err
}

// transient reports errors worth retrying for an idempotent request.
func transient(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return errors.Is(he, ErrBusy) || he.Status == http.StatusBadGateway || he.Status == http.StatusGatewayTimeout
	}
	return false
}

func retryAfter(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

func (c *client) doOnce(ctx context.Context, r request) ([]byte, int, error) {
	auth, err := c.authorization(ctx)
	if err != nil {
		return nil, 0, err
	}
	resp, cancel, err := c.send(ctx, r, auth)
	if err != nil {
		return nil, 0, err
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, httpError(resp, b)
	}
	return bytes.TrimPrefix(b, utf8BOM), resp.StatusCode, nil
}

// stream sends r and returns the open body of a 2xx answer; the caller
// closes it. It does not retry.
func (c *client) stream(ctx context.Context, r request) (io.ReadCloser, error) {
	auth, err := c.authorization(ctx)
	if err != nil {
		return nil, err
	}
	resp, cancel, err := c.send(ctx, r, auth)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, httpError(resp, b)
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// send issues one HTTP request bounded by the request timeout (streams are
// bounded by the job timeout instead).
func (c *client) send(ctx context.Context, r request, auth string) (*http.Response, context.CancelFunc, error) {
	u := *c.cfg.base
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	u.RawPath = ""
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	req, err := http.NewRequestWithContext(rctx, r.method, u.String(), body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return resp, cancel, nil
}

// isRefused reports whether Splunk has refused the credentials.
func (c *client) isRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused != nil
}

// refuse remembers the first refusal of the credentials.
func (c *client) refuse(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		c.refused = err
	}
}

// authorization returns the Authorization header value, logging in first
// with username and password when there is no session key yet. Once
// Splunk has refused the credentials it returns that refusal instead.
func (c *client) authorization(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused != nil {
		return "", c.refused
	}
	if c.cfg.Token != "" {
		return "Bearer " + c.cfg.Token.Reveal(), nil
	}
	if c.session == "" {
		key, err := c.login(ctx)
		if errors.Is(err, ErrAuth) || errors.Is(err, plugin.ErrDenied) {
			c.refused = fmt.Errorf("%w (not tried again in this run: repeated failed logins can lock the account)", err)
			return "", c.refused
		}
		if err != nil {
			return "", err
		}
		c.session = key
		c.logins++
	}
	return "Splunk " + c.session.Reveal(), nil
}

// login gets a session key from /services/auth/login (JSON, or the XML
// <sessionKey> older servers answer).
func (c *client) login(ctx context.Context) (plugin.Secret, error) {
	form := url.Values{"username": {c.cfg.Username}, "password": {c.cfg.Password.Reveal()}, "output_mode": {"json"}}
	resp, cancel, err := c.send(ctx, request{method: http.MethodPost, path: "/services/auth/login", form: form}, "")
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("login: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("login as %q: %w", c.cfg.Username, httpError(resp, b))
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	var j struct {
		SessionKey string `json:"sessionKey"`
	}
	if json.Unmarshal(b, &j) == nil && j.SessionKey != "" {
		return plugin.Secret(j.SessionKey), nil
	}
	var x struct {
		SessionKey string `xml:"sessionKey"`
	}
	if xml.Unmarshal(b, &x) == nil && strings.TrimSpace(x.SessionKey) != "" {
		return plugin.Secret(strings.TrimSpace(x.SessionKey)), nil
	}
	return "", fmt.Errorf("login as %q: the answer has no session key", c.cfg.Username)
}

// httpError builds the error of a non-2xx answer from its messages (JSON or
// XML) or an excerpt of its body.
func httpError(resp *http.Response, b []byte) *HTTPError {
	e := &HTTPError{Status: resp.StatusCode}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	var j struct {
		Messages messages `json:"messages"`
	}
	if json.Unmarshal(b, &j) == nil && len(j.Messages) > 0 {
		e.Messages = j.Messages
		return e
	}
	var x struct {
		Msgs []struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"messages>msg"`
	}
	if xml.Unmarshal(b, &x) == nil && len(x.Msgs) > 0 {
		for _, m := range x.Msgs {
			e.Messages = append(e.Messages, Message{Type: m.Type, Text: strings.TrimSpace(m.Text)})
		}
		return e
	}
	e.Body = excerpt(string(b), 200)
	return e
}

// excerpt returns at most n bytes of s on one line, printable only, marking
// a cut.
func excerpt(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + " [...]"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
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

// scrubbed is an error whose message has the credentials removed; it still
// unwraps to the original.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub returns err with every credential value replaced by [redacted]:
// the last line of defence, on every error the plugin returns.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}
