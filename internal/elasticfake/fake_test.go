package elasticfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// do sends a request to the fake and returns the status, the headers and
// the body of the answer.
func do(t *testing.T, method, url, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// The wire rules the fake promises, independently of any client.
func TestWireFormat(t *testing.T) {
	f := New(t)
	f.Add("logs-a-b", "1", []byte(`{"@timestamp":"2024-05-01T00:00:01Z","host":{"name":"h1"}}`), time.Time{})
	f.Add("logs-a-b", "2", []byte(`{"@timestamp":"2024-05-01T00:00:00Z","host.name":"h2"}`), time.Time{})
	f.Add("logs-a-b", "3", []byte(`{"@timestamp":"2024-05-01T00:00:02Z"}`), time.Now().Add(time.Hour))

	status, h, body := do(t, http.MethodPost, f.ESURL()+"/logs-*/_search",
		`{"size":10,"sort":[{"@timestamp":{"order":"desc"}}],"query":{"bool":{"filter":[{"exists":{"field":"host.name","_name":"has-host"}}]}}}`, nil)
	if status != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("search: %d %v %s", status, h, body)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID      string   `json:"_id"`
				Sort    []any    `json:"sort"`
				Matched []string `json:"matched_queries"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	hits := res.Hits.Hits
	if len(hits) != 2 || hits[0].ID != "1" || hits[1].ID != "2" || len(hits[0].Sort) != 1 || len(hits[0].Matched) != 1 {
		t.Errorf("hits %+v: want 1 then 2 (nested and dotted host.name, newest first, 3 not visible yet), sorted and named", hits)
	}

	if status, _, body := do(t, http.MethodPost, f.ESURL()+"/nope/_search", `{}`, nil); status != 404 || !strings.Contains(body, "index_not_found_exception") {
		t.Errorf("missing index: %d %s", status, body)
	}
	if status, _, body := do(t, http.MethodPost, f.ESURL()+"/_bulk", `{"create":{"_index":"x"}}`, nil); status != 400 || !strings.Contains(body, "terminated by a newline") {
		t.Errorf("bulk without a final newline: %d %s", status, body)
	}
	if status, h, _ := do(t, http.MethodPost, f.KibanaURL()+kibanaSearchPath, `{}`, nil); status != 400 || h.Get("X-Elastic-Product") != "" {
		t.Errorf("Kibana POST without kbn-xsrf: %d %v", status, h)
	}

	f.SetAuth("ApiKey c2VjcmV0")
	f.SetEchoAuth(true)
	if status, _, body := do(t, http.MethodPost, f.ESURL()+"/logs-*/_search", `{}`, map[string]string{"Authorization": "ApiKey d3Jvbmc="}); status != 401 || !strings.Contains(body, "[ApiKey d3Jvbmc=]") {
		t.Errorf("wrong key, echoed: %d %s", status, body)
	}
	if n := len(f.Requests("POST /logs-*/_search")); n != 2 {
		t.Errorf("%d searches recorded, want 2", n)
	}
}

// A scripted failure answers the next N matching requests; the caller's
// Failure is the fake's copy, left as it was.
func TestFailWith(t *testing.T) {
	f := New(t)
	fl := Failure{Match: "/_search", N: 1, Status: 429, Body: RejectedBody, NoProduct: true}
	f.FailWith(fl)
	status, h, body := do(t, http.MethodGet, f.ESURL()+"/x/_search", "", nil)
	if status != 429 || h.Get("X-Elastic-Product") != "" || body != RejectedBody {
		t.Errorf("first: %d %v %s", status, h, body)
	}
	if status, _, _ := do(t, http.MethodGet, f.ESURL()+"/x/_search", "", nil); status != 404 {
		t.Errorf("second: %d, want the real answer (404: no index x)", status)
	}
	if fl.N != 1 {
		t.Errorf("the caller's Failure changed: %+v", fl)
	}
}
