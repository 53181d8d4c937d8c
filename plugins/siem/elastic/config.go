package elastic

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Values of Config.SearchAPI.
const (
	// SearchElasticsearch reads the alerts index directly through the
	// Elasticsearch search API (the default when addresses or cloud_id is
	// set).
	SearchElasticsearch = "elasticsearch"
	// SearchKibana reads alerts through Kibana's detection engine API
	// (POST /s/<space>/api/detection_engine/signals/search), for users who
	// may not read the alerts index directly. Needs Kibana 8.x or later: the
	// 7.x endpoint drops the sort the paging relies on.
	SearchKibana = "kibana"
)

// Defaults and limits of Config.
const (
	// DefaultSpace is the Kibana space when none is set.
	DefaultSpace = "default"
	// DefaultPageSize is the number of alerts per search page.
	DefaultPageSize = 500
	// MaxPageSize caps page_size and the engine's page size.
	MaxPageSize = 10_000
	// DefaultEventIndex is searched for raw events.
	DefaultEventIndex = "logs-*"
	// DefaultReplayDataStream receives replayed telemetry.
	DefaultReplayDataStream = "logs-vigil.replay-default"
	// DefaultTimeout bounds each call, retries included.
	DefaultTimeout = 30 * time.Second
)

// Config is the elastic SIEM's [siem.params] table, for example
//
//	[[siem]]
//	name = "elastic"
//	plugin = "elastic"
//	[siem.params]
//	addresses = ["https://es.example.com:9200"]
//	api_key = "${ELASTIC_API_KEY}"
//	ca_cert = "/etc/vigil/elastic-ca.pem"
//	kibana_url = "https://kibana.example.com:5601"
//	space = "default"
//
// Exactly one of addresses, cloud_id or (alone) kibana_url says where the
// SIEM is. Unknown keys are errors; secret values never appear in errors.
type Config struct {
	// Addresses are Elasticsearch node URLs. Credentials in a URL are
	// refused: use api_key or username/password.
	Addresses []string `toml:"addresses"`
	// CloudID is an Elastic Cloud deployment ID (instead of addresses).
	CloudID string `toml:"cloud_id"`
	// APIKey is an Elasticsearch API key: the "encoded" value Elasticsearch
	// returns (base64 of id:api_key), or id:api_key itself.
	APIKey plugin.Secret `toml:"api_key"`
	// Username and Password are basic-auth credentials (instead of api_key).
	Username string        `toml:"username"`
	Password plugin.Secret `toml:"password"`
	// CACert is a PEM file of the certificate authorities to trust (or the
	// PEM text itself).
	CACert string `toml:"ca_cert"`
	// CertificateFingerprint is the hex SHA-256 fingerprint of the server's
	// certificate that Elasticsearch prints on first start (colons allowed),
	// instead of ca_cert.
	CertificateFingerprint string `toml:"certificate_fingerprint"`
	// InsecureSkipVerify turns TLS verification off. Never in production:
	// Configure prints a warning.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// Index is the alerts index or alias to read (default
	// .alerts-security.alerts-<space>). An index named .siem-signals-* is
	// read with the 7.x layout.
	Index string `toml:"index"`
	// KibanaURL is Kibana's base URL (with its base path, if any), for the
	// rules checks, closing alerts through the signals status API and
	// search_api = "kibana".
	KibanaURL string `toml:"kibana_url"`
	// Space is the Kibana space (default "default").
	Space string `toml:"space"`
	// SearchAPI is SearchElasticsearch or SearchKibana.
	SearchAPI string `toml:"search_api"`
	// PageSize is the number of alerts per search page (default 500) when
	// the engine sets none.
	PageSize int `toml:"page_size"`
	// EventIndices are searched for the injected activity's own events
	// (default ["logs-*"]).
	EventIndices []string `toml:"event_indices"`
	// ReplayDataStream receives replayed telemetry (default
	// logs-vigil.replay-default); it must be named type-dataset-namespace.
	ReplayDataStream string `toml:"replay_data_stream"`
	// Timeout bounds each call to Elasticsearch or Kibana, retries included
	// (default 30s).
	Timeout time.Duration `toml:"timeout"`
}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	// apiKey is the encoded API key (base64 of id:key).
	apiKey plugin.Secret
	// caPEM is the content of CACert.
	caPEM []byte
	// fingerprint is CertificateFingerprint in lower-case hex without colons.
	fingerprint string
	// legacy is true when Index has the 7.x .siem-signals layout.
	legacy bool
	// kibana is KibanaURL parsed, without a trailing slash; nil when unset.
	kibana *url.URL
	// stream is ReplayDataStream split into its type, dataset and namespace.
	stream dataStream
}

