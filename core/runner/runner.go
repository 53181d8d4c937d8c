// Package runner is vigil's engine: it plans tests x targets (x hosts, for
// targets that name several) x SIEMs, fires each test through its injector
// with a unique run marker, waits for the expected signals through one
// watcher per SIEM (one batched search per poll interval, whatever the
// number of pending tests), measures detection latency, and always cleans
// up.
//
// The runner depends on the plugin interfaces only, not on how plugins are
// launched, so tests drive it with in-process fakes or real plugin processes.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/core/plugin"
)

// SIEM is a configured SIEM under test.
type SIEM struct {
	Name, Plugin string
	Impl         plugin.SIEM
	Desc         plugin.Description
	PollInterval time.Duration
	// Timeout is the default detection deadline of its expectations.
	Timeout  time.Duration
	PageSize int
	// ClockSlack is how far before the earliest pending injection (and
	// after now) searches reach, so that a SIEM or log source whose clock
	// is off still has its signals found: credited when the SIEM's measured
	// clock offset explains them, else the evidence of an
	// alert_outside_window miss. Latency is still measured from the
	// injection. At least ClockTolerance is always used.
	ClockSlack time.Duration
}

// Target is a configured injection target.
type Target struct {
	Name, Plugin string
	Impl         plugin.Injector
	Desc         plugin.Description
	// Host is the target's host name, for {{host}} and the time+host
	// fallback, when it has no Hosts.
	Host string
	// Hosts are the hosts of a multi-host target ("host" or "host:port"),
	// from its hosts and inventory. Each test runs once per host, through
	// the target's one injector, which gets the host in every request.
	Hosts []string
	// Runs are the other injectors whose tests this target runs (an ssh
	// target runs the exec tests); its own Plugin is implied.
	Runs []string
	// TmpRoot is where per-injection work directories go on the target.
	TmpRoot string
}

// Accepts reports whether the target runs tests written for injector
// name: its own plugin, or one its Runs lists.
func (t *Target) Accepts(name string) bool {
	return t.Plugin == name || slices.Contains(t.Runs, name)
}

