package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/plugins/siem/local"
)

const (
	recordedMarker = "vigil-0123456789ab"
	newMarker      = "vigil-fedcba987654"
)

var replayNow = time.Date(2027, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// newInjector returns an injector with a fixed clock and host name,
// reading recordings from dir ("" for the built-in ones).
func newInjector(t *testing.T, dir string) *Injector {
	t.Helper()
	x := &Injector{now: func() time.Time { return replayNow }, hostname: func() (string, error) { return "replayhost", nil }}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Configure(context.Background(), []byte("dir = "+quote(abs))); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func decodeEvents(t *testing.T, raw [][]byte) []telemetry.Event {
	t.Helper()
	out := make([]telemetry.Event, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	return out
}

func TestInjectRebasesTheRecording(t *testing.T) {
	for _, via := range []string{"in-process", "grpc"} {
		t.Run(via, func(t *testing.T) {
			var inj plugin.Injector = newInjector(t, "testdata")
			if via == "grpc" {
				inj = plugintest.Injector(t, inj)
			}
			res, err := inj.Inject(context.Background(), plugin.InjectRequest{
				TestID: "sample-crontab", Marker: newMarker, Params: plugin.Params{"command": "crontab -l"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != plugin.OutcomeSucceeded || res.Error != "" {
				t.Fatalf("Outcome %s: %s", res.Outcome, res.Error)
			}
			if !res.StartedAt.Equal(replayNow) || !res.EndedAt.Equal(replayNow.Add(1500*time.Millisecond)) {
				t.Errorf("StartedAt, EndedAt = %s, %s, want now and now+1.5s", res.StartedAt, res.EndedAt)
			}
			wantLocs := []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField}
			if res.Host != "replayhost" || !slices.Equal(res.MarkerLocations, wantLocs) {
				t.Errorf("Host %q, MarkerLocations %v", res.Host, res.MarkerLocations)
			}
			evs := decodeEvents(t, res.Events)
			offsets := []time.Duration{0, 250 * time.Millisecond, 250 * time.Millisecond, 1500 * time.Millisecond}
			if len(evs) != len(offsets) {
				t.Fatalf("%d events, want %d", len(evs), len(offsets))
			}
			for i, ev := range evs {
				if !ev.Time.Equal(replayNow.Add(offsets[i])) {
					t.Errorf("event %d at %s, want now+%s", i, ev.Time, offsets[i])
				}
				if ev.Host != "replayhost" || ev.Sequence == 0 {
					t.Errorf("event %d: host %q, sequence %d", i, ev.Host, ev.Sequence)
				}
				b, _ := json.Marshal(ev)
				if bytes.Contains(b, []byte(recordedMarker)) {
					t.Errorf("event %d still holds the recorded marker: %s", i, b)
				}
			}
			if got := evs[1].Ancestry[1]; got != "/bin/sh -c crontab -l 2>/dev/null; true "+newMarker {
				t.Errorf("ancestry = %q", got)
			}
			if got := evs[3].Get("TargetFilename"); got != "/tmp/"+newMarker+"/out.txt" {
				t.Errorf("TargetFilename = %q", got)
			}
			if got := evs[2].Fields["key"]; !slices.Equal(got.([]string), []string{"vigil", "exec"}) {
				t.Errorf("list field = %#v", got)
			}
			var d details
			if err := json.Unmarshal(res.Details, &d); err != nil || d.RecordedMarker != recordedMarker || d.Events != 4 || !strings.HasSuffix(d.Recording, "testdata/sample-crontab.jsonl") {
				t.Errorf("Details = %s (%v)", res.Details, err)
			}
		})
	}
}

func TestInjectFailures(t *testing.T) {
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string // target dir
		req     plugin.InjectRequest
		outcome plugin.Outcome
		wantErr string
	}{
		{"missing recording, built-in", "", plugin.InjectRequest{TestID: "no-such-test", Marker: newMarker}, plugin.OutcomeFailed,
			`replay: no recording of test "no-such-test": built-in recordings rules/telemetry/no-such-test.jsonl does not exist (record one with ` + "`vigil record`)"},
		{"missing recording, target dir", "testdata", plugin.InjectRequest{TestID: "no-such-test", Marker: newMarker}, plugin.OutcomeFailed,
			`replay: no recording of test "no-such-test": ` + abs + "/no-such-test.jsonl does not exist (record one with `vigil record`)"},
		{"test param names the recording", "", plugin.InjectRequest{TestID: "sample-crontab", Marker: newMarker, Params: plugin.Params{"test": "other-test"}}, plugin.OutcomeFailed,
			`replay: no recording of test "other-test": built-in recordings rules/telemetry/other-test.jsonl does not exist`},
		{"dir param", "", plugin.InjectRequest{TestID: "nope", Marker: newMarker, Params: plugin.Params{"dir": "/nonexistent"}}, plugin.OutcomeFailed,
			`replay: no recording of test "nope": /nonexistent/nope.jsonl does not exist`},
		{"no marker", "testdata", plugin.InjectRequest{TestID: "sample-crontab"}, plugin.OutcomeRefused, "replay: request has no marker"},
		{"test id escaping the dir", "testdata", plugin.InjectRequest{TestID: "x", Marker: newMarker, Params: plugin.Params{"test": "../replay/testdata/sample-crontab"}}, plugin.OutcomeFailed,
			`replay: params: test: test id "../replay/testdata/sample-crontab" cannot name a recording file`},
		{"relative dir param", "", plugin.InjectRequest{TestID: "x", Marker: newMarker, Params: plugin.Params{"dir": "testdata"}}, plugin.OutcomeFailed,
			`replay: params: dir: "testdata" is not an absolute path`},
		{"param of the wrong type", "", plugin.InjectRequest{TestID: "x", Marker: newMarker, Params: plugin.Params{"test": 3}}, plugin.OutcomeFailed,
			"replay: params: test: want a string, got int"},
		{"not a recording", "testdata", plugin.InjectRequest{TestID: "not-a-recording", Marker: newMarker}, plugin.OutcomeFailed,
			`replay: recording of test "not-a-recording" (` + abs + `/not-a-recording.jsonl): line 1: not a vigil recording`},
		{"future format", "testdata", plugin.InjectRequest{TestID: "future-format", Marker: newMarker}, plugin.OutcomeFailed,
			"future-format.jsonl): line 1: recording format version 2, this vigil reads 1"},
		{"bad event line", "testdata", plugin.InjectRequest{TestID: "bad-event", Marker: newMarker}, plugin.OutcomeFailed,
			"bad-event.jsonl): line 3: invalid character 'o' in literal null"},
		{"no events", "testdata", plugin.InjectRequest{TestID: "header-only", Marker: newMarker}, plugin.OutcomeFailed,
			`replay: recording of test "header-only" (` + abs + `/header-only.jsonl) has no events`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := newInjector(t, tc.dir).Inject(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Inject error %v: failures are outcomes", err)
			}
			if res.Outcome != tc.outcome || !strings.Contains(res.Error, tc.wantErr) {
				t.Errorf("Outcome %s, Error %q; want %s, %q", res.Outcome, res.Error, tc.outcome, tc.wantErr)
			}
			if len(res.Events) != 0 {
				t.Errorf("%d events with a failed outcome", len(res.Events))
			}
		})
	}
}

func TestValidateAndConfigure(t *testing.T) {
	x := new(Injector)
	probs, err := x.Validate(context.Background(), plugin.ValidateRequest{Params: plugin.Params{
		"command": "ignored: the exec injector's", "test": "a/b", "dir": 7,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := plugin.Problems{
		{Subject: "test", Message: `test id "a/b" cannot name a recording file`},
		{Subject: "dir", Message: "want a string, got int"},
	}
	if !slices.Equal(probs, []plugin.Problem(want)) {
		t.Errorf("Validate = %v, want %v", probs, want)
	}

	for cfg, wantErr := range map[string]string{
		``:                  "",
		`dir = "/var/lib"`:  "",
		`dir = "rel"`:       `replay: config: dir "rel" is not an absolute path`,
		`dirs = "/x"`:       "replay: config: unknown keys dirs (known: dir)",
		`dir = 3`:           "replay: decode config: a key has the wrong type: incompatible types: TOML value has type int64",
		"[dir]\nx = 1\n":    "replay: decode config: a key has the wrong type",
		`test = "override"`: "replay: config: unknown keys test (known: dir)",
	} {
		err := x.Configure(context.Background(), []byte(cfg))
		if (wantErr == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), wantErr)) {
			t.Errorf("Configure(%q) = %v, want %q", cfg, err, wantErr)
		}
	}

	d, err := x.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "replay" || !slices.Equal(d.Platforms, []string{"linux", "any"}) || len(d.Params) != 2 {
		t.Errorf("Describe = %+v", d)
	}
	// Nothing to check, nothing to clean up.
	unmet, err := x.CheckPrerequisites(context.Background(), plugin.PrerequisitesRequest{ElevationRequired: true,
		Prerequisites: []plugin.Prerequisite{{Description: "crontab", Check: "false"}}})
	if err != nil || len(unmet) != 0 {
		t.Errorf("CheckPrerequisites = %v, %v", unmet, err)
	}
	if cr, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: newMarker}); err != nil || cr.Error != "" {
		t.Errorf("Cleanup = %+v, %v", cr, err)
	}
}

// roundTripEvents is a run of a marked shell among unrelated activity.
func roundTripEvents(t0 time.Time) []telemetry.Event {
	pc := telemetry.ProcessCreation
	return []telemetry.Event{
		{Time: t0.Add(-time.Second), Sequence: 9, Host: "h", Source: pc, // before the run, same pid reused later
			Fields: map[string]any{"Image": "/usr/bin/id", "CommandLine": "id", "ProcessId": "300", "ParentProcessId": "100"}},
		{Time: t0.Add(2 * time.Second), Sequence: 14, Host: "h", Source: telemetry.Auditd, // a grandchild seen only by pid
			Fields: map[string]any{"type": "SYSCALL", "syscall": "openat", "pid": "301", "ppid": "300"}},
		{Time: t0.Add(time.Second), Sequence: 12, Host: "h", Source: pc, // child whose ancestry the sensor lost
			Fields:   map[string]any{"Image": "/usr/bin/crontab", "CommandLine": "crontab -l", "ProcessId": "300", "ParentProcessId": "200"},
			Ancestry: []string{"crontab -l", "/bin/bash --login", "sshd: admin@pts/0"}},
		{Time: t0, Sequence: 10, Host: "h", Source: pc, // the marked shell
			Fields:   map[string]any{"Image": "/bin/sh", "CommandLine": "/bin/sh -c crontab -l " + recordedMarker, "ProcessId": "200", "ParentProcessId": "100"},
			Ancestry: []string{"/bin/sh -c crontab -l " + recordedMarker, "vigil record"}},
		{Time: t0.Add(time.Second), Sequence: 13, Host: "h", Source: pc, // unrelated
			Fields: map[string]any{"Image": "/usr/bin/ls", "CommandLine": "ls", "ProcessId": "400", "ParentProcessId": "1"}},
		{Time: t0.Add(3 * time.Second), Sequence: 15, Host: "h", Source: telemetry.FileEvent, // marker in a list field
			Fields: map[string]any{"TargetFilename": []string{"/tmp/" + recordedMarker + "/a"}, "ProcessId": "500"}},
	}
}

func TestRecordInjectRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	if err := telemetry.Record(&buf, "round-trip", recordedMarker, "h", roundTripEvents(t0)); err != nil {
		t.Fatalf("Record: %v", err)
	}
	rec, err := telemetry.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if rec.Version != 1 || rec.TestID != "round-trip" || rec.Marker != recordedMarker || rec.Host != "h" || rec.RecordedAt.IsZero() {
		t.Errorf("header = %+v", rec.Header)
	}
	var seqs []uint64
	for _, ev := range rec.Events {
		seqs = append(seqs, ev.Sequence)
	}
	// The marked shell, its child (by ppid), the grandchild (by ppid of the
	// child), and the list field; sorted by time. Not the earlier id nor ls.
	if want := []uint64{10, 12, 14, 15}; !slices.Equal(seqs, want) {
		t.Fatalf("recorded sequences %v, want %v", seqs, want)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "round-trip.jsonl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := newInjector(t, dir).Inject(context.Background(), plugin.InjectRequest{TestID: "round-trip", Marker: newMarker})
	if err != nil || res.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("Inject: %v %s %s", err, res.Outcome, res.Error)
	}
	evs := decodeEvents(t, res.Events)
	if len(evs) != 4 {
		t.Fatalf("%d events replayed, want 4", len(evs))
	}
	for i, want := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second} {
		if !evs[i].Time.Equal(replayNow.Add(want)) {
			t.Errorf("event %d at %s, want now+%s", i, evs[i].Time, want)
		}
	}
	if got := evs[0].Get("CommandLine"); got != "/bin/sh -c crontab -l "+newMarker {
		t.Errorf("CommandLine = %q", got)
	}
	// Ancestry is cut above the marked shell: nothing of what started the
	// recorded run is kept.
	wantAnc := [][]string{
		{"/bin/sh -c crontab -l " + newMarker},
		{"crontab -l"}, // no marker: only the process itself
		nil,
		nil,
	}
	for i, want := range wantAnc {
		if !slices.Equal(evs[i].Ancestry, want) {
			t.Errorf("event %d ancestry %q, want %q", i, evs[i].Ancestry, want)
		}
	}
	if got := evs[3].Fields["TargetFilename"]; !slices.Equal(got.([]string), []string{"/tmp/" + newMarker + "/a"}) {
		t.Errorf("list field = %#v", got)
	}

	if err := telemetry.Record(&buf, "round-trip", "vigil-absent", "h", roundTripEvents(t0)); !errors.Is(err, telemetry.ErrNoEvents) {
		t.Errorf("Record without marked events: %v, want ErrNoEvents", err)
	}
	if err := telemetry.Record(&buf, "../x", recordedMarker, "h", roundTripEvents(t0)); err == nil {
		t.Error("Record accepted a test id that cannot name a file")
	}
}