// hasES reports whether Elasticsearch itself is configured.
func (c *config) hasES() bool { return len(c.Addresses) > 0 || c.CloudID != "" }

// secrets returns the secret values of the config, for redaction.
func (c *config) secrets() []string {
	var out []string
	for _, s := range []plugin.Secret{c.APIKey, c.apiKey, c.Password} {
		if s != "" {
			out = append(out, s.Reveal())
		}
	}
	if c.Password != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password.Reveal())))
	}
	if c.apiKey != "" {
		if raw, err := base64.StdEncoding.DecodeString(c.apiKey.Reveal()); err == nil {
			if _, key, ok := strings.Cut(string(raw), ":"); ok && key != "" {
				out = append(out, key)
			}
		}
	}
	return out
}

// dataStream is a data stream name split into its parts.
type dataStream struct{ Type, Dataset, Namespace string }

// String returns the data stream's name.
func (d dataStream) String() string { return d.Type + "-" + d.Dataset + "-" + d.Namespace }

// dataset is the dataset of a document: its own (a CloudTrail record's
// aws.cloudtrail), else the stream's.
func (d dataStream) dataset(own string) string {
	if own != "" {
		return own
	}
	return d.Dataset
}

// index is the data stream a document goes to: the stream's type and
// namespace, with the document's dataset.
func (d dataStream) index(own string) string {
	return d.Type + "-" + d.dataset(own) + "-" + d.Namespace
}

var (
	spaceRE       = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	streamPartRE  = regexp.MustCompile(`^[a-z0-9_.]+$`)
	fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	indexRE       = regexp.MustCompile(`^[^\s,"\\/|?<>]+$`)
)

// parseConfig decodes b strictly, checks it and fills in the defaults.
func parseConfig(b []byte) (*config, error) {
	var c Config
	if err := plugin.DecodeConfig("elastic", b, &c); err != nil {
		return nil, err
	}
	cfg := &config{Config: c}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("elastic: config: %w", err)
	}
	return cfg, nil
}

