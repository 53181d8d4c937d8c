package elasticfake

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// esJSON writes an Elasticsearch answer: every answer carries the product
// header, as real Elasticsearch 7.14+ does.
func esJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	switch b := v.(type) {
	case string:
		io.WriteString(w, b)
	case []byte:
		w.Write(b)
	default:
		json.NewEncoder(w).Encode(v)
	}
}

// esError writes Elasticsearch's error shape.
func esError(w http.ResponseWriter, status int, typ, reason string) {
	cause := map[string]any{"type": typ, "reason": reason}
	esJSON(w, status, map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason}, "status": status})
}

// kbJSON writes a Kibana answer (no Elasticsearch product header).
func kbJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Kbn-Name", "kibana")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// esFailure writes a scripted failure as Elasticsearch (or what stands in
// front of it) would.
func esFailure(w http.ResponseWriter, r *http.Request, fl *Failure) {
	if fl.Delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(fl.Delay):
		}
	}
	if !fl.NoProduct {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	for k, v := range fl.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(fl.Status)
	io.WriteString(w, fl.Body)
}

func (f *Fake) serveES(w http.ResponseWriter, r *http.Request) {
	body, fl := f.record("es", r)
	if fl != nil {
		esFailure(w, r, fl)
		return
	}
	if !f.authorized(w, r, true) {
		return
	}
	p := strings.Trim(r.URL.Path, "/")
	switch {
	case p == "_bulk" && r.Method == http.MethodPost:
		f.bulk(w, body)
	case strings.HasSuffix(p, "/_search") && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		res, status, err := f.search(strings.TrimSuffix(p, "/_search"), body, false)
		if err != nil {
			esError(w, status, err.typ, err.reason)
			return
		}
		esJSON(w, http.StatusOK, res)
	case strings.HasSuffix(p, "/_update_by_query") && r.Method == http.MethodPost:
		f.updateByQuery(w, strings.TrimSuffix(p, "/_update_by_query"), body)
	case p == "_ingest/pipeline/_simulate" && r.Method == http.MethodPost:
		f.simulate(w, body)
	default:
		esError(w, http.StatusBadRequest, "illegal_argument_exception", "fake: unsupported request ["+r.Method+" "+r.URL.Path+"]")
	}
}

var spacePath = regexp.MustCompile(`^/s/([a-z0-9_-]+)(/api/.*)$`)

func (f *Fake) serveKibana(w http.ResponseWriter, r *http.Request) {
	body, fl := f.record("kibana", r)
	if fl != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(fl.Status)
		io.WriteString(w, fl.Body)
		return
	}
	if r.Method != http.MethodGet && r.Header.Get("Kbn-Xsrf") == "" && r.Header.Get("Kbn-Version") == "" {
		kbJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."})
		return
	}
	if !f.authorized(w, r, false) {
		return
	}
	space, p := "default", r.URL.Path
	if m := spacePath.FindStringSubmatch(p); m != nil {
		space, p = m[1], m[2]
	}
	index := ".alerts-security.alerts-" + space
	switch {
	case p == kibanaSearchPath && r.Method == http.MethodPost:
		res, status, err := f.search(index, body, true)
		if err != nil {
			kbJSON(w, status, map[string]any{"message": err.typ + ": " + err.reason, "status_code": status})
			return
		}
		kbJSON(w, http.StatusOK, res)
	case p == kibanaStatusPath && r.Method == http.MethodPost:
		f.kibanaStatus(w, index, body)
	case p == kibanaRulesFindPath && r.Method == http.MethodGet:
		f.findRules(w, r)
	default:
		kbJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "Not Found"})
	}
}

// kibanaStatus sets the workflow status of alerts by ID.
func (f *Fake) kibanaStatus(w http.ResponseWriter, index string, body []byte) {
	var req struct {
		SignalIDs []string `json:"signal_ids"`
		Status    string   `json:"status"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.SignalIDs) == 0 || req.Status == "" {
		kbJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "[request body]: signal_ids or query is required"})
		return
	}
	kbJSON(w, http.StatusOK, f.setStatus(index, req.SignalIDs, req.Status))
}

// findRules answers a page of the rule listing (page from 1, per_page 20
// by default).
func (f *Fake) findRules(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if page < 1 {
		page = 1
	}
	if per < 1 {
		per = 20
	}
	f.mu.Lock()
	rules := f.rules
	f.mu.Unlock()
	lo, hi := min((page-1)*per, len(rules)), min(page*per, len(rules))
	kbJSON(w, http.StatusOK, map[string]any{"page": page, "perPage": per, "total": len(rules), "data": rules[lo:hi]})
}
