package sdk

import (
	"sync"

	"github.com/vigilsec/vigil/core/plugin"
)

// SignalCount counts the distinct signals a plugin returned across polls,
// by ID: the engine searches the same window again every poll, so adding
// up the hits would count one alert once per poll. A signal without an ID
// cannot be told apart and counts each time. The zero value is ready; it
// is safe for concurrent use.
type SignalCount struct {
	mu     sync.Mutex
	seen   map[string]struct{}
	noID   int64
	counts int64
}

// Add counts the signals of one answer not seen before.
func (c *SignalCount) Add(signals []plugin.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]struct{}{}
	}
	for _, s := range signals {
		if s.ID == "" {
			c.noID++
			continue
		}
		if _, ok := c.seen[s.ID]; !ok {
			c.seen[s.ID] = struct{}{}
			c.counts++
		}
	}
}

// Load returns how many distinct signals were added.
func (c *SignalCount) Load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts + c.noID
}
