package ssh_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/sshdtest"
	vssh "github.com/vigilsec/vigil/plugins/injector/ssh"
)

// configured returns an injector configured for srv with the test's key
// and known_hosts, plus extra TOML lines.
func configured(t *testing.T, srv *sshdtest.Server, extra ...string) *vssh.Injector {
	t.Helper()
	cfg := fmt.Sprintf("user = %q\nidentity_file = %q\nknown_hosts = [%q]\n", srv.User, srv.KeyFile, srv.KnownHosts)
	return configure(t, cfg+strings.Join(extra, "\n"))
}

func configure(t *testing.T, cfg string) *vssh.Injector {
	t.Helper()
	x := new(vssh.Injector)
	if err := x.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v\n%s", err, cfg)
	}
	t.Cleanup(func() { _ = x.Close(context.Background()) })
	return x
}

var markerN int

// newMarker returns a marker unique in the test binary.
func newMarker(t *testing.T) string {
	markerN++
	return fmt.Sprintf("vigil-sshtest%d%06d", os.Getpid()%1000, markerN)
}

// tmpRoot is a tmp_root for one test: a directory on the (loopback) host
// that the test can inspect.
func tmpRoot(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	return d
}

func TestInjectRunsRemotely(t *testing.T) {
	srv := sshdtest.Start(t)
	root := tmpRoot(t)
	x := configured(t, srv, fmt.Sprintf("tmp_root = %q", root), `env = { FROM_CONFIG = "c" }`)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "cleanup.out")

	for _, tc := range []struct {
		name        string
		params      plugin.Params
		safety      string
		wantOutcome plugin.Outcome
		wantExit    int
		wantStdout  []string // substrings, with MARKER and WORKDIR replaced
		wantError   string
	}{
		{
			name:        "marker in argv, env and workdir",
			params:      plugin.Params{"command": `echo "argv0=$0"; echo "env=$VIGIL_MARKER"; echo "pwd=$(pwd)"; echo "cmdline=$(tr '\0' ' ' < /proc/$$/cmdline)"; echo "cfg=$FROM_CONFIG test=$FROM_TEST"; ls -ld . | cut -c1-10`, "env": map[string]any{"FROM_TEST": "t"}},
			wantOutcome: plugin.OutcomeSucceeded,
			wantStdout:  []string{"argv0=MARKER\n", "env=MARKER\n", "pwd=WORKDIR\n", "cmdline=/bin/sh -c ", " MARKER \n", "cfg=c test=t\n", "drwx------\n"},
		},
		{
			name:        "expected non-zero exit",
			params:      plugin.Params{"command": "exit 3", "expect_exit": 3},
			wantOutcome: plugin.OutcomeSucceeded, wantExit: 3,
		},
		{
			name:        "unexpected exit is a failure with stderr",
			params:      plugin.Params{"command": "echo no such thing >&2; exit 2"},
			wantOutcome: plugin.OutcomeFailed, wantExit: 2, wantError: "command exited 2, want 0: no such thing",
		},
		{
			name:        "ignore_exit makes any exit a success and keeps the code",
			params:      plugin.Params{"command": "exit 5", "ignore_exit": true},
			wantOutcome: plugin.OutcomeSucceeded, wantExit: 5,
		},
		{
			name:        "stdin",
			params:      plugin.Params{"command": "tr a-z A-Z", "stdin": "hello"},
			wantOutcome: plugin.OutcomeSucceeded, wantStdout: []string{"HELLO"},
		},
		{
			name:        "stderr without newline keeps the exit status",
			params:      plugin.Params{"command": "printf partial >&2; exit 4", "expect_exit": 4},
			wantOutcome: plugin.OutcomeSucceeded, wantExit: 4,
		},
		{
			name:        "destructive refused",
			params:      plugin.Params{"command": "true"},
			safety:      "destructive",
			wantOutcome: plugin.OutcomeRefused, wantExit: -1, wantError: "destructive",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMarker(t)
			wd := filepath.Join(root, m)
			r, err := x.Inject(ctx, plugin.InjectRequest{TestID: "t1", Marker: m, Workdir: wd, Params: tc.params,
				Timeout: 20 * time.Second, Safety: tc.safety, Host: srv.Addr})
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			if r.Outcome != tc.wantOutcome || r.ExitCode != tc.wantExit {
				t.Fatalf("outcome %s exit %d (error %q, stderr %q), want %s exit %d", r.Outcome, r.ExitCode, r.Error, r.Stderr, tc.wantOutcome, tc.wantExit)
			}
			if !strings.Contains(r.Error, tc.wantError) {
				t.Errorf("error %q, want it to contain %q", r.Error, tc.wantError)
			}
			for _, w := range tc.wantStdout {
				w = strings.NewReplacer("MARKER", m, "WORKDIR", wd).Replace(w)
				if !strings.Contains(string(r.Stdout), w) {
					t.Errorf("stdout %q lacks %q", r.Stdout, w)
				}
			}
			if strings.Contains(string(r.Stderr), "vigil-status-") || strings.Contains(string(r.Stdout), "vigil-status-") {
				t.Errorf("status lines leaked into the output: stdout %q stderr %q", r.Stdout, r.Stderr)
			}
			if h, _ := os.Hostname(); tc.wantOutcome != plugin.OutcomeRefused && r.Host != h {
				t.Errorf("host %q, want the remote's name %q", r.Host, h)
			}
			if tc.wantOutcome == plugin.OutcomeRefused {
				if _, err := os.Lstat(wd); err == nil {
					t.Errorf("refused injection created %s", wd)
				}
				return
			}
			if fi, err := os.Lstat(wd); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Fatalf("workdir after Inject: %v %v", fi, err)
			}
			cr, err := x.Cleanup(ctx, plugin.CleanupRequest{TestID: "t1", Marker: m, Workdir: wd, Host: srv.Addr,
				Params: plugin.Params{"command": fmt.Sprintf(`echo "$0 $(pwd)" > %s`, out)}, Artifacts: r.Artifacts, Timeout: 10 * time.Second})
			if err != nil || cr.Error != "" || cr.ExitCode != 0 {
				t.Fatalf("Cleanup: %+v %v", cr, err)
			}
			if b, _ := os.ReadFile(out); string(b) != m+" "+wd+"\n" {
				t.Errorf("cleanup command wrote %q, want marker and workdir", b)
			}
			if _, err := os.Lstat(wd); err == nil {
				t.Errorf("workdir %s still there after Cleanup", wd)
			}
		})
	}
}

