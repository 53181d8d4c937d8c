package splunkfake

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// expectationsField is the field the plugin's per-expectation subsearches
// set with eval ... mvappend(IDs).
const expectationsField = "vigil_expectations"

var (
	appendRE = regexp.MustCompile(`^(.*) \| eval ` + expectationsField + `=mvappend\((.*)\)$`)
	quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// evaluate runs an SPL search over [earliest, latest) against the fake's
// data: the rows, or the FATAL message of SPL it does not know (as an
// unknown command would fail). It understands the base search, appended
// subsearches ("base | append [sub]", each sub "QUERY | eval
// vigil_expectations=mvappend(...)") and the raw-event marker search
// ("search (index=...) ("marker" ...) ...").
func (f *Fake) evaluate(spl string, earliest, latest time.Time) ([]Row, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inWindow := func(r Row) bool {
		t, err := parseTime(r.first("_time"))
		return err == nil && !t.Before(earliest) && t.Before(latest)
	}
	parts := strings.Split(spl, " | append [")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.TrimSuffix(parts[i], "]")
	}
	var out []Row
	now := time.Now()
	for _, part := range parts {
		switch {
		case appendRE.MatchString(part):
			m := appendRE.FindStringSubmatch(part)
			var ids []any
			for _, q := range quotedRE.FindAllStringSubmatch(m[2], -1) {
				ids = append(ids, q[1])
			}
			rows, ok := f.queries[m[1]]
			if !ok {
				return nil, "Error in 'search' command: unknown query in the fake: " + m[1]
			}
			for _, r := range rows {
				if !inWindow(r) {
					continue
				}
				c := Row{}
				for k, v := range r {
					c[k] = v
				}
				c[expectationsField] = ids
				out = append(out, c)
			}
		case part == f.baseSearch:
			for _, n := range f.notables {
				if !n.visibleAt.After(now) && inWindow(n.row) {
					out = append(out, n.row)
				}
			}
		case strings.HasPrefix(part, "search (index="):
			out = append(out, f.markedEvents(part, earliest, latest, now)...)
		default:
			return nil, "Unknown search command in the fake: " + part
		}
	}
	return out, ""
}

// markedEvents answers the raw-event search: the events of the window,
// indexed by now, whose text holds one of the quoted vigil- markers (mu
// held).
func (f *Fake) markedEvents(spl string, earliest, latest, now time.Time) []Row {
	var markers []string
	for _, q := range quotedRE.FindAllStringSubmatch(spl, -1) {
		if strings.HasPrefix(q[1], "vigil-") {
			markers = append(markers, q[1])
		}
	}
	var out []Row
	for _, e := range f.events {
		if e.time.Before(earliest) || !e.time.Before(latest) || e.indexed.After(now) {
			continue
		}
		for _, m := range markers {
			if strings.Contains(e.raw, m) {
				out = append(out, Row{
					"_time": FormatTime(e.time), "_raw": e.raw, "host": e.host, "index": e.index, "sourcetype": e.sourcetype,
					"vigil_indextime": strconv.FormatInt(e.indexed.Unix(), 10), "vigil_marker": e.marker,
				})
				break
			}
		}
	}
	return out
}
