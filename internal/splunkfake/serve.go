package splunkfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeMessages writes splunkd's error shape: {"messages":[{type, text}]}.
func writeMessages(w http.ResponseWriter, status int, typ, text string) {
	writeJSON(w, status, map[string]any{"messages": []map[string]string{{"type": typ, "text": text}}})
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form := url.Values{}
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		pf, err := url.ParseQuery(string(body))
		if err != nil {
			writeMessages(w, http.StatusBadRequest, "ERROR", "bad form")
			return
		}
		for k, v := range pf {
			form[k] = append(form[k], v...)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, Request{Method: r.Method, Path: r.URL.Path, Form: form, Auth: r.Header.Get("Authorization"), Header: r.Header.Clone(), Body: body})
	skew := f.clockSkew
	f.mu.Unlock()
	w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))

	p := r.URL.Path
	if strings.HasPrefix(p, "/services/collector/") {
		f.serveHEC(w, r, strings.TrimPrefix(p, "/services/collector/"), body)
		return
	}
	if p == "/services/auth/login" {
		f.login(w, form)
		return
	}
	if !f.authorised(r.Header.Get("Authorization")) {
		writeMessages(w, http.StatusUnauthorized, "WARN", "call not properly authenticated")
		return
	}
	f.serveREST(w, r, form)
}

// serveREST answers an authenticated REST call.
func (f *Fake) serveREST(w http.ResponseWriter, r *http.Request, form url.Values) {
	f.mu.Lock()
	version, caps, saved, savedCap, reply, delay := f.version, f.caps, f.saved, f.savedCap, f.updateReply, f.infoDelay
	if f.ignoreOffset {
		form = cloneValues(form)
		form.Del("offset")
	}
	f.mu.Unlock()
	switch p := r.URL.Path; {
	case p == "/services/server/info":
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": "server-info", "content": map[string]any{"version": version, "serverName": "fake-sh"}}}})
	case p == "/services/authentication/current-context":
		writeJSON(w, 200, map[string]any{"entry": []any{map[string]any{"name": "tokens", "content": map[string]any{"username": User, "capabilities": caps}}}})
	case p == "/servicesNS/-/-/saved/searches":
		if status := f.nextSavedStatus(); status != 0 {
			writeMessages(w, status, "ERROR", http.StatusText(status))
			return
		}
		writeJSON(w, 200, savedPage(saved, savedCap, form))
	case p == "/services/notable_update":
		if reply == "" {
			n := len(form["ruleUIDs"])
			reply = fmt.Sprintf(`{"success":true,"message":"%d event(s) updated successfully","details":{},"success_count":%d,"failure_count":0}`, n, n)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	default:
		rest, ok := stripNamespace(p)
		if !ok {
			writeMessages(w, http.StatusNotFound, "ERROR", "Not Found")
			return
		}
		f.serveJobs(w, r, rest, form)
	}
}

// nextSavedStatus takes the next scripted status of the saved searches
// listing (0: none left).
func (f *Fake) nextSavedStatus() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.savedStatuses) == 0 {
		return 0
	}
	status := f.savedStatuses[0]
	f.savedStatuses = f.savedStatuses[1:]
	return status
}

// stripNamespace returns the path after /services/ or /servicesNS/o/a/.
func stripNamespace(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, "/services/"); ok {
		return rest, true
	}
	if rest, ok := strings.CutPrefix(p, "/servicesNS/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) == 3 {
			return parts[2], true
		}
	}
	return "", false
}

// authorised accepts the token (Bearer) and live session keys (Splunk).
func (f *Fake) authorised(h string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case h == "Bearer "+Token:
		return true
	case strings.HasPrefix(h, "Splunk ") && f.sessions[strings.TrimPrefix(h, "Splunk ")]:
		if f.expireSessions > 0 {
			f.expireSessions--
			delete(f.sessions, strings.TrimPrefix(h, "Splunk "))
			return false
		}
		return true
	}
	return false
}

// login hands out a session key for User and Password, in JSON or XML as
// output_mode asks.
func (f *Fake) login(w http.ResponseWriter, form url.Values) {
	if form.Get("username") != User || form.Get("password") != Password {
		writeMessages(w, http.StatusUnauthorized, "WARN", "Login failed")
		return
	}
	f.mu.Lock()
	key := fmt.Sprintf("%s-%d", Session, len(f.sessions))
	f.sessions[key] = true
	f.mu.Unlock()
	if form.Get("output_mode") == "json" {
		writeJSON(w, 200, map[string]string{"sessionKey": key, "message": "", "code": ""})
		return
	}
	_, _ = fmt.Fprintf(w, "<response>\n<sessionKey>%s</sessionKey>\n</response>\n", key)
}

// savedPage is one page of the saved searches listing, as splunkd pages
// a collection: count entries (default 30, 0 for all, capped by cap) from
// offset, and paging with the total.
func savedPage(saved []map[string]any, cap int, form url.Values) map[string]any {
	count, offset := 30, 0
	if v, err := strconv.Atoi(form.Get("count")); err == nil && v >= 0 {
		count = v
	}
	if v, err := strconv.Atoi(form.Get("offset")); err == nil && v >= 0 {
		offset = v
	}
	if count == 0 {
		count = len(saved)
	}
	if cap > 0 && count > cap {
		count = cap
	}
	start := min(offset, len(saved))
	end := min(start+count, len(saved))
	return map[string]any{
		"entry":  saved[start:end],
		"paging": map[string]any{"total": len(saved), "perPage": count, "offset": offset},
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
