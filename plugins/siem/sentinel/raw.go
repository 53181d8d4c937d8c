package sentinel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// Columns the raw-event query adds.
const (
	tableColumn    = "vigil_table"
	ingestedColumn = "vigil_ingested"
)

// rawTables are the tables searched for raw events: those the replay
// writes to, then raw_tables.
func (c *config) rawTables() []string {
	tables := []string{c.Table}
	if c.CloudTrailStream != "" {
		tables = append(tables, CloudTrailTable)
	}
	if c.ProcessStream != "" {
		tables = append(tables, ProcessTable)
	}
	for _, t := range c.RawTables {
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	return tables
}

// rawKQL is the marker search: every marker as a term of any column, in
// the tables of rawTables (isfuzzy: a table that does not exist yet is
// left out, not an error), with each row's table and ingestion time.
func (c *config) rawKQL(markers []string, start, end time.Time) string {
	terms := make([]string, len(markers))
	for i, m := range markers {
		terms[i] = "* has " + kqlString(m)
	}
	return "union isfuzzy=true withsource=" + tableColumn + " " + strings.Join(c.rawTables(), ", ") +
		"\n| where TimeGenerated between (" + kqlTime(start) + " .. " + kqlTime(end) + ")" +
		"\n| where " + strings.Join(terms, " or ") +
		"\n| extend " + ingestedColumn + " = ingestion_time()" +
		"\n| sort by TimeGenerated asc" +
		"\n| take " + strconv.Itoa(MaxRawEvents)
}

// SearchRawEvents searches the replay's tables and raw_tables for rows
// that carry one of the markers in [Start, End] widened by a minute, from
// one of Hosts when set: at most MaxRawEvents, the earliest first.
// Timestamp is the row's TimeGenerated and IngestedAt its
// ingestion_time(), so IngestedAt minus the injection is the ingestion
// delay.
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
	start, end := req.Start.Add(-rawSlack), req.End.Add(rawSlack)
	kql := st.cfg.rawKQL(markers, start, end)
	rows, err := st.runQuery(ctx, kql, start, end)
	if err != nil {
		return nil, st.fail(fmt.Errorf("raw-event search: %w (KQL: %s)", err, excerpt(oneLine(kql), 300)))
	}
	out := make([]plugin.RawEvent, 0, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, st.fail(fmt.Errorf("raw-event search: encode row %d: %w", i, err))
		}
		marker := ""
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) { // RawData and every column are in b
				marker = m
				break
			}
		}
		if marker == "" {
			continue
		}
		host := r.first("Computer", "DvcHostname", "Dvc", "HostName")
		if !req.Wants(host) {
			continue
		}
		ev := plugin.RawEvent{Marker: marker, Host: host, Raw: b, Summary: rawSummary(r)}
		ev.Source = r.str(tableColumn)
		if src := r.str("Source"); src != "" && ev.Source == st.cfg.Table {
			ev.Source += " (" + src + ")"
		}
		if ev.Timestamp, err = r.time("TimeGenerated"); err != nil {
			return nil, st.fail(fmt.Errorf("raw-event search: row %d: %w", i, err))
		}
		if ev.IngestedAt, err = r.time(ingestedColumn); err != nil {
			return nil, st.fail(fmt.Errorf("raw-event search: row %d: %w", i, err))
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

// rawSummary is a row's key field: a command line, an API call, else the
// raw text.
func rawSummary(r row) string {
	return r.first("CommandLine", "TargetProcessCommandLine", "EventName", "Activity", "SyslogMessage", "RawData")
}
