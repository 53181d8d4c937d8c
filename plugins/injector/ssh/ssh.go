// Package ssh is vigil's built-in "ssh" injector: it performs a test by
// running its command line on remote hosts over SSH
// (golang.org/x/crypto/ssh), the way the exec injector runs it locally.
//
// The target names the hosts (its hosts array and inventory file); the
// engine sends each request with one of them, and the injector keeps one
// connection per host and at most max_sessions_per_host sessions on it. On
// the host every injection runs, through the login shell (POSIX), as
//
//	cd <workdir> && env -i <env> <shell> -c <command> <marker>
//
// so the run marker is the shell's $0, it is in the environment
// (VIGIL_MARKER) and in the path of the per-injection working directory,
// which the injector creates on the host (0700, refusing one that already
// exists) under tmp_root and Cleanup removes there. The params are exec's
// (command, shell, env, expect_exit, ignore_exit, stdin; cleanup command;
// package shellstep parses them for both), so a target with
// runs = ["exec"] runs the catalog's Linux tests remotely.
//
// Host keys are checked against known_hosts unless
// insecure_ignore_host_key is set. Authentication is by private key (an
// encrypted one with its passphrase) and/or ssh-agent. Tests that need
// elevation run through `sudo -n` when sudo = true and the user is not
// root. On timeout or cancellation the command's remote process group is
// sent SIGTERM, then SIGKILL. Secrets (passphrase, keys) never appear in
// errors or results.
package ssh

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Name is the injector's registered name.
const Name = "ssh"

// Version is the injector's version, reported by Describe.
const Version = "0.1.0"

// Defaults and limits.
const (
	// DefaultTimeout bounds an injection or cleanup command when the
	// request sets no timeout.
	DefaultTimeout = 30 * time.Second
	// PrerequisiteTimeout bounds one prerequisite check command.
	PrerequisiteTimeout = 10 * time.Second
	// GetTimeout bounds one prerequisite get command.
	GetTimeout = 2 * time.Minute
	// HelperTimeout bounds the injector's own short commands (probe,
	// workdir creation and removal).
	HelperTimeout = 30 * time.Second
	// KillGrace is how long a remote process group has to exit after
	// SIGTERM before it is sent SIGKILL.
	KillGrace = 2 * time.Second
	// DefaultMaxSessionsPerHost is the default max_sessions_per_host.
	DefaultMaxSessionsPerHost = 4
	// DefaultMaxOutput is the default cap of captured stdout and stderr.
	DefaultMaxOutput = 64 << 10
	// MaxMaxOutput is the largest max_output accepted.
	MaxMaxOutput = 1 << 20
	// DefaultShell runs commands unless the config or the test names
	// another.
	DefaultShell = "/bin/sh"
	// DefaultTmpRoot is where workdirs go on the hosts.
	DefaultTmpRoot = "/tmp"
	// DefaultPath is the commands' PATH unless the config's env sets one.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// ErrNoMarker means a request carried no run marker.
var ErrNoMarker = errors.New("ssh: request has no marker")

// ErrNotConfigured means a call came before Configure: unlike exec, the
// ssh injector has no usable default (it needs credentials).
var ErrNotConfigured = errors.New("ssh: not configured")

func init() {
	plugin.RegisterInjector(Name, func() plugin.Injector { return new(Injector) })
}

// Interface guards.
var _ plugin.Injector = (*Injector)(nil)

// Injector runs tests' commands on remote hosts. Configure must be called
// first. Its methods are safe for concurrent use.
type Injector struct {
	mu    sync.Mutex
	cfg   *config
	authv *auth
	// hosts are the connections, by host:port.
	hosts map[string]*hostConn
	// elevated holds the (host, marker) pairs whose test needs elevation
	// and gets it through sudo (set by CheckPrerequisites).
	elevated map[string]bool
	// injected holds what Inject knew of each (host, workdir), for Cleanup.
	injected map[string]*injection
	// foreign holds the (host, workdir) pairs Inject refused because they
	// already existed: Cleanup never removes them.
	foreign map[string]bool
}

// injection is what Cleanup needs to know of an Inject.
type injection struct {
	marker string
	shell  string
	env    map[string]string
	sudo   bool
	// pgid is the remote process group left running, 0 if none.
	pgid int
}

// Describe says what the injector is.
func (x *Injector) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindInjector,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Runs the test's shell command on the target's remote hosts over SSH, with the marker as the shell's $0 (exec's params; give the target runs = [\"exec\"]).",
		Platforms:       []string{"linux"},
		Params:          shellstep.ParamSpecs("on the host"),
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerEnvironment, plugin.MarkerFilePath},
	}, nil
}

