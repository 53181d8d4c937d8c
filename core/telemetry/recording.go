package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"
)

// FormatVersion is the version of the recording format (Header.Version).
const FormatVersion = 1

// Ext is the extension of recording files: <test-id>.jsonl.
const Ext = ".jsonl"

// maxLine bounds one line of a recording or record file.
const maxLine = 4 << 20

// Errors of recordings.
var (
	// ErrNotRecording means a file does not start with a recording header.
	ErrNotRecording = errors.New("not a vigil recording (no {\"vigil_recording\":1,...} header line)")
	// ErrNoEvents means no event carries the run marker: nothing to record.
	ErrNoEvents = errors.New("no event carries the run marker")
)

// Header is the first line of a recording.
type Header struct {
	// Version is FormatVersion.
	Version int `json:"vigil_recording"`
	// TestID is the test whose run was recorded.
	TestID string `json:"test_id"`
	// Marker is the run marker of the recorded run; a replay replaces it
	// with its own everywhere.
	Marker string `json:"marker"`
	// Host is the host the run was recorded on.
	Host string `json:"host"`
	// RecordedAt is when the recording was written.
	RecordedAt time.Time `json:"recorded_at"`
}

// Recording is a header and the recorded events, sorted by time.
type Recording struct {
	Header
	Events []Event
}

// Record writes a recording of the run of test testID marked with marker
// on host: the header line, then, one JSON line each and sorted by time,
// the events whose ancestry or fields contain the marker together with the
// events of the processes those events' processes started (see Select). It
// returns ErrNoEvents when no event carries the marker.
func Record(w io.Writer, testID, marker, host string, events []Event) error {
	if err := CheckTestID(testID); err != nil {
		return fmt.Errorf("telemetry: record: %w", err)
	}
	if marker == "" {
		return errors.New("telemetry: record: empty marker")
	}
	sel := Select(marker, events)
	if len(sel) == 0 {
		return fmt.Errorf("telemetry: record %s: %w %q", testID, ErrNoEvents, marker)
	}
	bw := bufio.NewWriter(w)
	h := Header{Version: FormatVersion, TestID: testID, Marker: marker, Host: host, RecordedAt: time.Now().UTC()}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("telemetry: record: %w", err)
	}
	bw.Write(append(b, '\n'))
	for i := range sel {
		b, err := sel[i].MarshalJSONL()
		if err != nil {
			return fmt.Errorf("telemetry: record: %w", err)
		}
		bw.Write(append(b, '\n'))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("telemetry: record: %w", err)
	}
	return nil
}

// Select returns, sorted by time (then audit sequence), the events whose
// ancestry or fields contain marker, plus the events of their descendant
// processes that happened after the first marked event: a process whose
// parent (ppid / ParentProcessId) is a marked or selected process is
// selected too, even when the sensor could not tie its ancestry to the
// marker.
//
// The selected events' ancestry is cut above the farthest process whose
// command line holds the marker (the injector's marked shell): a recording
// keeps nothing of what started the run (vigil, the user's shell, their
// ancestors and their arguments). An event whose ancestry does not hold the
// marker keeps only its own process.
func Select(marker string, events []Event) []Event {
	if marker == "" {
		return nil
	}
	selected := make([]bool, len(events))
	pids := map[string]bool{}
	var first time.Time
	for i := range events {
		if carries(&events[i], marker) {
			selected[i] = true
			if pid := pidOf(&events[i]); pid != "" {
				pids[pid] = true
			}
			if t := events[i].Time; first.IsZero() || t.Before(first) {
				first = t
			}
		}
	}
	for changed := len(pids) > 0; changed; {
		changed = false
		for i := range events {
			ev := &events[i]
			if selected[i] || ev.Time.Before(first) {
				continue
			}
			if ppid := ppidOf(ev); ppid != "" && pids[ppid] {
				selected[i] = true
				changed = true
				if pid := pidOf(ev); pid != "" {
					pids[pid] = true
				}
			}
		}
	}
	var out []Event
	for i := range events {
		if selected[i] {
			ev := events[i]
			ev.Ancestry = trimAncestry(ev.Ancestry, marker)
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Sequence < out[j].Sequence
	})
	return out
}

// trimAncestry returns anc (nearest process first) up to its farthest entry
// holding marker, or only its first entry when none does.
func trimAncestry(anc []string, marker string) []string {
	if len(anc) == 0 {
		return anc
	}
	keep := 1
	for i, a := range anc {
		if strings.Contains(a, marker) {
			keep = i + 1
		}
	}
	return slices.Clone(anc[:keep])
}