// check validates the config and fills in the defaults. Its errors never
// quote a secret.
func (c *config) check() error {
	switch {
	case len(c.Addresses) > 0 && c.CloudID != "":
		return fmt.Errorf("set addresses or cloud_id, not both")
	case !c.hasES() && c.KibanaURL == "":
		return fmt.Errorf("set addresses or cloud_id (Elasticsearch), or kibana_url (Kibana alone)")
	}
	for i, a := range c.Addresses {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("addresses[%d]: want an http(s) URL such as https://es.example.com:9200", i)
		}
		if u.User != nil {
			return fmt.Errorf("addresses[%d]: credentials in the URL are refused: use api_key or username/password", i)
		}
	}
	if c.KibanaURL != "" {
		u, err := url.Parse(c.KibanaURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("kibana_url: want an http(s) URL such as https://kibana.example.com:5601")
		}
		if u.User != nil {
			return fmt.Errorf("kibana_url: credentials in the URL are refused: use api_key or username/password")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("kibana_url: want a base URL without query or fragment")
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		c.kibana = u
	}

	switch {
	case c.APIKey != "" && (c.Username != "" || c.Password != ""):
		return fmt.Errorf("set api_key or username/password, not both")
	case c.APIKey != "":
		k := strings.TrimSpace(c.APIKey.Reveal())
		if strings.Contains(k, ":") {
			k = base64.StdEncoding.EncodeToString([]byte(k))
		}
		c.apiKey = plugin.Secret(k)
	case c.Username != "" && c.Password == "":
		return fmt.Errorf("username is set but password is empty")
	case c.Password != "" && c.Username == "":
		return fmt.Errorf("password is set but username is empty")
	}

	tlsChoices := 0
	for _, set := range []bool{c.CACert != "", c.CertificateFingerprint != "", c.InsecureSkipVerify} {
		if set {
			tlsChoices++
		}
	}
	if tlsChoices > 1 {
		return fmt.Errorf("set at most one of ca_cert, certificate_fingerprint and insecure_skip_verify")
	}
	if c.CACert != "" {
		if strings.Contains(c.CACert, "-----BEGIN") {
			c.caPEM = []byte(c.CACert)
		} else {
			b, err := os.ReadFile(c.CACert)
			if err != nil {
				return fmt.Errorf("ca_cert: %w", err)
			}
			c.caPEM = b
		}
		if !bytes.Contains(c.caPEM, []byte("-----BEGIN CERTIFICATE-----")) {
			return fmt.Errorf("ca_cert: no PEM certificate found")
		}
	}
	if c.CertificateFingerprint != "" {
		fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(c.CertificateFingerprint), ":", ""))
		if !fingerprintRE.MatchString(fp) {
			return fmt.Errorf("certificate_fingerprint: want 64 hex digits (SHA-256), colons allowed")
		}
		if _, err := hex.DecodeString(fp); err != nil {
			return fmt.Errorf("certificate_fingerprint: %w", err)
		}
		c.fingerprint = fp
	}

	if c.Space == "" {
		c.Space = DefaultSpace
	}
	if !spaceRE.MatchString(c.Space) {
		return fmt.Errorf("space %q: want lower-case letters, digits, '_' or '-'", c.Space)
	}

	switch c.SearchAPI {
	case "":
		c.SearchAPI = SearchElasticsearch
		if !c.hasES() {
			c.SearchAPI = SearchKibana
		}
	case SearchElasticsearch:
		if !c.hasES() {
			return fmt.Errorf("search_api %q needs addresses or cloud_id", c.SearchAPI)
		}
	case SearchKibana:
		if c.kibana == nil {
			return fmt.Errorf("search_api %q needs kibana_url", c.SearchAPI)
		}
	default:
		return fmt.Errorf("search_api %q: want %q or %q", c.SearchAPI, SearchElasticsearch, SearchKibana)
	}
	if c.Index != "" && c.SearchAPI == SearchKibana {
		return fmt.Errorf("index is not used with search_api %q (Kibana picks the space's alerts index)", SearchKibana)
	}
	if c.Index == "" {
		c.Index = ".alerts-security.alerts-" + c.Space
	}
	if !indexRE.MatchString(c.Index) {
		return fmt.Errorf("index %q: want one index, alias or pattern", c.Index)
	}
	c.legacy = strings.HasPrefix(c.Index, ".siem-signals")

	switch {
	case c.PageSize == 0:
		c.PageSize = DefaultPageSize
	case c.PageSize < 0 || c.PageSize > MaxPageSize:
		return fmt.Errorf("page_size %d out of range (1..%d)", c.PageSize, MaxPageSize)
	}
	if len(c.EventIndices) == 0 {
		c.EventIndices = []string{DefaultEventIndex}
	}
	for i, x := range c.EventIndices {
		if !indexRE.MatchString(x) {
			return fmt.Errorf("event_indices[%d] %q: want an index, alias, data stream or pattern", i, x)
		}
	}
	if c.ReplayDataStream == "" {
		c.ReplayDataStream = DefaultReplayDataStream
	}
	ds, err := parseDataStream(c.ReplayDataStream)
	if err != nil {
		return err
	}
	c.stream = ds
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	case c.Timeout < time.Second:
		return fmt.Errorf("timeout %s is below 1s", c.Timeout)
	}
	return nil
}

// parseDataStream splits a data stream name following the type-dataset-
// namespace scheme.
func parseDataStream(name string) (dataStream, error) {
	bad := fmt.Errorf("replay_data_stream %q: want type-dataset-namespace, such as %s", name, DefaultReplayDataStream)
	typ, rest, ok := strings.Cut(name, "-")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i <= 0 || i == len(rest)-1 {
		return dataStream{}, bad
	}
	ds := dataStream{Type: typ, Dataset: rest[:i], Namespace: rest[i+1:]}
	switch {
	case ds.Type != "logs" && ds.Type != "metrics" && ds.Type != "traces" && ds.Type != "synthetics":
		return dataStream{}, bad
	case !streamPartRE.MatchString(ds.Dataset) || !streamPartRE.MatchString(ds.Namespace) || strings.Contains(ds.Namespace, "."):
		return dataStream{}, bad
	}
	return ds, nil
}
