// Package telemetry is vigil's format for recorded and replayed telemetry:
// the normalised event (Event) that the local SIEM's audit sensor produces
// and its Sigma detector evaluates, its logsources, the flattening of
// Kubernetes audit events (FromAudit), and the JSON Lines recordings that
// `vigil record` writes and the replay injector replays (Record, Read,
// Rebase). SIEM plugins translate Events into what their intake expects.
//
// An Event is deliberately close to what SigmaHQ rules expect: Fields holds the
// field names used by the rules of the Event's log source (for example `type`,
// `syscall`, `exe`, `a0` for linux/auditd, or `Image`, `CommandLine` for
// linux/process_creation, or `verb`, `objectRef.resource` for Kubernetes
// audit events, see FromAudit). Values are strings or []string.
package telemetry

import (
	"encoding/json"
	"fmt"
	"time"
)

// Logsource is the Sigma logsource an Event belongs to.
type Logsource struct {
	Product  string `json:"product,omitempty"`  // "linux"
	Service  string `json:"service,omitempty"`  // "auditd" for raw audit records
	Category string `json:"category,omitempty"` // "process_creation", "file_event", ...
}

// String renders the logsource as product/category/service with empty parts
// left out, e.g. "linux/auditd" or "linux/process_creation".
func (l Logsource) String() string {
	s := l.Product
	for _, p := range []string{l.Category, l.Service} {
		if p != "" {
			s += "/" + p
		}
	}
	return s
}

// Well-known logsources produced by the local sensor.
var (
	Auditd          = Logsource{Product: "linux", Service: "auditd"}
	ProcessCreation = Logsource{Product: "linux", Category: "process_creation"}
	FileEvent       = Logsource{Product: "linux", Category: "file_event"}
)

// Platforms are the ATT&CK platforms whose telemetry a logsource is
// (nil when it cannot tell): a rule reading it claims techniques there.
func (l Logsource) Platforms() []string {
	switch l.Product {
	case "linux":
		return []string{"Linux"}
	case "kubernetes":
		return []string{"Containers"}
	case "aws":
		return []string{"IaaS"}
	}
	return nil
}

// Event is one normalised telemetry record.
type Event struct {
	// Time is the event's own timestamp (the kernel's audit timestamp for live
	// events, the re-stamped time for replayed ones).
	Time time.Time `json:"time"`
	// Sequence is the audit serial number (0 for replayed events).
	Sequence uint64 `json:"sequence,omitempty"`
	// Host is the host name the event happened on.
	Host string `json:"host"`
	// Source is the Sigma logsource of this record.
	Source Logsource `json:"logsource"`
	// Fields holds the Sigma field values: string or []string.
	Fields map[string]any `json:"fields"`
	// Ancestry lists the command lines of the process and its ancestors,
	// nearest first, as far as the sensor knows them. It is how the local SIEM
	// ties a signal to the run marker planted in an injector's shell.
	Ancestry []string `json:"ancestry,omitempty"`
}

// Get returns a field as a string ("" when absent; a []string is joined by
// spaces).
func (e *Event) Get(field string) string {
	switch v := e.Fields[field].(type) {
	case string:
		return v
	case []string:
		out := ""
		for i, s := range v {
			if i > 0 {
				out += " "
			}
			out += s
		}
		return out
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// MarshalJSONL encodes the event as one JSON line (without the newline).
func (e *Event) MarshalJSONL() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event: encode: %w", err)
	}
	return b, nil
}

// UnmarshalJSON decodes an event written by MarshalJSONL, turning JSON arrays
// in Fields back into []string so that decoded events compare equal to live ones.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("event: decode: %w", err)
	}
	for k, v := range p.Fields {
		switch t := v.(type) {
		case []any:
			ss := make([]string, 0, len(t))
			for _, x := range t {
				ss = append(ss, fmt.Sprint(x))
			}
			p.Fields[k] = ss
		case string:
		default:
			p.Fields[k] = fmt.Sprint(t)
		}
	}
	*e = Event(p)
	return nil
}
