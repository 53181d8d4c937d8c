package datadog

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/ddfake"
)

func TestParseAttackTags(t *testing.T) {
	tests := []struct {
		name       string
		tags       []string
		techniques []string
		tactics    []string
	}{
		{name: "signal slugs, repeated", tags: []string{
			"security:attack", "technique:t1552-unsecured-credentials", "tactic:ta0006-credential-access",
			"technique:t1552-unsecured-credentials", "tactic:ta0006-credential-access",
		}, techniques: []string{"T1552"}, tactics: []string{"TA0006"}},
		{name: "rule tags upper case", tags: []string{"tactic:TA0005-defense-evasion", "technique:T1110-brute-force"},
			techniques: []string{"T1110"}, tactics: []string{"TA0005"}},
		{name: "sub-technique", tags: []string{"technique:t1053.003-cron", "technique:T1053.003"}, techniques: []string{"T1053.003"}},
		{name: "parent and sub-technique both kept", tags: []string{"technique:t1053-scheduled-task", "technique:t1053.003-cron"},
			techniques: []string{"T1053", "T1053.003"}},
		{name: "not ATT&CK", tags: []string{"technique:foo", "source:cloudtrail", "technique:t12-x", "mitre:t1552", "technique:t15520"}},
		{name: "tactic id under technique key", tags: []string{"technique:ta0003-persistence"}, tactics: []string{"TA0003"}},
		{name: "surrounding space", tags: []string{" technique:t1003.008-etc-passwd "}, techniques: []string{"T1003.008"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tech, tac := parseAttackTags(tc.tags)
			if !slices.Equal(tech, tc.techniques) || !slices.Equal(tac, tc.tactics) {
				t.Errorf("parseAttackTags = %v, %v; want %v, %v", tech, tac, tc.techniques, tc.tactics)
			}
		})
	}
}

// wantSignal is what a recorded signal must decode to.
type wantSignal struct {
	id, rule, ruleID, host, severity string
	at, firstSeen                    string
	techniques                       []string
	marks                            []plugin.MarkerValue // must be among the marker values
}

// recordedSignals are the signals of the recorded search answers.
var recordedSignals = []wantSignal{
	{
		id: "AQAAAYAeDXzzSJUmQwAAAABBWUFlRFh6ekFBQnpOV2hGMTdVRzF3QUE", rule: "PAM Configuration Files Modification", ruleID: "xgh-dfy-ywf",
		host: "i-0439f25d8385802b8", severity: "high", at: "2022-04-12T13:54:02.099Z", firstSeen: "2022-04-12T13:53:59Z",
		techniques: []string{"T1556"},
		marks: []plugin.MarkerValue{
			{Location: plugin.MarkerHostname, Value: "i-0439f25d8385802b8"},
			{Location: plugin.MarkerFilePath, Value: "/etc/pam.d/common-password"},
			{Location: plugin.MarkerFilePath, Value: "/usr/local/bin/containerd"},
			{Location: plugin.MarkerCommandLine, Value: "info"},
			{Location: plugin.MarkerProcessName, Value: "containerd"},
		},
	},
	{
		id: "AQAAAYAeDX6RQ1MmRQAAAABBWUFlRFg2UkFBRDZONmh4RHNIOGF3QUE", rule: "PAM Configuration Files Modification", ruleID: "xgh-dfy-ywf",
		host: "i-07e829490e315fe9e", severity: "high", at: "2022-04-12T13:54:02.513Z", firstSeen: "2022-04-12T13:54:01Z",
		techniques: []string{"T1556"},
		marks:      []plugin.MarkerValue{{Location: plugin.MarkerFilePath, Value: "/etc/pam.d/runuser"}},
	},
	{
		id: "AQAAAYAeDaGdCLwmPQAAAABBWUFlRGFHZEFBQ3R3QXBJcFc0dEVBQUE", rule: "EC2 instance resolved a suspicious AWS metadata DNS query", ruleID: "z4y-148-fv6",
		host: "i-001d8edd861c028cb", severity: "high", at: "2022-04-12T13:54:11.485Z", firstSeen: "2022-04-12T13:50:58Z",
		techniques: []string{"T1552"},
		marks:      []plugin.MarkerValue{{Location: plugin.MarkerHostname, Value: "i-001d8edd861c028cb"}},
	},
}

