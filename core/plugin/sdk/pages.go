package sdk

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core/plugin"
)

// ErrBadPageToken means a Search page token the plugin did not hand out, or
// one of a poll a newer poll replaced.
var ErrBadPageToken = errors.New("bad page token")

// Pages keeps the signals of a plugin's current poll and cuts them into
// Search pages: at most size signals, and about MaxBytes of raw documents
// (at least one signal a page). A new poll (First) replaces the previous
// one, whose tokens then fail with ErrBadPageToken. The zero value is ready
// (no byte bound); it is safe for concurrent use.
type Pages struct {
	// MaxBytes bounds the raw documents of a page (0: no bound).
	MaxBytes int

	mu    sync.Mutex
	seq   int64
	polls map[string][]plugin.Signal
}

// First keeps sigs as the current poll and returns its first page.
func (p *Pages) First(sigs []plugin.Signal, size int) plugin.SearchResult {
	p.mu.Lock()
	p.seq++
	id := strconv.FormatInt(p.seq, 10)
	p.polls = map[string][]plugin.Signal{id: sigs}
	p.mu.Unlock()
	return p.slice(id, sigs, 0, size)
}

// Next returns the page tok points at.
func (p *Pages) Next(tok string, size int) (plugin.SearchResult, error) {
	id, offs, ok := strings.Cut(tok, ":")
	off, err := strconv.Atoi(offs)
	if !ok || err != nil || off < 0 {
		return plugin.SearchResult{}, fmt.Errorf("%w %q", ErrBadPageToken, tok)
	}
	p.mu.Lock()
	sigs, found := p.polls[id]
	p.mu.Unlock()
	if !found || off > len(sigs) {
		return plugin.SearchResult{}, fmt.Errorf("%w %q (a newer poll replaced it)", ErrBadPageToken, tok)
	}
	return p.slice(id, sigs, off, size), nil
}

// Reset forgets the kept poll (a poll that failed, or Close).
func (p *Pages) Reset() {
	p.mu.Lock()
	p.polls = nil
	p.mu.Unlock()
}

// slice cuts the page of poll id from off; the last page forgets the poll.
func (p *Pages) slice(id string, sigs []plugin.Signal, off, size int) plugin.SearchResult {
	var (
		res   plugin.SearchResult
		bytes int
		i     = off
	)
	for ; i < len(sigs) && len(res.Signals) < size; i++ {
		if bytes += len(sigs[i].Raw); p.MaxBytes > 0 && bytes > p.MaxBytes && len(res.Signals) > 0 {
			break
		}
		res.Signals = append(res.Signals, sigs[i])
	}
	if i < len(sigs) {
		res.NextPageToken = id + ":" + strconv.Itoa(i)
	} else {
		p.mu.Lock()
		delete(p.polls, id)
		p.mu.Unlock()
	}
	return res
}

// MergeSignals returns sigs with each ID once, the matched expectations of
// its repeats joined to the first, sorted by time then ID: what one poll
// answers when a base search and native queries find the same alert.
func MergeSignals(sigs []plugin.Signal) []plugin.Signal {
	out := make([]plugin.Signal, 0, len(sigs))
	index := map[string]int{}
	for _, s := range sigs {
		if j, dup := index[s.ID]; dup {
			for _, e := range s.MatchedExpectations {
				if !slices.Contains(out[j].MatchedExpectations, e) {
					out[j].MatchedExpectations = append(out[j].MatchedExpectations, e)
				}
			}
			continue
		}
		index[s.ID] = len(out)
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Timestamp.Equal(out[j].Timestamp) {
			return out[i].Timestamp.Before(out[j].Timestamp)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
