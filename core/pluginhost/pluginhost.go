// Package pluginhost launches plugins as go-plugin processes. Built-in
// plugins are served by the vigil binary itself (`vigil plugin serve KIND
// NAME`, found through os.Executable), so they take exactly the same
// go-plugin client path as third-party plugins, which are executables named
// vigil-plugin-<kind>-<name> in ~/.vigil/plugins or a --plugin-dir, pinned by
// SHA-256 (go-plugin's SecureConfig).
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigilsec/vigil/core/plugin"
)

// Errors of plugin resolution.
var (
	// ErrUnpinned means an external plugin has no sha256 pin in the config
	// and --allow-unpinned was not given.
	ErrUnpinned = errors.New("external plugin is not pinned by sha256 (add a [[plugin]] pin to vigil.toml, or pass --allow-unpinned)")
	// ErrNotFound means no built-in and no executable has the name.
	ErrNotFound = errors.New("no such plugin")
)

// Options configure a Host.
type Options struct {
	// Self is the executable that serves the built-ins; default
	// os.Executable().
	Self string
	// Dirs are searched for external plugins, in order.
	Dirs []string
	// Pins map an external plugin's executable name to its hex SHA-256.
	Pins map[string]string
	// AllowUnpinned lets external plugins without a pin run.
	AllowUnpinned bool
	// Logger receives the plugins' logs (default: errors only, to stderr).
	Logger hclog.Logger
	// Stderr receives what plugins write to stderr outside their logger.
	Stderr io.Writer
}

// DefaultDirs returns ~/.vigil/plugins (if the home directory is known)
// followed by extra.
func DefaultDirs(extra ...string) []string {
	var dirs []string
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".vigil", "plugins"))
	}
	return append(dirs, extra...)
}

// Host starts plugin processes and stops them all on Close.
type Host struct {
	opts    Options
	mu      sync.Mutex
	clients []*goplugin.Client
}

// New returns a Host; it starts nothing yet.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Error, Output: os.Stderr})
	}
	return &Host{opts: opts}
}

// Source says where a plugin comes from.
type Source struct {
	Kind, Name string
	Builtin    bool
	Path       string // the executable
	SHA256     string // pinned checksum (external plugins)
}

// String describes the source for logs and errors.
func (s Source) String() string {
	if s.Builtin {
		return fmt.Sprintf("built-in %s %q", s.Kind, s.Name)
	}
	return fmt.Sprintf("external %s %q (%s)", s.Kind, s.Name, s.Path)
}

// ExecutableName is the file name of an external plugin.
func ExecutableName(kind, name string) string { return "vigil-plugin-" + kind + "-" + name }

// Resolve finds a plugin: a registered built-in first, then an executable
// in the plugin dirs.
func (h *Host) Resolve(kind, name string) (Source, error) {
	if !plugin.ValidName(name) {
		return Source{}, fmt.Errorf("%s plugin %q: invalid name", kind, name)
	}
	builtin := false
	switch kind {
	case plugin.KindSIEM:
		_, builtin = plugin.LookupSIEM(name)
	case plugin.KindInjector:
		_, builtin = plugin.LookupInjector(name)
	default:
		return Source{}, fmt.Errorf("unknown plugin kind %q", kind)
	}
	if builtin {
		self := h.opts.Self
		if self == "" {
			var err error
			if self, err = os.Executable(); err != nil {
				return Source{}, fmt.Errorf("%s plugin %q: find the vigil executable: %w", kind, name, err)
			}
		}
		return Source{Kind: kind, Name: name, Builtin: true, Path: self}, nil
	}
	exe := ExecutableName(kind, name)
	for _, dir := range h.opts.Dirs {
		p := filepath.Join(dir, exe)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return Source{Kind: kind, Name: name, Path: p, SHA256: strings.ToLower(h.opts.Pins[exe])}, nil
		}
	}
	var known []string
	switch kind {
	case plugin.KindSIEM:
		known = plugin.Builtins(plugin.KindSIEM)
	case plugin.KindInjector:
		known = plugin.Builtins(plugin.KindInjector)
	}
	return Source{}, fmt.Errorf("%s plugin %q: %w: not built in (built-ins: %s) and no %s in %s",
		kind, name, ErrNotFound, strings.Join(known, ", "), exe, strings.Join(h.opts.Dirs, ", "))
}

