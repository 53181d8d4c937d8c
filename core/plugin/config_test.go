package plugin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type testConfig struct {
	URL     string   `toml:"url"`
	APIKey  Secret   `toml:"api_key"`
	Indexes []string `toml:"indexes"`
	Timeout string   `toml:"timeout"`
	//lint:ignore U1000 an unexported field must not count as a known key
	ignored string
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		name, toml string
		want       string // error substring, "" for none
	}{
		{"ok", "url = \"https://x\"\napi_key = \"s3cr3t-key\"\nindexes = [\"a\"]", ""},
		{"unknown keys named, known listed", "url = \"x\"\nuser = \"a\"\nzone = 1", `acme: config: unknown keys user, zone (known: api_key, indexes, timeout, url)`},
		{"syntax error: line, no value", "url = \"x\"\napi_key = \"s3cr3t-key", "acme: decode config: line 2:"},
		{"wrong type: no value", "api_key = \"s3cr3t-key\"\nindexes = \"s3cr3t-key\"", "acme: decode config:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c testConfig
			err := DecodeConfig("acme", []byte(tc.toml), &c)
			if tc.want == "" {
				if err != nil || c.APIKey.Reveal() != "s3cr3t-key" || c.URL != "https://x" {
					t.Fatalf("err %v, config %+v", err, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes a value: %v", err)
			}
		})
	}
}

// A Secret never shows: not through fmt, JSON or text encoding.
func TestSecretNeverShows(t *testing.T) {
	c := testConfig{APIKey: "s3cr3t-key"}
	b, _ := json.Marshal(c)
	for _, out := range []string{
		fmt.Sprint(c.APIKey), fmt.Sprintf("%s %v %q %x %+v %#v", c.APIKey, c.APIKey, c.APIKey, c.APIKey, c, c), string(b),
	} {
		if strings.Contains(out, "s3cr3t") || !strings.Contains(out, Redacted) {
			t.Errorf("a secret shows: %s", out)
		}
	}
	if got := RedactSecrets("401: bad key s3cr3t-key for abc", c.APIKey, "abc"); got != "401: bad key [redacted] for abc" {
		t.Errorf("RedactSecrets = %q", got)
	}
}
