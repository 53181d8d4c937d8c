package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// DecodeConfig decodes a plugin's TOML config table b strictly into v (a
// pointer to a struct with toml tags), for the plugin called name. An
// unknown key is an error naming it and the known ones (read from v's
// tags); a TOML error keeps its line and what is wrong but never a value,
// which may be a credential. Defaults and validation are the plugin's, on
// what DecodeConfig decoded.
func DecodeConfig(name string, b []byte, v any) error {
	_, err := DecodeConfigMeta(name, b, v)
	return err
}

// DecodeConfigMeta is DecodeConfig, also returning the TOML metadata, for
// a plugin whose default depends on whether a key was given at all
// (md.IsDefined).
func DecodeConfigMeta(name string, b []byte, v any) (toml.MetaData, error) {
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(v)
	if err != nil {
		return md, fmt.Errorf("%s: decode config: %s", name, tomlError(err))
	}
	if u := md.Undecoded(); len(u) > 0 {
		keys := make([]string, len(u))
		for i, k := range u {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return md, fmt.Errorf("%s: config: unknown keys %s (known: %s)", name, strings.Join(keys, ", "), strings.Join(KnownKeys(v), ", "))
	}
	return md, nil
}

// tomlError renders a TOML decode error without the input it may quote:
// the line and the parser's message for a syntax error, the key and the
// types for a type mismatch.
func tomlError(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	msg := err.Error()
	if i := strings.Index(msg, "incompatible types"); i >= 0 {
		return "a key has the wrong type: " + msg[i:]
	}
	if strings.Contains(msg, "toml: cannot") || strings.HasPrefix(msg, "toml:") {
		// Keep what the decoder says of the key, not of the value.
		if k, _, ok := strings.Cut(msg, ": "); ok && len(msg) < 200 {
			return k + ": " + strings.TrimPrefix(msg, k+": ")
		}
	}
	return "invalid config (values not shown)"
}

// KnownKeys returns the toml keys of struct v (or *struct), sorted.
func KnownKeys(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && f.Anonymous:
			keys = append(keys, KnownKeys(reflect.New(f.Type).Interface())...)
			continue
		case name == "":
			name = f.Name
		}
		keys = append(keys, name)
	}
	sort.Strings(keys)
	return keys
}

// Redacted is how a Secret shows.
const Redacted = "[redacted]"

// Secret is a credential of a plugin's config (decoded from TOML like a
// string). It shows as "[redacted]" through every fmt verb, JSON and text
// encoding, so that no log line, error or results file can carry it;
// Reveal returns the value for the one place that sends it.
type Secret string

// Reveal returns the credential.
func (s Secret) Reveal() string { return string(s) }

// String hides the value.
func (Secret) String() string { return Redacted }

// GoString hides the value from %#v.
func (Secret) GoString() string { return `"` + Redacted + `"` }

// Format hides the value from every verb (%s, %v, %q, %x, ...).
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, `"`+Redacted+`"`)
		return
	}
	fmt.Fprint(f, Redacted)
}

// MarshalJSON hides the value.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText hides the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalText reads the value (TOML and JSON decoding).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// RedactSecrets replaces every secret of four characters or more in msg
// (an error a server sent back may quote one) with "[redacted]".
func RedactSecrets(msg string, secrets ...Secret) string {
	for _, s := range secrets {
		if v := string(s); len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, Redacted)
		}
	}
	return msg
}
