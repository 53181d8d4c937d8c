// Package sshdtest starts a throwaway OpenSSH server (Debian's
// openssh-server, /usr/sbin/sshd) on a free loopback port for tests: its
// host key, a user key and the authorized_keys and known_hosts files are
// generated in t.TempDir(). It needs root (sshd switches to the logging-in
// user); without root or sshd the test is skipped, unless VIGIL_REQUIRE_SSHD
// is set (as in CI), which turns the skip into a failure.
package sshdtest

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is the path of the OpenSSH server.
const SSHD = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	Port int
	// Dir holds the server's and the client's private files.
	Dir string
	// User is the user to log in as (the one running the test, root).
	User string
	// HostKey is the server's host key.
	HostKey ssh.PublicKey
	// KeyFile is an unencrypted private key authorized to log in, KeyPub
	// its public key, Signer the key itself (for agents).
	KeyFile string
	KeyPub  ssh.PublicKey
	Signer  ssh.Signer
	// KnownHosts lists the host key for [127.0.0.1]:port and
	// [localhost]:port.
	KnownHosts string
	// AuthorizedKeys is the authorized_keys file of every user (readable
	// by all); Authorize adds to it.
	AuthorizedKeys string
}

// Require skips the test when sshd cannot run here (not root, no sshd),
// or fails it when VIGIL_REQUIRE_SSHD is set.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "the OpenSSH server tests need root (sshd switches users)"
	default:
		if _, err := os.Stat(SSHD); err != nil {
			why = SSHD + " is missing (Debian: apt-get install openssh-server)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("VIGIL_REQUIRE_SSHD") != "" {
		t.Fatalf("VIGIL_REQUIRE_SSHD is set but %s", why)
	}
	t.Skip(why)
}

// Start starts sshd with options (extra sshd_config lines) and stops it
// when the test ends.
func Start(t testing.TB, options ...string) *Server {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	// sshd needs its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	hostSigner, hostPEM := NewKey(t, "")
	writeFile(t, filepath.Join(dir, "host_key"), hostPEM)
	userSigner, userPEM := NewKey(t, "")
	// sshd reads authorized_keys as the user logging in: keep it where
	// any user can read it (it holds public keys only).
	pubDir, err := os.MkdirTemp("", "vigil-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pubDir) })
	if err := os.Chmod(pubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Dir: dir, HostKey: hostSigner.PublicKey(), KeyFile: filepath.Join(dir, "id_ed25519"),
		KeyPub: userSigner.PublicKey(), Signer: userSigner,
		AuthorizedKeys: filepath.Join(pubDir, "authorized_keys"), KnownHosts: filepath.Join(dir, "known_hosts"),
	}
	writeFile(t, s.KeyFile, userPEM)
	writeFile(t, s.AuthorizedKeys, ssh.MarshalAuthorizedKey(s.KeyPub))
	if err := os.Chmod(s.AuthorizedKeys, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s.User = u.Username

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	hostLine := string(ssh.MarshalAuthorizedKey(s.HostKey))
	writeFile(t, s.KnownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s[localhost]:%d %s", s.Port, hostLine, s.Port, hostLine)))

	cfg := []string{
		"Port " + strconv.Itoa(s.Port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + s.AuthorizedKeys,
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"MaxSessions 32",
		"MaxStartups 64",
		"LogLevel ERROR",
	}
	cfg = append(cfg, options...)
	cfgFile := filepath.Join(dir, "sshd_config")
	writeFile(t, cfgFile, []byte(strings.Join(cfg, "\n")+"\n"))

	var logs strings.Builder
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Session processes outlive the listener and hold its output: kill
	// the whole group, and do not wait for the pipes forever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr, err, logs.String())
		}
	}
}

// Authorize adds a public key to the server's authorized_keys.
func (s *Server) Authorize(t testing.TB, k ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(s.AuthorizedKeys, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(k)); err != nil {
		t.Fatal(err)
	}
}

// NewKey returns a fresh ed25519 key and its OpenSSH private key file,
// encrypted with passphrase when it is not empty.
func NewKey(t testing.TB, passphrase string) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "vigil test key", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "vigil test key")
	}
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
