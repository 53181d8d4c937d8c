package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/securityinsights/armsecurityinsights"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

// The Azure roles each call needs, named in the errors of a refused one.
const (
	roleSearch = "Microsoft Sentinel Reader or Log Analytics Reader on the workspace"
	roleRules  = "Microsoft Sentinel Reader on the workspace"
	roleClose  = "Microsoft Sentinel Responder on the workspace"
	roleIngest = "Monitoring Metrics Publisher on the data collection rule"
)

// clients are the SDK clients Configure builds, all through one transport
// and one credential.
type clients struct {
	cred      *countingCredential
	query     *azquery.Client
	ingest    *azingest.Client                      // nil without replay
	rules     *armsecurityinsights.AlertRulesClient // nil without the workspace's ARM name
	incidents *armsecurityinsights.IncidentsClient  // nil without the workspace's ARM name
	transport *http.Client
	stats     *counters
}

// cloudConfig is the cloud's configuration with the config's endpoint
// overrides.
func (c *config) cloudConfig() cloud.Configuration {
	var base cloud.Configuration
	switch c.Cloud {
	case CloudGovernment:
		base = cloud.AzureGovernment
	case CloudChina:
		base = cloud.AzureChina
	default:
		base = cloud.AzurePublic
	}
	out := cloud.Configuration{ActiveDirectoryAuthorityHost: base.ActiveDirectoryAuthorityHost, Services: maps.Clone(base.Services)}
	if c.authority != nil {
		out.ActiveDirectoryAuthorityHost = c.authority.String() + "/"
	}
	if c.query != nil {
		s := out.Services[azquery.ServiceName]
		s.Endpoint = c.query.String() + "/v1"
		out.Services[azquery.ServiceName] = s
	}
	if c.arm != nil {
		s := out.Services[cloud.ResourceManager]
		s.Endpoint = c.arm.String()
		out.Services[cloud.ResourceManager] = s
	}
	return out
}

// newClients builds the credential and the clients; it contacts nothing.
func newClients(cfg *config, stats *counters) (*clients, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg.tls,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
	}
	hc := &http.Client{Transport: tr}
	retries := cfg.MaxRetries
	if retries == 0 {
		retries = -1 // azcore: 0 means its default of 3
	}
	opts := azcore.ClientOptions{
		Cloud:     cfg.cloudConfig(),
		Transport: hc,
		Retry: policy.RetryOptions{
			MaxRetries: int32(retries), RetryDelay: cfg.RetryDelay, MaxRetryDelay: cfg.MaxRetryWait, TryTimeout: cfg.RequestTimeout,
		},
		PerRetryPolicies: []policy.Policy{&observer{stats: stats}},
		Telemetry:        policy.TelemetryOptions{ApplicationID: "vigil"},
	}
	cred, err := newCredential(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("sentinel: credential (%s): %w", cfg.Auth, err)
	}
	cc := &clients{cred: &countingCredential{cred: cred, stats: stats}, transport: hc, stats: stats}
	if cc.query, err = azquery.NewClient(cc.cred, &azquery.ClientOptions{ClientOptions: opts}); err != nil {
		return nil, fmt.Errorf("sentinel: query client: %w", err)
	}
	if cfg.ingest != nil {
		if cc.ingest, err = azingest.NewClient(cfg.ingest.String(), cc.cred, &azingest.ClientOptions{ClientOptions: opts}); err != nil {
			return nil, fmt.Errorf("sentinel: ingestion client: %w", err)
		}
	}
	if cfg.armConfigured() {
		aopts := &arm.ClientOptions{ClientOptions: opts}
		aopts.PerCallPolicies = append(aopts.PerCallPolicies, &apiVersionPolicy{version: cfg.RulesAPIVersion})
		if cc.rules, err = armsecurityinsights.NewAlertRulesClient(cfg.SubscriptionID, cc.cred, aopts); err != nil {
			return nil, fmt.Errorf("sentinel: analytics rules client: %w", err)
		}
		if cc.incidents, err = armsecurityinsights.NewIncidentsClient(cfg.SubscriptionID, cc.cred, &arm.ClientOptions{ClientOptions: opts}); err != nil {
			return nil, fmt.Errorf("sentinel: incidents client: %w", err)
		}
	}
	return cc, nil
}

// newCredential builds the azidentity credential of cfg.Auth.
func newCredential(cfg *config, opts azcore.ClientOptions) (azcore.TokenCredential, error) {
	custom := cfg.authority != nil
	switch cfg.Auth {
	case AuthClientSecret:
		return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom})
	case AuthWorkloadIdentity:
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: cfg.TenantID, ClientID: cfg.ClientID, DisableInstanceDiscovery: custom,
		})
	case AuthManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if cfg.ClientID != "" {
			o.ID = azidentity.ClientID(cfg.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(o)
	case AuthAzureCLI:
		return azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.TenantID})
	}
	return nil, fmt.Errorf("unknown auth %q", cfg.Auth)
}

// countingCredential counts the tokens the credential hands out.
type countingCredential struct {
	cred  azcore.TokenCredential
	stats *counters
}

// GetToken implements azcore.TokenCredential.
func (c *countingCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.cred.GetToken(ctx, o)
	if err == nil {
		c.stats.tokens.Add(1)
	}
	return tok, err
}

