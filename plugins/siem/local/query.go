package local

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// maxCachedQueries bounds the parsed native queries kept; the cache starts
// over when it is full.
const maxCachedQueries = 4096

// queryCache keeps parsed native queries and the engine of the last set of
// queries searched. It is safe for concurrent use.
type queryCache struct {
	mu      sync.Mutex
	parsed  map[string]parsedQuery // key: expectation ID + NUL + query
	lastKey string
	last    *queryEngine
}

type parsedQuery struct {
	rule *detect.Rule
	err  error
}

// queryEngine evaluates a set of native queries at once.
type queryEngine struct {
	engine *detect.Engine
	expID  map[*detect.Rule]string
}

func newQueryCache() *queryCache {
	return &queryCache{parsed: map[string]parsedQuery{}}
}

// rule returns the Sigma rule of expectation expID's native query q.
func (c *queryCache) rule(expID, q string) (*detect.Rule, error) {
	key := expID + "\x00" + q
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.parsed[key]; ok {
		return p.rule, p.err
	}
	r, err := parseQuery(expID, q)
	if len(c.parsed) >= maxCachedQueries {
		clear(c.parsed)
	}
	c.parsed[key] = parsedQuery{r, err}
	return r, err
}

// engineFor returns the engine of the queries of exps that parse (nil when
// none does).
func (c *queryCache) engineFor(exps []plugin.Expectation) *queryEngine {
	type item struct {
		expID string
		rule  *detect.Rule
	}
	var items []item
	for _, e := range exps {
		if e.Query == "" {
			continue
		}
		if r, err := c.rule(e.ID, e.Query); err == nil {
			items = append(items, item{e.ID, r})
		}
	}
	if len(items) == 0 {
		return nil
	}
	sort.Slice(items, func(i, j int) bool { return items[i].expID < items[j].expID })
	var key strings.Builder
	for _, it := range items {
		fmt.Fprintf(&key, "%p\x00", it.rule)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.lastKey == key.String() {
		return c.last
	}
	qe := &queryEngine{expID: map[*detect.Rule]string{}}
	rules := make([]*detect.Rule, len(items))
	for i, it := range items {
		rules[i] = it.rule
		qe.expID[it.rule] = it.expID
	}
	qe.engine = detect.NewEngine(rules)
	c.lastKey, c.last = key.String(), qe
	return qe
}

// parseQuery turns a native query into a Sigma rule. The query is a Sigma
// rule in YAML with at least logsource and detection; a missing title or id
// is filled in from the expectation ID.
func parseQuery(expID, q string) (*detect.Rule, error) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(q), &doc); err != nil {
		return nil, fmt.Errorf("query: not a Sigma rule: yaml: %w", err)
	}
	switch {
	case doc == nil:
		return nil, fmt.Errorf("query: empty")
	case doc["logsource"] == nil:
		return nil, fmt.Errorf("query: no logsource (for example product: linux, category: process_creation)")
	case doc["detection"] == nil:
		return nil, fmt.Errorf("query: no detection")
	}
	if doc["title"] == nil {
		doc["title"] = "vigil query " + expID
	}
	if doc["id"] == nil {
		doc["id"] = expID
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	r, prob := detect.ParseRule("query "+expID, b, "")
	if prob != nil {
		return nil, fmt.Errorf("query: %s: %s", prob.Reason, prob.Detail)
	}
	return r, nil
}

// querySignals evaluates the native queries of req's expectations against
// the raw events of req's window.
func (st *state) querySignals(req plugin.SearchRequest) []plugin.Signal {
	qe := st.queries.engineFor(req.Expectations)
	if qe == nil {
		return nil
	}
	// Collect first: the rules run without the store locked.
	var evs []*telemetry.Event
	st.store.eachEvent(req.Start, req.End, func(e storedEvent) bool {
		evs = append(evs, e.ev)
		return true
	})
	var (
		out []plugin.Signal
		buf []detect.Match
	)
	for _, ev := range evs {
		buf = qe.engine.AppendMatches(buf[:0], ev)
		for _, m := range buf {
			sig := newSignal(m.Rule, m.Searches, ev, qe.expID[m.Rule])
			if len(sig.Techniques) == 0 {
				for _, e := range req.Expectations {
					if e.ID == qe.expID[m.Rule] && e.Technique != "" {
						sig.Techniques = []string{e.Technique}
					}
				}
			}
			out = append(out, sig)
		}
	}
	return out
}
