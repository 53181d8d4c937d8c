package elasticfake

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The fake evaluates the subset of the query DSL the plugin sends: bool
// (filter, must, must_not, should, minimum_should_match), match_all,
// range, term, prefix, wildcard, match_phrase, exists, ids and a small
// query_string, with named queries (_name) reported in matched_queries.
// Any other clause is refused as Elasticsearch refuses an unknown one.

// evalQuery evaluates a query object on d, collecting the names of the
// named queries that match.
func evalQuery(q any, d *storedDoc, named *[]string) (bool, *qerr) {
	qm, ok := q.(map[string]any)
	if !ok || len(qm) != 1 {
		return false, &qerr{"parsing_exception", "query malformed, must start with start_object"}
	}
	for kind, body := range qm {
		bm, _ := body.(map[string]any)
		name, _ := bm["_name"].(string)
		ok, err := evalClause(kind, bm, d, named)
		if err != nil {
			return false, err
		}
		if ok && name != "" {
			*named = append(*named, name)
		}
		return ok, nil
	}
	return false, nil
}

func evalClause(kind string, bm map[string]any, d *storedDoc, named *[]string) (bool, *qerr) {
	switch kind {
	case "match_all":
		return true, nil
	case "bool":
		return evalBool(bm, d, named)
	case "range":
		field, spec := fieldSpec(bm)
		sm, _ := spec.(map[string]any)
		format, _ := sm["format"].(string)
		return anyValue(d, field, func(v string) bool { return inRange(field, v, sm, format) }), nil
	case "term", "prefix", "wildcard", "match_phrase":
		field, spec := fieldSpec(bm)
		return anyValue(d, field, leaf(kind, spec)), nil
	case "exists":
		return len(values(d.src, fmt.Sprint(bm["field"]))) > 0, nil
	case "ids":
		for _, v := range asList(bm["values"]) {
			if v == d.id {
				return true, nil
			}
		}
		return false, nil
	case "query_string":
		return queryString(fmt.Sprint(bm["query"]), d)
	}
	return false, &qerr{"parsing_exception", "unknown query [" + kind + "]"}
}

// evalBool evaluates a bool query. Every filter and must clause is
// evaluated (named ones are collected) before the answer; should clauses
// must match minimum_should_match times (1 by default when there is no
// filter or must).
func evalBool(bm map[string]any, d *storedDoc, named *[]string) (bool, *qerr) {
	all := func(key string) (bool, *qerr) {
		res := true
		for _, c := range asList(bm[key]) {
			ok, err := evalQuery(c, d, named)
			if err != nil {
				return false, err
			}
			res = res && ok
		}
		return res, nil
	}
	for _, key := range []string{"filter", "must"} {
		if ok, err := all(key); err != nil || !ok {
			return false, err
		}
	}
	for _, c := range asList(bm["must_not"]) {
		var ignore []string
		ok, err := evalQuery(c, d, &ignore)
		if err != nil || ok {
			return false, err
		}
	}
	should := asList(bm["should"])
	msm := 0
	if len(should) > 0 && bm["filter"] == nil && bm["must"] == nil {
		msm = 1
	}
	if n, ok := bm["minimum_should_match"].(json.Number); ok {
		v, _ := n.Int64()
		msm = int(v)
	}
	hits := 0
	for _, c := range should {
		ok, err := evalQuery(c, d, named)
		if err != nil {
			return false, err
		}
		if ok {
			hits++
		}
	}
	return hits >= msm, nil
}

// leaf returns the test a term, prefix, wildcard or match_phrase clause
// makes of one value of its field.
func leaf(kind string, spec any) func(v string) bool {
	sm, _ := spec.(map[string]any)
	ci := sm["case_insensitive"] == true
	want := fmt.Sprint(sm["value"])
	switch kind {
	case "term":
		if sm == nil {
			want = fmt.Sprint(spec)
		}
		return func(v string) bool { return v == want || (ci && strings.EqualFold(v, want)) }
	case "prefix":
		return func(v string) bool {
			return strings.HasPrefix(v, want) || (ci && strings.HasPrefix(strings.ToLower(v), strings.ToLower(want)))
		}
	case "wildcard":
		re := wildcardRE(want)
		return re.MatchString
	default: // match_phrase
		phrase := strings.ToLower(fmt.Sprint(spec))
		return func(v string) bool { return strings.Contains(strings.ToLower(v), phrase) }
	}
}

// anyValue reports whether some value of the field passes ok.
func anyValue(d *storedDoc, field string, ok func(v string) bool) bool {
	for _, v := range strs(d.src, field) {
		if ok(v) {
			return true
		}
	}
	return false
}

// fieldSpec splits a leaf clause {"field": value-or-object} (ignoring
// _name).
func fieldSpec(bm map[string]any) (string, any) {
	for k, v := range bm {
		if k != "_name" {
			return k, v
		}
	}
	return "", nil
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

// inRange checks one value against a range clause's bounds: dates (the
// @timestamp field and fields named *_time) to the millisecond, in the
// clause's format, else strings.
func inRange(field, v string, sm map[string]any, format string) bool {
	cmp := func(bound any) int {
		b := fmt.Sprint(bound)
		if field == "@timestamp" || strings.HasSuffix(field, "_time") {
			dv, err1 := parseDate(v)
			var db time.Time
			var err2 error
			if format == "epoch_millis" {
				ms, err := strconv.ParseInt(b, 10, 64)
				db, err2 = time.UnixMilli(ms), err
			} else {
				db, err2 = parseDate(b)
			}
			if err1 == nil && err2 == nil {
				// Elasticsearch dates have millisecond precision.
				return compareAny(dv.UnixMilli(), db.UnixMilli())
			}
		}
		return strings.Compare(v, b)
	}
	for op, bound := range sm {
		c := 0
		switch op {
		case "gt", "gte", "lt", "lte":
			c = cmp(bound)
		default:
			continue
		}
		if (op == "gt" && c <= 0) || (op == "gte" && c < 0) || (op == "lt" && c >= 0) || (op == "lte" && c > 0) {
			return false
		}
	}
	return true
}

// wildcardRE compiles a wildcard pattern (* any run, ? one character, \
// escapes) into an anchored regexp.
func wildcardRE(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
				b.WriteString(regexp.QuoteMeta(string(pat[i])))
			}
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

var qsField = regexp.MustCompile(`^([A-Za-z0-9_.@]+):(?:"([^"]*)"|(\S+))$`)

// queryString evaluates a tiny query_string subset: field:value,
// field:"phrase" (with * wildcards), joined by AND. Unbalanced quotes or
// parentheses are refused as Elasticsearch refuses them.
func queryString(q string, d *storedDoc) (bool, *qerr) {
	if strings.Count(q, `"`)%2 != 0 || strings.Count(q, "(") != strings.Count(q, ")") || strings.TrimSpace(q) == "" {
		return false, &qerr{"query_shard_exception", "Failed to parse query [" + q + "]"}
	}
	for _, part := range strings.Split(q, " AND ") {
		m := qsField.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return false, &qerr{"query_shard_exception", "Failed to parse query [" + q + "] (fake: only field:value AND ...)"}
		}
		val := m[2] + m[3]
		re := wildcardRE(val)
		ok := false
		for _, v := range strs(d.src, m[1]) {
			ok = ok || re.MatchString(v) || (m[2] != "" && strings.Contains(v, val))
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
