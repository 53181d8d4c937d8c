package datadog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/ddfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// Test keys: long enough to be recognisable in any output they leak into.
const (
	testAPIKey = "ddapi-0123456789abcdef0123456789abcdef"
	testAppKey = "ddapp-fedcba9876543210fedcba9876543210fedcba98"
)

// newFake starts a fake Datadog accepting the test keys.
func newFake(t *testing.T, opts ddfake.Options) *ddfake.Server {
	t.Helper()
	opts.APIKey, opts.AppKey = testAPIKey, testAppKey
	srv := ddfake.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

// testConfig is a config pointing at srv with the test keys, plus extra.
func testConfig(srv *ddfake.Server, extra string) string {
	return fmt.Sprintf("url = %q\napi_key = %q\napp_key = %q\n%s", srv.URL, testAPIKey, testAppKey, extra)
}

// configured returns the plugin over gRPC, configured against srv, and its
// implementation. adjust, when set, tunes the api (clock, sleeps).
func configured(t *testing.T, srv *ddfake.Server, extra string, adjust func(*api)) (plugin.SIEM, *SIEM) {
	t.Helper()
	impl := &SIEM{adjust: adjust}
	s := plugintest.SIEM(t, impl)
	if err := s.Configure(context.Background(), []byte(testConfig(srv, extra))); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, impl
}

// clock is a fake clock whose sleeps advance it and are recorded.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (c *clock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// use makes the api run on c.
func (c *clock) use(a *api) { a.now, a.sleep = c.now, c.sleep }

func TestDescribe(t *testing.T) {
	d, err := plugintest.SIEM(t, new(SIEM)).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != Name || d.Kind != plugin.KindSIEM || d.QueryDialect != QueryDialect || !d.ReportsHost {
		t.Errorf("Describe = %+v", d)
	}
	for _, c := range []string{plugin.CapRawEvents, plugin.CapCloseSignals, plugin.CapIngest} {
		if !d.Has(c) {
			t.Errorf("capability %s missing from %v", c, d.Capabilities)
		}
	}
	// The locations the exec and replay injectors plant the marker in.
	for _, l := range []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField, plugin.MarkerEnvironment} {
		if !slices.Contains(d.MarkerLocations, l) {
			t.Errorf("marker location %s missing from %v", l, d.MarkerLocations)
		}
	}
}

func TestRegistered(t *testing.T) {
	f, ok := plugin.LookupSIEM(Name)
	if !ok {
		t.Fatal("datadog is not registered")
	}
	if _, ok := f().(*SIEM); !ok {
		t.Fatalf("factory returns %T", f())
	}
}

func TestNotConfigured(t *testing.T) {
	s := plugintest.SIEM(t, new(SIEM))
	ctx := context.Background()
	if _, err := s.Search(ctx, plugin.SearchRequest{}); err == nil || err.Error() != ErrNotConfigured.Error() {
		t.Errorf("Search before Configure: %v, want %v", err, ErrNotConfigured)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close before Configure: %v", err)
	}
}

