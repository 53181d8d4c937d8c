package sentinelfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// workspacePath is the workspace's ARM resource path.
var workspacePath = "/subscriptions/" + SubscriptionID + "/resourceGroups/" + ResourceGroup +
	"/providers/Microsoft.OperationalInsights/workspaces/" + WorkspaceName + "/providers/Microsoft.SecurityInsights"

// serveARM answers the Microsoft.SecurityInsights endpoints of the
// workspace: the alert rules listing (pages of SetRulesPageSize rules,
// each linking the next with nextLink and a $skipToken), and incidents
// (GET; PUT with the etag read).
func (f *Fake) serveARM(w http.ResponseWriter, r *http.Request, body []byte) {
	if !f.authorise(w, r, audienceARM) {
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, workspacePath)
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The Resource under "+r.URL.Path+" was not found.")
		return
	}
	switch {
	case rest == "/alertRules" && r.Method == http.MethodGet:
		f.listRules(w, r)
	case strings.HasPrefix(rest, "/incidents/"):
		f.serveIncident(w, r, strings.TrimPrefix(rest, "/incidents/"), body)
	default:
		writeError(w, http.StatusNotFound, "ResourceNotFound", "no such resource: "+rest)
	}
}

func (f *Fake) listRules(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	rules := append([]Rule(nil), f.rules...)
	size := f.rulesPage
	stuck := f.rulesStuck
	f.mu.Unlock()
	skip := 0
	if s := r.URL.Query().Get("$skipToken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > len(rules) {
			writeError(w, http.StatusBadRequest, "InvalidSkipToken", "bad $skipToken")
			return
		}
		skip = n
	}
	end := min(skip+size, len(rules))
	value := make([]any, 0, end-skip)
	for _, rule := range rules[skip:end] {
		var techs, subs []string
		for _, t := range rule.Techniques {
			if strings.Contains(t, ".") {
				subs = append(subs, strings.ToUpper(t))
			} else {
				techs = append(techs, strings.ToUpper(t))
			}
		}
		value = append(value, map[string]any{
			"id":   workspacePath + "/alertRules/" + rule.ID,
			"name": rule.ID, "type": "Microsoft.SecurityInsights/alertRules", "kind": "Scheduled",
			"etag": `"0300bf09-0000-0000-0000-5c37296e0000"`,
			"properties": map[string]any{
				"displayName": rule.Name, "enabled": !rule.Disabled, "severity": "High",
				"query":          fmt.Sprintf("VigilEvents_CL | where * has %q", rule.Contains),
				"queryFrequency": "PT5M", "queryPeriod": "PT5M", "triggerOperator": "GreaterThan", "triggerThreshold": 0,
				"suppressionDuration": "PT1H", "suppressionEnabled": false,
				"tactics": rule.Tactics, "techniques": techs, "subTechniques": subs,
				"lastModifiedUtc": "2024-01-01T00:00:00Z",
			},
		})
	}
	out := map[string]any{"value": value}
	if end < len(rules) {
		u := *r.URL
		u.Scheme, u.Host = "https", r.Host
		q := u.Query()
		next := end
		if stuck {
			next = size
		}
		q.Set("$skipToken", strconv.Itoa(next))
		u.RawQuery = q.Encode()
		out["nextLink"] = u.String()
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) serveIncident(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.incidents[name]
	if in == nil {
		writeError(w, http.StatusNotFound, "NotFound", "Incident "+name+" was not found")
		return
	}
	render := func(status int) {
		writeJSON(w, status, map[string]any{
			"id": workspacePath + "/incidents/" + name, "name": name, "type": "Microsoft.SecurityInsights/Incidents",
			"etag": fmt.Sprintf(`"%d"`, in.etag), "properties": in.props,
		})
	}
	switch r.Method {
	case http.MethodGet:
		render(http.StatusOK)
	case http.MethodPut:
		var upd struct {
			Etag       string         `json:"etag"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(body, &upd); err != nil || upd.Properties == nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "the body is not an incident")
			return
		}
		if upd.Etag != "" && upd.Etag != fmt.Sprintf(`"%d"`, in.etag) {
			writeError(w, http.StatusPreconditionFailed, "PreconditionFailed", "the incident changed since it was read (etag)")
			return
		}
		for _, k := range []string{"title", "severity", "status"} {
			if textOf(upd.Properties[k]) == "" {
				writeError(w, http.StatusBadRequest, "BadRequest", "properties."+k+" is required")
				return
			}
		}
		if upd.Properties["status"] == "Closed" && textOf(upd.Properties["classification"]) == "" {
			writeError(w, http.StatusBadRequest, "BadRequest", "a closed incident needs a classification")
			return
		}
		for k, v := range upd.Properties {
			in.props[k] = v
		}
		in.etag++
		var alerts []string
		for _, s := range f.tables["SecurityIncident"] {
			if s.rec["IncidentName"] == name {
				_ = json.Unmarshal([]byte(textOf(s.rec["AlertIds"])), &alerts)
			}
		}
		now := time.Now()
		f.tables["SecurityIncident"] = append(f.tables["SecurityIncident"], stored{rec: incidentRow(name, in.props, alerts, now), ingested: now, visibleAt: now})
		render(http.StatusOK)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
	}
}