// A command that outlives its timeout is timed_out, and its remote process
// group is killed.
func TestTimeoutKillsRemoteCommand(t *testing.T) {
	srv := sshdtest.Start(t)
	root := tmpRoot(t)
	x := configured(t, srv, fmt.Sprintf("tmp_root = %q", root))
	m := newMarker(t)
	wd := filepath.Join(root, m)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: "slow", Marker: m, Workdir: wd, Host: srv.Addr,
		Params: plugin.Params{"command": fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plugin.OutcomeTimedOut || !strings.Contains(r.Error, "timed out after 2s; remote process group killed") {
		t.Fatalf("outcome %s error %q, want timed_out", r.Outcome, r.Error)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// The kill waited for the group to go (SIGKILL after the grace); the
	// sleep may linger only as a zombie until it is reaped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote sleep %s still running after the timeout: %s", pid, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: m, Workdir: wd, Host: srv.Addr}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(wd); err == nil {
		t.Errorf("workdir left after Cleanup")
	}
}

// Processes a command leaves in the background holding its output do not
// hang the injection; Cleanup kills them.
func TestBackgroundProcessKilledByCleanup(t *testing.T) {
	srv := sshdtest.Start(t)
	root := tmpRoot(t)
	x := configured(t, srv, fmt.Sprintf("tmp_root = %q", root))
	m := newMarker(t)
	wd := filepath.Join(root, m)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r, err := x.Inject(context.Background(), plugin.InjectRequest{TestID: "bg", Marker: m, Workdir: wd, Host: srv.Addr,
		Params: plugin.Params{"command": fmt.Sprintf("sleep 300 & echo $! > %s", pidFile)}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("outcome %s error %q", r.Outcome, r.Error)
	}
	var group string
	for _, a := range r.Artifacts {
		if a.Kind == vssh.ArtifactProcessGroup {
			group = a.Ref
		}
	}
	if group == "" {
		t.Fatalf("artifacts %+v: want the process group left running", r.Artifacts)
	}
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("background sleep %s not running after Inject: %v", pid, err)
	}
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: m, Workdir: wd, Host: srv.Addr, Artifacts: r.Artifacts}); err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile("/proc/" + pid + "/stat")
	if err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("background sleep %s still running after Cleanup: %s", pid, st)
	}
}

