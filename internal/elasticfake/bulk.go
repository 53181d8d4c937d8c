package elasticfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bulk runs a bulk request on data streams: create actions only, each
// document needs an @timestamp; the answer has one item per action.
func (f *Fake) bulk(w http.ResponseWriter, body []byte) {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		esError(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines)%2 != 0 {
		esError(w, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(len(lines))+"], expected a simple value for field [_index] but found [END_OBJECT]")
		return
	}
	var (
		items   []any
		errs    bool
		created []map[string]any
	)
	for i := 0; i < len(lines); i += 2 {
		var action map[string]map[string]any
		if err := json.Unmarshal(lines[i], &action); err != nil || len(action) != 1 {
			esError(w, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(i+1)+"]")
			return
		}
		for op, meta := range action {
			index, _ := meta["_index"].(string)
			item, src := f.bulkItem(op, index, lines[i+1])
			if src == nil {
				errs = true
			} else {
				created = append(created, src)
			}
			items = append(items, map[string]any{op: item})
		}
	}
	esJSON(w, 200, map[string]any{"took": 30, "errors": errs, "items": items})
	f.mu.Lock()
	onIngest := f.onIngest
	f.mu.Unlock()
	if onIngest != nil && len(created) > 0 {
		onIngest(created)
	}
}

// bulkItem runs one bulk action: the answer's item, and the document when
// it was created (nil when it failed).
func (f *Fake) bulkItem(op, index string, line []byte) (map[string]any, map[string]any) {
	item := map[string]any{"_index": index}
	fail := func(status int, typ, reason string) (map[string]any, map[string]any) {
		item["status"] = status
		item["error"] = map[string]any{"type": typ, "reason": reason, "index": index}
		return item, nil
	}
	src, err := decode(line)
	switch {
	case err != nil:
		return fail(400, "document_parsing_exception", "[1:2] failed to parse: "+err.Error())
	case op != "create":
		return fail(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
	case first(src, "@timestamp") == "":
		return fail(400, "document_parsing_exception", "[1:2] data stream timestamp field [@timestamp] is missing")
	}
	f.mu.Lock()
	itemFail := f.itemFail
	f.mu.Unlock()
	if itemFail != nil {
		key := first(src, "message") + "|" + first(src, "vigil.original_time")
		f.mu.Lock()
		f.attempts[key]++
		n := f.attempts[key]
		f.mu.Unlock()
		if status, typ, reason := itemFail(src, n); status != 0 {
			return fail(status, typ, reason)
		}
	}
	f.mu.Lock()
	raw := append([]byte(nil), line...)
	if f.stampIngested {
		ev, _ := src["event"].(map[string]any)
		if ev == nil {
			ev = map[string]any{}
			src["event"] = ev
		}
		ev["ingested"] = time.Now().Add(f.clockSkew).UTC().Format(time.RFC3339Nano)
		raw, _ = json.Marshal(src)
	}
	f.seq++
	id := fmt.Sprintf("fakeid%06d", f.seq)
	seq := f.seq
	f.indices[index] = append(f.indices[index], &storedDoc{id: id, src: src, raw: raw})
	f.mu.Unlock()
	item["_index"] = ".ds-" + index + "-2024.05.01-000001"
	item["_id"] = id
	item["_version"] = 1
	item["result"] = "created"
	item["_shards"] = map[string]any{"total": 2, "successful": 1, "failed": 0}
	item["_seq_no"] = seq
	item["_primary_term"] = 1
	item["status"] = 201
	return item, src
}

// updateByQuery runs the close-alerts script (set the workflow status to
// params.status) on the documents of index the query matches.
func (f *Fake) updateByQuery(w http.ResponseWriter, index string, body []byte) {
	req, err := decode(body)
	if err != nil {
		esError(w, 400, "parsing_exception", "request body is required")
		return
	}
	script, _ := req["script"].(map[string]any)
	params, _ := script["params"].(map[string]any)
	status, _ := params["status"].(string)
	if status == "" || !strings.Contains(fmt.Sprint(script["source"]), "params.status") {
		esError(w, 400, "illegal_argument_exception", "fake: only the close-alerts script is supported")
		return
	}
	var ids []string
	f.mu.Lock()
	for _, d := range f.indices[index] {
		var ignore []string
		if ok, _ := evalQuery(req["query"], d, &ignore); ok {
			ids = append(ids, d.id)
		}
	}
	f.mu.Unlock()
	esJSON(w, 200, f.setStatus(index, ids, status))
}

// setStatus sets alerts' workflow status (signal.status in the 7.x
// layout) and answers like update-by-query.
func (f *Fake) setStatus(index string, ids []string, status string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	updated := 0
	for _, id := range ids {
		for _, d := range f.indices[index] {
			if d.id != id {
				continue
			}
			if sig, ok := d.src["signal"].(map[string]any); ok {
				sig["status"] = status
			} else {
				d.src["kibana.alert.workflow_status"] = status
			}
			d.raw, _ = json.Marshal(d.src)
			updated++
		}
	}
	return map[string]any{"took": 5, "timed_out": false, "total": updated, "updated": updated, "deleted": 0, "batches": 1,
		"version_conflicts": 0, "noops": 0, "retries": map[string]any{"bulk": 0, "search": 0}, "throttled_millis": 0,
		"requests_per_second": -1.0, "throttled_until_millis": 0, "failures": []any{}}
}

// simulate answers a simulated pipeline of set processors whose value is
// {{_ingest.timestamp}}, as Elasticsearch does: the document with each
// field set to the node's time (here: the real time plus the clock skew).
func (f *Fake) simulate(w http.ResponseWriter, body []byte) {
	var req struct {
		Pipeline struct {
			Processors []struct {
				Set *struct {
					Field string `json:"field"`
					Value string `json:"value"`
				} `json:"set"`
			} `json:"processors"`
		} `json:"pipeline"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		esError(w, http.StatusBadRequest, "parse_exception", "request body is required")
		return
	}
	f.mu.Lock()
	now := time.Now().Add(f.clockSkew).UTC()
	f.mu.Unlock()
	src := map[string]any{}
	for _, p := range req.Pipeline.Processors {
		if p.Set != nil && p.Set.Value == "{{_ingest.timestamp}}" {
			src[p.Set.Field] = now.Format("2006-01-02T15:04:05.000000000Z")
		}
	}
	esJSON(w, http.StatusOK, map[string]any{"docs": []any{map[string]any{"doc": map[string]any{
		"_index": "_index", "_id": "_id", "_version": "-3", "_source": src,
		"_ingest": map[string]any{"timestamp": now.Format("2006-01-02T15:04:05.000000000Z")},
	}}}})
}
