package elastic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/elasticfake"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// Test credentials: the raw API key and its encoded form; neither may ever
// show in an error.
const (
	testKeyID     = "VuaCfGcBCdbkQm-e5aOx"
	testKeySecret = "ui2lp2axTNmsyakw9tvNnw"
	testMarker    = "vigil-0a1b2c3d4e5f"
	testHost      = "vigil-lab-01"
)

var testKeyEncoded = base64.StdEncoding.EncodeToString([]byte(testKeyID + ":" + testKeySecret))

// esConfig is a config for the fake's Elasticsearch (and Kibana when
// kibana is true), with extra TOML lines.
func esConfig(f *elasticfake.Fake, kibana bool, extra ...string) string {
	lines := []string{
		`addresses = ["` + f.ESURL() + `"]`,
		`api_key = "` + testKeyEncoded + `"`,
	}
	if kibana {
		lines = append(lines, `kibana_url = "`+f.KibanaURL()+`"`)
	}
	return strings.Join(append(lines, extra...), "\n")
}

// configured returns the plugin over gRPC, configured with cfg against the
// fake (which requires the test API key), and its implementation.
func configured(t *testing.T, f *elasticfake.Fake, cfg string, opts ...func(*SIEM)) (plugin.SIEM, *SIEM) {
	t.Helper()
	if f.Auth() == "" {
		f.SetAuth("ApiKey " + testKeyEncoded)
	}
	impl := &SIEM{retryBase: time.Millisecond}
	for _, o := range opts {
		o(impl)
	}
	s := plugintest.SIEM(t, impl)
	if err := s.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, impl
}

// fixture reads testdata/name with its {{key}} placeholders filled.
func fixture(t testing.TB, name string, vars map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		b = bytes.ReplaceAll(b, []byte("{{"+k+"}}"), []byte(v))
	}
	if i := bytes.Index(b, []byte("{{")); i >= 0 {
		t.Fatalf("%s: placeholder left: %s", name, b[i:min(i+30, len(b))])
	}
	return b
}

// alert8x returns an 8.x alert document raised at ts.
func alert8x(t testing.TB, id string, ts time.Time, marker string) []byte {
	return fixture(t, "alert-8x.json", map[string]string{
		"id": id, "timestamp": ts.UTC().Format(time.RFC3339Nano), "marker": marker, "host": testHost,
		"original_time": ts.Add(-400 * time.Millisecond).UTC().Format(time.RFC3339Nano),
	})
}

// jsonEqual reports whether two JSON texts are the same value.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs\n got: %s\nwant: %s", compact(got), compact([]byte(want)))
	}
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// assertNoSecret fails when s contains any form of the test credentials.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testKeySecret, testKeyEncoded, "hunter2", base64.StdEncoding.EncodeToString([]byte("vigil:hunter2"))} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks a secret (%q): %s", what, secret, s)
		}
	}
}

