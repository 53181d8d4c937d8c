package datadog

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Sites are the Datadog sites the plugin knows, each served at
// https://api.<site> (API) and https://http-intake.logs.<site> (logs
// intake). They are the sites the official client accepts.
var Sites = []string{
	"datadoghq.com",
	"us3.datadoghq.com",
	"us5.datadoghq.com",
	"ap1.datadoghq.com",
	"ap2.datadoghq.com",
	"uk1.datadoghq.com",
	"datadoghq.eu",
	"ddog-gov.com",
	"us2.ddog-gov.com",
}

// Defaults and limits of Config.
const (
	DefaultSite     = "datadoghq.com"
	DefaultPageSize = 100
	// MaxPageSize is the largest page the signals search API serves.
	MaxPageSize        = 1000
	DefaultTimeout     = 30 * time.Second
	DefaultMaxRetries  = 3
	MaxMaxRetries      = 10
	DefaultMaxWait     = 2 * time.Minute
	DefaultLogsPages   = 10
	DefaultIngestSvc   = "vigil-replay"
	defaultBackoffBase = 250 * time.Millisecond
	defaultBackoffCap  = 5 * time.Second
)

// Config is the datadog plugin's [siem.params] table, for example
//
//	[[siem]]
//	name = "datadog"
//	plugin = "datadog"
//	[siem.params]
//	site = "datadoghq.eu"
//	api_key = "${DD_API_KEY}"
//	app_key = "${DD_APP_KEY}"
//	query = "env:prod"
//	close_signals = true
//
// api_key and app_key are required; every other key is optional. Unknown
// keys are errors.
type Config struct {
	// Site is the Datadog site (one of Sites; default datadoghq.com).
	Site string `toml:"site"`
	// URL, when set, is a full base URL (scheme, host, optional path) that
	// replaces https://api.<site> for every API call: a proxy, a private
	// link, or a test server. The logs intake uses IntakeURL, else URL.
	URL string `toml:"url"`
	// IntakeURL, when set, replaces https://http-intake.logs.<site> for
	// Ingest.
	IntakeURL string `toml:"intake_url"`
	// APIKey is the Datadog API key (DD-API-KEY). Give it as "${DD_API_KEY}".
	APIKey plugin.Secret `toml:"api_key"`
	// AppKey is the Datadog application key (DD-APPLICATION-KEY). Give it as
	// "${DD_APP_KEY}".
	AppKey plugin.Secret `toml:"app_key"`
	// Query is a base filter ANDed to every signals search, such as
	// "env:prod" or "security:attack".
	Query string `toml:"query"`
	// PageSize is the number of signals per search page (default 100, at
	// most 1000).
	PageSize int `toml:"page_size"`
	// CloseSignals lets CloseSignals archive the signals vigil matched
	// (state "archived", reason "testing_or_maintenance"). The engine asks
	// for it only under `vigil run --close-signals`.
	CloseSignals bool `toml:"close_signals"`
	// LogsQuery is a base filter ANDed to the logs search of
	// SearchRawEvents, such as "source:auditd".
	LogsQuery string `toml:"logs_query"`
	// LogsIndexes are the log indexes SearchRawEvents searches (default:
	// all the keys can read).
	LogsIndexes []string `toml:"logs_indexes"`
	// IngestSource is the ddsource of replayed events (default: the
	// event's Sigma logsource service, such as "auditd", else "linux").
	IngestSource string `toml:"ingest_source"`
	// IngestService is the service of replayed events (default
	// "vigil-replay").
	IngestService string `toml:"ingest_service"`
	// IngestTags are extra "key:value" tags of replayed events.
	IngestTags []string `toml:"ingest_tags"`
	// Timeout bounds each HTTP request (default 30s).
	Timeout time.Duration `toml:"timeout"`
	// MaxRetries is how many times a call is retried after a 5xx, a 408, a
	// 429 or a network timeout before it fails (default 3).
	MaxRetries *int `toml:"max_retries"`
	// MaxWait bounds one wait for a rate-limit reset (default 2m): a
	// longer reset fails the call instead of blocking it.
	MaxWait time.Duration `toml:"max_wait"`
}