// apiVersionPolicy sets the api-version of analytics rules requests: the
// SDK's own (2021-10-01) has no techniques. A nextLink keeps the version
// the service wrote into it.
type apiVersionPolicy struct{ version string }

// Do implements policy.Policy.
func (p *apiVersionPolicy) Do(req *policy.Request) (*http.Response, error) {
	u := req.Raw().URL
	if strings.HasSuffix(strings.ToLower(u.Path), "/providers/microsoft.securityinsights/alertrules") {
		q := u.Query()
		if q.Get("$skipToken") == "" {
			q.Set("api-version", p.version)
			u.RawQuery = q.Encode()
		}
	}
	return req.Next()
}

// observer counts every attempt's throttling and server errors and notes
// the longest Retry-After of a call in its context's note.
type observer struct{ stats *counters }

// Do implements policy.Policy.
func (o *observer) Do(req *policy.Request) (*http.Response, error) {
	o.stats.requests.Add(1)
	resp, err := req.Next()
	if resp == nil {
		return resp, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		o.stats.throttled.Add(1)
	case resp.StatusCode >= 500:
		o.stats.serverErrors.Add(1)
	default:
		return resp, err
	}
	if n, ok := req.Raw().Context().Value(noteKey{}).(*note); ok {
		n.add(resp.StatusCode, sdk.RetryAfter(resp.Header))
	}
	return resp, err
}

// note collects what the retries of one call saw.
type note struct {
	mu          sync.Mutex
	throttled   int
	serverError int
	retryAfter  time.Duration
}

type noteKey struct{}

func withNote(ctx context.Context) (context.Context, *note) {
	n := &note{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func (n *note) add(status int, after time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if status == http.StatusTooManyRequests {
		n.throttled++
	} else {
		n.serverError++
	}
	n.retryAfter = max(n.retryAfter, after)
}

// wait is how long the engine should space its next calls after this
// one: the longest Retry-After seen, else a second per throttled attempt.
func (n *note) wait() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.throttled == 0 && n.serverError == 0 {
		return 0
	}
	if n.retryAfter > 0 {
		return n.retryAfter
	}
	return min(time.Duration(n.throttled+n.serverError)*time.Second, 30*time.Second)
}

// APIError is an Azure API's answer other than success: its HTTP status,
// its error code (ThrottledError, InsufficientAccessError,
// AuthorizationFailed, SemanticError...) and message, and the role the call
// needs when the answer refuses access.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	// Role is the Azure role the call needs (on 401 and 403).
	Role string
}

// Error renders the answer.
func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + excerpt(e.Message, 400)
	}
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		s += "; the identity needs " + e.Role
	case e.Status == http.StatusTooManyRequests && e.RetryAfter > 0:
		s += fmt.Sprintf(" (throttled; Retry-After %s)", e.RetryAfter)
	}
	return s
}

// Is makes a refused token or permission (401, 403) plugin.ErrDenied.
func (e *APIError) Is(target error) bool {
	return target == plugin.ErrDenied && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// classify turns an SDK error into an *APIError (naming role for a refused
// call) or, for a token Entra ID refused, an error wrapping
// plugin.ErrDenied; other errors pass as they are.
func classify(err error, role string) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		ae := &APIError{Status: re.StatusCode, Code: re.ErrorCode, Role: role}
		if re.RawResponse != nil {
			ae.RetryAfter = sdk.RetryAfter(re.RawResponse.Header)
			if b, rerr := runtime.Payload(re.RawResponse); rerr == nil {
				code, msg := errorBody(b)
				if ae.Code == "" {
					ae.Code = code
				}
				ae.Message = msg
			}
		}
		return ae
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		status := 0
		if af.RawResponse != nil {
			status = af.RawResponse.StatusCode
		}
		msg := firstLine(af.Error())
		if af.RawResponse != nil {
			if b, rerr := runtime.Payload(af.RawResponse); rerr == nil {
				var j struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if json.Unmarshal(b, &j) == nil && j.Description != "" {
					msg = j.Error + ": " + firstLine(j.Description)
				}
			}
		}
		if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
			return fmt.Errorf("get a token: Entra ID answered HTTP %d: %s: %w", status, msg, plugin.ErrDenied)
		}
		return fmt.Errorf("get a token: %s", msg)
	}
	return err
}

// errorBody reads the code and message of an Azure error answer: Log
// Analytics and ARM nest them under "error" (with details and an inner
// error), the ingestion API too.
func errorBody(b []byte) (code, msg string) {
	var j struct {
		Error *struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"innererror"`
			Details []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &j) != nil || j.Error == nil {
		return "", excerpt(strings.TrimSpace(string(b)), 300)
	}
	msg = j.Error.Message
	if ie := j.Error.InnerError; ie != nil && ie.Message != "" && ie.Message != msg {
		msg += " (" + ie.Message + ")"
	}
	for _, d := range j.Error.Details {
		if d.Message != "" && d.Message != msg {
			msg += "; " + d.Message
		}
	}
	return j.Error.Code, msg
}

// firstLine is the first non-empty line of s (azidentity's errors run to
// many lines of troubleshooting links).
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "---") {
			return l
		}
	}
	return s
}

// excerpt cuts s to n bytes.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// counters are the plugin's Stats.
type counters struct {
	polls, queries, rows, tokens, requests, throttled, serverErrors atomic.Int64
	uploads, uploadedRows, splits, closed                           atomic.Int64
	rulePages                                                       atomic.Int64
}
