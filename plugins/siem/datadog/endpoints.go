package datadog

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
)

// The five endpoints the plugin calls go through the official client's
// core package, api/datadog: its sites and per-operation servers (the logs
// intake has its own host), authentication headers, request compression,
// user agent and transport. The generated package of every endpoint and
// model, api/datadogV2 (8,500 files, 1.5 million lines, 7 GB of memory and
// three minutes to compile), is not imported: the plugin sends the few
// request bodies below, shaped as datadogV2's models marshal them, and
// decodes every answer itself.

// endpoint is one Datadog API operation.
type endpoint struct {
	// op is the official client's operation name: it routes the call to
	// the configured host and keys the rate-limit budget.
	op     string
	method string
	path   string
	// appKey: the operation needs the application key as well as the API
	// key (every one but the logs intake's).
	appKey bool
}

// Operation names of the official client.
const (
	opSearchSignals = "v2.SecurityMonitoringApi.SearchSecurityMonitoringSignals"
	opListRules     = "v2.SecurityMonitoringApi.ListSecurityMonitoringRules"
	opSignalState   = "v2.SecurityMonitoringApi.EditSecurityMonitoringSignalState"
	opListLogs      = "v2.LogsApi.ListLogs"
	opSubmitLog     = "v2.LogsApi.SubmitLog"
)

// permissions are what each operation needs of the application key (the
// logs intake needs only the API key).
var permissions = map[string]string{
	opSearchSignals: "security_monitoring_signals_read",
	opListRules:     "security_monitoring_rules_read",
	opSignalState:   "security_monitoring_signals_write",
	opListLogs:      "logs_read_data",
}

var (
	epSearchSignals = endpoint{opSearchSignals, http.MethodPost, "/api/v2/security_monitoring/signals/search", true}
	epListRules     = endpoint{opListRules, http.MethodGet, "/api/v2/security_monitoring/rules", true}
	epSignalState   = endpoint{opSignalState, http.MethodPatch, "/api/v2/security_monitoring/signals/{signal_id}/state", true}
	epListLogs      = endpoint{opListLogs, http.MethodPost, "/api/v2/logs/events/search", true}
	epSubmitLog     = endpoint{opSubmitLog, http.MethodPost, "/api/v2/logs", false}
)

// request is one call of an endpoint.
type request struct {
	// params replace {name} in the endpoint's path (path-escaped).
	params map[string]string
	query  url.Values
	// body is marshalled as JSON: a pointer or a slice (the official
	// client checks it for nil); nil sends none.
	body any
	// header adds headers (Content-Encoding: gzip compresses the body).
	header map[string]string
}

// send makes one request through the official client's core: ctx carries
// the keys and servers (see api.context). The caller reads the answer.
func (a *api) send(ctx context.Context, ep endpoint, r request) (*http.Response, error) {
	base, err := a.client.GetConfig().ServerURLWithContext(ctx, ep.op)
	if err != nil {
		return nil, err
	}
	path := ep.path
	for k, v := range r.params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	header := map[string]string{"Accept": "application/json"}
	if r.body != nil {
		header["Content-Type"] = "application/json"
	}
	maps.Copy(header, r.header)
	keys := [][2]string{{"apiKeyAuth", "DD-API-KEY"}}
	if ep.appKey {
		keys = append(keys, [2]string{"appKeyAuth", "DD-APPLICATION-KEY"})
	}
	datadog.SetAuthKeys(ctx, &header, keys...)
	query := r.query
	if query == nil {
		query = url.Values{}
	}
	req, err := a.client.PrepareRequest(ctx, base+path, ep.method, r.body, header, query, url.Values{}, nil)
	if err != nil {
		return nil, err
	}
	return a.client.CallAPI(req)
}

// sortTimestamp sorts signals and logs oldest first.
const sortTimestamp = "timestamp"

// signalsRequest is the body of a signals search
// (SecurityMonitoringSignalListRequest).
type signalsRequest struct {
	Filter *signalsFilter `json:"filter,omitempty"`
	Page   *cursorPage    `json:"page,omitempty"`
	Sort   string         `json:"sort,omitempty"`
}

type signalsFilter struct {
	From  *ddTime `json:"from,omitempty"`
	Query string  `json:"query,omitempty"`
	To    *ddTime `json:"to,omitempty"`
}

// cursorPage is a page of a cursor-paged search.
type cursorPage struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int32  `json:"limit,omitempty"`
}

// logsRequest is the body of a logs search (LogsListRequest).
type logsRequest struct {
	Filter *logsFilter `json:"filter,omitempty"`
	Page   *cursorPage `json:"page,omitempty"`
	Sort   string      `json:"sort,omitempty"`
}

type logsFilter struct {
	From    string   `json:"from,omitempty"`
	Indexes []string `json:"indexes,omitempty"`
	Query   string   `json:"query,omitempty"`
	To      string   `json:"to,omitempty"`
}

// signalStateRequest is the body of a signal state change
// (SecurityMonitoringSignalStateUpdateRequest).
type signalStateRequest struct {
	Data signalStateData `json:"data"`
}

type signalStateData struct {
	Attributes signalStateAttributes `json:"attributes"`
	Type       string                `json:"type"`
}

type signalStateAttributes struct {
	ArchiveComment string `json:"archive_comment,omitempty"`
	ArchiveReason  string `json:"archive_reason,omitempty"`
	State          string `json:"state"`
}

// logItem is one log of the intake (HTTPLogItem): its reserved keys and
// its attributes at the top level.
type logItem struct {
	Message  string
	Source   string
	Service  string
	Hostname string
	Tags     string
	// Attributes are the log's other keys.
	Attributes map[string]any
}

// MarshalJSON writes the item as the intake takes it.
func (l logItem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(l.Attributes)+5)
	m["message"] = l.Message
	for k, v := range map[string]string{"ddsource": l.Source, "service": l.Service, "hostname": l.Hostname, "ddtags": l.Tags} {
		if v != "" {
			m[k] = v
		}
	}
	maps.Copy(m, l.Attributes) // as datadogV2: attributes win
	return json.Marshal(m)
}

// ddTime is a time as datadogV2's models send it: to the millisecond, or
// to the second when it has no fraction of a second.
type ddTime time.Time

func (t ddTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	layout := "2006-01-02T15:04:05.000Z07:00"
	if tt.Nanosecond() == 0 {
		layout = "2006-01-02T15:04:05Z07:00"
	}
	return json.Marshal(tt.Format(layout))
}

func timePtr(t time.Time) *ddTime {
	d := ddTime(t)
	return &d
}
