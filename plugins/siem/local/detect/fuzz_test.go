package detect

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/telemetry"
)

// FuzzParseRule checks that no input makes the loader or the engine panic,
// and that the engine agrees with the rule's own evaluation on a few events.
//
//	go test -run x -fuzz FuzzParseRule -fuzztime 30s ./plugins/siem/local/detect/
func FuzzParseRule(f *testing.F) {
	fsys := os.DirFS(sigmaHQDir)
	_ = fs.WalkDir(fsys, "rules/linux", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
			if b, err := fs.ReadFile(fsys, p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Add([]byte(okRule))
	f.Add([]byte(rule(plc, "detection:\n    sel:\n        Image|re: '(a|b)*c{2,}'\n        CommandLine: '*x?y\\\\*'\n    condition: all of sel* and not 1 of them\n")))
	evs := []*telemetry.Event{
		{Source: telemetry.ProcessCreation, Fields: map[string]any{"Image": "/usr/bin/crontab", "CommandLine": "crontab -l"}},
		{Source: telemetry.ProcessCreation, Fields: map[string]any{"Image": []string{"abcc", "/x"}, "CommandLine": "zxyy\\q"}},
		{Source: telemetry.ProcessCreation, Fields: map[string]any{}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, p := ParseRule("f.yml", data, "")
		if (r == nil) == (p == nil) {
			t.Fatalf("rule %v problem %v", r, p)
		}
		if r == nil {
			return
		}
		e := NewEngine([]*Rule{r})
		for _, ev := range evs {
			ev.Source = r.Logsource
			got := ids(e.Match(ev))
			var want []string
			if r.Matches(ev) {
				want = []string{r.ID}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("engine %v != rule %v on %v", got, want, ev.Fields)
			}
		}
	})
}