func checkSignal(t *testing.T, got plugin.Signal, w wantSignal) {
	t.Helper()
	if got.ID != w.id || got.RuleName != w.rule || got.RuleID != w.ruleID || got.Host != w.host || got.Severity != w.severity {
		t.Errorf("signal %s: id %q rule %q (%q) host %q severity %q", w.id, got.ID, got.RuleName, got.RuleID, got.Host, got.Severity)
	}
	if !got.Timestamp.Equal(mustTime(t, w.at)) {
		t.Errorf("signal %s: timestamp %s, want %s", w.id, got.Timestamp, w.at)
	}
	if w.firstSeen != "" && !got.EventTime.Equal(mustTime(t, w.firstSeen)) {
		t.Errorf("signal %s: event time %s, want %s", w.id, got.EventTime, w.firstSeen)
	}
	if !slices.Equal(got.Techniques, w.techniques) {
		t.Errorf("signal %s: techniques %v, want %v (deduplicated)", w.id, got.Techniques, w.techniques)
	}
	// The recorded pages' values, by location (TestMarkerValues checks
	// the fields they are read from).
	var locVals []plugin.MarkerValue
	for _, mv := range got.MarkerValues {
		locVals = append(locVals, plugin.MarkerValue{Location: mv.Location, Value: mv.Value})
	}
	for _, m := range w.marks {
		if !slices.Contains(locVals, m) {
			t.Errorf("signal %s: marker value %+v missing from %+v", w.id, m, got.MarkerValues)
		}
	}
	if len(got.Raw) == 0 || len(got.Raw) > maxRawBytes || strings.Contains(string(got.Raw), `"samples"`) {
		t.Errorf("signal %s: raw of %d bytes (samples kept: %v)", w.id, len(got.Raw), strings.Contains(string(got.Raw), `"samples"`))
	}
	var v map[string]any
	if err := json.Unmarshal(got.Raw, &v); err != nil {
		t.Errorf("signal %s: raw is not JSON: %v", w.id, err)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// The derived pretty-printed pages decode to the recorded signals.
func TestDecodeRecordedPages(t *testing.T) {
	tests := []struct {
		file  string
		want  []wantSignal
		after string
	}{
		{file: "signals_search_page0.response.json", want: recordedSignals[:2], after: "eyJhZnRlciI6IkFRQUFBWUFlRFg2UlExTW1SUUFBQUFCQldVRmxSRmcyVWtGQlJEWk9ObWg0UkhOSU9HRjNRVUUifQ"},
		{file: "signals_search_page1.response.json", want: recordedSignals[2:], after: "eyJhZnRlciI6IkFRQUFBWUFlRGFHZENMd21QZ0FBQUFCQldVRmxSR0ZIWkVGQlJFa3lkakpuYjFCSmF6Um5RVUUifQ"},
		{file: "signals_search_page2.response.json"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			sigs, after, err := decodeSignalsPage(b)
			if err != nil {
				t.Fatal(err)
			}
			if after != tc.after {
				t.Errorf("after = %q, want %q", after, tc.after)
			}
			if len(sigs) != len(tc.want) {
				t.Fatalf("%d signals, want %d", len(sigs), len(tc.want))
			}
			for i, w := range tc.want {
				checkSignal(t, sigs[i], w)
			}
		})
	}
}

// Every answer of every recorded cassette parses with the decoder of its
// endpoint.
func TestDecodeRecordedCassettes(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) != 9 {
		t.Fatalf("cassettes: %v, %v", files, err)
	}
	decoded := map[string]int{}
	for _, f := range files {
		c, err := ddfake.LoadCassette(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range c.Interactions {
			u, err := url.Parse(it.Request.URL)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(it.Response.Body)
			name := filepath.Base(f) + "#" + string(rune('0'+i))
			switch {
			case it.Response.Code >= 400:
				msg := errorMessage(body)
				if msg != "Forbidden" && msg != "Signal not found" {
					t.Errorf("%s: error message %q", name, msg)
				}
				decoded["error"]++
			case u.Path == ddfake.PathSignalsSearch || u.Path == "/api/v2/security_monitoring/signals":
				sigs, _, err := decodeSignalsPage(body)
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				for _, s := range sigs {
					for _, w := range recordedSignals {
						if w.id == s.ID {
							checkSignal(t, s, w)
							decoded["known signal"]++
						}
					}
				}
				decoded["signals page"]++
			case strings.HasPrefix(u.Path, "/api/v2/security_monitoring/signals/"):
				var one struct {
					Data json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(body, &one); err != nil {
					t.Fatal(err)
				}
				s, err := decodeSignal(one.Data)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				// The details answer keeps rule data under attributes.custom.
				checkSignal(t, s, wantSignal{
					id: "AQAAAYNqUBVU4-rffwAAAABBWU5xVUJWVUFBQjJBd3ptMDdQUnF3QUE", rule: "Generate a fake Signal", ruleID: "0e2-32k-1pb",
					host: "compute-0-c190d27b-0292-44b8-b094-84ff511768ba", severity: "info", at: "2022-09-23T12:26:16.788Z",
				})
				decoded["signal details"]++
			case u.Path == ddfake.PathLogsSearch || u.Path == "/api/v2/logs/events":
				evs, after, err := decodeLogsPage(body, []string{"GET /"})
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				_ = after
				decoded["logs page"]++
				decoded["logs found"] += len(evs)
			case u.Path == ddfake.PathIntake:
				if strings.TrimSpace(it.Response.Body) != "{}" || it.Response.Code != 202 {
					t.Errorf("%s: intake answer %d %q", name, it.Response.Code, it.Response.Body)
				}
				decoded["intake"]++
			default:
				t.Errorf("%s: no decoder for %s", name, u.Path)
			}
		}
	}
	want := map[string]int{
		"error": 2, "signals page": 6, "known signal": 6, "signal details": 1,
		"logs page": 5, "logs found": 2, "intake": 1,
	}
	for k, n := range want {
		if decoded[k] != n {
			t.Errorf("decoded %d %s, want %d (all: %v)", decoded[k], k, n, decoded)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{name: "garbage", body: `<html>oops</html>`, wantErr: "decode answer"},
		{name: "no data", body: `{}`, wantErr: `no "data"`},
		{name: "data not a list", body: `{"data":{"id":"x"}}`, wantErr: "decode answer"},
		{name: "no id", body: `{"data":[{"attributes":{"timestamp":"2022-04-12T13:54:02.099Z"}}]}`, wantErr: "signal without id"},
		{name: "no timestamp", body: `{"data":[{"id":"s1","attributes":{}}]}`, wantErr: "signal s1: timestamp: missing"},
		{name: "bad timestamp", body: `{"data":[{"id":"s1","attributes":{"timestamp":"yesterday"}}]}`, wantErr: `signal s1: timestamp: "yesterday" is not RFC 3339`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeSignalsPage([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// Marker values come from the signal's attributes, its samples (content
// and content.custom), and the vigil_marker tags of replayed logs.
func TestMarkerValues(t *testing.T) {
	const m = "vigil-0123456789ab"
	raw := `{"id":"s1","type":"signal","attributes":{"timestamp":"2026-03-01T12:00:00Z","host":"web-1","tags":["technique:t1059.004-unix-shell"],
	 "attributes":{"workflow":{"rule":{"id":"r1","name":"Shell"}},
	  "process":{"args":["-c","true ` + m + `"],"parent":{"args":"bash ` + m + `-parent"},"ancestors":[{"args":["sh","-c","x ` + m + `-anc"]}]},
	  "samples":[{"content":{"host":"web-1.corp","tags":["vigil_marker:` + m + `"],"custom":{"file":{"path":["/tmp/` + m + `/f"]},"http":{"useragent":"curl ` + m + `"},
	    "process":{"command_line":"/bin/sh -c id ` + m + `","envs":["VIGIL_MARKER=` + m + `"]},"vigil":{"marker":"` + m + `"}}}}]}}}`
	s, err := decodeSignal(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := []plugin.MarkerValue{
		{Location: plugin.MarkerHostname, Value: "web-1", Field: "host"},
		{Location: plugin.MarkerHostname, Value: "web-1.corp", Field: "host"},
		{Location: plugin.MarkerCommandLine, Value: "-c true " + m, Field: "process.args"},
		{Location: plugin.MarkerCommandLine, Value: "bash " + m + "-parent", Field: "process.parent.args"},
		{Location: plugin.MarkerCommandLine, Value: "sh -c x " + m + "-anc", Field: "process.ancestors.args"},
		{Location: plugin.MarkerCommandLine, Value: "/bin/sh -c id " + m, Field: "process.command_line"},
		{Location: plugin.MarkerFilePath, Value: "/tmp/" + m + "/f", Field: "file.path"},
		{Location: plugin.MarkerUserAgent, Value: "curl " + m, Field: "http.useragent"},
		{Location: plugin.MarkerEnvironment, Value: "VIGIL_MARKER=" + m, Field: "process.envs"},
		// in the log's attributes and in its vigil_marker tag: the first
		// field that held it names it
		{Location: plugin.MarkerLogField, Value: m, Field: "vigil.marker"},
	}
	for _, w := range want {
		if !slices.Contains(s.MarkerValues, w) {
			t.Errorf("missing %+v in %+v", w, s.MarkerValues)
		}
	}
	if len(s.MarkerValues) != len(want) {
		t.Errorf("%d marker values, want %d (no duplicates): %+v", len(s.MarkerValues), len(want), s.MarkerValues)
	}
	if !slices.Equal(s.Techniques, []string{"T1059.004"}) || s.RuleID != "r1" || s.Host != "web-1" {
		t.Errorf("signal %+v", s)
	}
}

// A huge signal is cut down so that a page stays within gRPC's limits.
func TestRawBounded(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	raw := `{"id":"s1","type":"signal","attributes":{"timestamp":"2026-03-01T12:00:00Z","message":"` + big + `","tags":["technique:t1003-os-credential-dumping"],
	  "attributes":{"workflow":{"rule":{"id":"r1","name":"Dump"}},"process":{"args":"` + big + `"}}}}`
	s, err := decodeSignal(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Raw) > maxRawBytes || !strings.Contains(string(s.Raw), `"vigil_truncated":true`) || !strings.Contains(string(s.Raw), `"Dump"`) {
		t.Errorf("raw %d bytes: %.200s", len(s.Raw), s.Raw)
	}
	for _, mv := range s.MarkerValues {
		if len(mv.Value) > maxMarkerValueSz {
			t.Errorf("marker value of %d bytes", len(mv.Value))
		}
	}
}