// A workdir that already exists is refused, and Cleanup leaves it alone.
func TestExistingWorkdirRefused(t *testing.T) {
	srv := sshdtest.Start(t)
	root := tmpRoot(t)
	x := configured(t, srv, fmt.Sprintf("tmp_root = %q", root))
	m := newMarker(t)
	wd := filepath.Join(root, m)
	if err := os.Mkdir(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: wd, Host: srv.Addr, Params: plugin.Params{"command": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plugin.OutcomeRefused || !strings.Contains(r.Error, "already exists") {
		t.Fatalf("outcome %s error %q, want refused", r.Outcome, r.Error)
	}
	cr, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: m, Workdir: wd, Host: srv.Addr})
	if err != nil || !strings.Contains(cr.Error, "existed before the injection") {
		t.Fatalf("Cleanup: %+v %v", cr, err)
	}
	if _, err := os.Stat(wd); err != nil {
		t.Errorf("Cleanup removed a workdir it did not create: %v", err)
	}
	// A workdir outside tmp_root is refused before anything runs.
	r, err = x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: "/etc/" + m, Host: srv.Addr, Params: plugin.Params{"command": "true"}})
	if err != nil || r.Outcome != plugin.OutcomeRefused || !strings.Contains(r.Error, "not under tmp_root") {
		t.Fatalf("workdir outside tmp_root: %+v %v", r, err)
	}
}

func TestHostKeyChecking(t *testing.T) {
	srv := sshdtest.Start(t)
	other, _ := sshdtest.NewKey(t, "")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, knownHosts, want string
	}{
		{
			name:       "key mismatch",
			knownHosts: fmt.Sprintf("[127.0.0.1]:%d %s", srv.Port, ssh.MarshalAuthorizedKey(other.PublicKey())),
			want:       "does not match known_hosts",
		},
		{
			name:       "unknown host",
			knownHosts: fmt.Sprintf("[10.9.9.9]:%d %s", srv.Port, ssh.MarshalAuthorizedKey(srv.HostKey)),
			want:       fmt.Sprintf("127.0.0.1:%d is not in known_hosts", srv.Port),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(kh, []byte(tc.knownHosts), 0o600); err != nil {
				t.Fatal(err)
			}
			x := configure(t, fmt.Sprintf("user = %q\nidentity_file = %q\nknown_hosts = [%q]\n", srv.User, srv.KeyFile, kh))
			m := newMarker(t)
			_, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: "/tmp/" + m, Host: srv.Addr, Params: plugin.Params{"command": "true"}})
			if err == nil || !errors.Is(err, vssh.ErrHostKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Inject error %v, want ErrHostKey saying %q", err, tc.want)
			}
			if _, err := os.Lstat("/tmp/" + m); err == nil {
				t.Errorf("workdir created on a host whose key was refused")
			}
		})
	}
}