// carries reports whether ev's ancestry or one of its fields contains s.
func carries(ev *Event, s string) bool {
	for _, a := range ev.Ancestry {
		if strings.Contains(a, s) {
			return true
		}
	}
	for k := range ev.Fields {
		switch v := ev.Fields[k].(type) {
		case string:
			if strings.Contains(v, s) {
				return true
			}
		case []string:
			for _, x := range v {
				if strings.Contains(x, s) {
					return true
				}
			}
		}
	}
	return false
}

func pidOf(ev *Event) string {
	if p := ev.Get("ProcessId"); p != "" {
		return p
	}
	return ev.Get("pid")
}

func ppidOf(ev *Event) string {
	if p := ev.Get("ParentProcessId"); p != "" {
		return p
	}
	return ev.Get("ppid")
}

// Read reads a recording: the header line, then one event per line. Blank
// lines are skipped.
func Read(r io.Reader) (*Recording, error) {
	rec, err := read(r)
	if err != nil {
		return nil, fmt.Errorf("telemetry: read recording: %w", err)
	}
	return rec, nil
}

// read is Read with errors that name only the line.
func read(r io.Reader) (*Recording, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	rec := &Recording{}
	line, seenHeader := 0, false
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if !seenHeader {
			if err := json.Unmarshal(b, &rec.Header); err != nil || rec.Version == 0 {
				return nil, fmt.Errorf("line %d: %w", line, ErrNotRecording)
			}
			if rec.Version != FormatVersion {
				return nil, fmt.Errorf("line %d: recording format version %d, this vigil reads %d", line, rec.Version, FormatVersion)
			}
			seenHeader = true
			continue
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rec.Events = append(rec.Events, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !seenHeader {
		return nil, ErrNotRecording
	}
	sort.SliceStable(rec.Events, func(i, j int) bool { return rec.Events[i].Time.Before(rec.Events[j].Time) })
	return rec, nil
}

// ReadEvents reads JSON lines of events without a header: the local SIEM's
// record file (its `record` setting), which `vigil record` turns into a
// recording with Record. Blank lines are skipped; a line that is not an
// event is an error naming it.
func ReadEvents(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var out []Event
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("telemetry: read events: line %d: %w", line, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("telemetry: read events: line %d: %w", line+1, err)
	}
	return out, nil
}

// Load reads the recording of test testID, <testID>.jsonl, from fsys. A
// missing recording is an error wrapping fs.ErrNotExist; errors do not
// name the file (the caller knows where it looked).
func Load(fsys fs.FS, testID string) (*Recording, error) {
	if err := CheckTestID(testID); err != nil {
		return nil, err
	}
	f, err := fsys.Open(testID + Ext)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return read(f)
}

// Rebase returns a copy of the recorded events as they would happen now on
// host in a run marked with marker: re-timestamped so that the first event
// is at start (relative offsets kept), with the recorded marker replaced by
// marker in every string field and in the ancestry, and Host set to host.
func (r *Recording) Rebase(start time.Time, marker, host string) []Event {
	out := make([]Event, len(r.Events))
	if len(r.Events) == 0 {
		return out
	}
	offset := start.Sub(r.Events[0].Time)
	sub := func(s string) string {
		if r.Marker == "" {
			return s
		}
		return strings.ReplaceAll(s, r.Marker, marker)
	}
	for i, ev := range r.Events {
		ev.Time = ev.Time.Add(offset)
		ev.Host = host
		if ev.Ancestry != nil {
			anc := make([]string, len(ev.Ancestry))
			for k, a := range ev.Ancestry {
				anc[k] = sub(a)
			}
			ev.Ancestry = anc
		}
		fields := make(map[string]any, len(ev.Fields))
		for k, v := range ev.Fields {
			switch t := v.(type) {
			case string:
				fields[k] = sub(t)
			case []string:
				ss := make([]string, len(t))
				for j, x := range t {
					ss[j] = sub(x)
				}
				fields[k] = ss
			default:
				fields[k] = v
			}
		}
		ev.Fields = fields
		out[i] = ev
	}
	return out
}

// CheckTestID refuses test IDs that cannot name a recording file.
func CheckTestID(id string) error {
	switch {
	case id == "":
		return errors.New("empty test id")
	case len(id) > 128, strings.ContainsAny(id, `/\`), strings.HasPrefix(id, "."), !fs.ValidPath(id + Ext):
		return fmt.Errorf("test id %q cannot name a recording file", id)
	}
	return nil
}
