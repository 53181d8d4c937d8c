package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/config/tomldoc"
)

// source remembers where a loaded config's values came from.
type source struct {
	doc      *tomldoc.Doc
	expanded map[string]bool // key paths whose value used ${VAR}
}

// hidden reports whether the value at path must not be shown: it came from
// the environment or sits under a secret-looking key.
func (s *source) hidden(path string) bool {
	return s.expanded[path] || secretPath(path)
}

func parse(path string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	doc, err := tomldoc.Parse(path, data)
	if err != nil {
		return nil, err
	}
	src := &source{doc: doc, expanded: map[string]bool{}}
	doc.Hide = src.hidden
	doc.MapStrings(func(p, v string) string {
		out, used, err := expand(v, lookup)
		if err != nil {
			doc.Errorf(p, "%v", err)
			return v
		}
		if used {
			src.expanded[p] = true
		}
		return out
	})

	c := &Config{
		Run:  Run{Concurrency: DefaultConcurrency, PollInterval: DefaultPollInterval, Timeout: DefaultTimeout},
		Path: path,
		src:  src,
	}
	r := doc.Root()
	if run := r.Table("run"); run != nil {
		decodeRun(run, &c.Run, filepath.Dir(path))
		run.Close()
	}
	for _, t := range r.Tables("siem") {
		c.SIEMs = append(c.SIEMs, decodeSIEM(t))
	}
	for _, t := range r.Tables("target") {
		c.Targets = append(c.Targets, decodeTarget(t, filepath.Dir(path)))
	}
	for _, t := range r.Tables("plugin") {
		c.Plugins = append(c.Plugins, PluginPin{Name: t.String("name"), SHA256: strings.ToLower(t.String("sha256"))})
		t.Close()
	}
	r.Close()
	if len(c.SIEMs) == 0 {
		c.SIEMs = []SIEM{defaultSIEM()}
	}
	if len(c.Targets) == 0 {
		c.Targets = []Target{defaultTarget()}
	}
	c.check(func(path, format string, args ...any) {
		// A value that failed to decode was reported already.
		if !doc.HasError(path) {
			doc.Errorf(path, format, args...)
		}
	})
	if err := doc.Err(); err != nil {
		return nil, err
	}
	c.inherit()
	return c, nil
}

func decodeRun(t *tomldoc.Table, run *Run, base string) {
	if n, ok := t.Int("concurrency"); ok {
		run.Concurrency = int(n)
	}
	if d, ok := t.Duration("poll_interval"); ok {
		run.PollInterval = d
	}
	if d, ok := t.Duration("timeout"); ok {
		run.Timeout = d
	}
	run.PluginDirs = decodeDirs(t, "plugin_dirs", base)
	run.CatalogDirs = decodeDirs(t, "catalog_dirs", base)
	if h := t.String("history"); h != "" {
		switch {
		case h == "~" || strings.HasPrefix(h, "~/"):
			if home, err := os.UserHomeDir(); err == nil {
				h = filepath.Join(home, strings.TrimPrefix(h, "~"))
			}
		case !filepath.IsAbs(h) && base != "":
			h = filepath.Join(base, h)
		}
		run.History = h
	}
}

// decodeDirs reads an array of directories, resolving "~/" and paths
// relative to the config file's directory.
func decodeDirs(t *tomldoc.Table, key, base string) []string {
	dirs := t.Strings(key)
	for i, d := range dirs {
		switch {
		case strings.TrimSpace(d) == "":
			t.Doc().Errorf(tomldoc.Index(t.PathOf(key), i), "must not be empty")
		case d == "~" || strings.HasPrefix(d, "~/"):
			home, err := os.UserHomeDir()
			if err != nil {
				t.Doc().Errorf(tomldoc.Index(t.PathOf(key), i), "expanding ~: %v", err)
				continue
			}
			dirs[i] = filepath.Join(home, strings.TrimPrefix(d, "~"))
		case !filepath.IsAbs(d):
			dirs[i] = filepath.Join(base, d)
		}
	}
	return dirs
}

func decodeSIEM(t *tomldoc.Table) SIEM {
	s := SIEM{
		Name:   t.String("name"),
		Plugin: t.String("plugin"),
		Params: decodeParams(t),
	}
	s.PollInterval = positiveDuration(t, "poll_interval")
	s.Timeout = positiveDuration(t, "timeout")
	s.ClockSlack = DefaultClockSlack
	if d, ok := t.Duration("clock_slack"); ok {
		if d < 0 {
			t.Errorf("clock_slack", "%s is out of range (want 0 or more)", d)
		}
		s.ClockSlack = max(d, 0)
	}
	t.Close()
	return s
}

func decodeTarget(t *tomldoc.Table, base string) Target {
	tg := Target{
		Name:   t.String("name"),
		Plugin: t.String("plugin"),
		Params: decodeParams(t),
		Runs:   t.Strings("runs"),
	}
	tg.Hosts, tg.Inventory = decodeHosts(t, base)
	t.Close()
	return tg
}

// positiveDuration reads an optional override: absent is 0, set must be > 0.
func positiveDuration(t *tomldoc.Table, key string) time.Duration {
	d, ok := t.Duration(key)
	if ok && d <= 0 {
		t.Errorf(key, "%s is out of range (want more than 0, or leave it out to use [run]'s)", d)
		return 0
	}
	return d
}

func decodeParams(t *tomldoc.Table) map[string]any {
	raw, ok := t.Any("params")
	if !ok {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		t.Errorf("params", "want a table, got %s", tomldoc.TypeName(raw))
		return nil
	}
	return m
}