// Authentication through ssh-agent: an in-process keyring served on a
// unix socket, no identity file.
func TestAgentAuth(t *testing.T) {
	srv := sshdtest.Start(t)
	signer, pemKey := sshdtest.NewKey(t, "")
	srv.Authorize(t, signer.PublicKey())
	raw, err := ssh.ParseRawPrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var served sync.WaitGroup
	var conns int
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				mu.Lock()
				conns++
				mu.Unlock()
				_ = agent.ServeAgent(kr, c)
			}()
		}
	}()
	root := tmpRoot(t)
	x := configure(t, fmt.Sprintf("user = %q\nagent = true\nagent_socket = %q\nknown_hosts = [%q]\ntmp_root = %q\n", srv.User, sock, srv.KnownHosts, root))
	m := newMarker(t)
	r, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: filepath.Join(root, m), Host: srv.Addr, Params: plugin.Params{"command": "echo via-agent"}})
	if err != nil || r.Outcome != plugin.OutcomeSucceeded || string(r.Stdout) != "via-agent\n" {
		t.Fatalf("Inject over agent auth: %+v %v", r, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns == 0 {
		t.Errorf("the agent was never asked")
	}
}

// max_sessions_per_host bounds the commands running at once on a host:
// each command counts the commands running (files in a shared directory).
func TestSessionLimitPerHost(t *testing.T) {
	srv := sshdtest.Start(t)
	root := tmpRoot(t)
	x := configured(t, srv, fmt.Sprintf("tmp_root = %q", root), "max_sessions_per_host = 2")
	running := t.TempDir()
	log := filepath.Join(t.TempDir(), "counts")
	// Each command waits (up to 8s) for another to be running, holds 3s
	// more, and logs the most commands it saw running at once.
	cmd := fmt.Sprintf(`touch %[1]s/$$; peak=0; i=0; held=0
while [ $i -lt 80 ] && [ $held -lt 30 ]; do
  n=$(ls %[1]s | wc -l); [ $n -gt $peak ] && peak=$n
  [ $peak -ge 2 ] && held=$((held+1))
  sleep 0.1; i=$((i+1))
done
echo $peak >> %[2]s; rm %[1]s/$$`, running, log)
	var wg sync.WaitGroup
	errs := make([]string, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := newMarkerN(i)
			r, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: filepath.Join(root, m), Host: srv.Addr, Params: plugin.Params{"command": cmd}, Timeout: 30 * time.Second})
			switch {
			case err != nil:
				errs[i] = err.Error()
			case r.Outcome != plugin.OutcomeSucceeded:
				errs[i] = r.Error
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("injection %d: %s", i, e)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	counts := strings.Fields(string(b))
	for _, c := range counts {
		n, _ := strconv.Atoi(c)
		peak = max(peak, n)
	}
	if len(counts) != 6 || peak != 2 {
		t.Errorf("concurrent commands seen %v: want 6 counts peaking at exactly 2 (the limit)", counts)
	}
}

func newMarkerN(i int) string { return fmt.Sprintf("vigil-sshpar%d%04d", os.Getpid()%1000, i) }

const passphrase = "correct horse battery staple"

// The passphrase and the key never appear in errors: a wrong passphrase,
// a missing one, a key the server refuses, a passphrase of the wrong type.
func TestSecretsAbsentFromErrors(t *testing.T) {
	srv := sshdtest.Start(t)
	dir := t.TempDir()
	signer, encPEM := sshdtest.NewKey(t, passphrase)
	enc := filepath.Join(dir, "encrypted")
	if err := os.WriteFile(enc, encPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	keyB64 := strings.Fields(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))[1]
	secrets := []string{passphrase, "horse", string(encPEM[40:80]), keyB64}
	base := fmt.Sprintf("user = %q\nknown_hosts = [%q]\n", srv.User, srv.KnownHosts)
	for _, tc := range []struct{ name, cfg, want string }{
		{"wrong passphrase", fmt.Sprintf("identity_file = %q\npassphrase = %q", enc, "not "+passphrase), "the passphrase does not decrypt it"},
		{"missing passphrase", fmt.Sprintf("identity_file = %q", enc), "is encrypted: set passphrase"},
		{"passphrase of the wrong type", fmt.Sprintf("identity_file = %q\npassphrase = [%q]", enc, passphrase), "wrong type"},
		{"unknown key next to the passphrase", fmt.Sprintf("identity_file = %q\npassphrase = %q\npasphrase = %q", enc, passphrase, passphrase), "unknown keys pasphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := new(vssh.Injector).Configure(context.Background(), []byte(base+tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Configure error %v, want %q", err, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}

	// The right passphrase decrypts the key, but the server does not
	// know it: the authentication error names neither.
	x := configure(t, base+fmt.Sprintf("identity_file = %q\npassphrase = %q", enc, passphrase))
	m := newMarker(t)
	_, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: "/tmp/" + m, Host: srv.Addr, Params: plugin.Params{"command": "true"}})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("Inject with an unauthorized key: %v", err)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks %q", err, s)
		}
	}
	// Once authorized, the encrypted key logs in.
	srv.Authorize(t, signer.PublicKey())
	r, err := x.Inject(context.Background(), plugin.InjectRequest{Marker: m, Workdir: "/tmp/" + m, Host: srv.Addr, Params: plugin.Params{"command": "true"}})
	if err != nil || r.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("Inject with the encrypted key: %+v %v", r, err)
	}
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: m, Workdir: "/tmp/" + m, Host: srv.Addr}); err != nil {
		t.Fatal(err)
	}
}