func TestDescribe(t *testing.T) {
	d, err := plugintest.SIEM(t, new(SIEM)).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "elastic" || d.Kind != plugin.KindSIEM || d.QueryDialect != "elasticsearch" || !d.ReportsHost {
		t.Errorf("Describe = %+v", d)
	}
	for _, c := range []string{plugin.CapRawEvents, plugin.CapCloseSignals, plugin.CapIngest} {
		if !d.Has(c) {
			t.Errorf("capability %s missing: %v", c, d.Capabilities)
		}
	}
	wantLocs := []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerProcessName, plugin.MarkerFilePath,
		plugin.MarkerUserAgent, plugin.MarkerHostname, plugin.MarkerEnvironment, plugin.MarkerLogField}
	if !slices.Equal(d.MarkerLocations, wantLocs) {
		t.Errorf("MarkerLocations = %v, want %v", d.MarkerLocations, wantLocs)
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
	pem := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const es = `addresses = ["https://es.example.com:9200"]` + "\n"
	tests := []struct {
		name    string
		toml    string
		check   func(t *testing.T, c *config)
		wantErr string
	}{
		{name: "defaults", toml: es + `api_key = "` + testKeyEncoded + `"`, check: func(t *testing.T, c *config) {
			if c.Index != ".alerts-security.alerts-default" || c.Space != "default" || c.SearchAPI != SearchElasticsearch ||
				c.PageSize != DefaultPageSize || !slices.Equal(c.EventIndices, []string{"logs-*"}) ||
				c.stream != (dataStream{"logs", "vigil.replay", "default"}) || c.Timeout != DefaultTimeout || c.legacy || c.kibana != nil {
				t.Errorf("defaults: %+v", c)
			}
			if c.apiKey.Reveal() != testKeyEncoded {
				t.Errorf("apiKey = %q", c.apiKey)
			}
		}},
		{name: "space sets the index", toml: es + `space = "soc-team"`, check: func(t *testing.T, c *config) {
			if c.Index != ".alerts-security.alerts-soc-team" {
				t.Errorf("index %q", c.Index)
			}
		}},
		{name: "7.x index", toml: es + `index = ".siem-signals-default"`, check: func(t *testing.T, c *config) {
			if !c.legacy {
				t.Error("legacy layout not detected")
			}
		}},
		{name: "id:key api key is encoded", toml: es + `api_key = "` + testKeyID + ":" + testKeySecret + `"`, check: func(t *testing.T, c *config) {
			if c.apiKey.Reveal() != testKeyEncoded {
				t.Errorf("apiKey = %q, want %q", c.apiKey, testKeyEncoded)
			}
		}},
		{name: "kibana alone searches through kibana", toml: `kibana_url = "https://kb.example.com/base/"` + "\n" + `username = "vigil"` + "\n" + `password = "hunter2"`, check: func(t *testing.T, c *config) {
			if c.SearchAPI != SearchKibana || c.kibana.String() != "https://kb.example.com/base" || c.hasES() {
				t.Errorf("search_api %q kibana %v", c.SearchAPI, c.kibana)
			}
		}},
		{name: "fingerprint normalised", toml: es + `certificate_fingerprint = "` + strings.Repeat("AB:", 31) + `AB"`, check: func(t *testing.T, c *config) {
			if c.fingerprint != strings.Repeat("ab", 32) {
				t.Errorf("fingerprint %q", c.fingerprint)
			}
		}},
		{name: "ca_cert file", toml: es + `ca_cert = "` + pem + `"`, check: func(t *testing.T, c *config) {
			if !bytes.Contains(c.caPEM, []byte("BEGIN CERTIFICATE")) {
				t.Errorf("caPEM %q", c.caPEM)
			}
		}},
		{name: "all keys", toml: es + strings.Join([]string{`username = "vigil"`, `password = "hunter2"`, `kibana_url = "http://kb:5601"`,
			`space = "s1"`, `search_api = "kibana"`, `page_size = 50`, `event_indices = ["logs-*", "auditbeat-*"]`,
			`replay_data_stream = "logs-vigil.test-ns1"`, `timeout = "5s"`, `insecure_skip_verify = true`, `cloud_id = ""`}, "\n"),
			check: func(t *testing.T, c *config) {
				if c.PageSize != 50 || c.Timeout != 5*time.Second || c.stream.String() != "logs-vigil.test-ns1" || len(c.EventIndices) != 2 {
					t.Errorf("%+v", c)
				}
			}},
		{name: "unknown key named", toml: es + `api_kee = "x"` + "\n" + `pagesize = 3`, wantErr: "unknown keys api_kee, pagesize (known: addresses, api_key,"},
		{name: "nowhere", toml: `api_key = "x"`, wantErr: "set addresses or cloud_id (Elasticsearch), or kibana_url"},
		{name: "addresses and cloud_id", toml: es + `cloud_id = "x:eHh4"`, wantErr: "set addresses or cloud_id, not both"},
		{name: "bad address", toml: `addresses = ["es.example.com:9200"]`, wantErr: "addresses[0]: want an http(s) URL"},
		{name: "credentials in address", toml: `addresses = ["https://vigil:hunter2@es:9200"]`, wantErr: "addresses[0]: credentials in the URL are refused"},
		{name: "credentials in kibana_url", toml: `kibana_url = "https://vigil:hunter2@kb:5601"`, wantErr: "kibana_url: credentials in the URL are refused"},
		{name: "api key and password", toml: es + `api_key = "` + testKeyEncoded + `"` + "\n" + `username = "vigil"` + "\n" + `password = "hunter2"`, wantErr: "set api_key or username/password, not both"},
		{name: "username alone", toml: es + `username = "vigil"`, wantErr: "username is set but password is empty"},
		{name: "password alone", toml: es + `password = "hunter2"`, wantErr: "password is set but username is empty"},
		{name: "two TLS options", toml: es + `ca_cert = "` + pem + `"` + "\n" + `insecure_skip_verify = true`, wantErr: "at most one of ca_cert, certificate_fingerprint and insecure_skip_verify"},
		{name: "missing ca_cert", toml: es + `ca_cert = "/nonexistent/ca.pem"`, wantErr: "ca_cert: open /nonexistent/ca.pem"},
		{name: "bad fingerprint", toml: es + `certificate_fingerprint = "abc"`, wantErr: "certificate_fingerprint: want 64 hex digits"},
		{name: "bad space", toml: es + `space = "Bad Space"`, wantErr: `space "Bad Space"`},
		{name: "kibana search without kibana", toml: es + `search_api = "kibana"`, wantErr: `search_api "kibana" needs kibana_url`},
		{name: "es search without es", toml: `kibana_url = "http://kb"` + "\n" + `search_api = "elasticsearch"`, wantErr: "needs addresses or cloud_id"},
		{name: "bad search_api", toml: es + `search_api = "eql"`, wantErr: `search_api "eql": want "elasticsearch" or "kibana"`},
		{name: "index with kibana search", toml: `kibana_url = "http://kb"` + "\n" + `index = "x"`, wantErr: "index is not used with search_api"},
		{name: "page size", toml: es + `page_size = 20000`, wantErr: "page_size 20000 out of range (1..10000)"},
		{name: "data stream", toml: es + `replay_data_stream = "vigil-replay"`, wantErr: `replay_data_stream "vigil-replay": want type-dataset-namespace`},
		{name: "timeout", toml: es + `timeout = "10ms"`, wantErr: "timeout 10ms is below 1s"},
		{name: "wrong type", toml: es + `page_size = "ten"`, wantErr: "elastic: decode config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tc.toml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "elastic: ") {
					t.Errorf("error %q does not name the plugin", err)
				}
				assertNoSecret(t, "config error", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	var buf bytes.Buffer
	s := &SIEM{warnings: &buf}
	if err := s.Configure(context.Background(), []byte(`addresses = ["https://es:9200"]`+"\n"+`insecure_skip_verify = true`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "WARNING: insecure_skip_verify = true") {
		t.Errorf("no warning: %q", buf.String())
	}
	buf.Reset()
	if err := s.Configure(context.Background(), []byte(`addresses = ["https://es:9200"]`)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("warning without insecure_skip_verify: %q", buf.String())
	}
}
