package exec

import (
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Config is the target's params table for the exec injector, for example
//
//	[[target]]
//	name = "localhost"
//	injector = "exec"
//	[target.params]
//	tmp_root = "/var/tmp/vigil"
//	shell = "/bin/bash"
//	max_output = 131072
//	[target.params.env]
//	http_proxy = "http://proxy:3128"
//
// Unknown keys are errors.
type Config struct {
	// TmpRoot is the directory under which every workdir must lie (default
	// os.TempDir()). It must exist.
	TmpRoot string `toml:"tmp_root"`
	// Shell is the absolute path of the default shell (default /bin/sh).
	Shell string `toml:"shell"`
	// Env is added to every command's environment; a test's env param
	// overrides it. It may set PATH; it may not set VIGIL_* variables.
	Env map[string]string `toml:"env"`
	// MaxOutput caps captured stdout and, separately, stderr, in bytes
	// (default 64 KiB, at most 1 MiB).
	MaxOutput int `toml:"max_output"`
}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	// realTmpRoot is TmpRoot with symlinks resolved.
	realTmpRoot string
	home        string
}

// parseConfig decodes b strictly, fills in the defaults, then checks the
// result. Empty b is the default config.
func parseConfig(b []byte) (*config, error) {
	var c Config
	if err := plugin.DecodeConfig("exec", b, &c); err != nil {
		return nil, err
	}
	c.setDefaults()
	real, err := c.validate()
	if err != nil {
		return nil, fmt.Errorf("exec: config: %w", err)
	}
	return &config{Config: c, realTmpRoot: real, home: homeDir()}, nil
}

// setDefaults fills in what the config leaves out.
func (c *Config) setDefaults() {
	if c.TmpRoot == "" {
		c.TmpRoot = os.TempDir()
	}
	if filepath.IsAbs(c.TmpRoot) {
		c.TmpRoot = filepath.Clean(c.TmpRoot)
	}
	if c.Shell == "" {
		c.Shell = DefaultShell
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = DefaultMaxOutput
	}
}

// validate checks a config with its defaults and returns tmp_root with
// symlinks resolved.
func (c Config) validate() (realTmpRoot string, err error) {
	if !filepath.IsAbs(c.TmpRoot) {
		return "", fmt.Errorf("tmp_root %q is not an absolute path", c.TmpRoot)
	}
	real, err := filepath.EvalSymlinks(c.TmpRoot)
	if err != nil {
		return "", fmt.Errorf("tmp_root: %w", err)
	}
	if fi, err := os.Stat(real); err != nil {
		return "", fmt.Errorf("tmp_root: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("tmp_root %s is not a directory", c.TmpRoot)
	}
	if err := checkShell(c.Shell); err != nil {
		return "", fmt.Errorf("shell: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if err := shellstep.CheckEnv(k, c.Env[k]); err != nil {
			return "", fmt.Errorf("env: %w", err)
		}
	}
	if c.MaxOutput < 0 || c.MaxOutput > MaxMaxOutput {
		return "", fmt.Errorf("max_output %d out of range (1..%d)", c.MaxOutput, MaxMaxOutput)
	}
	return real, nil
}

// checkShell says why path cannot be used as a shell.
func checkShell(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// homeDir is the HOME of the commands: the injector's own.
func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return "/"
}