// start launches the plugin process and dispenses the kind's interface.
func (h *Host) start(ctx context.Context, src Source) (any, *goplugin.Client, error) {
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.VersionedPlugins(),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Managed:          true,
		Logger:           h.opts.Logger.Named(src.Kind + "." + src.Name),
		SyncStderr:       h.opts.Stderr,
	}
	if src.Builtin {
		cfg.Cmd = exec.Command(src.Path, "plugin", "serve", src.Kind, src.Name)
	} else {
		if src.SHA256 == "" && !h.opts.AllowUnpinned {
			return nil, nil, fmt.Errorf("%s: %w", src, ErrUnpinned)
		}
		if src.SHA256 != "" {
			sum, err := hex.DecodeString(src.SHA256)
			if err != nil || len(sum) != sha256.Size {
				return nil, nil, fmt.Errorf("%s: pinned sha256 %q is not 64 hex digits", src, src.SHA256)
			}
			cfg.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		}
		cfg.Cmd = exec.Command(src.Path)
	}
	cfg.Cmd.Env = append(os.Environ(), "VIGIL_PLUGIN_KIND="+src.Kind, "VIGIL_PLUGIN_NAME="+src.Name)
	client := goplugin.NewClient(cfg)
	h.mu.Lock()
	h.clients = append(h.clients, client)
	h.mu.Unlock()

	type dispensed struct {
		raw any
		err error
	}
	ch := make(chan dispensed, 1)
	go func() {
		rpc, err := client.Client()
		if err != nil {
			ch <- dispensed{nil, err}
			return
		}
		raw, err := rpc.Dispense(src.Kind)
		ch <- dispensed{raw, err}
	}()
	select {
	case <-ctx.Done():
		client.Kill()
		return nil, nil, fmt.Errorf("start %s: %w", src, ctx.Err())
	case d := <-ch:
		if d.err != nil {
			client.Kill()
			if errors.Is(d.err, goplugin.ErrChecksumsDoNotMatch) {
				return nil, nil, fmt.Errorf("start %s: the executable's sha256 does not match the pin: %w", src, d.err)
			}
			return nil, nil, fmt.Errorf("start %s: %w", src, d.err)
		}
		return d.raw, client, nil
	}
}

// SIEM starts SIEM plugin name and returns its client.
func (h *Host) SIEM(ctx context.Context, name string) (plugin.SIEM, Source, error) {
	src, err := h.Resolve(plugin.KindSIEM, name)
	if err != nil {
		return nil, src, err
	}
	raw, _, err := h.start(ctx, src)
	if err != nil {
		return nil, src, err
	}
	s, ok := raw.(plugin.SIEM)
	if !ok {
		return nil, src, fmt.Errorf("%s: does not serve the siem protocol", src)
	}
	return s, src, nil
}

// Injector starts injector plugin name and returns its client.
func (h *Host) Injector(ctx context.Context, name string) (plugin.Injector, Source, error) {
	src, err := h.Resolve(plugin.KindInjector, name)
	if err != nil {
		return nil, src, err
	}
	raw, _, err := h.start(ctx, src)
	if err != nil {
		return nil, src, err
	}
	inj, ok := raw.(plugin.Injector)
	if !ok {
		return nil, src, fmt.Errorf("%s: does not serve the injector protocol", src)
	}
	return inj, src, nil
}

// Close stops every plugin process this host started.
func (h *Host) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.clients {
		c.Kill()
	}
	h.clients = nil
}

// Discover lists the external plugin executables in the plugin dirs.
func (h *Host) Discover() []Source {
	var out []Source
	seen := map[string]bool{}
	for _, dir := range h.opts.Dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), "vigil-plugin-")
			if !ok || seen[e.Name()] {
				continue
			}
			kind, name, ok := strings.Cut(rest, "-")
			if !ok || (kind != plugin.KindSIEM && kind != plugin.KindInjector) {
				continue
			}
			seen[e.Name()] = true
			out = append(out, Source{Kind: kind, Name: name, Path: filepath.Join(dir, e.Name()), SHA256: h.opts.Pins[e.Name()]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FileSHA256 returns the hex SHA-256 of a file, for pinning plugins.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pluginhost: checksum %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("pluginhost: checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
