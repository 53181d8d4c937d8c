package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/config/tomldoc"
)

// MaxHosts bounds the hosts of one target (hosts and inventory together).
const MaxHosts = 10000

// hostNameRE is a DNS name or an IPv4 address: letters, digits, '-', '_'
// and '.', starting with a letter or digit.
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$`)

// decodeHosts reads a target's hosts array and inventory file (relative to
// base, the config file's directory). Problems are reported at the key; an
// inventory problem names the inventory file and line as well.
func decodeHosts(t *tomldoc.Table, base string) (hosts []string, inventory string) {
	seen := map[string]string{} // host → where it was first given
	add := func(h, where string, errorf func(format string, args ...any)) {
		if err := CheckHost(h); err != nil {
			errorf("%v", err)
			return
		}
		if first, dup := seen[h]; dup {
			errorf("duplicate host %q (first at %s)", h, first)
			return
		}
		if len(hosts) == MaxHosts {
			errorf("too many hosts (at most %d per target)", MaxHosts)
			return
		}
		seen[h] = where
		hosts = append(hosts, h)
	}
	for i, h := range t.Strings("hosts") {
		p := tomldoc.Index(t.PathOf("hosts"), i)
		add(strings.TrimSpace(h), fmt.Sprintf("line %d", t.Doc().Line(p)), func(format string, args ...any) { t.Doc().Errorf(p, format, args...) })
	}
	inventory = t.String("inventory")
	if inventory == "" {
		if t.Has("inventory") {
			t.Errorf("inventory", "must not be empty (a file with one host or host:port per line)")
		}
		return hosts, ""
	}
	switch {
	case inventory == "~" || strings.HasPrefix(inventory, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			inventory = filepath.Join(home, strings.TrimPrefix(inventory, "~"))
		}
	case !filepath.IsAbs(inventory):
		inventory = filepath.Join(base, inventory)
	}
	data, err := os.ReadFile(inventory)
	if err != nil {
		t.Errorf("inventory", "reading the inventory: %v", err)
		return hosts, inventory
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		h := sc.Text()
		if i := strings.IndexByte(h, '#'); i >= 0 {
			h = h[:i]
		}
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		n++
		where := fmt.Sprintf("%s:%d", inventory, line)
		add(h, where, func(format string, args ...any) {
			t.Errorf("inventory", "%s: %s", where, fmt.Sprintf(format, args...))
		})
	}
	if err := sc.Err(); err != nil {
		t.Errorf("inventory", "reading %s: %v", inventory, err)
	} else if n == 0 {
		t.Errorf("inventory", "%s names no host (want one host or host:port per line; # starts a comment)", inventory)
	}
	return hosts, inventory
}

// CheckHost says why h is not a host a target can name: "name", "name:port",
// an IPv4 address with an optional port, or an IPv6 address, in brackets
// when it has a port ("[::1]:2222").
func CheckHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	name, port := h, ""
	switch {
	case strings.HasPrefix(h, "["):
		var err error
		if name, port, err = net.SplitHostPort(h); err != nil {
			if strings.HasSuffix(h, "]") {
				name, port = h[1:len(h)-1], ""
			} else {
				return fmt.Errorf("invalid host %q: %v", h, err)
			}
		}
		if ip := net.ParseIP(name); ip == nil || ip.To4() != nil {
			return fmt.Errorf("invalid host %q: want an IPv6 address in brackets", h)
		}
	case strings.Count(h, ":") > 1:
		if net.ParseIP(h) == nil {
			return fmt.Errorf("invalid host %q: not an IPv6 address (write [addr]:port with a port)", h)
		}
		return nil
	case strings.Contains(h, ":"):
		name, port, _ = strings.Cut(h, ":")
		if port == "" {
			return fmt.Errorf("invalid host %q: empty port", h)
		}
	}
	if !strings.HasPrefix(h, "[") && !hostNameRE.MatchString(name) {
		return fmt.Errorf("invalid host %q (want a host name or address, with an optional :port)", h)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid host %q: port %q is not a number in 1..65535", h, port)
		}
	}
	return nil
}
