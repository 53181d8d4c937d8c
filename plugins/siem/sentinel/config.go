package sentinel

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// Authentication methods (Config.Auth).
const (
	// AuthClientSecret is a service principal with a client secret
	// (tenant_id, client_id, client_secret). It is the default when a
	// client_secret is set.
	AuthClientSecret = "client_secret"
	// AuthWorkloadIdentity is a federated token file (AKS workload
	// identity, GitHub OIDC): AZURE_TENANT_ID, AZURE_CLIENT_ID and
	// AZURE_FEDERATED_TOKEN_FILE, or tenant_id and client_id here.
	AuthWorkloadIdentity = "workload_identity"
	// AuthManagedIdentity is the managed identity of the Azure host vigil
	// runs on (client_id selects a user-assigned one).
	AuthManagedIdentity = "managed_identity"
	// AuthAzureCLI is the account `az login` signed in.
	AuthAzureCLI = "azure_cli"
)

// Azure clouds (Config.Cloud).
const (
	CloudPublic     = "public"
	CloudGovernment = "government"
	CloudChina      = "china"
)

// Defaults and limits of Config.
const (
	DefaultRequestTimeout = 60 * time.Second
	DefaultMaxRetries     = 3
	DefaultRetryDelay     = time.Second
	DefaultMaxRetryWait   = 30 * time.Second
	DefaultMaxRows        = 10_000
	// MaxRows is below the query API's own cap (500,000 rows).
	MaxRows              = 100_000
	DefaultCloseLookback = 24 * time.Hour
	DefaultBatchBytes    = 900_000
	// MaxBatchBytes is the Logs Ingestion API's limit of one call (1 MB).
	MaxBatchBytes           = 1 << 20
	DefaultTable            = "VigilEvents_CL"
	DefaultStream           = "Custom-" + DefaultTable
	DefaultClassification   = "BenignPositive"
	DefaultClassReason      = "SuspiciousButExpected"
	DefaultRulesAPIVersion  = "2024-03-01"
	CloudTrailTable         = "AWSCloudTrail"
	ProcessTable            = "ASimProcessEventLogs"
	securityAlertTable      = "SecurityAlert"
	securityIncidentTable   = "SecurityIncident"
	defaultCloseComment     = "closed by vigil: detection test"
	maxNativeQueriesPerPoll = 50
)