// parseConfig decodes b strictly and fills in the defaults. Errors never
// contain the keys' values.
func parseConfig(b []byte) (Config, error) {
	var c Config
	if err := plugin.DecodeConfig("datadog", b, &c); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("datadog: config: %w", err)
	}
	return c, nil
}

// setDefaults trims what was written and fills in what was left out.
func (c *Config) setDefaults() {
	c.Site = strings.ToLower(strings.TrimSpace(c.Site))
	if c.Site == "" {
		c.Site = DefaultSite
	}
	c.APIKey, c.AppKey = plugin.Secret(strings.TrimSpace(c.APIKey.Reveal())), plugin.Secret(strings.TrimSpace(c.AppKey.Reveal()))
	c.Query = strings.TrimSpace(c.Query)
	c.LogsQuery = strings.TrimSpace(c.LogsQuery)
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.IngestService == "" {
		c.IngestService = DefaultIngestSvc
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries == nil {
		n := DefaultMaxRetries
		c.MaxRetries = &n
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
}

// validate checks a config with its defaults; it also puts url and
// intake_url in their canonical form.
func (c *Config) validate() error {
	var err error
	if !knownSite(c.Site) {
		return fmt.Errorf("site %q: want one of %s (or set url)", c.Site, strings.Join(Sites, ", "))
	}
	if c.URL, err = checkURL("url", c.URL); err != nil {
		return err
	}
	if c.IntakeURL, err = checkURL("intake_url", c.IntakeURL); err != nil {
		return err
	}
	if c.APIKey == "" {
		return fmt.Errorf("api_key is required (give it as \"${DD_API_KEY}\")")
	}
	if c.AppKey == "" {
		return fmt.Errorf("app_key is required (give it as \"${DD_APP_KEY}\")")
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		return fmt.Errorf("page_size %d out of range (1..%d)", c.PageSize, MaxPageSize)
	}
	for i, t := range c.IngestTags {
		if !strings.Contains(t, ":") || strings.ContainsAny(t, ", ") {
			return fmt.Errorf("ingest_tags[%d] %q: want key:value without spaces or commas", i, t)
		}
	}
	for i, ix := range c.LogsIndexes {
		if strings.TrimSpace(ix) == "" {
			return fmt.Errorf("logs_indexes[%d] is empty", i)
		}
	}
	if c.Timeout < 100*time.Millisecond {
		return fmt.Errorf("timeout %s is below 100ms", c.Timeout)
	}
	if *c.MaxRetries < 0 || *c.MaxRetries > MaxMaxRetries {
		return fmt.Errorf("max_retries %d out of range (0..%d)", *c.MaxRetries, MaxMaxRetries)
	}
	if c.MaxWait < 0 {
		return fmt.Errorf("max_wait %s is negative", c.MaxWait)
	}
	return nil
}

func knownSite(s string) bool {
	for _, k := range Sites {
		if k == s {
			return true
		}
	}
	return false
}

// checkURL validates an optional base URL and returns it without a
// trailing slash.
func checkURL(key, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s %q: want an http or https URL", key, raw)
	case u.Host == "":
		return "", fmt.Errorf("%s %q: no host", key, raw)
	case u.User != nil:
		return "", fmt.Errorf("%s: user info in the URL is not supported (use api_key and app_key)", key)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%s %q: no query or fragment allowed", key, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// apiBase returns the scheme and the host (with any path prefix) of the API.
func (c Config) apiBase() (scheme, name string) {
	if c.URL != "" {
		return splitBase(c.URL)
	}
	return "https", "api." + c.Site
}

// intakeBase returns the scheme and host of the logs intake.
func (c Config) intakeBase() (scheme, name string) {
	switch {
	case c.IntakeURL != "":
		return splitBase(c.IntakeURL)
	case c.URL != "":
		return splitBase(c.URL)
	}
	return "https", "http-intake.logs." + c.Site
}

func splitBase(u string) (string, string) {
	scheme, rest, _ := strings.Cut(u, "://")
	return scheme, rest
}