// Configure decodes the target's params strictly (see Config), reads the
// identity file and known_hosts, and replaces the injector's config. It
// does not connect: hosts are reached when a request names them.
func (x *Injector) Configure(ctx context.Context, b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	a, err := loadAuth(c)
	if err != nil {
		return err
	}
	x.mu.Lock()
	old := x.hosts
	x.cfg, x.authv, x.hosts = c, a, nil
	x.mu.Unlock()
	for _, hc := range old {
		hc.close()
	}
	return nil
}

// Validate checks a test's inject and cleanup params without side effects.
func (x *Injector) Validate(ctx context.Context, req plugin.ValidateRequest) ([]plugin.Problem, error) {
	c, err := x.config()
	if err != nil {
		return nil, err
	}
	_, probs := shellstep.ParseInject(req.Params, c.Shell, checkShell)
	_, cprobs := shellstep.ParseCleanup(req.CleanupParams)
	for _, p := range cprobs {
		p.Subject = "cleanup." + p.Subject
		probs = append(probs, p)
	}
	return probs, nil
}

// Close kills the remote process groups that injections left running and
// were not cleaned up, then closes every connection.
func (x *Injector) Close(ctx context.Context) error {
	x.mu.Lock()
	left := x.injected
	x.injected = nil
	x.mu.Unlock()
	for k, in := range left {
		if in.pgid == 0 {
			continue
		}
		host, _ := splitKey(k)
		if hc, err := x.conn(host); err == nil {
			x.killOwnedGroup(ctx, hc, in.pgid, in.marker, in.sudo)
		}
	}
	x.mu.Lock()
	hosts := x.hosts
	x.hosts = nil
	x.mu.Unlock()
	for _, hc := range hosts {
		hc.close()
	}
	return nil
}

func (hc *hostConn) close() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.client != nil {
		hc.client.Close()
		hc.client = nil
	}
}

func (x *Injector) config() (*config, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cfg == nil {
		return nil, ErrNotConfigured
	}
	return x.cfg, nil
}

func (x *Injector) authn() (*auth, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.authv == nil {
		return nil, ErrNotConfigured
	}
	return x.authv, nil
}

// key joins a host and a marker or workdir for the injector's maps.
func key(host, s string) string { return host + "\x00" + s }

func splitKey(k string) (host, s string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func (x *Injector) setElevated(host, marker string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.elevated == nil {
		x.elevated = map[string]bool{}
	}
	x.elevated[key(host, marker)] = true
}

func (x *Injector) isElevated(host, marker string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.elevated[key(host, marker)]
}

func (x *Injector) remember(host, workdir string, in *injection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.injected == nil {
		x.injected = map[string]*injection{}
	}
	x.injected[key(host, workdir)] = in
}

func (x *Injector) take(host, workdir string) (injection, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	in, ok := x.injected[key(host, workdir)]
	if !ok {
		return injection{}, false
	}
	delete(x.injected, key(host, workdir))
	return *in, true
}

func (x *Injector) markForeign(host, workdir string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.foreign == nil {
		x.foreign = map[string]bool{}
	}
	x.foreign[key(host, workdir)] = true
}

func (x *Injector) isForeign(host, workdir string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.foreign[key(host, workdir)]
}
