// Package replay is vigil's built-in "replay" injector: instead of
// performing a test's technique, it replays the telemetry a real run of the
// test produced, recorded by `vigil record` (see Record and the format in
// rules/telemetry/README.md).
//
// Inject reads <test-id>.jsonl from the recordings directory (default: the
// recordings shipped in the binary, rules/telemetry), re-timestamps the
// events so that the first one happens now (keeping their offsets), replaces
// the recorded run marker with the new one wherever it appears, sets the
// local host name, and returns the events in InjectResult.Events. The engine
// ingests them into the SIEMs that can ingest (the local SIEM in replay
// mode), which then detect the technique from the replayed telemetry as they
// would from the live one. Nothing is executed and nothing needs cleaning
// up, so replays need no privilege.
//
// Params: "test" (the test whose recording to replay; default the test being
// run) and "dir" (a recordings directory; default the target's dir, else the
// built-in recordings). Any other param belongs to the injector whose run was
// recorded and is ignored, so a test written for the exec injector replays
// unchanged.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/rules"
)

// Name is the injector's registered name.
const Name = "replay"

// Version is the injector's version, reported by Describe.
const Version = "0.1.0"

// maxEventsBytes bounds the replayed events of one injection: they travel
// back over gRPC, whose default message limit is 4 MiB.
const maxEventsBytes = 3 << 20

func init() {
	plugin.RegisterInjector(Name, func() plugin.Injector { return new(Injector) })
	plugin.RegisterReplayer(Name, replayer{})
}

// The target config key and the inject param the session's replay sets.
const (
	keyDir  = "dir"
	keyTest = "test"
)

// replayer is the replay injector's typed session hook (plugin.Replayer).
type replayer struct{}

var _ plugin.Replayer = replayer{}

// Target replays the recordings of dir, or the built-in ones.
func (replayer) Target(dir string) map[string]any {
	if dir == "" {
		return nil
	}
	return map[string]any{keyDir: dir}
}

// Step replays the recording of test testID.
func (replayer) Step(testID string) map[string]any {
	return map[string]any{keyTest: testID}
}

// Interface guards.
var _ plugin.Injector = (*Injector)(nil)

// Injector replays recorded telemetry. The zero value replays the built-in
// recordings; its methods are safe for concurrent use.
type Injector struct {
	sdk.InjectorBase // no prerequisites to check, nothing to close

	mu  sync.Mutex
	dir string // the target's recordings dir; "" for the built-in ones

	// now and hostname are time.Now and os.Hostname; tests replace them.
	now      func() time.Time
	hostname func() (string, error)
}

// Describe says what the injector is.
func (x *Injector) Describe(ctx context.Context) (plugin.Description, error) {
	return plugin.Description{
		Name:            Name,
		Kind:            plugin.KindInjector,
		Version:         Version,
		ProtocolVersion: plugin.ProtocolVersion,
		Summary:         "Replays a test's recorded telemetry (re-timestamped, with the new run marker) into SIEMs that ingest, instead of performing the technique.",
		Platforms:       []string{"linux", "any"},
		Params: []plugin.ParamSpec{
			{Name: "test", Type: "string", Description: "test whose recording to replay (default: the test being run)"},
			{Name: "dir", Type: "string", Description: "directory of <test-id>.jsonl recordings (default: the target's dir, else the built-in recordings)"},
		},
		MarkerLocations: []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField, plugin.MarkerUserAgent},
	}, nil
}

// Configure decodes the target's params strictly: "dir", the default
// recordings directory. Unknown keys are errors.
func (x *Injector) Configure(ctx context.Context, b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dir = c.Dir
	return nil
}

// Validate checks the test and dir params; other params are ignored.
func (x *Injector) Validate(ctx context.Context, req plugin.ValidateRequest) ([]plugin.Problem, error) {
	_, probs := x.params(req.Params)
	return probs, nil
}

// params reads the test and dir params.
func (x *Injector) params(p plugin.Params) (params, []plugin.Problem) {
	var (
		out   params
		probs []plugin.Problem
	)
	for _, name := range []string{keyTest, keyDir} {
		v, ok := p[name]
		if !ok {
			continue
		}
		s, isString := v.(string)
		if !isString {
			probs = append(probs, plugin.Problem{Subject: name, Message: fmt.Sprintf("want a string, got %T", v)})
			continue
		}
		switch name {
		case keyTest:
			if err := telemetry.CheckTestID(s); err != nil {
				probs = append(probs, plugin.Problem{Subject: name, Message: err.Error()})
			}
			out.test = s
		case keyDir:
			if !filepath.IsAbs(s) {
				probs = append(probs, plugin.Problem{Subject: name, Message: fmt.Sprintf("%q is not an absolute path", s)})
			}
			out.dir = s
		}
	}
	return out, probs
}

type params struct {
	test, dir string
}

