package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// auth holds what the injector authenticates with, loaded by Configure.
type auth struct {
	signers   []ssh.Signer // from identity_file
	agentSock string       // "" when the agent is not used
	hostKeys  ssh.HostKeyCallback
	// knownKeyTypes returns the key algorithms known_hosts lists for
	// address, so that the server is asked for a key vigil can check.
	knownKeyTypes func(address string) []string
}

// loadAuth reads the identity file and known_hosts files. Errors name the
// files, never the passphrase or the key.
func loadAuth(c *config) (*auth, error) {
	a := &auth{agentSock: c.AgentSocket}
	if c.IdentityFile != "" {
		pem, err := os.ReadFile(c.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("ssh: identity_file: %w", err)
		}
		var s ssh.Signer
		if c.Passphrase != "" {
			s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(c.Passphrase.Reveal()))
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, fmt.Errorf("ssh: identity_file %s: the passphrase does not decrypt it", c.IdentityFile)
			}
		} else {
			s, err = ssh.ParsePrivateKey(pem)
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("ssh: identity_file %s is encrypted: set passphrase = \"${VAR}\"", c.IdentityFile)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("ssh: identity_file %s: not a usable private key (%s)", c.IdentityFile, keyErrorKind(err))
		}
		a.signers = []ssh.Signer{s}
	}
	if c.InsecureIgnoreHostKey {
		a.hostKeys = ssh.InsecureIgnoreHostKey()
		a.knownKeyTypes = func(string) []string { return nil }
		return a, nil
	}
	for _, f := range c.KnownHosts {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("ssh: known_hosts: %w (add the hosts' keys with ssh-keyscan, after checking them)", err)
		}
	}
	cb, err := knownhosts.New(c.KnownHosts...)
	if err != nil {
		return nil, fmt.Errorf("ssh: known_hosts: %w", err)
	}
	files := strings.Join(c.KnownHosts, ", ")
	a.hostKeys = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return fmt.Errorf("%w: %s is not in known_hosts (%s): check its %s key fingerprint %s and add it (ssh-keyscan %s)",
				ErrHostKey, hostname, files, key.Type(), ssh.FingerprintSHA256(key), keyscanArgs(hostname))
		case errors.As(err, &ke):
			w := ke.Want[0]
			return fmt.Errorf("%w: the %s key of %s (%s) does not match known_hosts (%s:%d): refusing to connect, the host may be impersonated",
				ErrHostKey, key.Type(), hostname, ssh.FingerprintSHA256(key), w.Filename, w.Line)
		}
		return fmt.Errorf("%w: %s: %v", ErrHostKey, hostname, err)
	}
	probe := probeKey()
	a.knownKeyTypes = func(address string) []string {
		var ke *knownhosts.KeyError
		if err := cb(address, &net.TCPAddr{}, probe); !errors.As(err, &ke) {
			return nil
		}
		var types []string
		for _, w := range ke.Want {
			t := w.Key.Type()
			if t == ssh.KeyAlgoRSA {
				types = append(types, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
			}
			types = append(types, t)
		}
		return types
	}
	return a, nil
}

// keyErrorKind says what is wrong with a key without quoting it.
func keyErrorKind(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no key found"):
		return "no key found"
	case strings.Contains(msg, "unsupported"):
		return "unsupported key type"
	}
	return "cannot parse it"
}

// keyscanArgs is the ssh-keyscan argument list for a "host:port" address.
func keyscanArgs(hostport string) string {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil || p == "22" {
		return hostport
	}
	return "-p " + p + " " + h
}

// probeKey is a key no host has, used to ask known_hosts which key types
// it lists for an address.
func probeKey() ssh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(nil)
	k, _ := ssh.NewPublicKey(pub)
	return k
}

// ErrHostKey means a host's key could not be verified against known_hosts.
var ErrHostKey = errors.New("ssh: host key not verified")

// hostConn is the connection to one host, shared by its sessions.
type hostConn struct {
	addr string        // host:port
	sem  chan struct{} // session slots (max_sessions_per_host)
	// ctl is the one extra slot used to kill a command that timed out
	// while the others are taken.
	ctl chan struct{}

	mu     sync.Mutex
	client *ssh.Client
	// hostname and uid are the remote `uname -n` and `id -u`, read once.
	hostname string
	uid      int
	probed   bool
}

