// Package cloudtrail turns recorded AWS CloudTrail (a log file, a JSON
// array of records such as Stratus Red Team's detonation logs, or one
// record per line) into a replay test: a catalog file and its recording,
// so that a detection engineer can test rules against any detonation or
// incident they kept (`vigil import cloudtrail`).
//
// The records that belong to the detonation are those carrying its marker
// in one field (userAgent by default): Stratus Red Team sets the
// User-Agent of its calls to stratus-red-team_<uuid>, vigil's aws
// injector to one holding vigil-<hex>. On replay the marker is replaced by
// the run's, wherever it appears, so signals are tied to the replay.
package cloudtrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing/fstest"
	"time"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/telemetry"
)

// DefaultMarker matches the markers of Stratus Red Team and of vigil.
var DefaultMarker = regexp.MustCompile(`stratus-red-team_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|vigil-[0-9a-f]{12}`)

// DefaultMarkerField is where the marker is looked for.
const DefaultMarkerField = "userAgent"

// File is one input file.
type File struct {
	Name string
	Data []byte
}

// Options tune an import.
type Options struct {
	// Technique is the ATT&CK technique the test is for (required).
	Technique string
	// ID is the test's id (default: ct- and the first file's name).
	ID string
	// MarkerField and MarkerPattern say where the marker is (default
	// userAgent and DefaultMarker).
	MarkerField   string
	MarkerPattern *regexp.Regexp
}

// Result is an imported test.
type Result struct {
	ID     string
	Marker string
	// Records were read; Kept carry the marker and make the recording.
	Records, Kept int
	// Calls are the kept records' "eventSource eventName", in order.
	Calls []string
	// First is the time of the first kept record.
	First time.Time
	// TOML is the catalog file; Recording the <id>.jsonl recording.
	TOML, Recording []byte
}

var idSlugRE = regexp.MustCompile(`[^a-z0-9]+`)