// details is InjectResult.Details.
type details struct {
	Recording      string    `json:"recording"`
	RecordedMarker string    `json:"recorded_marker"`
	RecordedHost   string    `json:"recorded_host"`
	RecordedAt     time.Time `json:"recorded_at"`
	Events         int       `json:"events"`
}

// Inject replays the recording of the test. A missing or unreadable
// recording is Outcome failed, with an error naming the test and the file.
func (x *Injector) Inject(ctx context.Context, req plugin.InjectRequest) (plugin.InjectResult, error) {
	now := x.clock()
	res := plugin.InjectResult{StartedAt: now, EndedAt: now}
	fail := func(o plugin.Outcome, format string, args ...any) (plugin.InjectResult, error) {
		res.Outcome, res.Error = o, fmt.Sprintf(format, args...)
		return res, nil
	}
	if req.Marker == "" {
		return fail(plugin.OutcomeRefused, "replay: request has no marker")
	}
	p, probs := x.params(req.Params)
	if len(probs) > 0 {
		return fail(plugin.OutcomeFailed, "replay: params: %v", plugin.Problems(probs))
	}
	test := p.test
	if test == "" {
		test = req.TestID
	}
	if err := telemetry.CheckTestID(test); err != nil {
		return fail(plugin.OutcomeFailed, "replay: %v", err)
	}
	fsys, where := x.recordings(p.dir)
	file := path.Join(where, test+telemetry.Ext)
	rec, err := telemetry.Load(fsys, test)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(plugin.OutcomeFailed, "replay: no recording of test %q: %s does not exist (record one with `vigil record`)", test, file)
	case err != nil:
		return fail(plugin.OutcomeFailed, "replay: recording of test %q (%s): %v", test, file, err)
	case len(rec.Events) == 0:
		return fail(plugin.OutcomeFailed, "replay: recording of test %q (%s) has no events", test, file)
	}
	host, err := x.host()
	if err != nil {
		return fail(plugin.OutcomeFailed, "replay: host name: %v", err)
	}

	evs := rec.Rebase(now, req.Marker, host)
	size := 0
	for i := range evs {
		b, err := evs[i].MarshalJSONL()
		if err != nil {
			return fail(plugin.OutcomeFailed, "replay: %s: %v", file, err)
		}
		if size += len(b); size > maxEventsBytes {
			return fail(plugin.OutcomeFailed, "replay: recording of test %q (%s) is too large to replay (over %d bytes of events)", test, file, maxEventsBytes)
		}
		res.Events = append(res.Events, b)
	}
	res.StartedAt, res.EndedAt = evs[0].Time, evs[len(evs)-1].Time
	res.Outcome = plugin.OutcomeSucceeded
	res.Host = host
	res.MarkerLocations = []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerFilePath, plugin.MarkerLogField}
	// Kubernetes audit events and CloudTrail records carry the marker in
	// the caller's User-Agent.
	for i := range evs {
		if strings.Contains(evs[i].Get("userAgent"), req.Marker) {
			res.MarkerLocations = append(res.MarkerLocations, plugin.MarkerUserAgent)
			break
		}
	}
	res.Stdout = fmt.Appendf(nil, "replayed %d events of test %s recorded on %s at %s\n", len(evs), rec.TestID, rec.Host, rec.RecordedAt.Format(time.RFC3339))
	res.Details, _ = json.Marshal(details{
		Recording: file, RecordedMarker: rec.Marker, RecordedHost: rec.Host, RecordedAt: rec.RecordedAt, Events: len(evs),
	})
	return res, nil
}

// Cleanup has nothing to undo: a replay changes nothing on the host.
func (x *Injector) Cleanup(ctx context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	return plugin.CleanupResult{}, nil
}

// recordings returns the recordings directory to read (the param's, else
// the target's, else the built-in one) and its name for messages.
func (x *Injector) recordings(dir string) (fs.FS, string) {
	if dir == "" {
		x.mu.Lock()
		dir = x.dir
		x.mu.Unlock()
	}
	if dir != "" {
		return os.DirFS(dir), dir
	}
	sub, err := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub, "built-in recordings rules/" + rules.TelemetryRoot
}

func (x *Injector) clock() time.Time {
	if x.now != nil {
		return x.now()
	}
	return time.Now()
}

func (x *Injector) host() (string, error) {
	if x.hostname != nil {
		return x.hostname()
	}
	return os.Hostname()
}

// Config is the target's params table for the replay injector, for example
//
//	[[target]]
//	name = "replay"
//	plugin = "replay"
//	[target.params]
//	dir = "/var/lib/vigil/recordings"
//
// Unknown keys are errors.
type Config struct {
	// Dir is the default directory of <test-id>.jsonl recordings (absolute;
	// default: the built-in recordings).
	Dir string `toml:"dir"` // keyDir
}

func parseConfig(b []byte) (Config, error) {
	var c Config
	if err := plugin.DecodeConfig("replay", b, &c); err != nil {
		return c, err
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		return c, fmt.Errorf("replay: config: dir %q is not an absolute path", c.Dir)
	}
	return c, nil
}