// addressOf returns host:port for a target host ("name", "name:port",
// "[v6]:port" or a bare IPv6 address), with defaultPort when it has none.
func addressOf(host string, defaultPort int) (string, error) {
	if host == "" {
		return "", ErrNoHost
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("ssh: host %q: bad port", host)
		}
		return net.JoinHostPort(h, p), nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.ContainsAny(h, " /\x00\n") || strings.HasPrefix(h, "-") {
		return "", fmt.Errorf("ssh: host %q is not a host name or address", host)
	}
	return net.JoinHostPort(h, strconv.Itoa(defaultPort)), nil
}

// ErrNoHost means a request named no host: an ssh target needs hosts.
var ErrNoHost = errors.New("ssh: request has no host: give the target hosts = [...] or an inventory file")

// conn returns the connection state of host, creating it.
func (x *Injector) conn(host string) (*hostConn, error) {
	c, err := x.config()
	if err != nil {
		return nil, err
	}
	addr, err := addressOf(host, c.Port)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.hosts == nil {
		x.hosts = map[string]*hostConn{}
	}
	hc := x.hosts[addr]
	if hc == nil {
		hc = &hostConn{addr: addr, sem: make(chan struct{}, c.MaxSessionsPerHost), ctl: make(chan struct{}, 1)}
		x.hosts[addr] = hc
	}
	return hc, nil
}

// dial returns the host's client, connecting (or reconnecting) when needed.
func (x *Injector) dial(ctx context.Context, hc *hostConn) (*ssh.Client, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.client != nil {
		return hc.client, nil
	}
	c, err := x.config()
	if err != nil {
		return nil, err
	}
	a, err := x.authn()
	if err != nil {
		return nil, err
	}
	methods := []ssh.AuthMethod{}
	if len(a.signers) > 0 {
		methods = append(methods, ssh.PublicKeys(a.signers...))
	}
	var agentConn net.Conn
	if a.agentSock != "" {
		var d net.Dialer
		agentConn, err = d.DialContext(ctx, "unix", a.agentSock)
		if err != nil {
			return nil, fmt.Errorf("ssh: connect to ssh-agent: %w", err)
		}
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(agentConn).Signers))
	}
	cfg := &ssh.ClientConfig{
		User: c.User, Auth: methods, HostKeyCallback: a.hostKeys,
		HostKeyAlgorithms: a.knownKeyTypes(hc.addr), Timeout: c.connectTimeout,
		ClientVersion: "SSH-2.0-vigil",
	}
	dctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", hc.addr)
	if err != nil {
		closeQuietly(agentConn)
		return nil, fmt.Errorf("ssh: dial %s: %w", hc.addr, err)
	}
	// The handshake is bounded by the connect timeout and by ctx.
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, hc.addr, cfg)
	stopped := stop()
	closeQuietly(agentConn) // the agent signs during the handshake only
	if err != nil {
		nc.Close()
		if !stopped {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ssh: connect to %s: %w", hc.addr, ctx.Err())
			}
			return nil, fmt.Errorf("ssh: connect to %s: handshake timed out after %s", hc.addr, c.connectTimeout)
		}
		return nil, fmt.Errorf("ssh: connect to %s as %s: %w", hc.addr, c.User, err)
	}
	hc.client = ssh.NewClient(sc, chans, reqs)
	go func(cl *ssh.Client) {
		_ = cl.Wait()
		hc.mu.Lock()
		if hc.client == cl {
			hc.client = nil
		}
		hc.mu.Unlock()
	}(hc.client)
	return hc.client, nil
}

func closeQuietly(c net.Conn) {
	if c != nil {
		_ = c.Close()
	}
}

// session opens a session on the host, waiting for one of its slots (the
// control slot when ctl is set). release closes the session and frees the
// slot.
func (x *Injector) session(ctx context.Context, hc *hostConn, ctl bool) (s *ssh.Session, release func(), err error) {
	slots := hc.sem
	if ctl {
		slots = hc.ctl
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("ssh: %s: waiting for a session slot: %w", hc.addr, ctx.Err())
	}
	free := func() { <-slots }
	for attempt := 0; ; attempt++ {
		cl, err := x.dial(ctx, hc)
		if err != nil {
			free()
			return nil, nil, err
		}
		s, err := cl.NewSession()
		if err == nil {
			return s, func() { s.Close(); free() }, nil
		}
		// A dead connection: forget it and connect again, once.
		hc.mu.Lock()
		if hc.client == cl {
			hc.client = nil
		}
		hc.mu.Unlock()
		cl.Close()
		if attempt > 0 {
			free()
			return nil, nil, fmt.Errorf("ssh: %s: open session: %w", hc.addr, err)
		}
	}
}
