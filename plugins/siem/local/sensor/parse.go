package sensor

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// untrustedFields are the record fields the kernel writes with
// audit_log_untrustedstring (and their user-space equivalents): quoted when
// the value is plain, upper-case hex when it contains a space, a quote or a
// control character. An unquoted value of one of these fields is therefore
// hex to decode.
var untrustedFields = map[string]bool{
	"comm": true, "exe": true, "name": true, "cwd": true, "proctitle": true,
	"key": true, "data": true, "cmd": true, "acct": true, "path": true,
	"ocomm": true, "root_dir": true, "grp": true,
}

// recordFields parses the key=value body of one audit record into a map of
// decoded values. The header ("audit(1700000000.123:42): ") must already be
// cut off. Quoted values lose their quotes; hex-encoded untrusted strings are
// decoded; the msg='...' of user-space records is flattened into the map
// (outer keys win); values "?" and "(null)" are dropped as auditd does.
func recordFields(typ auparse.AuditMessageType, body string) map[string]string {
	out := make(map[string]string, 24)
	parseKV(typ, body, out, false)
	return out
}

func parseKV(typ auparse.AuditMessageType, s string, out map[string]string, nested bool) {
	i := 0
	n := len(s)
	for i < n {
		// Skip separators: spaces and the GS (0x1d) that starts the enriched
		// section of auditd's ENRICHED log format.
		for i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == 0x1d || s[i] == '\n') {
			i++
		}
		if i >= n {
			return
		}
		// Key.
		start := i
		for i < n && s[i] != '=' && s[i] != ' ' && s[i] != 0x1d {
			i++
		}
		if i >= n || s[i] != '=' {
			// A bare word (e.g. the "avc:  denied" preamble): skip it.
			continue
		}
		key := s[start:i]
		i++ // '='
		var val string
		quoted := false
		switch {
		case i < n && (s[i] == '"' || s[i] == '\''):
			q := s[i]
			i++
			end := strings.IndexByte(s[i:], q)
			if end < 0 {
				val = s[i:]
				i = n
			} else {
				val = s[i : i+end]
				i += end + 1
			}
			quoted = true
			if key == "msg" && q == '\'' {
				parseKV(typ, val, out, true)
				continue
			}
		default:
			start := i
			for i < n && s[i] != ' ' && s[i] != 0x1d && s[i] != '\n' {
				i++
			}
			val = s[start:i]
		}
		if key == "" || val == "" || val == "?" || val == "(null)" || val == "?," {
			continue
		}
		if !quoted && isUntrusted(typ, key) {
			if dec, ok := decodeHex(val); ok {
				val = dec
			}
		}
		if nested {
			if _, exists := out[key]; exists {
				continue
			}
		}
		out[key] = val
	}
}

// isUntrusted reports whether key is an untrusted string field of a record of
// type typ (see untrustedFields); EXECVE arguments (a0, a1_len, a2[3]) are.
func isUntrusted(typ auparse.AuditMessageType, key string) bool {
	if untrustedFields[key] {
		return true
	}
	if typ == auparse.AUDIT_EXECVE && len(key) > 1 && key[0] == 'a' && !strings.HasSuffix(key, "_len") {
		c := key[1]
		return c >= '0' && c <= '9'
	}
	return false
}

// decodeHex decodes an upper-case hex string as the kernel writes it. It
// reports false when s is not such a string.
func decodeHex(s string) (string, bool) {
	if len(s) == 0 || len(s)%2 != 0 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return "", false
		}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// execveArgs rebuilds argv from the merged fields of an event's EXECVE
// records: plain aN values, and long arguments split as aN_len plus
// aN[0], aN[1], ... pieces. It stops at the first argument it cannot find
// (argc may announce more than a lossy stream delivered).
func execveArgs(f map[string]string) []string {
	argc, err := strconv.Atoi(f["argc"])
	if err != nil || argc < 0 {
		argc = 0
		for {
			if _, ok := f["a"+strconv.Itoa(argc)]; !ok {
				break
			}
			argc++
		}
	}
	args := make([]string, 0, argc)
	for i := 0; i < argc; i++ {
		k := "a" + strconv.Itoa(i)
		if v, ok := f[k]; ok {
			args = append(args, v)
			continue
		}
		var b strings.Builder
		found := false
		for j := 0; ; j++ {
			p, ok := f[k+"["+strconv.Itoa(j)+"]"]
			if !ok {
				break
			}
			found = true
			b.WriteString(p)
		}
		if !found {
			break
		}
		args = append(args, b.String())
	}
	return args
}

// recordBody returns the part of a raw audit message after its
// "audit(sec.msec:serial): " header.
func recordBody(raw string) string {
	i := strings.Index(raw, "audit(")
	if i < 0 {
		return raw
	}
	j := strings.IndexByte(raw[i:], ')')
	if j < 0 {
		return raw
	}
	rest := raw[i+j+1:]
	rest = strings.TrimPrefix(rest, ":")
	return strings.TrimLeft(rest, " ")
}

// syscallName turns the hex arch and decimal syscall number of a SYSCALL
// record into the syscall's name ("execve") and the arch's name ("x86_64").
// Unknown numbers are returned as they are.
func syscallName(archHex, nr string) (name, arch string) {
	a, err := strconv.ParseUint(archHex, 16, 32)
	if err != nil {
		return nr, archHex
	}
	arch = auparse.AuditArch(a).String()
	n, err := strconv.Atoi(nr)
	if err != nil {
		return nr, arch
	}
	if s, ok := auparse.AuditSyscalls[arch][n]; ok {
		return s, arch
	}
	return nr, arch
}
