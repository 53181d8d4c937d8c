package sensor

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
)

// ParseLog reads audit records in auditd's log format (one
// "type=NAME msg=audit(sec.msec:serial): fields" per line, as written by
// auditd or Config.RawLog) and reassembles them into audit events in serial
// order, ready for Normaliser.Normalise. Blank lines and lines starting with
// '#' are skipped; a line that is not an audit record is an error naming its
// line number.
func ParseLog(r io.Reader) ([][]*auparse.AuditMessage, error) {
	var c collector
	// Everything is flushed by Close: the in-flight bound and the timeout
	// only need to be large enough never to split an event.
	reasm, err := libaudit.NewReassembler(1<<16, time.Hour, &c)
	if err != nil {
		return nil, fmt.Errorf("sensor: parse log: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		msg, err := auparse.ParseLogLine(text)
		if err != nil {
			return nil, fmt.Errorf("sensor: parse log line %d: %w", line, err)
		}
		reasm.PushMessage(msg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sensor: read log: %w", err)
	}
	_ = reasm.Close()
	return c.events, nil
}

// collector is a libaudit.Stream that keeps the reassembled events.
type collector struct {
	events [][]*auparse.AuditMessage
}

func (c *collector) ReassemblyComplete(msgs []*auparse.AuditMessage) {
	c.events = append(c.events, msgs)
}

func (c *collector) EventsLost(int) {}
