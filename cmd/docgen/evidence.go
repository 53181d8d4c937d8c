package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/siem/local"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// entry is one test of the catalog with what the docs say of it.
type entry struct {
	test *catalog.Test
	// platform is the catalog directory the test lives in
	// (techniques/<platform>/...): the pack it belongs to.
	platform string
	// rec is the test's recorded telemetry; nil when it has none.
	rec *telemetry.Recording
	// fired are the rules that fire on rec, by title.
	fired []firing
	// claiming are the rules tagged with the test's technique (or its
	// parent) that read rec's logsources and do not fire on it.
	claiming []*detect.Rule
}

// firing is a rule that fires on a test's recording.
type firing struct {
	rule *detect.Rule
	// events counts the recorded events it fires on.
	events int
	// hit: the rule matches one of the test's expectations (technique,
	// rule name, rule id): for a test that expects a signal, the rule
	// detects it; for a benign look-alike, it makes the test noisy.
	hit bool
}

// page is the entry's page, relative to the docs directory.
func (e *entry) page() string { return "techniques/" + e.platform + "/" + e.test.ID + ".md" }

// negative reports whether the test is a benign look-alike: every
// expectation is absent.
func (e *entry) negative() bool {
	for _, x := range e.test.Expect {
		if !x.Absent {
			return false
		}
	}
	return true
}

// hits counts the firing rules that match an expectation.
func (e *entry) hits() int {
	n := 0
	for _, f := range e.fired {
		if f.hit {
			n++
		}
	}
	return n
}

// proven: the test expects a signal and a rule that meets the expectation
// fires on its recording; for a benign look-alike, no rule it must not
// raise fires.
func (e *entry) proven() bool {
	if e.rec == nil {
		return false
	}
	if e.negative() {
		return e.hits() == 0
	}
	return e.hits() > 0
}

// collect loads the built-in catalog, the local SIEM's default rules and
// the recordings, and replays each test's recording through the rules.
func collect() ([]*entry, error) {
	cat, err := catalog.Load(catalog.Embedded())
	if err != nil {
		return nil, err
	}
	rs, err := local.DefaultRules()
	if err != nil {
		return nil, err
	}
	eng := detect.NewEngine(rs)
	tel, err := fs.Sub(rules.Telemetry, rules.TelemetryRoot)
	if err != nil {
		return nil, err
	}
	var out []*entry
	for _, t := range cat.Tests {
		e := &entry{test: t, platform: platformOf(t)}
		rec, err := telemetry.Load(tel, t.ID)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("recording of %s: %w", t.ID, err)
		default:
			e.rec = rec
		}
		e.evaluate(eng, rs)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].platform != out[j].platform {
			return out[i].platform < out[j].platform
		}
		return out[i].test.ID < out[j].test.ID
	})
	return out, nil
}

// platformOf is the catalog directory below techniques/ that holds t.
func platformOf(t *catalog.Test) string {
	p := path.Clean(strings.ReplaceAll(t.Source.File, `\`, "/"))
	if _, rest, ok := strings.Cut(p, rules.TechniquesRoot+"/"); ok {
		if dir, _, ok := strings.Cut(rest, "/"); ok {
			return dir
		}
	}
	return "other"
}

// evaluate fills fired and claiming.
func (e *entry) evaluate(eng *detect.Engine, all []*detect.Rule) {
	count := map[*detect.Rule]int{}
	if e.rec != nil {
		var ms []detect.Match
		for i := range e.rec.Events {
			ms = eng.AppendMatches(ms[:0], &e.rec.Events[i])
			for _, m := range ms {
				count[m.Rule]++
			}
		}
	}
	for r, n := range count {
		e.fired = append(e.fired, firing{rule: r, events: n, hit: e.meets(r)})
	}
	sort.Slice(e.fired, func(i, j int) bool {
		a, b := e.fired[i], e.fired[j]
		if a.hit != b.hit {
			return a.hit
		}
		return ruleLess(a.rule, b.rule)
	})
	// Only rules that read what the recording holds can be silent on it:
	// a CloudTrail rule tagged T1005 says nothing of a Linux recording.
	products := map[string]bool{}
	if e.rec != nil {
		for i := range e.rec.Events {
			products[e.rec.Events[i].Source.Product] = true
		}
	}
	for _, r := range all {
		if count[r] == 0 && tagged(r, e.test.Technique.ID) && (len(products) == 0 || products[r.Logsource.Product]) {
			e.claiming = append(e.claiming, r)
		}
	}
	sort.Slice(e.claiming, func(i, j int) bool { return ruleLess(e.claiming[i], e.claiming[j]) })
}

// meets reports whether a signal of r matches one of the test's
// expectations, as the local SIEM's signals are matched: by technique tag,
// and by rule name or id when the expectation names one.
func (e *entry) meets(r *detect.Rule) bool {
	for _, x := range e.test.Expect {
		if !tagged(r, x.Technique) {
			continue
		}
		if x.Rule != "" && !strings.EqualFold(x.Rule, r.Title) {
			continue
		}
		if x.RuleID != "" && x.RuleID != r.ID {
			continue
		}
		return true
	}
	return false
}

// tagged reports whether r's technique tags cover want.
func tagged(r *detect.Rule, want attack.TechniqueID) bool {
	for _, t := range r.Techniques {
		if attack.TechniqueID(t).Covers(want) {
			return true
		}
	}
	return false
}

// ruleLess orders vigil's own rules first, then by title.
func ruleLess(a, b *detect.Rule) bool {
	if own(a) != own(b) {
		return own(a)
	}
	if a.Title != b.Title {
		return a.Title < b.Title
	}
	return a.ID < b.ID
}

// own reports whether r is one of vigil's own rules (not SigmaHQ's).
func own(r *detect.Rule) bool { return r.Link == "" }
