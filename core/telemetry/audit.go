package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// KubernetesAudit is the logsource of Kubernetes API server audit events
// (audit.k8s.io/v1 Event), as SigmaHQ's kubernetes/audit rules name it.
// Those rules also say category: application; the detector treats both
// spellings as this one.
var KubernetesAudit = Logsource{Product: "kubernetes", Service: "audit"}

// FromAudit turns one audit.k8s.io/v1 Event (a line of an API server's
// audit log, or an item of an EventList) into a normalised event of the
// KubernetesAudit logsource. Its fields are the audit event flattened with
// dotted keys, as Sigma rules name them: "verb", "user.username",
// "objectRef.resource", "objectRef.subresource", "responseStatus.code",
// "requestObject.spec.hostNetwork". Arrays do not add a path element: the
// values found below an array are collected into one list, so that
// "requestObject.spec.containers.securityContext.privileged" holds the flag
// of every container and a Sigma value matches when any of them does (the
// flattening Elastic's and Datadog's audit integrations apply). Numbers and
// booleans become their JSON text ("403", "true"). The event's time is
// stageTimestamp (else requestReceivedTimestamp) and its host is host.
func FromAudit(b []byte, host string) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return Event{}, fmt.Errorf("event: audit event: %w", err)
	}
	if k, _ := doc["kind"].(string); k != "Event" {
		return Event{}, fmt.Errorf("event: audit event: kind %q, want Event", k)
	}
	if v, _ := doc["apiVersion"].(string); v != "audit.k8s.io/v1" {
		return Event{}, fmt.Errorf("event: audit event: apiVersion %q, want audit.k8s.io/v1", v)
	}
	var t time.Time
	for _, k := range []string{"stageTimestamp", "requestReceivedTimestamp"} {
		if s, ok := doc[k].(string); ok {
			if p, err := time.Parse(time.RFC3339Nano, s); err == nil {
				t = p
				break
			}
		}
	}
	if t.IsZero() {
		return Event{}, errors.New("event: audit event: no stageTimestamp or requestReceivedTimestamp")
	}
	return Event{Time: t, Host: host, Source: KubernetesAudit, Fields: flatFields(doc)}, nil
}

// flatFields flattens a JSON document into Sigma fields with dotted keys:
// a value alone stays a string, values below an array (or several) a
// list.
func flatFields(doc map[string]any) map[string]any {
	multi := map[string][]string{}
	inArray := map[string]bool{}
	flatten("", doc, false, multi, inArray)
	fields := make(map[string]any, len(multi))
	for k, vs := range multi {
		if len(vs) == 1 && !inArray[k] {
			fields[k] = vs[0]
		} else {
			fields[k] = vs
		}
	}
	return fields
}

// flatten adds the leaves below v to out under dotted keys; arr says
// whether an array was crossed on the way.
func flatten(prefix string, v any, arr bool, out map[string][]string, inArray map[string]bool) {
	add := func(s string) {
		out[prefix] = append(out[prefix], s)
		if arr {
			inArray[prefix] = true
		}
	}
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, t[k], arr, out, inArray)
		}
	case []any:
		for _, x := range t {
			flatten(prefix, x, true, out, inArray)
		}
		if len(t) == 0 && prefix != "" {
			inArray[prefix] = true
		}
	case string:
		add(t)
	case json.Number:
		add(t.String())
	case bool:
		add(strconv.FormatBool(t))
	case nil:
	default:
		add(fmt.Sprint(t))
	}
}
