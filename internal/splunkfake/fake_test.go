package splunkfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// call sends a form request with the token to the fake and returns the
// status and the decoded JSON answer.
func call(t *testing.T, f *Fake, method, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+Token)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// A search job goes QUEUED, RUNNING, DONE and returns the notables of its
// window; the base search is all the fake knows.
func TestJobLifecycle(t *testing.T) {
	f := New(t)
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	f.AddNotable(Row{"_time": FormatTime(start.Add(time.Second)), "event_id": "in"}, time.Time{})
	f.AddNotable(Row{"_time": FormatTime(start.Add(time.Hour)), "event_id": "after"}, time.Time{})
	f.SetRunningPolls(1)
	window := url.Values{"earliest_time": {strconv.FormatInt(start.Unix(), 10)}, "latest_time": {strconv.FormatInt(start.Add(time.Minute).Unix(), 10)}}

	form := url.Values{"search": {NotableSearch}}
	for k, v := range window {
		form[k] = v
	}
	status, m := call(t, f, http.MethodPost, "/services/search/v2/jobs", form)
	sid, _ := m["sid"].(string)
	if status != 201 || sid == "" {
		t.Fatalf("create: %d %v", status, m)
	}
	state := func(sid string) string {
		_, m := call(t, f, http.MethodGet, "/services/search/v2/jobs/"+sid, nil)
		return m["entry"].([]any)[0].(map[string]any)["content"].(map[string]any)["dispatchState"].(string)
	}
	if states := []string{state(sid), state(sid), state(sid)}; strings.Join(states, " ") != "QUEUED RUNNING DONE" {
		t.Errorf("states %v", states)
	}
	_, m = call(t, f, http.MethodPost, "/services/search/v2/jobs/"+sid+"/results", url.Values{"count": {"0"}})
	if rows, _ := m["results"].([]any); len(rows) != 1 || rows[0].(map[string]any)["event_id"] != "in" {
		t.Errorf("results %v", m)
	}
	form.Set("search", "search index=other")
	if status, m = call(t, f, http.MethodPost, "/services/search/v2/jobs", form); status != 201 {
		t.Fatalf("create: %d %v", status, m)
	}
	sid, _ = m["sid"].(string)
	if states := []string{state(sid), state(sid), state(sid)}; states[2] != "FAILED" {
		t.Errorf("unknown SPL: states %v, want FAILED last", states)
	}
	f.SetQuota(1)
	if status, m := call(t, f, http.MethodPost, "/services/search/v2/jobs", form); status != 503 || !strings.Contains(m["messages"].([]any)[0].(map[string]any)["text"].(string), "concurrent historical searches") {
		t.Errorf("quota: %d %v", status, m)
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2012-11-27T16:44:22.581-08:00", want: time.Date(2012, 11, 28, 0, 44, 22, 581e6, time.UTC)},
		{in: "1741083329.125", want: time.Unix(1741083329, 125e6)},
		{in: "1354063462", want: time.Unix(1354063462, 0)},
		{in: "1354063462.1234567891", bad: true},
		{in: "-5", bad: true},
		{in: "", bad: true},
		{in: "soon", bad: true},
	} {
		got, err := parseTime(tc.in)
		if tc.bad != (err != nil) || !tc.bad && !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v", tc.in, got, err)
		}
	}
}
