package sentinelfake

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// serveIngest answers POST /dataCollectionRules/{dcr}/streams/{stream}
// (api-version 2023-01-01): a JSON array of rows, gzip or not, at most the
// ingest limit; 204 when the rows are in the stream's table.
func (f *Fake) serveIngest(w http.ResponseWriter, r *http.Request, body []byte) {
	if !f.authorise(w, r, audienceIngest) {
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/dataCollectionRules/")
	dcr, stream, ok := strings.Cut(rest, "/streams/")
	switch {
	case r.Method != http.MethodPost || !ok:
		writeError(w, http.StatusNotFound, "NotFound", "no such endpoint")
		return
	case r.URL.Query().Get("api-version") != "2023-01-01":
		writeError(w, http.StatusBadRequest, "InvalidApiVersion", "api-version "+r.URL.Query().Get("api-version")+" is not supported")
		return
	case dcr != DCR:
		writeError(w, http.StatusNotFound, "DataCollectionRuleNotFound", "Data collection rule "+dcr+" was not found")
		return
	}
	f.mu.Lock()
	table, known := f.streams[stream]
	limit := f.ingestLimit
	f.mu.Unlock()
	if !known {
		writeError(w, http.StatusBadRequest, "InvalidStream", "Stream "+stream+" is not defined in data collection rule "+dcr)
		return
	}
	if len(body) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", fmt.Sprintf("Maximum request body size is %d bytes", limit))
		return
	}
	var rows []Record
	if err := json.Unmarshal(body, &rows); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidPayload", "the body is not a JSON array of objects")
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, rec := range rows {
		rec = normalise(rec)
		if _, ok := rec["TimeGenerated"].(time.Time); !ok {
			rec["TimeGenerated"] = now
		}
		rows[i] = rec
	}
	for _, rec := range rows {
		f.tables[table] = append(f.tables[table], stored{rec: rec, ingested: now, visibleAt: now})
		f.raise(table, rec, now)
	}
	w.WriteHeader(http.StatusNoContent)
}

// raise applies the analytics rules to an ingested row (mu held).
func (f *Fake) raise(table string, rec Record, ingested time.Time) {
	b, _ := json.Marshal(rec)
	at, _ := rec["TimeGenerated"].(time.Time)
	host := textOf(firstOf(rec, "Computer", "DvcHostname"))
	cmd := textOf(firstOf(rec, "CommandLine", "TargetProcessCommandLine"))
	for _, rule := range f.rules {
		if rule.Disabled || (rule.Table != "" && rule.Table != table) || !strings.Contains(string(b), rule.Contains) {
			continue
		}
		c := cmd
		if rule.NoMarker {
			c, _, _ = strings.Cut(c, " # ")
		}
		entities := []any{
			map[string]any{"$id": "2", "HostName": host, "Type": "host"},
			map[string]any{"$id": "3", "CommandLine": c, "Host": map[string]any{"$ref": "2"}, "Type": "process"},
		}
		details := map[string]any{"CommandLine": []string{c}}
		f.addAlert(rule, at.Add(rule.Delay+rule.Shift), at, ingested.Add(rule.Delay), host, entities, details)
	}
	if f.detect != nil && table == "AWSCloudTrail" {
		ev, err := telemetry.FromCloudTrail(cloudTrailRecord(rec), "")
		if err != nil {
			return
		}
		for _, m := range f.detect.Match(&ev) {
			rule := Rule{ID: ruleGUID(m.Rule.ID), Name: m.Rule.Title, Techniques: m.Rule.Techniques, Tactics: []string{"DefenseEvasion"}}
			ua := textOf(rec["UserAgent"])
			entities := []any{map[string]any{"$id": "2", "Name": textOf(rec["UserIdentityUserName"]), "AadUserId": textOf(rec["UserIdentityArn"]), "Type": "account"}}
			details := map[string]any{"UserAgent": []string{ua}, "EventName": []string{textOf(rec["EventName"])}}
			f.addAlert(rule, at.Add(f.detectDelay), at, ingested.Add(f.detectDelay), textOf(rec["RecipientAccountId"]), entities, details)
		}
	}
}

