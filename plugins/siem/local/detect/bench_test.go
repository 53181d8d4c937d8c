package detect

// Benchmark figures: filled in below after measuring.

import (
	"os"
	"testing"

	"github.com/vigilsec/vigil/plugins/siem/local/event"
)

// benchSetup loads the whole SigmaHQ Linux ruleset and the recorded corpus.
func benchSetup(b *testing.B) ([]*Rule, []*event.Event) {
	b.Helper()
	rs, err := Load(os.DirFS(sigmaHQDir))
	if err != nil {
		b.Fatal(err)
	}
	return rs.Rules, readEvents(b, eventsFile)
}

// BenchmarkIndexed runs the indexed Engine over the recorded corpus.
func BenchmarkIndexed(b *testing.B) {
	rules, evs := benchSetup(b)
	e := NewEngine(rules)
	var dst []Match
	n, hits := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, ev := range evs {
			dst = e.AppendMatches(dst[:0], ev)
			hits += len(dst)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(hits)/float64(n), "matches/event")
}

// BenchmarkPlainLoop evaluates every sigma-go evaluator of the event's
// logsource for each event of the recorded corpus.
func BenchmarkPlainLoop(b *testing.B) {
	rules, evs := benchSetup(b)
	src := bySource(rules)
	n, hits := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, ev := range evs {
			hits += len(plainBySource(src, ev))
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(hits)/float64(n), "matches/event")
}
