package ssh

import (
	"fmt"
	"maps"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Config is the target's params table for the ssh injector. The hosts are
// the target's own hosts and inventory keys, not params. For example
//
//	[[target]]
//	name = "web"
//	plugin = "ssh"
//	runs = ["exec"]              # run the catalog's exec tests over ssh
//	inventory = "fleet.txt"      # one host or host:port per line
//	[target.params]
//	user = "vigil"
//	identity_file = "~/.ssh/vigil_ed25519"
//	passphrase = "${VIGIL_SSH_PASSPHRASE}"
//	known_hosts = "~/.ssh/known_hosts"
//	max_sessions_per_host = 4
//	sudo = true
//
// Unknown keys are errors.
type Config struct {
	// User is the login user (default: the user running vigil).
	User string `toml:"user"`
	// Port is the SSH port of hosts given without one (default 22).
	Port int `toml:"port"`
	// IdentityFile is a private key file (OpenSSH or PEM format).
	IdentityFile string `toml:"identity_file"`
	// Passphrase decrypts IdentityFile; give it as "${VAR}", never
	// literally. It never appears in errors.
	Passphrase plugin.Secret `toml:"passphrase"`
	// Agent authenticates with the keys of the ssh-agent at AgentSocket
	// (default $SSH_AUTH_SOCK).
	Agent       bool   `toml:"agent"`
	AgentSocket string `toml:"agent_socket"`
	// KnownHosts are the known_hosts files host keys are checked against
	// (default ~/.ssh/known_hosts). A host that is missing or whose key
	// differs is refused.
	KnownHosts []string `toml:"known_hosts"`
	// InsecureIgnoreHostKey accepts any host key: anyone on the path can
	// then impersonate the hosts. Only for throwaway labs; vigil warns.
	InsecureIgnoreHostKey bool `toml:"insecure_ignore_host_key"`
	// ConnectTimeout bounds the TCP connection and the SSH handshake
	// (default 10s).
	ConnectTimeout string `toml:"connect_timeout"`
	// MaxSessionsPerHost bounds the sessions open at once on one host
	// (default 4; OpenSSH's MaxSessions is 10 per connection).
	MaxSessionsPerHost int `toml:"max_sessions_per_host"`
	// Sudo runs the commands of tests that need elevation through
	// `sudo -n` when the user is not root (passwordless sudo needed).
	Sudo bool `toml:"sudo"`
	// TmpRoot is the directory on the hosts under which every workdir lies
	// (default /tmp). It must be an absolute path.
	TmpRoot string `toml:"tmp_root"`
	// Shell is the absolute path of the shell on the hosts (default /bin/sh).
	Shell string `toml:"shell"`
	// Env is added to every command's environment, as with exec.
	Env map[string]string `toml:"env"`
	// MaxOutput caps captured stdout and, separately, stderr, in bytes
	// (default 64 KiB, at most 1 MiB).
	MaxOutput int `toml:"max_output"`
}

// config is a Config checked and completed with defaults.
type config struct {
	Config
	connectTimeout time.Duration
}

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$`)

// parseConfig decodes b strictly and fills in defaults. It reads no file:
// keys and known_hosts are loaded by newAuth and newHostKeys.
func parseConfig(b []byte) (*config, error) {
	var c Config
	if err := plugin.DecodeConfig("ssh", b, &c); err != nil {
		return nil, err
	}
	c.setDefaults()
	connectTimeout, err := c.validate()
	if err != nil {
		return nil, fmt.Errorf("ssh: config: %w", err)
	}
	return &config{Config: c, connectTimeout: connectTimeout}, nil
}

// setDefaults fills in what the config leaves out and expands ~/ in paths.
func (c *Config) setDefaults() {
	if c.User == "" {
		c.User = currentUser()
	}
	if c.Port == 0 {
		c.Port = 22
	}
	if c.IdentityFile != "" {
		c.IdentityFile = expandHome(c.IdentityFile)
	}
	if c.Agent && c.AgentSocket == "" {
		c.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if !c.InsecureIgnoreHostKey && len(c.KnownHosts) == 0 {
		c.KnownHosts = []string{"~/.ssh/known_hosts"}
	}
	for i, f := range c.KnownHosts {
		c.KnownHosts[i] = expandHome(f)
	}
	if c.MaxSessionsPerHost == 0 {
		c.MaxSessionsPerHost = DefaultMaxSessionsPerHost
	}
	if c.TmpRoot == "" {
		c.TmpRoot = DefaultTmpRoot
	}
	if path.IsAbs(c.TmpRoot) {
		c.TmpRoot = path.Clean(c.TmpRoot)
	}
	if c.Shell == "" {
		c.Shell = DefaultShell
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = DefaultMaxOutput
	}
}

// validate checks a config with its defaults and returns its connect
// timeout.
func (c Config) validate() (connectTimeout time.Duration, err error) {
	if !userNameRE.MatchString(c.User) {
		return 0, fmt.Errorf("user %q is not a valid user name", c.User)
	}
	if c.Port < 1 || c.Port > 65535 {
		return 0, fmt.Errorf("port %d out of range (1..65535)", c.Port)
	}
	if c.Passphrase != "" && c.IdentityFile == "" {
		return 0, fmt.Errorf("passphrase is set but identity_file is not")
	}
	if c.AgentSocket != "" && !c.Agent {
		return 0, fmt.Errorf("agent_socket is set but agent is not true")
	}
	if c.Agent && c.AgentSocket == "" {
		return 0, fmt.Errorf("agent = true but SSH_AUTH_SOCK is not set (start ssh-agent, or set agent_socket)")
	}
	if c.IdentityFile == "" && !c.Agent {
		return 0, fmt.Errorf("no authentication: set identity_file (a private key) or agent = true (ssh-agent)")
	}
	if c.InsecureIgnoreHostKey && len(c.KnownHosts) > 0 {
		return 0, fmt.Errorf("known_hosts and insecure_ignore_host_key are both set; choose one")
	}
	connectTimeout = 10 * time.Second
	if c.ConnectTimeout != "" {
		d, err := time.ParseDuration(c.ConnectTimeout)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("connect_timeout %q: want a positive Go duration such as \"10s\"", c.ConnectTimeout)
		}
		connectTimeout = d
	}
	if c.MaxSessionsPerHost < 0 || c.MaxSessionsPerHost > 64 {
		return 0, fmt.Errorf("max_sessions_per_host %d out of range (1..64)", c.MaxSessionsPerHost)
	}
	if !path.IsAbs(c.TmpRoot) || strings.ContainsAny(c.TmpRoot, "\x00\n") {
		return 0, fmt.Errorf("tmp_root %q is not an absolute path", c.TmpRoot)
	}
	if err := checkShell(c.Shell); err != nil {
		return 0, fmt.Errorf("shell: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if err := shellstep.CheckEnv(k, c.Env[k]); err != nil {
			return 0, fmt.Errorf("env: %w", err)
		}
	}
	if c.MaxOutput < 0 || c.MaxOutput > MaxMaxOutput {
		return 0, fmt.Errorf("max_output %d out of range (1..%d)", c.MaxOutput, MaxMaxOutput)
	}
	return connectTimeout, nil
}

// checkShell says why p cannot be a shell path on the hosts.
func checkShell(p string) error {
	if !path.IsAbs(p) || strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// expandHome replaces a leading "~/" with the home directory.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}