// Config is the sentinel plugin's [siem.params] table, for example
//
//	[[siem]]
//	name = "sentinel"
//	plugin = "sentinel"
//	poll_interval = "30s"
//	[siem.params]
//	tenant_id = "00000000-0000-0000-0000-000000000000"
//	client_id = "11111111-1111-1111-1111-111111111111"
//	client_secret = "${AZURE_CLIENT_SECRET}"
//	workspace_id = "22222222-2222-2222-2222-222222222222"
//	subscription_id = "33333333-3333-3333-3333-333333333333"
//	resource_group = "soc"
//	workspace_name = "soc-sentinel"
//
// Unknown keys are errors.
type Config struct {
	// Auth is AuthClientSecret, AuthWorkloadIdentity, AuthManagedIdentity
	// or AuthAzureCLI (default: client_secret when one is set, else
	// managed_identity).
	Auth string `toml:"auth"`
	// TenantID and ClientID name the Entra ID tenant and the application
	// (service principal) or user-assigned identity.
	TenantID string `toml:"tenant_id"`
	ClientID string `toml:"client_id"`
	// ClientSecret is the application's secret: set it from the
	// environment ("${AZURE_CLIENT_SECRET}").
	ClientSecret plugin.Secret `toml:"client_secret"`
	// Cloud is CloudPublic (default), CloudGovernment or CloudChina.
	Cloud string `toml:"cloud"`
	// WorkspaceID is the Log Analytics workspace ID (a GUID, "Workspace
	// ID" on the workspace's overview page): what Search queries.
	WorkspaceID string `toml:"workspace_id"`
	// SubscriptionID, ResourceGroup and WorkspaceName name the workspace
	// as an Azure resource: the analytics rules and incidents live under
	// it (Check, ClaimedRules, CloseSignals).
	SubscriptionID string `toml:"subscription_id"`
	ResourceGroup  string `toml:"resource_group"`
	WorkspaceName  string `toml:"workspace_name"`
	// AuthorityHost, QueryEndpoint and ARMEndpoint replace the cloud's
	// Entra ID authority, Log Analytics query endpoint and Resource
	// Manager endpoint (private or sovereign clouds); https only.
	AuthorityHost string `toml:"authority_host"`
	QueryEndpoint string `toml:"query_endpoint"`
	ARMEndpoint   string `toml:"arm_endpoint"`
	// CACert is a PEM file of the CAs that sign those endpoints'
	// certificates (a TLS-inspecting proxy); default the system roots.
	CACert string `toml:"ca_cert"`
	// RequestTimeout bounds each HTTP request (default 60s).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// MaxRetries is how often a throttled (429) or failed (5xx) call is
	// tried again within one call (default 3); RetryDelay the first wait
	// when the answer has no Retry-After (default 1s, doubled each time);
	// MaxRetryWait the longest Retry-After waited out within a call
	// (default 30s): a longer one fails the call at once.
	MaxRetries   int           `toml:"max_retries"`
	RetryDelay   time.Duration `toml:"retry_delay"`
	MaxRetryWait time.Duration `toml:"max_retry_wait"`
	// MaxRows caps the rows of one poll (default 10000): more is an error
	// asking for a narrower query, never a silent cut.
	MaxRows int `toml:"max_rows"`
	// Incidents adds SecurityIncident to every poll: incidents become
	// signals too (their techniques and the analytics rules behind them).
	Incidents bool `toml:"incidents"`
	// RawTables are searched for the injected activity's own events,
	// besides the tables the replay writes to.
	RawTables []string `toml:"raw_tables"`
	// CloseSignals lets CloseSignals set the incidents of vigil's alerts to
	// Closed with Classification and ClassificationReason (needs
	// Microsoft Sentinel Responder). CloseLookback bounds how far back
	// their incidents are looked for (default 24h).
	CloseSignals         bool          `toml:"close_signals"`
	Classification       string        `toml:"classification"`
	ClassificationReason string        `toml:"classification_reason"`
	CloseLookback        time.Duration `toml:"close_lookback"`
	// IngestEndpoint is the data collection endpoint (or the DCR's own
	// logs ingestion endpoint) that Ingest sends to; DCRImmutableID is the
	// data collection rule's immutable ID (dcr-...).
	IngestEndpoint string `toml:"ingest_endpoint"`
	DCRImmutableID string `toml:"dcr_immutable_id"`
	// Stream is the DCR stream of replayed events with no table of their
	// own (default "Custom-VigilEvents_CL"), landing in Table (default
	// "VigilEvents_CL").
	Stream string `toml:"stream"`
	Table  string `toml:"table"`
	// CloudTrailStream, when set, is the DCR stream whose output is the
	// built-in AWSCloudTrail table: replayed CloudTrail records go there,
	// where Sentinel's AWS analytics rules read. ProcessStream, likewise,
	// outputs to ASimProcessEventLogs (process creation events, read by
	// the ASIM rules through imProcessCreate).
	CloudTrailStream string `toml:"cloudtrail_stream"`
	ProcessStream    string `toml:"process_stream"`
	// BatchBytes caps the uncompressed JSON of one upload (default 900000;
	// the API takes at most 1 MB).
	BatchBytes int `toml:"batch_bytes"`
	// RulesAPIVersion is the Microsoft.SecurityInsights API version of the
	// analytics rules listing (default 2024-03-01, which carries
	// techniques and sub-techniques).
	RulesAPIVersion string `toml:"rules_api_version"`
}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	authority, query, arm *url.URL // nil: the cloud's own
	tls                   *tls.Config
	// ingest is nil when no replay is configured.
	ingest *url.URL
}

