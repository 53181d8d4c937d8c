package ssh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	for _, tc := range []struct{ name, cfg, want string }{
		{"no auth", `known_hosts = ["` + kh + `"]`, "no authentication: set identity_file"},
		{"agent without socket", `agent = true`, "SSH_AUTH_SOCK is not set"},
		{"unknown key", "agent = true\nagent_socket = \"/x\"\nmax_session = 3", "unknown keys max_session"},
		{"both host key modes", "agent = true\nagent_socket = \"/x\"\ninsecure_ignore_host_key = true\nknown_hosts = [\"/x\"]", "choose one"},
		{"bad port", "agent = true\nagent_socket = \"/x\"\nport = 70000", "port 70000 out of range"},
		{"bad sessions", "agent = true\nagent_socket = \"/x\"\nmax_sessions_per_host = 0\nmax_sessions_per_host = -1", "line 4"},
		{"bad timeout", "agent = true\nagent_socket = \"/x\"\nconnect_timeout = \"soon\"", `connect_timeout "soon"`},
		{"relative tmp_root", "agent = true\nagent_socket = \"/x\"\ntmp_root = \"tmp\"", "not an absolute path"},
		{"missing known_hosts", "agent = true\nagent_socket = \"/x\"\nknown_hosts = [\"" + filepath.Join(dir, "none") + "\"]", "known_hosts: stat"},
		{"missing identity", "identity_file = \"" + filepath.Join(dir, "none") + "\"\nknown_hosts = [\"" + kh + "\"]", "identity_file: open"},
		{"reserved env", "agent = true\nagent_socket = \"/x\"\nenv = { VIGIL_MARKER = \"x\" }", "VIGIL_MARKER is set by the injector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := new(Injector).Configure(context.Background(), []byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Configure error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRequestsNeedAHost(t *testing.T) {
	x := new(Injector)
	if _, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: "vigil-1", Params: plugin.Params{"command": "true"}}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("Inject before Configure: %v", err)
	}
	if err := x.Configure(context.Background(), []byte("agent = true\nagent_socket = \"/x\"\ninsecure_ignore_host_key = true")); err != nil {
		t.Fatal(err)
	}
	_, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: "vigil-1", Params: plugin.Params{"command": "true"}})
	if !errors.Is(err, ErrNoHost) {
		t.Fatalf("Inject without a host: %v, want ErrNoHost", err)
	}
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: "vigil-1"}); !errors.Is(err, ErrNoHost) {
		t.Fatalf("Cleanup without a host: %v, want ErrNoHost", err)
	}
}

func TestStatusWriter(t *testing.T) {
	for _, tc := range []struct {
		name, in, out string
		pgid, exit    int
	}{
		{"plain", "T:pgid:42\nhello\nT:exit:3\n", "hello\n", 42, 3},
		{"exit after partial line", "T:pgid:7\npartial" + "T:exit:0\n", "partial", 7, 0},
		{"lookalike passes", "T:pgid:x\nT:other:1\nT:exit:1\n", "T:pgid:x\nT:other:1\n", 0, 1},
		{"no exit", "T:pgid:9\nout", "out", 9, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			w := &statusWriter{tok: "T", out: &b, exited: make(chan struct{})}
			for i := 0; i < len(tc.in); i += 3 { // in small pieces
				w.Write([]byte(tc.in[i:min(i+3, len(tc.in))]))
			}
			w.flush()
			if b.String() != tc.out || w.pgidValue() != tc.pgid || w.exitValue() != tc.exit {
				t.Errorf("out %q pgid %d exit %d, want %q %d %d", b.String(), w.pgidValue(), w.exitValue(), tc.out, tc.pgid, tc.exit)
			}
		})
	}
}

func TestScriptQuoting(t *testing.T) {
	c := command{shell: "/bin/sh", line: `echo 'it''s' "$0"`, arg0: "vigil-x", dir: "/tmp/a b", env: []string{"A=it's"}}
	want := `cd -- '/tmp/a b' || exit 126; env -i 'A=it'\''s' "HOME=$HOME" '/bin/sh' -c 'echo '\''it'\'''\''s'\'' "$0"' 'vigil-x'`
	if s := c.script("TOK"); !strings.Contains(s, want) {
		t.Errorf("script %s\nlacks %s", s, want)
	}
	c.sudo = true
	want = `sudo -n -- /bin/sh -c 'cd -- "$1" || exit 126; shift; exec "$@"' vigil-cd '/tmp/a b' env -i 'A=it'\''s' "HOME=$HOME" '/bin/sh' -c `
	if s := c.script("TOK"); !strings.Contains(s, want) {
		t.Errorf("sudo script %s\nlacks %s", s, want)
	}
}
