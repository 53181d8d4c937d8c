// Package exec is vigil's built-in "exec" injector: it performs a test by
// running its command line on the local host through a POSIX shell.
//
// Every injection runs as
//
//	<shell> -c <command> <marker>
//
// so the run marker is the shell's $0: it shows in the shell's argv and in
// the ancestry of every process the command starts. The marker is also in
// the environment (VIGIL_MARKER) and in the path of the per-injection
// working directory, which the injector creates (0700, refusing one that
// already exists) under the configured tmp_root and Cleanup removes.
//
// The command runs in its own process group, with a minimal environment
// (PATH, HOME, LANG=C, TMPDIR, VIGIL_MARKER, VIGIL_WORKDIR, VIGIL_TEST_ID and
// the configured and per-test extras). On timeout or cancellation the whole
// group is sent SIGTERM, then SIGKILL after a grace period. Processes a
// command leaves running in the background are killed by Cleanup or Close.
package exec

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/plugins/injector/shellstep"
)

// Name is the injector's registered name.
const Name = "exec"

// Version is the injector's version, reported by Describe.
const Version = "0.1.0"

// Defaults and limits.
const (
	// DefaultTimeout bounds an injection or cleanup command when the request
	// sets no timeout.
	DefaultTimeout = 30 * time.Second
	// PrerequisiteTimeout bounds one prerequisite check command.
	PrerequisiteTimeout = 10 * time.Second
	// GetTimeout bounds one prerequisite get command (it may install
	// packages).
	GetTimeout = 2 * time.Minute
	// KillGrace is how long a process group has to exit after SIGTERM
	// before it is sent SIGKILL.
	KillGrace = 2 * time.Second
	// DefaultMaxOutput is the default cap, in bytes, of captured stdout and
	// of captured stderr.
	DefaultMaxOutput = 64 << 10
	// MaxMaxOutput is the largest max_output accepted: results travel over
	// gRPC, whose default message limit is 4 MiB.
	MaxMaxOutput = 1 << 20
	// DefaultShell runs commands unless the config or the test names
	// another.
	DefaultShell = "/bin/sh"
	// DefaultPath is the PATH of the commands' environment unless the
	// config's env sets one.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// ErrNoMarker means a request carried no run marker; the injector refuses to
// run anything it could not attribute.
var ErrNoMarker = errors.New("exec: request has no marker")

func init() {
	plugin.RegisterInjector(Name, func() plugin.Injector { return new(Injector) })
}

// Interface guards.
var _ plugin.Injector = (*Injector)(nil)

// Injector runs tests' commands on the local host. The zero value is ready
// to use with the default config; Configure replaces it. Its methods are
// safe for concurrent use.
type Injector struct {
	// startMu is held shared from a command's start until its process group
	// is tracked, and exclusively by Close while it collects the groups, so
	// that Close misses no command that has started.
	startMu sync.RWMutex
	mu      sync.Mutex
	cfg     *config
	// running holds the process groups of the commands being run.
	running map[int]string // pgid → marker ("" for prerequisites)
	// injected holds what Inject knew about each workdir, for Cleanup: the
	// shell, the env, and a process group left running.
	injected map[string]*injection
	// foreign holds workdirs Inject refused because they already existed:
	// Cleanup never removes them.
	foreign map[string]bool

	// geteuid is os.Geteuid; tests replace it.
	geteuid func() int
}

// injection is what Cleanup needs to know of an Inject.
type injection struct {
	marker string
	shell  string
	env    map[string]string
	// pgid is the process group the command left running, 0 if none.
	pgid int
}

// Describe says what the injector is.
func (x *Injector) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindInjector,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Runs the test's shell command on the local host, in its own process group, with the marker as the shell's $0.",
		Platforms:       []string{"linux", "macos"},
		Params:          shellstep.ParamSpecs(""),
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerEnvironment, plugin.MarkerFilePath},
		Capabilities:    []string{plugin.CapLocalHost},
	}, nil
}

// Configure decodes the target's params strictly (see Config) and replaces
// the injector's config.
func (x *Injector) Configure(ctx context.Context, b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cfg = c
	return nil
}

// Validate checks a test's inject and cleanup params without side effects.
// It never returns an error: every finding is a Problem.
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

// Close kills every process group still running: commands in flight and
// background processes left by injections that were not cleaned up.
func (x *Injector) Close(ctx context.Context) error {
	x.startMu.Lock()
	x.mu.Lock()
	var groups []groupRef
	for pgid, marker := range x.running {
		groups = append(groups, groupRef{pgid: pgid, marker: marker, inFlight: true})
	}
	for _, in := range x.injected {
		if in.pgid != 0 {
			groups = append(groups, groupRef{pgid: in.pgid, marker: in.marker})
		}
	}
	x.injected = nil
	x.mu.Unlock()
	x.startMu.Unlock()

	for _, g := range groups {
		g.terminate(ctx)
	}
	return nil
}

// config returns the injector's config, the default one if Configure was
// never called.
func (x *Injector) config() (*config, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cfg == nil {
		c, err := parseConfig(nil)
		if err != nil {
			return nil, err
		}
		x.cfg = c
	}
	return x.cfg, nil
}

func (x *Injector) euid() int {
	if x.geteuid != nil {
		return x.geteuid()
	}
	return os.Geteuid()
}

// track records a started process group; untrack forgets it.
func (x *Injector) track(pgid int, marker string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.running == nil {
		x.running = map[int]string{}
	}
	x.running[pgid] = marker
}

func (x *Injector) untrack(pgid int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.running, pgid)
}

// remember records an injection for Cleanup; take returns and forgets it.
// Fields of a remembered injection change only under x.mu.
func (x *Injector) remember(workdir string, in *injection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.injected == nil {
		x.injected = map[string]*injection{}
	}
	x.injected[workdir] = in
}

func (x *Injector) take(workdir string) (injection, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	in, ok := x.injected[workdir]
	if !ok {
		return injection{}, false
	}
	delete(x.injected, workdir)
	return *in, true
}

func (x *Injector) markForeign(workdir string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.foreign == nil {
		x.foreign = map[string]bool{}
	}
	x.foreign[workdir] = true
}

func (x *Injector) isForeign(workdir string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.foreign[workdir]
}

// groupRef is a process group to terminate.
type groupRef struct {
	pgid   int
	marker string
	// inFlight groups have a leader not yet reaped, so their ID cannot have
	// been reused; others are checked before being signalled.
	inFlight bool
}

// terminate sends the group SIGTERM, then SIGKILL after KillGrace (or as
// soon as ctx is done), unless it is gone or no longer ours.
func (g groupRef) terminate(ctx context.Context) {
	if !g.inFlight && !groupOwned(g.pgid, g.marker) {
		return
	}
	if err := signalGroup(g.pgid, syscall.SIGTERM); err != nil {
		return // already gone
	}
	if !waitGroupGone(ctx, g.pgid, KillGrace) {
		_ = signalGroup(g.pgid, syscall.SIGKILL)
	}
}