// Options tune a run.
type Options struct {
	// Concurrency bounds the tests in flight (injecting or waiting).
	// Whatever it is, jobs whose tests share a serial group
	// (catalog.Test.SerialGroup) run one at a time on each target and host
	// (each Job.TargetName): a job holds its group from its prerequisites
	// through inject and the wait for signals to the end of its cleanup.
	// A job waiting for its group holds no slot, and the jobs after it in
	// the plan that can run go first.
	Concurrency int
	// AllowDestructive lets destructive tests run (they must also have been
	// selected explicitly; see catalog.Select).
	AllowDestructive bool
	// GetPrereqs runs prerequisites' get commands when a check fails.
	GetPrereqs bool
	// Args are the user's overrides of test args (--arg).
	Args catalog.ArgOverrides
	// CloseSignals archives matched signals in SIEMs that can.
	CloseSignals bool
	// CleanupContext bounds cleanups; it should outlive the run context so
	// that a first interrupt still cleans up, and end on a second interrupt.
	// Default: the run context without its cancellation.
	CleanupContext context.Context
	// Progress, if set, is called (from several goroutines, serialised by the
	// runner) as jobs start and finish.
	Progress func(Progress)
	// HostStep, if set, is called as a job begins (begin true) and ends
	// (false) each step that may change its target: prerequisites,
	// injection and cleanup. The host-integrity check reads the host at
	// each end, so that a change is tied to the tests in such a step.
	HostStep func(j *Job, begin bool)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Progress reports a job starting (Results nil) or finishing.
type Progress struct {
	Job     *Job
	Done    int // jobs finished so far
	Total   int
	Results []measure.Result
}

// Pairing says how a target's injections can be tied to a SIEM's signals.
type Pairing struct {
	// MarkerLocations are where the injector plants the marker and the SIEM
	// can find it. Empty means the fallback.
	MarkerLocations []plugin.MarkerLocation
	// Fallback is true when signals can only be tied by time window and host.
	Fallback bool
}

// Describe renders the pairing for plans and results.
func (p Pairing) Describe() string {
	if p.Fallback {
		return "time+host (no shared marker field)"
	}
	s := make([]string, len(p.MarkerLocations))
	for i, l := range p.MarkerLocations {
		s[i] = string(l)
	}
	return "marker in " + strings.Join(s, ", ")
}

// Job is one test on one target (on one of its hosts), checked against one
// or more SIEMs.
type Job struct {
	Test   *catalog.Test
	Target *Target
	// Host is the host of a multi-host target this job runs on, one of
	// Target.Hosts; "" for a single-host target.
	Host     string
	SIEMs    []*SIEM
	Pairings map[string]Pairing // by SIEM name
}

// TargetName is the name results carry: the target's name, and for a host
// of a multi-host target "name@host", so that each host is reported (and
// compared across runs) on its own.
func (j *Job) TargetName() string {
	if j.Host == "" {
		return j.Target.Name
	}
	return j.Target.Name + "@" + j.Host
}

// serialKey is what a job holds while it runs: its test's serial group on
// its target and host; "" when the test has no group.
func (j *Job) serialKey() string {
	if j.Test.SerialGroup == "" {
		return ""
	}
	return j.Test.SerialGroup + "\x00" + j.TargetName()
}

// hostName is the host of the job as {{host}} and the time+host fallback
// see it: the target's host, or the job's host without its port.
func (j *Job) hostName() string {
	if j.Host == "" {
		return j.Target.Host
	}
	return HostOnly(j.Host)
}

// HostOnly strips the port from "host:port" and the brackets from
// "[v6addr]:port" or "[v6addr]"; a bare name or address is returned as is.
func HostOnly(h string) string {
	if hh, _, err := net.SplitHostPort(h); err == nil {
		return hh
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// Plan is what a run would do.
type Plan struct {
	Jobs []*Job
	// Notes are things a user should know (fallback correlations, tests
	// without a matching target).
	Notes []string
}

// Engine runs plans.
type Engine struct {
	SIEMs   []*SIEM
	Targets []*Target
	Opts    Options

	mu       sync.Mutex
	watchers map[string]*watcher
}

// ErrNoPairing means a target's injections cannot be correlated with a
// SIEM's signals at all.
var ErrNoPairing = errors.New("cannot correlate: no marker field in common and the SIEM does not report hosts")

// PairingFor decides how a target's injections are tied to a SIEM's signals.
func PairingFor(t *Target, s *SIEM) (Pairing, error) {
	if locs := intersect(t.Desc.MarkerLocations, s.Desc.MarkerLocations); len(locs) > 0 {
		return Pairing{MarkerLocations: locs}, nil
	}
	if s.Desc.ReportsHost {
		return Pairing{Fallback: true}, nil
	}
	return Pairing{}, fmt.Errorf("target %q (%s) and siem %q (%s): %w", t.Name, t.Plugin, s.Name, s.Plugin, ErrNoPairing)
}

// Plan pairs each test with the targets that run its injector (see
// Target.Accepts) and the SIEMs its expectations concern: one job per
// target, or per host of a multi-host target. A pairing that cannot
// correlate is an error; a test without a target is a note.
func (e *Engine) Plan(tests []*catalog.Test) (*Plan, error) {
	p := &Plan{}
	var errs []error
	fallbackNoted, ingestNoted := map[string]bool{}, map[string]bool{}
	// unplanned are the tests of each injector no target uses.
	unplanned, unplannedOrder := map[string][]string{}, []string(nil)
	for _, t := range tests {
		matched := false
		for _, tg := range e.Targets {
			if !tg.Accepts(t.Inject.Plugin) {
				continue
			}
			matched = true
			job := &Job{Test: t, Target: tg, Pairings: map[string]Pairing{}}
			for _, s := range e.SIEMs {
				if len(expectationsFor(t, s)) == 0 {
					continue
				}
				pr, err := PairingFor(tg, s)
				if err != nil {
					errs = append(errs, fmt.Errorf("test %s: %w", t.ID, err))
					continue
				}
				if pr.Fallback && !fallbackNoted[tg.Name+"/"+s.Name] {
					fallbackNoted[tg.Name+"/"+s.Name] = true
					p.Notes = append(p.Notes, fmt.Sprintf("target %q and siem %q share no marker field: signals are tied by time window and host only", tg.Name, s.Name))
				}
				if s.Desc.Has(plugin.CapRawEvents) && !s.Desc.Has(plugin.CapIngestTime) && !ingestNoted[s.Name] {
					ingestNoted[s.Name] = true
					p.Notes = append(p.Notes, fmt.Sprintf("siem %q: ingest_latency_ms is not measured: its plugin cannot tell when the SIEM received an event", s.Name))
				}
				job.SIEMs = append(job.SIEMs, s)
				job.Pairings[s.Name] = pr
			}
			if len(job.SIEMs) == 0 {
				continue
			}
			if len(tg.Hosts) == 0 {
				p.Jobs = append(p.Jobs, job)
				continue
			}
			for _, h := range tg.Hosts {
				hj := *job
				hj.Host = h
				p.Jobs = append(p.Jobs, &hj)
			}
		}
		if !matched {
			if unplanned[t.Inject.Plugin] == nil {
				unplannedOrder = append(unplannedOrder, t.Inject.Plugin)
			}
			unplanned[t.Inject.Plugin] = append(unplanned[t.Inject.Plugin], t.ID)
		}
	}
	// One note per injector no target uses, naming its tests.
	for _, inj := range unplannedOrder {
		ids := unplanned[inj]
		if len(ids) == 1 {
			p.Notes = append(p.Notes, fmt.Sprintf("test %s needs an injector %q but no target uses it", ids[0], inj))
			continue
		}
		p.Notes = append(p.Notes, fmt.Sprintf("%d tests need an injector %q but no target uses it: %s", len(ids), inj, strings.Join(ids, ", ")))
	}
	return p, errors.Join(errs...)
}

// expectationsFor returns the test's expectations that concern SIEM s.
func expectationsFor(t *catalog.Test, s *SIEM) []indexedExp {
	var out []indexedExp
	exps := t.Expect
	if len(exps) == 0 {
		exps = []catalog.Expectation{{Technique: t.Technique.ID}}
	}
	for i, x := range exps {
		if len(x.SIEMs) > 0 && !slices.Contains(x.SIEMs, s.Name) && !slices.Contains(x.SIEMs, s.Plugin) {
			continue
		}
		out = append(out, indexedExp{i, x})
	}
	return out
}

type indexedExp struct {
	index int
	exp   catalog.Expectation
}

// NewMarker returns a fresh run marker: "vigil-" and 12 hex digits, safe in
// file names, process arguments, host names and queries.
func NewMarker() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return "vigil-" + hex.EncodeToString(b[:])
}

func (e *Engine) now() time.Time {
	if e.Opts.Now != nil {
		return e.Opts.Now()
	}
	return time.Now()
}

// Run executes the plan and returns one result per (job, SIEM), in plan
// order. Results already measured are kept whatever happens later: an
// interrupted run returns what it has, with the unfinished jobs as errors or
// skips.
func (e *Engine) Run(ctx context.Context, p *Plan) []measure.Result {
	stop := e.startWatchers(ctx)
	defer stop()
	results := make([][]measure.Result, len(p.Jobs))
	e.dispatch(ctx, p, results, e.progress(len(p.Jobs)))
	var out []measure.Result
	for _, rs := range results {
		out = append(out, rs...)
	}
	return out
}

// startWatchers starts one watcher per SIEM; the func it returns stops
// them and waits for them.
func (e *Engine) startWatchers(ctx context.Context) func() {
	watchCtx, stopWatchers := context.WithCancelCause(ctx)
	e.mu.Lock()
	e.watchers = map[string]*watcher{}
	var wg sync.WaitGroup
	for _, s := range e.SIEMs {
		w := newWatcher(s, e.now)
		e.watchers[s.Name] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.run(watchCtx) }()
	}
	e.mu.Unlock()
	return func() {
		stopWatchers(errors.New("run finished"))
		wg.Wait()
	}
}

// progress returns the func that reports a job starting (rs nil) or
// finishing to Options.Progress, serialised.
func (e *Engine) progress(total int) func(j *Job, rs []measure.Result) {
	var (
		mu   sync.Mutex
		done int
	)
	return func(j *Job, rs []measure.Result) {
		if e.Opts.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if rs != nil {
			done++
		}
		e.Opts.Progress(Progress{Job: j, Done: done, Total: total, Results: rs})
	}
}

// dispatch runs the jobs, filling results[i] for p.Jobs[i]: in plan order,
// the first waiting job whose serial group is free on its target and host,
// while fewer than Concurrency run. Waiting jobs hold nothing, so a job
// blocked on its group never keeps a slot from the jobs after it, and a
// group's holder never waits for anything but a slot it already has: no
// deadlock, and each group drains in plan order. Once ctx ends, the jobs
// still waiting are skipped and the running ones finish.
func (e *Engine) dispatch(ctx context.Context, p *Plan, results [][]measure.Result, report func(*Job, []measure.Result)) {
	conc := e.Opts.Concurrency
	if conc <= 0 {
		conc = 4
	}
	var (
		queue    = make([]int, len(p.Jobs)) // indexes into p.Jobs, waiting
		held     = map[string]bool{}        // serial keys of running jobs
		running  int
		finished = make(chan int)
		ctxDone  = ctx.Done()
	)
	for i := range queue {
		queue[i] = i
	}
	free := func(i int) bool {
		k := p.Jobs[i].serialKey()
		return k == "" || !held[k]
	}
	for {
		if ctx.Err() != nil {
			for _, i := range queue {
				results[i] = e.skipAll(p.Jobs[i], "not run: "+context.Cause(ctx).Error())
				report(p.Jobs[i], results[i])
			}
			queue = nil
		}
		for running < conc {
			k := slices.IndexFunc(queue, free)
			if k < 0 {
				break
			}
			i := queue[k]
			queue = slices.Delete(queue, k, k+1)
			j := p.Jobs[i]
			if key := j.serialKey(); key != "" {
				held[key] = true
			}
			running++
			go func() {
				report(j, nil)
				results[i] = e.runJob(ctx, j)
				report(j, results[i])
				finished <- i
			}()
		}
		if running == 0 {
			return // nothing runs, so nothing is held: the queue is empty
		}
		select {
		case i := <-finished:
			running--
			delete(held, p.Jobs[i].serialKey())
		case <-ctxDone:
			ctxDone = nil // skip the queue above, then wait for the running jobs
		}
	}
}

func (e *Engine) watcher(name string) *watcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.watchers[name]
}

// SortResults orders results by test, target and SIEM, for stable reports.
func SortResults(rs []measure.Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.TestID != b.TestID {
			return a.TestID < b.TestID
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.SIEM < b.SIEM
	})
}
