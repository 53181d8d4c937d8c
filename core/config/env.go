package config

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${NAME} in s with the environment variable NAME and
// each $${ with a literal "${". A '$' followed by anything else is kept. A
// variable that is unset or empty is an error naming it; s itself never
// appears in errors, as it may be a secret. used reports whether any
// variable was substituted.
func expand(s string, lookup func(string) (string, bool)) (out string, used bool, err error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf(`unterminated "${" (write "$${" for a literal "${")`)
			}
			name := s[i+2 : i+2+end]
			if !envNameRE.MatchString(name) {
				return "", false, fmt.Errorf("invalid environment variable name %q in ${...} (write \"$${\" for a literal \"${\")", name)
			}
			v, ok := lookup(name)
			switch {
			case !ok:
				return "", false, fmt.Errorf("environment variable %s is not set", name)
			case v == "":
				return "", false, fmt.Errorf("environment variable %s is empty", name)
			}
			b.WriteString(v)
			used = true
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), used, nil
}

// secretNames are key names whose values are secrets, after lower-casing
// and turning '-' into '_'. Keys ending in _key, _token, _secret, _password
// or _passphrase, or containing password, secret, token or passphrase, are
// secrets too.
var secretNames = map[string]bool{
	"api_key": true, "apikey": true, "app_key": true, "appkey": true, "private_key": true,
	"access_key": true, "secret_key": true, "password": true, "passwd": true, "pass": true,
	"passphrase": true, "token": true, "secret": true, "client_secret": true,
	"credentials": true, "credential": true, "auth": true, "authorization": true,
	"bearer": true, "cookie": true,
}

// IsSecretKey reports whether a key name, such as "api_key" or
// "hec_token", looks like it holds a secret.
func IsSecretKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	if secretNames[k] {
		return true
	}
	for _, suffix := range []string{"_key", "_token", "_secret", "_password", "_passwd", "_passphrase", "_credentials"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	for _, part := range []string{"password", "secret", "token", "passphrase"} {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// secretPath reports whether any key along a key path looks like a secret,
// so that everything under [siem.params.credentials] is one too.
func secretPath(path string) bool {
	for _, k := range pathKeys(path) {
		if IsSecretKey(k) {
			return true
		}
	}
	return false
}

// pathKeys splits a tomldoc key path into its key names, dropping array
// indexes and the quotes of quoted keys.
func pathKeys(path string) []string {
	var keys []string
	for i := 0; i < len(path); {
		switch path[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return keys
			}
			i += j + 1
		case '"':
			j := i + 1
			for j < len(path) && path[j] != '"' {
				if path[j] == '\\' {
					j++
				}
				j++
			}
			keys = append(keys, strings.ReplaceAll(path[i+1:min(j, len(path))], `\"`, `"`))
			i = j + 1
		default:
			j := i
			for j < len(path) && path[j] != '.' && path[j] != '[' {
				j++
			}
			keys = append(keys, path[i:j])
			i = j
		}
	}
	return keys
}
