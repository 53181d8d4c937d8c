package splunk

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/runner"
	"github.com/vigilsec/vigil/internal/awspack"
	"github.com/vigilsec/vigil/internal/plugintest"
	"github.com/vigilsec/vigil/internal/splunkfake"
	"github.com/vigilsec/vigil/plugins/injector/replay"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// The AWS pack replayed from its recordings through HEC as sourcetype
// aws:cloudtrail: the fake's correlation searches (the local SIEM's Sigma
// rules over the record, as searches over aws:cloudtrail read it) raise
// notables. Every test is detected, tied by the marker in user_agent.
func TestEndToEndAWSPackReplay(t *testing.T) {
	tests := awspack.Tests(t, 10*time.Second)
	f := splunkfake.New(t)
	f.SetDetect(detect.NewEngine(awspack.Rules(t)), 500*time.Millisecond)
	s, _ := configured(t, f, "")
	ctx := t.Context()
	d, _ := s.Describe(ctx)
	inj := new(replay.Injector)
	id, _ := inj.Describe(ctx)
	e := &runner.Engine{
		SIEMs:   []*runner.SIEM{{Name: "splunk", Plugin: Name, Impl: s, Desc: d, PollInterval: 200 * time.Millisecond, Timeout: 5 * time.Second}},
		Targets: []*runner.Target{{Name: "replay", Plugin: "aws", Impl: inj, Desc: id, TmpRoot: t.TempDir()}},
		Opts:    runner.Options{Concurrency: 11},
	}
	rs := plugintest.RunEngine(t, e, tests...)
	if len(rs) != len(tests) || len(tests) < 10 {
		t.Fatalf("%d results for %d tests", len(rs), len(tests))
	}
	for tid, r := range rs {
		if r.Status != measure.Detected || !strings.HasPrefix(r.Correlation, "marker:") {
			t.Errorf("%s: %s (%s%s), correlation %q; want detected by marker", tid, r.Status, r.Error, r.Reason, r.Correlation)
		}
	}
	for _, r := range f.Requests("POST", "/services/collector/event") {
		if !strings.Contains(string(r.Body), `"sourcetype":"aws:cloudtrail"`) {
			t.Errorf("a HEC batch without sourcetype aws:cloudtrail: %.200s", r.Body)
		}
	}
}
