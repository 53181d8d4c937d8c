package local

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Modes of the local SIEM (Config.Mode).
const (
	// ModeLive starts the kernel audit sensor: needs root and the kernel
	// audit subsystem.
	ModeLive = "live"
	// ModeReplay starts no sensor: the SIEM only sees the events it is
	// given through Ingest (vigil run --replay). Needs no privilege.
	ModeReplay = "replay"
)

// Values of Config.Rules.
const (
	// RulesBuiltin loads vigil's own rules shipped in the binary
	// (rules/sigma/linux and rules/sigma/kubernetes). It is the default.
	RulesBuiltin = "builtin"
	// RulesNone loads none of vigil's own rules.
	RulesNone = "none"
)

// Defaults and limits of Config.
const (
	DefaultRetention = time.Hour
	DefaultMaxEvents = 200_000
	// MaxMaxEvents bounds max_events (each stored event costs about 1 KiB).
	MaxMaxEvents = 10_000_000
)

// Config is the local SIEM's [siem.params] table, for example
//
//	[[siem]]
//	name = "local"
//	plugin = "local"
//	[siem.params]
//	mode = "live"
//	sigma_dirs = ["/etc/vigil/sigma"]
//	sigmahq = true
//	retention = "1h"
//	max_events = 200000
//	record = "/var/tmp/vigil/record.jsonl"
//
// Every key is optional. Unknown keys are errors.
type Config struct {
	// Mode is ModeLive (default) or ModeReplay.
	Mode string `toml:"mode"`
	// Rules selects vigil's own rules: RulesBuiltin (default, also ""),
	// RulesNone, or a directory whose .yml/.yaml files replace the built-in
	// ones (for rule authors). Every file of vigil's own rules must load: a
	// problem is a Configure error naming the file and the reason.
	Rules string `toml:"rules"`
	// SigmaHQ also loads the shipped SigmaHQ Linux rules (default true).
	// Files that cannot be loaded are skipped (see LoadProblems).
	SigmaHQ *bool `toml:"sigmahq"`
	// SigmaDirs are extra directories of Sigma rules loaded as well, absolute
	// or relative to the working directory. Files that cannot be loaded are
	// skipped (see LoadProblems).
	SigmaDirs []string `toml:"sigma_dirs"`
	// Retention is how long signals and raw events are kept (default 1h).
	Retention time.Duration `toml:"retention"`
	// MaxEvents bounds the ring of raw events kept for SearchRawEvents and
	// native queries (default 200000). Signals are bounded by it too.
	MaxEvents int `toml:"max_events"`
	// Record, when set, is a file every normalised event is appended to as
	// one JSON line (event.Event), for `vigil record`.
	Record string `toml:"record"`
}

// knownKeys are the keys of Config, for error messages.
const knownKeys = "max_events, mode, record, retention, rules, sigma_dirs, sigmahq"

// parseConfig decodes b strictly and fills in the defaults. Empty b is the
// default config.
func parseConfig(b []byte) (Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&c)
	if err != nil {
		return c, fmt.Errorf("local: decode config: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		keys := make([]string, len(u))
		for i, k := range u {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("local: config: unknown keys %s (known: %s)", strings.Join(keys, ", "), knownKeys)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeLive
	case ModeLive, ModeReplay:
	default:
		return c, fmt.Errorf("local: config: mode %q: want %q or %q", c.Mode, ModeLive, ModeReplay)
	}
	if c.Rules == "" {
		c.Rules = RulesBuiltin
	}
	if c.SigmaHQ == nil {
		t := true
		c.SigmaHQ = &t
	}
	for i, d := range c.SigmaDirs {
		if strings.TrimSpace(d) == "" {
			return c, fmt.Errorf("local: config: sigma_dirs[%d] is empty", i)
		}
	}
	switch {
	case c.Retention == 0:
		c.Retention = DefaultRetention
	case c.Retention < time.Second:
		return c, fmt.Errorf("local: config: retention %s is below 1s", c.Retention)
	}
	switch {
	case c.MaxEvents == 0:
		c.MaxEvents = DefaultMaxEvents
	case c.MaxEvents < 0 || c.MaxEvents > MaxMaxEvents:
		return c, fmt.Errorf("local: config: max_events %d out of range (1..%d)", c.MaxEvents, MaxMaxEvents)
	}
	if c.Record != "" {
		c.Record = filepath.Clean(c.Record)
	}
	return c, nil
}