// A user that is not root: tests that need elevation are skipped unless
// sudo = true, and then run (workdir, command, cleanup) as root through
// `sudo -n`; other tests run as the user.
func TestSudoElevation(t *testing.T) {
	srv := sshdtest.Start(t)
	for _, tool := range []string{"/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/bin/sudo"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("%s missing: %v", tool, err)
		}
	}
	// A password of "*" (no password, not locked): sshd without PAM refuses
	// locked accounts ("!"), even with a key.
	name := fmt.Sprintf("vigilssh%d", os.Getpid()%100000)
	if out, err := exec.Command("/usr/sbin/useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("/usr/sbin/userdel", name).Run() })
	sudoers := "/etc/sudoers.d/" + name
	if err := os.WriteFile(sudoers, []byte(name+" ALL=(ALL) NOPASSWD: ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sudoers) })
	root, err := os.MkdirTemp("/tmp", "vigil-sudo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o1777); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("user = %q\nidentity_file = %q\nknown_hosts = [%q]\ntmp_root = %q\n", name, srv.KeyFile, srv.KnownHosts, root)
	ctx := context.Background()

	t.Run("without sudo", func(t *testing.T) {
		x := configure(t, base)
		unmet, err := x.CheckPrerequisites(ctx, plugin.PrerequisitesRequest{TestID: "t", ElevationRequired: true, Marker: newMarker(t), Host: srv.Addr})
		if err != nil || len(unmet) != 1 || !strings.Contains(unmet[0].Reason, "needs root") || !strings.Contains(unmet[0].Reason, "set sudo = true") {
			t.Fatalf("unmet %+v, %v: want elevation unmet", unmet, err)
		}
	})
	t.Run("with sudo", func(t *testing.T) {
		x := configure(t, base+"sudo = true\n")
		for _, tc := range []struct {
			elevated bool
			wantUID  string
		}{{true, "0"}, {false, ""}} {
			m := newMarker(t)
			wd := filepath.Join(root, m)
			unmet, err := x.CheckPrerequisites(ctx, plugin.PrerequisitesRequest{TestID: "t", ElevationRequired: tc.elevated, Marker: m, Host: srv.Addr,
				Prerequisites: []plugin.Prerequisite{{Description: "id works", Check: "id -u"}}})
			if err != nil || len(unmet) != 0 {
				t.Fatalf("elevated=%v: unmet %+v, %v", tc.elevated, unmet, err)
			}
			r, err := x.Inject(ctx, plugin.InjectRequest{TestID: "t", Marker: m, Workdir: wd, Host: srv.Addr,
				Params: plugin.Params{"command": `id -u; echo "$0"`}, Timeout: 20 * time.Second})
			if err != nil || r.Outcome != plugin.OutcomeSucceeded {
				t.Fatalf("elevated=%v: Inject %+v %v", tc.elevated, r, err)
			}
			lines := strings.Fields(string(r.Stdout))
			isRoot := len(lines) == 2 && lines[0] == "0"
			if isRoot != tc.elevated || len(lines) != 2 || lines[1] != m {
				t.Errorf("elevated=%v: command printed %q", tc.elevated, r.Stdout)
			}
			fi, err := os.Lstat(wd)
			if err != nil {
				t.Fatal(err)
			}
			if owner := fi.Sys().(*syscall.Stat_t).Uid; (owner == 0) != tc.elevated {
				t.Errorf("elevated=%v: workdir owned by uid %d", tc.elevated, owner)
			}
			cr, err := x.Cleanup(ctx, plugin.CleanupRequest{TestID: "t", Marker: m, Workdir: wd, Host: srv.Addr, Params: plugin.Params{"command": "touch cleaned"}})
			if err != nil || cr.Error != "" {
				t.Fatalf("elevated=%v: Cleanup %+v %v", tc.elevated, cr, err)
			}
			if _, err := os.Lstat(wd); err == nil {
				t.Errorf("elevated=%v: workdir left", tc.elevated)
			}
		}
	})
}
