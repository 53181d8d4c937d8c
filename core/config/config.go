// Package config loads vigil.toml, the run configuration: how many tests run
// at once and how long to wait for detections ([run]), which SIEMs to search
// ([[siem]]), which targets to inject on ([[target]]) and the checksums of
// external plugins ([[plugin]]).
//
// Decoding is strict: an unknown key, a value of the wrong type, a bad
// duration or a duplicate name is an error, and every problem of a file is
// reported at once as "file:line: message". String values may refer to
// environment variables as ${VAR} ($${ is a literal "${"); values that came
// from the environment and values under secret-looking keys (api_key,
// token, password, ...) never appear in error messages, and Redacted hides
// them for reports. Each plugin's own table (params) is kept as decoded and
// handed to the plugin as TOML (ParamsTOML), where the plugin decodes it
// strictly.
//
// example.toml (Example) is the commented configuration `vigil init` writes.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults of the [run] table.
const (
	DefaultConcurrency  = 4
	DefaultPollInterval = 2 * time.Second
	DefaultTimeout      = 60 * time.Second
	// DefaultClockSlack is how far before an injection (and after now) a
	// SIEM's searches reach, so that a SIEM or log source whose clock is
	// off still has its signals found. Five minutes is the skew beyond
	// which a host could not authenticate to the SIEM anyway: Kerberos,
	// AWS SigV4 and Microsoft Entra ID tokens all refuse more than five
	// minutes. It only widens what each search reads; latency is still
	// measured from the injection.
	DefaultClockSlack = 5 * time.Minute
)

// DefaultFile is the config file Find looks for in the working directory.
const DefaultFile = "vigil.toml"

// Example is a complete, commented vigil.toml, written by `vigil init`.
//
//go:embed example.toml
var Example string

// Config is a loaded vigil.toml.
type Config struct {
	Run     Run
	SIEMs   []SIEM
	Targets []Target
	Plugins []PluginPin
	// Path is the file the config was loaded from; "" for Default().
	Path string

	src *source // where values came from; nil for configs built in code
}

// Run holds the [run] table.
type Run struct {
	// Concurrency is the number of tests in flight (default 4).
	Concurrency int
	// PollInterval is how often SIEMs are polled for signals (default 2s).
	PollInterval time.Duration
	// Timeout is the default detection deadline of an expectation (default 60s).
	Timeout time.Duration
	// PluginDirs are searched for external plugins, besides ~/.vigil/plugins.
	PluginDirs []string
	// CatalogDirs are extra technique catalogs, loaded with the built-in one.
	CatalogDirs []string
	// History is the run history database; "" means the default
	// ($VIGIL_HISTORY, else the user's state directory). A --history flag
	// and $VIGIL_HISTORY win over it.
	History string
}

// SIEM is one [[siem]] table: a SIEM plugin instance to search.
type SIEM struct {
	// Name is unique among the SIEMs; expectations and reports use it.
	Name string
	// Plugin is a built-in SIEM plugin name or an external plugin's name.
	Plugin string
	// PollInterval and Timeout override [run]'s for this SIEM. After Load
	// they are always set (inherited from [run] when not overridden).
	PollInterval time.Duration
	Timeout      time.Duration
	// ClockSlack is how far before an injection (and after now) searches
	// reach (clock_slack, default DefaultClockSlack; 0 allowed).
	ClockSlack time.Duration
	// Params is the plugin's own table, with ${VAR}s expanded. It may hold
	// secrets: pass it to the plugin with ParamsTOML, never log it.
	Params map[string]any
}

// Target is one [[target]] table: an injector plugin instance to inject on.
type Target struct {
	// Name is unique among the targets.
	Name string
	// Plugin is a built-in injector plugin name or an external plugin's name.
	Plugin string
	// Hosts are the hosts the target reaches, each "host" or "host:port"
	// ("[v6addr]:port"): its hosts array followed by the lines of its
	// inventory file, without duplicates. Empty for a single-host target
	// (such as this machine through exec). The engine runs every test of
	// the target once per host, on one plugin process, and reports each
	// host apart.
	Hosts []string
	// Inventory is the inventory file the hosts were read from (absolute
	// or relative to the working directory), "" if none.
	Inventory string
	// Runs names the other injectors whose tests this target runs: a
	// target with plugin "ssh" and runs = ["exec"] runs the exec tests of
	// the catalog on its remote hosts. The target's own plugin is always
	// implied.
	Runs []string
	// Params is the plugin's own table, with ${VAR}s expanded. It may hold
	// secrets: pass it to the plugin with ParamsTOML, never log it.
	Params map[string]any
}

