package elasticfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// qerr is a request the fake refuses, as Elasticsearch would.
type qerr struct{ typ, reason string }

// kibanaSearchKeys are the body keys Kibana's alert search accepts; it
// drops the others silently (so a search_after sent to Kibana is lost).
var kibanaSearchKeys = map[string]bool{"query": true, "aggs": true, "size": true, "track_total_hits": true,
	"_source": true, "fields": true, "runtime_mappings": true, "sort": true}

// hit is a document a search matched, with the names of the named queries
// it matched and its sort values.
type hit struct {
	d     *storedDoc
	named []string
	keys  []any
}

// sortKey is one clause of a search's sort.
type sortKey struct {
	field string
	desc  bool
}

// search runs a search body over the indices matching pattern (a
// comma-separated list of names or globs): the answer, or the HTTP status
// and the error.
func (f *Fake) search(pattern string, body []byte, kibana bool) (map[string]any, int, *qerr) {
	req := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		m, err := decode(body)
		if err != nil {
			return nil, 400, &qerr{"parsing_exception", "request body is not a JSON object"}
		}
		req = m
	}
	if kibana {
		for k := range req {
			if !kibanaSearchKeys[k] {
				delete(req, k)
			}
		}
	}
	docs, names, qe := f.resolve(pattern)
	if qe != nil {
		return nil, 404, qe
	}
	hits, qe := match(docs, req)
	if qe != nil {
		return nil, 400, qe
	}
	keys, qe := sortKeys(req, hits)
	if qe != nil {
		return nil, 400, qe
	}
	sortHits(hits, keys)
	f.mu.Lock()
	ignoreAfter := f.ignoreSearchAfter
	f.mu.Unlock()
	if after, ok := req["search_after"].([]any); ok && !ignoreAfter {
		if len(after) != len(keys) {
			return nil, 400, &qerr{"illegal_argument_exception", "search_after has " + strconv.Itoa(len(after)) + " value(s) but sort has " + strconv.Itoa(len(keys))}
		}
		hits = searchAfter(hits, keys, after)
	}
	size := 10
	if n, ok := req["size"].(json.Number); ok {
		v, _ := n.Int64()
		size = int(v)
	}
	if len(hits) > size {
		hits = hits[:size]
	}
	return f.answer(hits, len(keys) > 0, len(names)), 200, nil
}

// resolve returns the documents of the indices matching pattern and the
// names of those indices; a missing concrete index is an error.
func (f *Fake) resolve(pattern string) ([]*storedDoc, []string, *qerr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var docs []*storedDoc
	var names []string
	for _, pat := range strings.Split(pattern, ",") {
		found := false
		for name, ds := range f.indices {
			if ok, _ := path.Match(pat, name); ok || name == pat {
				found = true
				names = append(names, name)
				docs = append(docs, ds...)
			}
		}
		if !found && !strings.ContainsAny(pat, "*?") {
			return nil, nil, &qerr{"index_not_found_exception", "no such index [" + pat + "]"}
		}
	}
	return docs, names, nil
}

// match returns the visible documents the request's query matches.
func match(docs []*storedDoc, req map[string]any) ([]hit, *qerr) {
	now := time.Now()
	var hits []hit
	for _, d := range docs {
		if now.Before(d.visibleAt) {
			continue
		}
		var named []string
		ok := true
		if q, has := req["query"]; has {
			var err *qerr
			ok, err = evalQuery(q, d, &named)
			if err != nil {
				return nil, err
			}
		}
		if ok {
			hits = append(hits, hit{d: d, named: named})
		}
	}
	return hits, nil
}

// sortKeys reads the request's sort and sets each hit's sort values. A
// field no hit has is refused unless the clause sets unmapped_type.
func sortKeys(req map[string]any, hits []hit) ([]sortKey, *qerr) {
	sorts, _ := req["sort"].([]any)
	var keys []sortKey
	for _, s := range sorts {
		clause, _ := s.(map[string]any)
		for field, spec := range clause {
			sk := sortKey{field: field}
			unmapped := false
			if sm, ok := spec.(map[string]any); ok {
				sk.desc = sm["order"] == "desc"
				_, unmapped = sm["unmapped_type"]
			}
			if field != "_id" && !unmapped && len(hits) > 0 && !anyHas(hits, field) {
				return nil, &qerr{"query_shard_exception", "No mapping found for [" + field + "] in order to sort on"}
			}
			keys = append(keys, sk)
		}
	}
	for i := range hits {
		for _, k := range keys {
			hits[i].keys = append(hits[i].keys, sortValue(hits[i].d, k.field))
		}
	}
	return keys, nil
}

func anyHas(hits []hit, field string) bool {
	for _, h := range hits {
		if len(values(h.d.src, field)) > 0 {
			return true
		}
	}
	return false
}

func sortHits(hits []hit, keys []sortKey) {
	sort.SliceStable(hits, func(i, j int) bool {
		for n, k := range keys {
			if c := compareAny(hits[i].keys[n], hits[j].keys[n]); c != 0 {
				return (c < 0) != k.desc
			}
		}
		return false
	})
}

// searchAfter keeps the hits that sort after the cursor.
func searchAfter(hits []hit, keys []sortKey, after []any) []hit {
	var rest []hit
	for _, h := range hits {
		c := 0
		for n := range keys {
			if c = compareAny(h.keys[n], normalize(after[n])); c != 0 {
				if keys[n].desc {
					c = -c
				}
				break
			}
		}
		if c > 0 {
			rest = append(rest, h)
		}
	}
	return rest
}

// answer renders a search answer as Elasticsearch shapes it.
func (f *Fake) answer(hits []hit, sorted bool, indices int) map[string]any {
	out := []any{}
	for _, h := range hits {
		m := map[string]any{"_index": f.indexOf(h.d), "_id": h.d.id, "_score": nil, "_source": json.RawMessage(h.d.raw)}
		if sorted {
			m["sort"] = h.keys
		}
		if len(h.named) > 0 {
			m["matched_queries"] = h.named
		}
		out = append(out, m)
	}
	return map[string]any{
		"took": 2, "timed_out": false,
		"_shards": map[string]any{"total": max(1, indices), "successful": max(1, indices), "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": len(out), "relation": "eq"}, "max_score": nil, "hits": out},
	}
}

// indexOf names the concrete index of a stored document: the alerts
// indices are aliases of .internal ones.
func (f *Fake) indexOf(d *storedDoc) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, ds := range f.indices {
		for _, x := range ds {
			if x == d {
				if strings.HasPrefix(name, ".alerts-security.alerts-") {
					return ".internal" + name + "-000001"
				}
				return name
			}
		}
	}
	return ""
}

// sortValue is a document's sort value for field: epoch milliseconds for
// @timestamp, else the string.
func sortValue(d *storedDoc, field string) any {
	if field == "_id" {
		return d.id
	}
	s := first(d.src, field)
	if field == "@timestamp" {
		if t, err := parseDate(s); err == nil {
			return t.UnixMilli()
		}
	}
	return s
}

func normalize(v any) any {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
	}
	return v
}

// compareAny compares two sort values: numerically when both are
// integers, else as strings.
func compareAny(a, b any) int {
	ai, aok := a.(int64)
	bi, bok := b.(int64)
	if aok && bok {
		switch {
		case ai < bi:
			return -1
		case ai > bi:
			return 1
		}
		return 0
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
