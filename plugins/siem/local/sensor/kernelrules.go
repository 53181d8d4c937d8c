package sensor

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"sync"
	"syscall"

	"github.com/elastic/go-libaudit/v2/rule"
)

// installed counts, per rule (wire format), the sensors of this process that
// added it: two sensors of one process build identical rules (same pid
// exclusion, same key), and the kernel holds each rule once.
var installed = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// addRule adds r to the kernel unless a sensor of this process already did.
// A rule the kernel already holds (EEXIST) has the sensor's key and pid, so
// it is counted as the sensor's own.
func addRule(ctx context.Context, ctrl *nlSocket, r Rule) error {
	installed.Lock()
	defer installed.Unlock()
	k := string(r.Wire)
	if installed.n[k] == 0 {
		if err := ctrl.request(ctx, auditAddRule, r.Wire, nil); err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
	}
	installed.n[k]++
	return nil
}

// deleteRule removes r from the kernel when the last sensor of this process
// that added it lets it go. A rule already gone (ENOENT) is not an error.
func deleteRule(ctx context.Context, ctrl *nlSocket, r Rule) error {
	installed.Lock()
	defer installed.Unlock()
	k := string(r.Wire)
	if installed.n[k] > 1 {
		installed.n[k]--
		return nil
	}
	delete(installed.n, k)
	if err := ctrl.request(ctx, auditDelRule, r.Wire, nil); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	return nil
}

// staleRuleRE finds the pid exclusion of a sensor rule as ToCommandLine
// prints it; keyRE finds its keys.
var (
	staleRuleRE = regexp.MustCompile(`-F pid!=(\d+)`)
	keyRE       = regexp.MustCompile(`(?:-k |-F key=)(\S+)`)
)

// removeStaleRules deletes rules carrying the sensor's key whose pid
// exclusion names a process that no longer exists: rules of a sensor that
// crashed before its Stop.
func (s *Sensor) removeStaleRules(ctx context.Context) {
	wires, err := s.ctrl.listRules(ctx)
	if err != nil {
		s.log.Debug("audit sensor: cannot list rules to clean stale ones", "err", err)
		return
	}
	for _, w := range wires {
		text, err := rule.ToCommandLine(w, false)
		if err != nil || !hasKey(text, s.cfg.Key) {
			continue
		}
		m := staleRuleRE.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid <= 0 || processAlive(pid) {
			continue
		}
		if err := s.ctrl.request(ctx, auditDelRule, w, nil); err != nil {
			s.log.Debug("audit sensor: cannot delete stale rule", "rule", text, "err", err)
			continue
		}
		s.log.Info("audit sensor: deleted a rule left by a sensor that did not stop", "rule", text)
	}
}

// hasKey reports whether an auditctl-syntax rule carries key.
func hasKey(text, key string) bool {
	for _, f := range keyRE.FindAllStringSubmatch(text, -1) {
		if f[1] == key || f[1] == `"`+key+`"` {
			return true
		}
	}
	return false
}
