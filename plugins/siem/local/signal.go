package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/telemetry"
	"github.com/vigilsec/vigil/plugins/siem/local/detect"
)

// MarkerField is the event field that carries the run marker of replayed
// events (stamped by Ingest when absent); it is the log.marker location.
const MarkerField = "vigil.marker"

// rawRule is the rule part of a signal's Raw document. Author and Link keep
// the attribution the SigmaHQ rules' licence (DRL 1.1) requires.
type rawRule struct {
	Title  string `json:"title"`
	ID     string `json:"id"`
	Level  string `json:"level,omitempty"`
	Author string `json:"author,omitempty"`
	Link   string `json:"link,omitempty"`
	Path   string `json:"path,omitempty"`
}

// rawSignal is a signal's Raw document.
type rawSignal struct {
	Rule     rawRule          `json:"rule"`
	Searches []string         `json:"searches,omitempty"`
	Event    *telemetry.Event `json:"event"`
	// Expectation is the expectation whose native query raised the signal.
	Expectation string `json:"expectation,omitempty"`
}

// newSignal builds the signal rule r raises for ev. expID is the
// expectation whose native query r is ("" for a loaded rule); it takes part
// in the signal's ID and is the signal's only matched expectation.
func newSignal(r *detect.Rule, searches []string, ev *telemetry.Event, expID string) plugin.Signal {
	raw, err := json.Marshal(rawSignal{
		Rule:     rawRule{Title: r.Title, ID: r.ID, Level: r.Level, Author: r.Author, Link: r.Link, Path: r.Path},
		Searches: searches, Event: ev, Expectation: expID,
	})
	if err != nil {
		// Events hold only strings: this cannot happen. Keep the rule.
		raw, _ = json.Marshal(rawSignal{Rule: rawRule{Title: r.Title, ID: r.ID}})
	}
	sig := plugin.Signal{
		ID:           signalID(r.ID, expID, ev),
		RuleName:     r.Title,
		RuleID:       r.ID,
		Techniques:   append([]string(nil), r.Techniques...),
		Timestamp:    ev.Time,
		EventTime:    ev.Time,
		Host:         ev.Host,
		Severity:     r.Level,
		Raw:          raw,
		MarkerValues: markerValues(ev),
	}
	if expID != "" {
		sig.MatchedExpectations = []string{expID}
	}
	return sig
}

// signalID is stable for a rule (and native query) and an event: the same
// audit event seen twice raises one signal.
func signalID(ruleID, expID string, ev *telemetry.Event) string {
	h := sha256.New()
	for _, s := range []string{
		ruleID, expID, ev.Host, strconv.FormatUint(ev.Sequence, 10),
		strconv.FormatInt(ev.Time.UnixNano(), 10),
	} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "local-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// File path fields, in the order they become marker values.
var pathFields = []string{"name", "TargetFilename", "cwd", "CurrentDirectory"}

// markerValues lists where a run marker may show in ev: the command lines of
// its process ancestry, its own command line (process_creation CommandLine,
// EXECVE arguments, proctitle), its file paths, the replay marker field and
// the userAgent of API audit events.
func markerValues(ev *telemetry.Event) []plugin.MarkerValue {
	var out []plugin.MarkerValue
	seen := map[plugin.MarkerValue]bool{}
	add := func(loc plugin.MarkerLocation, v string) {
		mv := plugin.MarkerValue{Location: loc, Value: v}
		if v == "" || seen[mv] {
			return
		}
		seen[mv] = true
		out = append(out, mv)
	}
	for _, a := range ev.Ancestry {
		add(plugin.MarkerCommandLine, a)
	}
	add(plugin.MarkerCommandLine, ev.Get("CommandLine"))
	add(plugin.MarkerCommandLine, execveCommandLine(ev))
	add(plugin.MarkerCommandLine, ev.Get("proctitle"))
	for _, f := range pathFields {
		for _, v := range fieldValues(ev, f) {
			add(plugin.MarkerFilePath, v)
		}
	}
	for _, v := range fieldValues(ev, MarkerField) {
		add(plugin.MarkerLogField, v)
	}
	// The client of a Kubernetes audit event or a CloudTrail record.
	add(plugin.MarkerUserAgent, ev.Get("userAgent"))
	return out
}

// execveCommandLine joins the arguments a0..aN of an EXECVE record.
func execveCommandLine(ev *telemetry.Event) string {
	if ev.Get("type") != "EXECVE" {
		return ""
	}
	var args []string
	for i := 0; ; i++ {
		v, ok := ev.Fields["a"+strconv.Itoa(i)]
		if !ok {
			break
		}
		s, _ := v.(string)
		args = append(args, s)
	}
	return strings.Join(args, " ")
}

// fieldValues returns a field's values: one for a string, each element of a
// []string.
func fieldValues(ev *telemetry.Event, field string) []string {
	switch v := ev.Fields[field].(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case nil:
		return nil
	default:
		return []string{ev.Get(field)}
	}
}

// findMarker returns the first of markers that ev's ancestry or fields
// contain, and whether there was one.
func findMarker(ev *telemetry.Event, markers []string) (string, bool) {
	for _, m := range markers {
		if m == "" {
			continue
		}
		for _, a := range ev.Ancestry {
			if strings.Contains(a, m) {
				return m, true
			}
		}
		for k := range ev.Fields {
			for _, v := range fieldValues(ev, k) {
				if strings.Contains(v, m) {
					return m, true
				}
			}
		}
	}
	return "", false
}