func TestReadEvents(t *testing.T) {
	t0 := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	for _, ev := range roundTripEvents(t0) {
		b, err := ev.MarshalJSONL()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n', '\n'))
	}
	evs, err := telemetry.ReadEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 6 || evs[3].Get("CommandLine") != "/bin/sh -c crontab -l "+recordedMarker {
		t.Errorf("ReadEvents = %+v", evs)
	}
	if _, err := telemetry.ReadEvents(strings.NewReader("{\"time\":\"2026-08-20T10:00:00Z\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestLoadMissingIsNotExist(t *testing.T) {
	if _, err := telemetry.Load(os.DirFS("testdata"), "absent"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing recording: %v, want fs.ErrNotExist", err)
	}
}

// TestReplayIntoLocalSIEM replays a recording through the local SIEM in
// replay mode, the way `vigil run --replay` does: the SigmaHQ crontab rule
// fires on the replayed event, at the replayed time, with the new marker.
func TestReplayIntoLocalSIEM(t *testing.T) {
	ctx := context.Background()
	inj := plugintest.Injector(t, newInjector(t, "testdata"))
	res, err := inj.Inject(ctx, plugin.InjectRequest{TestID: "sample-crontab", Marker: newMarker})
	if err != nil || res.Outcome != plugin.OutcomeSucceeded {
		t.Fatalf("Inject: %v %s %s", err, res.Outcome, res.Error)
	}
	siem := new(local.SIEM)
	if err := siem.Configure(ctx, []byte(`mode = "replay"`)); err != nil {
		t.Fatal(err)
	}
	defer siem.Close(ctx)
	ing, err := siem.Ingest(ctx, plugin.IngestRequest{Events: res.Events, Marker: newMarker})
	if err != nil || ing.Accepted != len(res.Events) {
		t.Fatalf("Ingest = %+v, %v", ing, err)
	}
	sr, err := siem.Search(ctx, plugin.SearchRequest{Start: res.StartedAt, End: res.EndedAt})
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range sr.Signals {
		if sg.RuleName != "Crontab Enumeration" {
			continue
		}
		if !sg.Timestamp.Equal(replayNow.Add(250*time.Millisecond)) || sg.Host != "replayhost" {
			t.Errorf("signal at %s on %q", sg.Timestamp, sg.Host)
		}
		if !slices.Contains(sg.MarkerValues, plugin.MarkerValue{Location: plugin.MarkerCommandLine, Value: "/bin/sh -c crontab -l 2>/dev/null; true " + newMarker}) {
			t.Errorf("signal lacks the new marker: %v", sg.MarkerValues)
		}
		return
	}
	t.Fatalf("no Crontab Enumeration signal among %d", len(sr.Signals))
}

// The session's replay hook gives a target config and inject params this
// injector reads as it says: the hook and the parsers agree on the keys.
func TestReplayerHook(t *testing.T) {
	name, r, ok := plugin.ReplayerPlugin()
	if !ok || name != Name {
		t.Fatalf("replayer %q registered (%v), want %q", name, ok, Name)
	}
	b, err := toml.Marshal(r.Target("/var/lib/vigil/recordings"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := parseConfig(b); err != nil || c.Dir != "/var/lib/vigil/recordings" {
		t.Errorf("target config %s: %+v, %v", b, c, err)
	}
	if p := r.Target(""); len(p) != 0 {
		t.Errorf("target for the built-in recordings %v, want no params", p)
	}
	p, probs := new(Injector).params(plugin.Params(r.Step("linux-cron-decoy-job")))
	if len(probs) > 0 || p.test != "linux-cron-decoy-job" {
		t.Errorf("step params %+v %v", p, probs)
	}
}