// PluginPin is one [[plugin]] table: the SHA-256 an external plugin
// executable must have to be started.
type PluginPin struct {
	// Name is the plugin's executable name, e.g. "vigil-plugin-siem-acme".
	Name string
	// SHA256 is the executable's checksum, 64 lower-case hex digits.
	SHA256 string
}

// Default returns the built-in configuration used when there is no
// vigil.toml: the local SIEM and this host as the only target.
func Default() *Config {
	c := &Config{
		Run:     Run{Concurrency: DefaultConcurrency, PollInterval: DefaultPollInterval, Timeout: DefaultTimeout},
		SIEMs:   []SIEM{defaultSIEM()},
		Targets: []Target{defaultTarget()},
	}
	c.inherit()
	return c
}

func defaultSIEM() SIEM {
	return SIEM{Name: "local", Plugin: "local", ClockSlack: DefaultClockSlack}
}
func defaultTarget() Target { return Target{Name: "localhost", Plugin: "exec"} }

// inherit fills the SIEMs' unset poll intervals and timeouts from [run].
func (c *Config) inherit() {
	for i := range c.SIEMs {
		if c.SIEMs[i].PollInterval == 0 {
			c.SIEMs[i].PollInterval = c.Run.PollInterval
		}
		if c.SIEMs[i].Timeout == 0 {
			c.SIEMs[i].Timeout = c.Run.Timeout
		}
	}
}

// Find loads the config named by --config when explicit is set, else
// ./vigil.toml when it exists, else returns Default().
func Find(explicit string) (*Config, error) {
	if explicit != "" {
		return Load(explicit)
	}
	if _, err := os.Stat(DefaultFile); err == nil {
		return Load(DefaultFile)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("looking for %s: %w", DefaultFile, err)
	}
	return Default(), nil
}

// Load reads and validates the config file at path (see Parse).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a config whose file name is path, expanding
// ${VAR}s from the environment. Relative plugin_dirs and catalog_dirs are
// taken relative to the file's directory, and "~/" to the home directory.
// Tables left out take their defaults: [run] the values of the Default*
// constants, [[siem]] the local SIEM, [[target]] this host. All problems
// are returned together, one "file:line: message" per line.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, os.LookupEnv)
}

// ParamsTOML returns the SIEM's params table encoded as TOML, for the
// plugin's Configure call.
func (s SIEM) ParamsTOML() ([]byte, error) { return paramsTOML(s.Params, "siem", s.Name) }

// ParamsTOML returns the target's params table encoded as TOML, for the
// plugin's Configure call.
func (t Target) ParamsTOML() ([]byte, error) { return paramsTOML(t.Params, "target", t.Name) }

func paramsTOML(params map[string]any, kind, name string) ([]byte, error) {
	var buf bytes.Buffer
	if params == nil {
		params = map[string]any{}
	}
	if err := toml.NewEncoder(&buf).Encode(params); err != nil {
		return nil, fmt.Errorf("encoding params of %s %q: %w", kind, name, err)
	}
	return buf.Bytes(), nil
}

// String names the SIEM without its params, which may hold secrets.
func (s SIEM) String() string { return fmt.Sprintf("siem %q (plugin %s)", s.Name, s.Plugin) }

// GoString is String, so that %#v does not print the params either.
func (s SIEM) GoString() string { return s.String() }

// String names the target without its params, which may hold secrets.
func (t Target) String() string { return fmt.Sprintf("target %q (plugin %s)", t.Name, t.Plugin) }

// GoString is String, so that %#v does not print the params either.
func (t Target) GoString() string { return t.String() }
