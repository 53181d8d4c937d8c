//go:build live

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/internal/sshdtest"
)

// TestLinuxPackOverSSH runs a few Linux pack tests through the ssh
// injector on a fleet of two hosts, both this machine's sshd (one given in
// hosts, one in an inventory file), against the local SIEM, which sees the
// remote commands' processes on this same host: every test is detected on
// each host, reported per host, and its workdir is gone.
func TestLinuxPackOverSSH(t *testing.T) {
	needsLiveAudit(t)
	srv := sshdtest.Start(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.txt")
	if err := os.WriteFile(inv, []byte(fmt.Sprintf("# the fleet\nlocalhost:%d  # same sshd, another name\n", srv.Port)), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpRoot := filepath.Join(dir, "remote-tmp")
	if err := os.Mkdir(tmpRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vigil.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[run]
timeout = "30s"
[[siem]]
name = "local"
plugin = "local"
poll_interval = "500ms"
[[target]]
name = "fleet"
plugin = "ssh"
runs = ["exec"]
hosts = ["127.0.0.1:%d"]
inventory = "fleet.txt"
[target.params]
user = %q
identity_file = %q
known_hosts = [%q]
max_sessions_per_host = 3
tmp_root = %q
`, srv.Port, srv.User, srv.KeyFile, srv.KnownHosts, tmpRoot)), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := []string{"linux-base64-decode", "linux-os-info-discovery", "linux-password-file-grep"}
	out := t.TempDir()
	args := []string{"run", "--config", cfg, "--out", out, "--quiet"}
	for _, id := range ids {
		args = append(args, "--id", id)
	}
	stdout, stderr, code := vigil(t, args...)
	if code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	hostname, _ := os.Hostname()
	got := map[string]bool{}
	for _, r := range readResults(t, out).Results {
		got[r.TestID+" "+r.Target] = true
		if r.Status != measure.Detected || r.LatencyMS == nil {
			t.Errorf("%s on %s: %s %s%s, want detected with a latency", r.TestID, r.Target, r.Status, r.Error, r.Reason)
		}
		if r.Host != hostname {
			t.Errorf("%s on %s: host %q, want the remote's name %q", r.TestID, r.Target, r.Host, hostname)
		}
		if !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s on %s: correlation %q, want the marker", r.TestID, r.Target, r.Correlation)
		}
	}
	for _, id := range ids {
		for _, h := range []string{fmt.Sprintf("127.0.0.1:%d", srv.Port), fmt.Sprintf("localhost:%d", srv.Port)} {
			if !got[id+" fleet@"+h] {
				t.Errorf("no result for %s on fleet@%s (have %v)", id, h, got)
			}
		}
	}
	if left, _ := os.ReadDir(tmpRoot); len(left) != 0 {
		t.Errorf("workdirs left on the host: %v", left)
	}
}