var (
	guidPattern  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.()-]{0,89}$`)
	tablePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	// streamPattern is a DCR stream name: Custom-<name> or Microsoft-<table>.
	streamPattern = regexp.MustCompile(`^(Custom|Microsoft)-[A-Za-z0-9_]{1,63}$`)
	apiVersion    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)
)

// secrets returns the credential values, for scrubbing messages.
func (c *config) secrets() []plugin.Secret {
	if c.ClientSecret == "" {
		return nil
	}
	return []plugin.Secret{c.ClientSecret}
}

// workspaceResource is the workspace's ARM ID, for messages.
func (c *config) workspaceResource() string {
	if c.SubscriptionID == "" {
		return "workspace " + c.WorkspaceID
	}
	return fmt.Sprintf("workspace %s (resource group %s)", c.WorkspaceName, c.ResourceGroup)
}

// armConfigured reports whether the workspace is named as an Azure
// resource (rules and incidents).
func (c *config) armConfigured() bool {
	return c.SubscriptionID != "" && c.ResourceGroup != "" && c.WorkspaceName != ""
}

// parseConfig decodes b strictly, checks it and fills in the defaults.
// Errors never quote the client secret.
func parseConfig(b []byte) (*config, error) {
	var c Config
	md, err := plugin.DecodeConfigMeta(Name, b, &c)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*config, error) {
		return nil, fmt.Errorf("sentinel: config: "+format, args...)
	}
	cfg := &config{Config: c}
	c.ClientSecret = plugin.Secret(strings.TrimSpace(c.ClientSecret.Reveal()))
	cfg.ClientSecret = c.ClientSecret

	switch c.Auth {
	case "":
		cfg.Auth = AuthManagedIdentity
		if c.ClientSecret != "" {
			cfg.Auth = AuthClientSecret
		}
	case AuthClientSecret, AuthWorkloadIdentity, AuthManagedIdentity, AuthAzureCLI:
	default:
		return bad("auth %q: want %q, %q, %q or %q", c.Auth, AuthClientSecret, AuthWorkloadIdentity, AuthManagedIdentity, AuthAzureCLI)
	}
	if cfg.Auth == AuthClientSecret {
		switch {
		case c.TenantID == "" || c.ClientID == "":
			return bad("auth %q needs tenant_id and client_id", cfg.Auth)
		case c.ClientSecret == "":
			return bad("auth %q needs client_secret (from the environment: client_secret = \"${AZURE_CLIENT_SECRET}\")", cfg.Auth)
		}
	} else if c.ClientSecret != "" {
		return bad("client_secret is only used with auth = %q", AuthClientSecret)
	}
	for _, g := range []struct{ key, v string }{{"tenant_id", c.TenantID}, {"client_id", c.ClientID}, {"subscription_id", c.SubscriptionID}} {
		if g.v != "" && !guidPattern.MatchString(g.v) {
			return bad("%s %q: not a GUID", g.key, g.v)
		}
	}
	switch {
	case c.WorkspaceID == "":
		return bad("workspace_id is required (the Log Analytics workspace ID, a GUID)")
	case !guidPattern.MatchString(c.WorkspaceID):
		return bad("workspace_id %q: not a GUID (the Workspace ID of the workspace's overview page)", c.WorkspaceID)
	}
	named := 0
	for _, n := range []struct{ key, v string }{{"subscription_id", c.SubscriptionID}, {"resource_group", c.ResourceGroup}, {"workspace_name", c.WorkspaceName}} {
		if n.v != "" {
			named++
		}
		if n.key != "subscription_id" && n.v != "" && !namePattern.MatchString(n.v) {
			return bad("%s %q: not an Azure resource name", n.key, n.v)
		}
	}
	if named != 0 && named != 3 {
		return bad("subscription_id, resource_group and workspace_name go together (the workspace as an Azure resource)")
	}
	switch c.Cloud {
	case "":
		cfg.Cloud = CloudPublic
	case CloudPublic, CloudGovernment, CloudChina:
	default:
		return bad("cloud %q: want %q, %q or %q", c.Cloud, CloudPublic, CloudGovernment, CloudChina)
	}
	for _, e := range []struct {
		key string
		v   string
		u   **url.URL
	}{{"authority_host", c.AuthorityHost, &cfg.authority}, {"query_endpoint", c.QueryEndpoint, &cfg.query}, {"arm_endpoint", c.ARMEndpoint, &cfg.arm}, {"ingest_endpoint", c.IngestEndpoint, &cfg.ingest}} {
		if e.v == "" {
			continue
		}
		if *e.u, err = parseHTTPS(e.key, e.v); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		key      string
		v        *time.Duration
		def, min time.Duration
	}{
		{"request_timeout", &cfg.RequestTimeout, DefaultRequestTimeout, time.Second},
		{"retry_delay", &cfg.RetryDelay, DefaultRetryDelay, time.Millisecond},
		{"max_retry_wait", &cfg.MaxRetryWait, DefaultMaxRetryWait, time.Second},
		{"close_lookback", &cfg.CloseLookback, DefaultCloseLookback, time.Minute},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < d.min:
			return bad("%s %s is below %s", d.key, *d.v, d.min)
		}
	}
	switch {
	case !md.IsDefined("max_retries"):
		cfg.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0 || c.MaxRetries > 10:
		return bad("max_retries %d out of range (0..10)", c.MaxRetries)
	}
	switch {
	case c.MaxRows == 0:
		cfg.MaxRows = DefaultMaxRows
	case c.MaxRows < 1 || c.MaxRows > MaxRows:
		return bad("max_rows %d out of range (1..%d)", c.MaxRows, MaxRows)
	}
	for i, t := range c.RawTables {
		if !tablePattern.MatchString(t) {
			return bad("raw_tables[%d] %q: not a table name", i, t)
		}
	}
	if c.CloseSignals && !cfg.armConfigured() {
		return bad("close_signals needs subscription_id, resource_group and workspace_name (incidents are Azure resources of the workspace)")
	}
	if cfg.Classification == "" {
		cfg.Classification = DefaultClassification
	}
	if cfg.ClassificationReason == "" {
		cfg.ClassificationReason = DefaultClassReason
	}
	switch cfg.Classification {
	case "BenignPositive", "FalsePositive", "TruePositive", "Undetermined":
	default:
		return bad("classification %q: want BenignPositive, FalsePositive, TruePositive or Undetermined", cfg.Classification)
	}

	// Replay.
	switch {
	case c.IngestEndpoint != "" && c.DCRImmutableID == "":
		return bad("ingest_endpoint needs dcr_immutable_id (the data collection rule's immutable ID, dcr-...)")
	case c.IngestEndpoint == "" && c.DCRImmutableID != "":
		return bad("dcr_immutable_id needs ingest_endpoint (the data collection endpoint's logs ingestion URL)")
	case c.DCRImmutableID != "" && !strings.HasPrefix(c.DCRImmutableID, "dcr-"):
		return bad("dcr_immutable_id %q: an immutable ID begins with dcr-", c.DCRImmutableID)
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	for _, s := range []struct{ key, v string }{{"stream", cfg.Stream}, {"cloudtrail_stream", c.CloudTrailStream}, {"process_stream", c.ProcessStream}} {
		if s.v != "" && !streamPattern.MatchString(s.v) {
			return bad("%s %q: not a DCR stream name (Custom-<name> or Microsoft-<table>)", s.key, s.v)
		}
	}
	if !tablePattern.MatchString(cfg.Table) {
		return bad("table %q: not a table name", cfg.Table)
	}
	switch {
	case c.BatchBytes == 0:
		cfg.BatchBytes = DefaultBatchBytes
	case c.BatchBytes < 1024 || c.BatchBytes > MaxBatchBytes:
		return bad("batch_bytes %d out of range (1024..%d)", c.BatchBytes, MaxBatchBytes)
	}
	if cfg.RulesAPIVersion == "" {
		cfg.RulesAPIVersion = DefaultRulesAPIVersion
	} else if !apiVersion.MatchString(cfg.RulesAPIVersion) {
		return bad("rules_api_version %q: not an API version (2024-03-01)", cfg.RulesAPIVersion)
	}

	cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("sentinel: config: ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return bad("ca_cert %s: no PEM certificate in it", c.CACert)
		}
		cfg.tls.RootCAs = pool
	}
	return cfg, nil
}

// parseHTTPS parses an https URL without credentials, query or fragment.
func parseHTTPS(key, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("sentinel: config: %s: not a URL", key)
	case u.Scheme != "https":
		return nil, fmt.Errorf("sentinel: config: %s %q: want an https:// URL (tokens never go over plain http)", key, u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("sentinel: config: %s %q: no host", key, u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("sentinel: config: %s: no credentials in the URL", key)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("sentinel: config: %s %q: no query or fragment allowed", key, u.Redacted())
	}
	return u, nil
}