func TestConfig(t *testing.T) {
	keys := fmt.Sprintf("api_key = %q\napp_key = %q\n", testAPIKey, testAppKey)
	tests := []struct {
		name    string
		toml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", toml: keys, check: func(t *testing.T, c Config) {
			if c.Site != DefaultSite || c.PageSize != DefaultPageSize || c.Timeout != DefaultTimeout || *c.MaxRetries != DefaultMaxRetries || c.CloseSignals {
				t.Errorf("defaults: %+v", c)
			}
			if s, n := c.apiBase(); s != "https" || n != "api.datadoghq.com" {
				t.Errorf("api base %s://%s", s, n)
			}
			if s, n := c.intakeBase(); s != "https" || n != "http-intake.logs.datadoghq.com" {
				t.Errorf("intake base %s://%s", s, n)
			}
		}},
		{name: "eu site", toml: keys + `site = "datadoghq.eu"`, check: func(t *testing.T, c Config) {
			if _, n := c.apiBase(); n != "api.datadoghq.eu" {
				t.Errorf("api host %s", n)
			}
			if _, n := c.intakeBase(); n != "http-intake.logs.datadoghq.eu" {
				t.Errorf("intake host %s", n)
			}
		}},
		{name: "gov site", toml: keys + `site = "ddog-gov.com"`, check: func(t *testing.T, c Config) {
			if _, n := c.apiBase(); n != "api.ddog-gov.com" {
				t.Errorf("api host %s", n)
			}
		}},
		{name: "url overrides both hosts", toml: keys + `url = "http://127.0.0.1:8126/dd/"`, check: func(t *testing.T, c Config) {
			if s, n := c.apiBase(); s != "http" || n != "127.0.0.1:8126/dd" {
				t.Errorf("api base %s://%s", s, n)
			}
			if s, n := c.intakeBase(); s != "http" || n != "127.0.0.1:8126/dd" {
				t.Errorf("intake base %s://%s", s, n)
			}
		}},
		{name: "intake_url", toml: keys + "url = \"https://proxy.corp\"\nintake_url = \"https://intake.corp\"", check: func(t *testing.T, c Config) {
			if _, n := c.intakeBase(); n != "intake.corp" {
				t.Errorf("intake host %s", n)
			}
		}},
		{name: "all keys", toml: keys + `
query = "env:prod"
page_size = 1000
close_signals = true
logs_query = "source:auditd"
logs_indexes = ["main"]
ingest_source = "auditd"
ingest_service = "replay"
ingest_tags = ["env:lab"]
timeout = "5s"
max_retries = 0
max_wait = "30s"`, check: func(t *testing.T, c Config) {
			if c.Query != "env:prod" || c.PageSize != 1000 || !c.CloseSignals || *c.MaxRetries != 0 || c.MaxWait != 30*time.Second || c.Timeout != 5*time.Second {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "unknown key", toml: keys + "api_url = \"x\"\nfoo = 1", wantErr: "unknown keys api_url, foo (known: api_key, app_key"},
		{name: "bad site", toml: keys + `site = "datadoghq.org"`, wantErr: `site "datadoghq.org": want one of datadoghq.com, us3.datadoghq.com`},
		{name: "no api key", toml: fmt.Sprintf("app_key = %q", testAppKey), wantErr: "api_key is required"},
		{name: "no app key", toml: fmt.Sprintf("api_key = %q", testAPIKey), wantErr: "app_key is required"},
		{name: "url scheme", toml: keys + `url = "ftp://x"`, wantErr: "want an http or https URL"},
		{name: "url user info", toml: keys + `url = "https://u:p@x"`, wantErr: "user info in the URL is not supported"},
		{name: "page size", toml: keys + "page_size = 1001", wantErr: "page_size 1001 out of range (1..1000)"},
		{name: "bad tag", toml: keys + `ingest_tags = ["nocolon"]`, wantErr: `ingest_tags[0] "nocolon": want key:value`},
		{name: "retries", toml: keys + "max_retries = 11", wantErr: "max_retries 11 out of range (0..10)"},
		{name: "timeout", toml: keys + `timeout = "1ms"`, wantErr: "timeout 1ms is below 100ms"},
		{name: "wrong type", toml: keys + `page_size = "big"`, wantErr: "datadog: decode config:"},
		{name: "syntax error next to a key", toml: fmt.Sprintf("api_key = %q\napp_key = %q x", testAPIKey, testAppKey), wantErr: "datadog: decode config: line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tc.toml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, k := range []string{testAPIKey, testAppKey} {
					if strings.Contains(err.Error(), k) {
						t.Fatalf("error leaks a key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// A Configure error travels over gRPC without the keys.
func TestConfigureErrorOverGRPC(t *testing.T) {
	s := plugintest.SIEM(t, new(SIEM))
	err := s.Configure(context.Background(), []byte(fmt.Sprintf("api_key = %q\napp_key = %q\nsite = \"nowhere\"", testAPIKey, testAppKey)))
	if err == nil || !strings.Contains(err.Error(), `datadog: config: site "nowhere"`) {
		t.Fatalf("Configure = %v", err)
	}
	if strings.Contains(err.Error(), testAPIKey) || strings.Contains(err.Error(), testAppKey) {
		t.Fatalf("error leaks a key: %v", err)
	}
}
