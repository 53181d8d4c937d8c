package splunkfake

import (
	"bytes"
	"time"
)

// The knobs that script the fake's behaviour. Each takes the fake's lock:
// tests may turn them while the plugin talks to the fake.

// SetQuota makes the next n job creations and exports fail with HTTP 503
// and QuotaMessage (n < 0: all of them).
func (f *Fake) SetQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quota = n
}

// SetFatal makes every job created from now on end FAILED with this
// FATAL message ("": none).
func (f *Fake) SetFatal(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatal = msg
}

// SetDoneFatal makes jobs end DONE with this FATAL message ("": none).
func (f *Fake) SetDoneFatal(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doneFatal = msg
}

// SetRunningPolls sets how many status polls of a job answer RUNNING
// (after the first, QUEUED) before DONE.
func (f *Fake) SetRunningPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runningPolls = n
}

// SetNeverDone keeps every job RUNNING.
func (f *Fake) SetNeverDone(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.neverDone = on
}

// SetResultsCap caps the rows of one results answer (the server's
// maxresultrows; 0: no cap).
func (f *Fake) SetResultsCap(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resultsCap = n
}

// SetResultsBody makes every results answer these bytes, verbatim (nil:
// the job's rows).
func (f *Fake) SetResultsBody(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resultsBody = bytes.Clone(b)
}

// SetResultsStatus makes every results request fail with this HTTP
// status (0: succeed).
func (f *Fake) SetResultsStatus(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resultsStatus = status
}

// SetCancelStatus makes job control requests fail with this HTTP status
// (0: succeed).
func (f *Fake) SetCancelStatus(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelStatus = status
}

// SetExportPreview makes the export stream a preview result set before
// the final rows.
func (f *Fake) SetExportPreview(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exportPreview = on
}

// SetExportFatal makes the export stream an inline FATAL frame with this
// message after the first row ("": none).
func (f *Fake) SetExportFatal(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exportFatal = msg
}

// ExpireSessions makes the next n requests authenticated with a session
// key fail with 401, the session forgotten.
func (f *Fake) ExpireSessions(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireSessions = n
}

// SetIgnoreOffset makes results answers and the saved searches listing
// start at offset 0 whatever the request asks, as a server that drops the
// paging offset would.
func (f *Fake) SetIgnoreOffset(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignoreOffset = on
}

// SetClockSkew sets the server's clock minus the real one, as its Date
// headers show it.
func (f *Fake) SetClockSkew(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clockSkew = d
}

// SetInfoDelay holds the server info answer back by d (or until the
// client gives up).
func (f *Fake) SetInfoDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.infoDelay = d
}

// SetVersion sets the Splunk version server info reports.
func (f *Fake) SetVersion(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = v
}

// SetCapabilities sets the capabilities of the authenticated user.
func (f *Fake) SetCapabilities(caps []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.caps = append([]string(nil), caps...)
}

// SetSavedSearchesCap makes one answer of the saved searches listing hold
// at most n entries, whatever count asks (count=0 included), as a server
// with a lower maximum does; paging.total still says how many there are.
func (f *Fake) SetSavedSearchesCap(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.savedCap = n
}

// SetSavedSearches sets the entries of the saved searches listing (see
// SavedSearch).
func (f *Fake) SetSavedSearches(entries []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved = append([]map[string]any(nil), entries...)
}

// SetSavedStatuses makes the saved searches listing answer these HTTP
// statuses first, one per request and in order, before it succeeds.
func (f *Fake) SetSavedStatuses(statuses []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.savedStatuses = append([]int(nil), statuses...)
}

// SetUpdateReply makes the notable update endpoint answer this body ("":
// success for every ruleUID).
func (f *Fake) SetUpdateReply(body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updateReply = body
}

// SetHECHealth sets the collector's health code (17: healthy; any other
// is answered with 503).
func (f *Fake) SetHECHealth(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthCode = code
}

// SetHECReplies makes the collector answer these replies first, one per
// event request and in order, before it accepts events.
func (f *Fake) SetHECReplies(replies []HECReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hecReplies = append([]HECReply(nil), replies...)
}

// SetHECIndexes restricts the indexes the collector accepts events for
// (none: any).
func (f *Fake) SetHECIndexes(indexes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hecIndexes = append([]string(nil), indexes...)
}

// EnableHECAck turns indexer acknowledgement on: event requests need a
// channel and get an ackId, which the ack endpoint reports false polls
// times before true.
func (f *Fake) EnableHECAck(polls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hecAck, f.ackPolls = true, polls
}

// HECAck reports whether indexer acknowledgement is on.
func (f *Fake) HECAck() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hecAck
}