// addAlert adds a SecurityAlert row shaped like a scheduled analytics
// rule's, and its incident unless the rule creates none (mu held).
func (f *Fake) addAlert(rule Rule, stamp, start, visible time.Time, host string, entities []any, details map[string]any) {
	f.alertSeq++
	id := fmt.Sprintf("a1e7%04x-0000-4000-8000-%012x", f.alertSeq, f.alertSeq)
	var techs, subs []string
	for _, t := range rule.Techniques {
		t = strings.ToUpper(t)
		if strings.Contains(t, ".") {
			subs = append(subs, t)
			if p, _, _ := strings.Cut(t, "."); !containsString(techs, p) {
				techs = append(techs, p)
			}
		} else if !containsString(techs, t) {
			techs = append(techs, t)
		}
	}
	dj, _ := json.Marshal(details)
	ids, _ := json.Marshal([]string{rule.ID})
	props, _ := json.Marshal(map[string]any{
		"Analytic Rule Ids": string(ids), "Analytic Rule Name": rule.Name, "Custom Details": string(dj),
		"Data Sources": "[]", "Query Period": "00:05:00", "Trigger Operator": "GreaterThan", "Trigger Threshold": "0",
		"ProcessedBySentinel": "True", "Alert generation status": "Full alert created",
	})
	ents, _ := json.Marshal(entities)
	tj, _ := json.Marshal(techs)
	sj, _ := json.Marshal(subs)
	rec := Record{
		"TenantId": WorkspaceID, "TimeGenerated": stamp, "DisplayName": rule.Name, "AlertName": rule.Name,
		"AlertSeverity": "High", "Description": "", "ProviderName": "ASI Scheduled Alerts", "VendorName": "Microsoft",
		"ProductName": "Azure Sentinel", "SystemAlertId": id, "AlertType": WorkspaceID + "_" + rule.ID,
		"StartTime": start, "EndTime": start, "ExtendedProperties": string(props), "Entities": string(ents),
		"CompromisedEntity": host, "Tactics": strings.Join(rule.Tactics, ", "), "Techniques": string(tj), "SubTechniques": string(sj),
		"Status": "New", "Type": "SecurityAlert", "IsIncident": false,
	}
	f.tables["SecurityAlert"] = append(f.tables["SecurityAlert"], stored{rec: rec, ingested: visible, visibleAt: visible})
	if rule.NoIncident {
		return
	}
	f.incidentSeq++
	name := fmt.Sprintf("1c1d%04x-0000-4000-8000-%012x", f.incidentSeq, f.incidentSeq)
	ruleRef := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s/providers/Microsoft.SecurityInsights/alertRules/%s",
		SubscriptionID, ResourceGroup, WorkspaceName, rule.ID)
	props2 := map[string]any{
		"title": rule.Name, "severity": "High", "status": "New", "incidentNumber": f.incidentSeq,
		"createdTimeUtc": formatTime(stamp), "firstActivityTimeUtc": formatTime(start), "lastActivityTimeUtc": formatTime(start),
		"relatedAnalyticRuleIds": []string{ruleRef},
		"additionalData":         map[string]any{"alertsCount": 1, "tactics": rule.Tactics, "techniques": techs, "subTechniques": subs},
	}
	f.incidents[name] = &incident{name: name, etag: 1, props: props2}
	f.tables["SecurityIncident"] = append(f.tables["SecurityIncident"], stored{rec: incidentRow(name, props2, []string{id}, stamp), ingested: visible, visibleAt: visible})
}

// incidentRow is a SecurityIncident row of an incident's state.
func incidentRow(name string, p map[string]any, alerts []string, at time.Time) Record {
	aj, _ := json.Marshal(alerts)
	rj, _ := json.Marshal(p["relatedAnalyticRuleIds"])
	ad, _ := json.Marshal(p["additionalData"])
	rec := Record{
		"TimeGenerated": at, "IncidentName": name, "IncidentNumber": p["incidentNumber"], "Title": p["title"],
		"Severity": p["severity"], "Status": p["status"], "AlertIds": string(aj), "RelatedAnalyticRuleIds": string(rj),
		"AdditionalData": string(ad), "Type": "SecurityIncident",
	}
	for col, key := range map[string]string{"CreatedTime": "createdTimeUtc", "FirstActivityTime": "firstActivityTimeUtc"} {
		if t, err := time.Parse(time.RFC3339Nano, textOf(p[key])); err == nil {
			rec[col] = t
		}
	}
	for col, key := range map[string]string{"Classification": "classification", "ClassificationReason": "classificationReason", "ClassificationComment": "classificationComment"} {
		if v, ok := p[key]; ok {
			rec[col] = v
		}
	}
	return rec
}

// cloudTrailRecord rebuilds a CloudTrail record from an AWSCloudTrail row,
// as Sentinel's AWS rules read the same columns.
func cloudTrailRecord(rec Record) []byte {
	ident := map[string]any{}
	for col, key := range map[string]string{
		"UserIdentityType": "type", "UserIdentityPrincipalid": "principalId", "UserIdentityArn": "arn",
		"UserIdentityAccountId": "accountId", "UserIdentityAccessKeyId": "accessKeyId", "UserIdentityUserName": "userName",
	} {
		if v := textOf(rec[col]); v != "" {
			ident[key] = v
		}
	}
	out := map[string]any{"userIdentity": ident}
	for col, key := range map[string]string{
		"EventName": "eventName", "EventSource": "eventSource", "AWSRegion": "awsRegion", "SourceIpAddress": "sourceIPAddress",
		"UserAgent": "userAgent", "RecipientAccountId": "recipientAccountId", "ErrorCode": "errorCode", "ErrorMessage": "errorMessage",
		"AwsEventId": "eventID", "EventTypeName": "eventType", "EventVersion": "eventVersion",
	} {
		if v := textOf(rec[col]); v != "" {
			out[key] = v
		}
	}
	for col, key := range map[string]string{"RequestParameters": "requestParameters", "ResponseElements": "responseElements", "AdditionalEventData": "additionalEventData", "Resources": "resources"} {
		var v any
		if s := textOf(rec[col]); s != "" && json.Unmarshal([]byte(s), &v) == nil {
			out[key] = v
		}
	}
	if t, ok := rec["TimeGenerated"].(time.Time); ok {
		out["eventTime"] = t.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(out)
	return b
}

// ruleGUID is a stable GUID for a Sigma rule's ID.
func ruleGUID(id string) string {
	s := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

func firstOf(rec Record, cols ...string) any {
	for _, c := range cols {
		if v, ok := rec[c]; ok && v != nil && v != "" {
			return v
		}
	}
	return nil
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
