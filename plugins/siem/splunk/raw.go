package splunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

// MaxRawEvents caps the events SearchRawEvents returns (the earliest).
const MaxRawEvents = 1000

// rawSlack widens the raw-event window on both sides: event times come
// from the source's clock.
const rawSlack = time.Minute

// SearchRawEvents searches the configured indexes for events that contain
// one of the markers (term search) in [Start, End] widened by a minute,
// from one of Hosts when set: at most MaxRawEvents, the earliest first.
// Timestamp is the event's _time and IngestedAt its _indextime (whole
// seconds: Splunk records no finer), so IngestedAt minus the injection is
// the ingestion delay.
func (p *SIEM) SearchRawEvents(ctx context.Context, req plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	st, err := p.state()
	if err != nil {
		return nil, err
	}
	var markers []string
	for _, m := range req.Markers {
		if m = strings.TrimSpace(m); m != "" {
			markers = append(markers, m)
		}
	}
	if len(markers) == 0 {
		return nil, nil
	}
	s := search{
		spl:      st.cfg.rawSPL(markers),
		earliest: req.Start.Add(-rawSlack), latest: req.End.Add(rawSlack), maxRows: MaxRawEvents,
	}
	rows, _, err := st.run(ctx, s)
	if err != nil {
		return nil, st.fail(fmt.Errorf("raw-event search: %w", err))
	}
	out := make([]plugin.RawEvent, 0, len(rows))
	for i, r := range rows {
		host := r.first("host")
		if !req.Wants(host) {
			continue
		}
		marker, ok := findMarker(r, markers)
		if !ok {
			continue
		}
		ev := plugin.RawEvent{Marker: marker, Host: host, Source: r.first("sourcetype", "source", "index"), Summary: rawSummary(r)}
		if ev.Timestamp, err = parseTime(r.first("_time")); err != nil {
			return nil, st.fail(fmt.Errorf("raw-event search: result row %d: _time: %w", i, err))
		}
		if v := r.first("vigil_indextime", "_indextime"); v != "" {
			if ev.IngestedAt, err = parseTime(v); err != nil {
				return nil, st.fail(fmt.Errorf("raw-event search: result row %d: _indextime: %w", i, err))
			}
		}
		if raw := r.text("_raw"); raw != "" {
			ev.Raw = []byte(raw)
		} else if ev.Raw, err = json.Marshal(r); err != nil {
			return nil, st.fail(fmt.Errorf("raw-event search: encode row: %w", err))
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

// rawSummary is an event's key field: an extracted command line, path or
// API call; else the same read from a JSON _raw (vigil's replayed events,
// CloudTrail records, ECS documents); else _raw itself.
func rawSummary(r row) string {
	if v := r.first("CommandLine", "process", "cmdline", "file_path", "eventName"); v != "" {
		return v
	}
	raw := r.text("_raw")
	var doc map[string]any
	if json.Unmarshal([]byte(raw), &doc) == nil {
		for _, path := range [][]string{{"fields", "CommandLine"}, {"fields", "TargetFilename"}, {"process", "command_line"}, {"eventName"}, {"message"}} {
			var v any = doc
			for _, k := range path {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return raw
}

// rawSPL is the marker search: a term search of every marker in the
// configured indexes, the earliest MaxRawEvents, with the index time kept.
func (c *config) rawSPL(markers []string) string {
	idx := make([]string, len(c.Indexes))
	for i, ix := range c.Indexes {
		if ix == "*" {
			idx[i] = "index=*"
		} else {
			idx[i] = "index=" + splString(ix)
		}
	}
	terms := make([]string, len(markers))
	for i, m := range markers {
		terms[i] = splString(m)
	}
	return "search (" + strings.Join(idx, " OR ") + ") (" + strings.Join(terms, " OR ") + ")" +
		" | eval vigil_indextime=_indextime | sort " + strconv.Itoa(MaxRawEvents) + " _time"
}

// findMarker returns the marker a row's raw text or vigil_marker field
// contains.
func findMarker(r row, markers []string) (string, bool) {
	text := r.text("_raw") + "\n" + r.text("vigil_marker")
	for _, m := range markers {
		if strings.Contains(text, m) {
			return m, true
		}
	}
	return "", false
}

// CloseSignals sets the notables among the signals to close_status (default
// 5, Closed) with Reason as the comment, through Enterprise Security's
// POST /services/notable_update. It needs close_notables = true; signals
// that are not notables (no event_id) are an error after the notables are
// closed.
func (p *SIEM) CloseSignals(ctx context.Context, req plugin.CloseSignalsRequest) error {
	st, err := p.state()
	if err != nil {
		return err
	}
	if !st.cfg.CloseNotables {
		return st.fail(errors.New("close signals: close_notables is not enabled in the splunk params (it needs Enterprise Security and edit_notable_events)"))
	}
	var ids []string
	others := 0
	seen := map[string]bool{}
	for _, id := range req.SignalIDs {
		n := notableID(id)
		switch {
		case n == "":
			others++
		case !seen[n]:
			seen[n] = true
			ids = append(ids, n)
		}
	}
	if len(ids) > 0 {
		form := url.Values{"ruleUIDs": ids, "status": {st.cfg.CloseStatus}, "comment": {req.Reason}, "output_mode": {"json"}}
		b, _, err := st.client.do(ctx, request{method: http.MethodPost, path: "/services/notable_update", form: form})
		if err != nil {
			return st.fail(fmt.Errorf("close signals: notable update: %w", err))
		}
		var j struct {
			Success      *bool   `json:"success"`
			Message      string  `json:"message"`
			SuccessCount flexInt `json:"success_count"`
			FailureCount flexInt `json:"failure_count"`
		}
		if err := decodeJSON(b, &j); err != nil {
			return st.fail(fmt.Errorf("close signals: notable update: %w", err))
		}
		if (j.Success != nil && !*j.Success) || j.FailureCount > 0 {
			return st.fail(fmt.Errorf("close signals: notable update: %d of %d notables not updated: %s", int(j.FailureCount), len(ids), excerpt(j.Message, 200)))
		}
		n := int64(j.SuccessCount)
		if n == 0 {
			n = int64(len(ids))
		}
		st.counters.closed.Add(n)
	}
	if others > 0 {
		return st.fail(fmt.Errorf("close signals: %d signal(s) are not ES notables (no event_id) and were left as they are", others))
	}
	return nil
}
