package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/vigilsec/vigil/core/config/tomldoc"
)

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks a config: positive concurrency and durations, SIEMs and
// targets with a valid unique name and a plugin, pins with a unique name and
// a SHA-256. Load and Parse already call it; use it on configs built in
// code. Problems of a loaded config carry its file and line.
func (c *Config) Validate() error {
	var errs []*tomldoc.Error
	c.check(func(path, format string, args ...any) {
		e := &tomldoc.Error{Msg: path + ": " + fmt.Sprintf(format, args...)}
		if c.src != nil {
			e.File, e.Line = c.src.doc.File, c.src.doc.Line(path)
		}
		errs = append(errs, e)
	})
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

// check reports each problem at the key path it concerns.
func (c *Config) check(errorf func(path, format string, args ...any)) {
	if c.Run.Concurrency < 1 {
		errorf("run.concurrency", "%d is out of range (want 1 or more)", c.Run.Concurrency)
	}
	if c.Run.PollInterval <= 0 {
		errorf("run.poll_interval", "%s is out of range (want more than 0)", c.Run.PollInterval)
	}
	if c.Run.Timeout <= 0 {
		errorf("run.timeout", "%s is out of range (want more than 0)", c.Run.Timeout)
	}

	names := map[string]int{}
	for i, s := range c.SIEMs {
		p := tomldoc.Index("siem", i)
		c.checkName(errorf, "siem", i, "SIEM", s.Name, names)
		if s.Plugin == "" {
			errorf(tomldoc.Join(p, "plugin"), "missing required key (a built-in SIEM plugin such as \"local\", or an external plugin)")
		}
		if s.PollInterval < 0 {
			errorf(tomldoc.Join(p, "poll_interval"), "%s is out of range (want more than 0)", s.PollInterval)
		}
		if s.Timeout < 0 {
			errorf(tomldoc.Join(p, "timeout"), "%s is out of range (want more than 0)", s.Timeout)
		}
	}
	names = map[string]int{}
	for i, t := range c.Targets {
		p := tomldoc.Index("target", i)
		c.checkName(errorf, "target", i, "target", t.Name, names)
		if t.Plugin == "" {
			errorf(tomldoc.Join(p, "plugin"), "missing required key (a built-in injector plugin such as \"exec\", or an external plugin)")
		}
		for k, r := range t.Runs {
			if !nameRE.MatchString(r) {
				errorf(tomldoc.Index(tomldoc.Join(p, "runs"), k), "invalid injector name %s (want the name of an injector whose tests this target runs, such as \"exec\")", c.quote(tomldoc.Index(tomldoc.Join(p, "runs"), k), r))
			}
		}
	}
	names = map[string]int{}
	for i, pin := range c.Plugins {
		p := tomldoc.Index("plugin", i)
		if pin.Name == "" {
			errorf(tomldoc.Join(p, "name"), "missing required key (the plugin's executable name)")
		} else if first, dup := names[pin.Name]; dup {
			errorf(tomldoc.Join(p, "name"), "duplicate plugin pin %s (first at %s)", c.quote(tomldoc.Join(p, "name"), pin.Name), c.where(tomldoc.Index("plugin", first)))
		} else {
			names[pin.Name] = i
		}
		if !sha256RE.MatchString(pin.SHA256) {
			errorf(tomldoc.Join(p, "sha256"), "want the executable's SHA-256 as 64 hex digits (sha256sum), got %d characters", len(pin.SHA256))
		}
	}
}

// checkName checks the name of element i of the array of tables array.
func (c *Config) checkName(errorf func(path, format string, args ...any), array string, i int, kind, name string, seen map[string]int) {
	p := tomldoc.Join(tomldoc.Index(array, i), "name")
	switch first, dup := seen[name]; {
	case name == "":
		errorf(p, "missing required key (every %s needs a unique name)", kind)
	case !nameRE.MatchString(name):
		errorf(p, "invalid %s name %s (want letters, digits, '.', '_' and '-', starting with a letter or digit)", kind, c.quote(p, name))
	case dup:
		errorf(p, "duplicate %s name %s (first at %s)", kind, c.quote(p, name), c.where(tomldoc.Index(array, first)))
	default:
		seen[name] = i
	}
}

// quote quotes a value for a message, unless it is a secret or came from the
// environment.
func (c *Config) quote(path, value string) string {
	if c.src != nil {
		return c.src.doc.Quote(path, value)
	}
	if secretPath(path) {
		return "(value hidden)"
	}
	return fmt.Sprintf("%q", value)
}

// where names the place of a key path for messages: "line 12" in a loaded
// config, the key path otherwise.
func (c *Config) where(path string) string {
	if c.src != nil && c.src.doc.Has(path) {
		return fmt.Sprintf("line %d", c.src.doc.Line(path))
	}
	return path
}