// Import reads the files' records and builds the test.
func Import(files []File, o Options) (*Result, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("cloudtrail: no file to import")
	}
	tech, err := techniqueOf(o.Technique)
	if err != nil {
		return nil, err
	}
	if o.MarkerField == "" {
		o.MarkerField = DefaultMarkerField
	}
	if o.MarkerPattern == nil {
		o.MarkerPattern = DefaultMarker
	}
	if o.ID == "" {
		base := strings.TrimSuffix(filepath.Base(files[0].Name), filepath.Ext(files[0].Name))
		o.ID = "ct-" + strings.Trim(idSlugRE.ReplaceAllString(strings.ToLower(base), "-"), "-")
	}
	if err := telemetry.CheckTestID(o.ID); err != nil {
		return nil, fmt.Errorf("cloudtrail: test id: %w", err)
	}
	r := &Result{ID: o.ID}
	var events []telemetry.Event
	for _, f := range files {
		recs, err := telemetry.ReadCloudTrail(f.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		for i, rec := range recs {
			ev, err := telemetry.FromCloudTrail(rec, "")
			if err != nil {
				return nil, fmt.Errorf("%s: record %d: %w", f.Name, i+1, err)
			}
			r.Records++
			m := o.MarkerPattern.FindString(ev.Get(o.MarkerField))
			switch {
			case m == "":
				continue
			case r.Marker == "":
				r.Marker = m
			case m != r.Marker:
				return nil, fmt.Errorf("%s: record %d: a second marker %q in %s (the first was %q): import one detonation at a time", f.Name, i+1, m, o.MarkerField, r.Marker)
			}
			events = append(events, ev)
		}
	}
	if r.Marker == "" {
		return nil, fmt.Errorf("cloudtrail: none of the %d records has a marker in %s matching %s (name the field and pattern with --marker-field and --marker-pattern)", r.Records, o.MarkerField, o.MarkerPattern)
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	r.Kept, r.First = len(events), events[0].Time
	for _, ev := range events {
		if c := ev.Get("eventSource") + " " + ev.Get("eventName"); !slices.Contains(r.Calls, c) {
			r.Calls = append(r.Calls, c)
		}
	}
	var rec bytes.Buffer
	if err := telemetry.Record(&rec, r.ID, r.Marker, events[0].Host, events); err != nil {
		return nil, fmt.Errorf("cloudtrail: %w", err)
	}
	r.Recording = rec.Bytes()
	r.TOML = testTOML(r, tech, files, o)
	src := catalog.Source{Label: "imported", FS: fstest.MapFS{r.ID + ".toml": {Data: r.TOML}}, Root: "."}
	if _, err := catalog.Load(src); err != nil {
		return nil, fmt.Errorf("cloudtrail: the test does not load: %w", err)
	}
	return r, nil
}

// techniqueOf validates the technique against ATT&CK.
func techniqueOf(id string) (attack.Technique, error) {
	if id == "" {
		return attack.Technique{}, fmt.Errorf("cloudtrail: --technique is required: the ATT&CK technique the recorded activity is")
	}
	t, err := attack.Default().Lookup(id)
	if err != nil {
		return attack.Technique{}, fmt.Errorf("cloudtrail: --technique %w", err)
	}
	return t, nil
}

// testTOML writes the replay test.
func testTOML(r *Result, tech attack.Technique, files []File, o Options) []byte {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f.Name)
	}
	origin := "a recorded activity"
	if strings.HasPrefix(r.Marker, "stratus-red-team_") {
		origin = "a Stratus Red Team detonation (Stratus Red Team, Datadog, Apache-2.0)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Imported by `vigil import cloudtrail` from %s, the CloudTrail of %s.\n", strings.Join(names, ", "), origin)
	b.WriteString("# Replay only: vigil run --replay --catalog DIR --replay-dir DIR.\n")
	fmt.Fprintf(&b, "id = %s\n", quote(r.ID))
	fmt.Fprintf(&b, "technique = %s\n", quote(string(tech.ID)))
	fmt.Fprintf(&b, "name = %s\n", quote("Replay of "+strings.Join(names, ", ")))
	desc := fmt.Sprintf("Replays %d CloudTrail record(s) of %s carrying the marker %s in %s, recorded at %s: %s. Mapped by the importer to %s (%s).",
		r.Kept, origin, r.Marker, o.MarkerField, r.First.UTC().Format("2006-01-02"), strings.Join(r.Calls, ", "), tech.ID, tech.FullName())
	fmt.Fprintf(&b, "description = %s\n", quote(desc))
	b.WriteString("platforms = [\"iaas:aws\"]\nsafety = \"safe\"\ntimeout = \"60s\"\ntags = [\"cloudtrail\", \"imported\", \"replay-only\"]\n\n")
	b.WriteString("[inject]\nplugin = \"replay\"\n\n[[expect]]\nwithin = \"30s\"\n")
	return []byte(b.String())
}

func quote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// DerivedMarker is the run marker of the recording Derive makes for a
// test: fixed, so that a derivation can be checked again.
func DerivedMarker(testID string) string {
	sum := sha256.Sum256([]byte("vigil aws recording " + testID))
	return "vigil-" + hex.EncodeToString(sum[:])[:12]
}

// Derive makes a test's recording from a real detonation's records (a
// Stratus Red Team detonation log): the records keep kept, in time order,
// with the User-Agent the aws injector sends (the SDK's, with the marker
// as its app ID) and "stratus-red-team" in resource names replaced by the
// marker. Times, identities, addresses and parameters stay those of the
// detonation.
func Derive(testID string, records []json.RawMessage, keep func(eventSource, eventName string) bool) ([]byte, error) {
	marker := DerivedMarker(testID)
	var events []telemetry.Event
	for i, rec := range records {
		var doc map[string]any
		if err := json.Unmarshal(rec, &doc); err != nil {
			return nil, fmt.Errorf("cloudtrail: record %d: %w", i+1, err)
		}
		src, _ := doc["eventSource"].(string)
		name, _ := doc["eventName"].(string)
		if !keep(src, name) {
			continue
		}
		doc["userAgent"] = "aws-sdk-go-v2/1.48.0 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/" +
			strings.TrimSuffix(src, ".amazonaws.com") + " m/E app/" + marker
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		b = bytes.ReplaceAll(b, []byte("stratus-red-team"), []byte(marker))
		ev, err := telemetry.FromCloudTrail(b, "")
		if err != nil {
			return nil, fmt.Errorf("cloudtrail: record %d: %w", i+1, err)
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("cloudtrail: no record of %s kept", testID)
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	var out bytes.Buffer
	if err := telemetry.Record(&out, testID, marker, events[0].Host, events); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
