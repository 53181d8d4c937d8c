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
	"os"
	"path"
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
	return t.Plugin == name || contains(t.Runs, name)
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
	fallbackNoted := map[string]bool{}
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
			p.Notes = append(p.Notes, fmt.Sprintf("test %s needs an injector %q but no target uses it", t.ID, t.Inject.Plugin))
		}
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
		if len(x.SIEMs) > 0 && !contains(x.SIEMs, s.Name) && !contains(x.SIEMs, s.Plugin) {
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
	defer func() {
		stopWatchers(errors.New("run finished"))
		wg.Wait()
	}()

	conc := e.Opts.Concurrency
	if conc <= 0 {
		conc = 4
	}
	results := make([][]measure.Result, len(p.Jobs))
	var (
		progMu sync.Mutex
		done   int
		report = func(j *Job, rs []measure.Result) {
			if e.Opts.Progress == nil {
				return
			}
			progMu.Lock()
			defer progMu.Unlock()
			if rs != nil {
				done++
			}
			e.Opts.Progress(Progress{Job: j, Done: done, Total: len(p.Jobs), Results: rs})
		}
	)

	// Dispatch in plan order: the first waiting job whose serial group is
	// free on its target and host, while fewer than conc run. Waiting jobs
	// hold nothing, so a job blocked on its group never keeps a slot from
	// the jobs after it, and a group's holder never waits for anything but a
	// slot it already has: no deadlock, and each group drains in plan order.
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
			// Nothing runs, so nothing is held: the queue is empty.
			break
		}
		select {
		case i := <-finished:
			running--
			delete(held, p.Jobs[i].serialKey())
		case <-ctxDone:
			ctxDone = nil // skip the queue above, then wait for the running jobs
		}
	}
	var out []measure.Result
	for _, rs := range results {
		out = append(out, rs...)
	}
	return out
}

// Searches returns how many Search calls (pages included) and polls the
// watcher of SIEM name made during the last run.
func (e *Engine) Searches(name string) (searches, polls int64) {
	e.mu.Lock()
	w := e.watchers[name]
	e.mu.Unlock()
	if w == nil {
		return 0, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.searches, w.polls
}

func (e *Engine) baseResults(j *Job) []measure.Result {
	out := make([]measure.Result, len(j.SIEMs))
	for i, s := range j.SIEMs {
		out[i] = measure.Result{
			TestID: j.Test.ID, TestName: j.Test.Name, Technique: string(j.Test.Technique.ID),
			TechniqueName: j.Test.Technique.FullName(), Tactics: j.Test.Tactics,
			Target: j.TargetName(), Host: j.hostName(), SIEM: s.Name,
			PollIntervalMS: s.PollInterval.Milliseconds(),
		}
	}
	return out
}

func (e *Engine) skipAll(j *Job, reason string) []measure.Result {
	rs := e.baseResults(j)
	for i := range rs {
		rs[i].Status, rs[i].Reason = measure.Skipped, reason
	}
	return rs
}

func setAll(rs []measure.Result, st measure.Status, msg string) []measure.Result {
	for i := range rs {
		rs[i].Status = st
		if st == measure.Skipped {
			rs[i].Reason = msg
		} else {
			rs[i].Error = msg
		}
	}
	return rs
}

// runJob performs one test on one target and waits for its signals.
func (e *Engine) runJob(ctx context.Context, j *Job) []measure.Result {
	rs := e.baseResults(j)
	t, tg := j.Test, j.Target
	if t.Safety == catalog.SafetyDestructive && !e.Opts.AllowDestructive {
		return setAll(rs, measure.Skipped, "destructive test refused: pass --allow-destructive to run it")
	}

	marker := NewMarker()
	tmpRoot := tg.TmpRoot
	if tmpRoot == "" {
		tmpRoot = os.TempDir()
	}
	workdir := path.Join(tmpRoot, marker)
	vars := catalog.Vars{Marker: marker, TmpDir: workdir, Host: j.hostName(), Target: tg.Name, TestID: t.ID, Args: e.Opts.Args.Resolve(t)}
	for i := range rs {
		rs[i].Marker = marker
	}
	shell := tg.Desc.ShellParams()

	// Prerequisites.
	prq := plugin.PrerequisitesRequest{TestID: t.ID, ElevationRequired: t.ElevationRequired, GetPrerequisites: e.Opts.GetPrereqs, Marker: marker, Host: j.Host}
	for _, p := range t.Prerequisites {
		check, err := catalog.RenderString(p.Check, vars, true)
		if err != nil {
			return setAll(rs, measure.Error, fmt.Sprintf("prerequisite %q: %v", p.Description, err))
		}
		get, err := catalog.RenderString(p.Get, vars, true)
		if err != nil {
			return setAll(rs, measure.Error, fmt.Sprintf("prerequisite %q: %v", p.Description, err))
		}
		prq.Prerequisites = append(prq.Prerequisites, plugin.Prerequisite{Description: p.Description, Check: check, Get: get})
	}
	unmet, err := tg.Impl.CheckPrerequisites(ctx, prq)
	if err != nil {
		return setAll(rs, measure.Error, fmt.Sprintf("injector %q: check prerequisites: %v", tg.Plugin, err))
	}
	if len(unmet) > 0 {
		var why []string
		for _, u := range unmet {
			why = append(why, u.Description+": "+u.Reason)
		}
		return setAll(rs, measure.Skipped, "prerequisite not met: "+strings.Join(why, "; "))
	}

	params, err := catalog.Render(t.Inject.Params, vars, shell)
	if err != nil {
		return setAll(rs, measure.Error, fmt.Sprintf("render inject params: %v", err))
	}
	var cleanupParams map[string]any
	if t.Cleanup != nil {
		if cleanupParams, err = catalog.Render(t.Cleanup.Params, vars, shell); err != nil {
			return setAll(rs, measure.Error, fmt.Sprintf("render cleanup params: %v", err))
		}
	}

	// Inject, and always clean up.
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = catalog.DefaultTimeout
	}
	injCtx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	ir, err := tg.Impl.Inject(injCtx, plugin.InjectRequest{
		TestID: t.ID, Technique: string(t.Technique.ID), Marker: marker, Workdir: workdir,
		Params: params, Timeout: timeout, AllowDestructive: e.Opts.AllowDestructive, Safety: string(t.Safety),
		Host: j.Host,
	})
	cancel()
	// Cleanup problems are recorded with the injection but never turn a
	// result into a miss.
	cleanup := func(artifacts []plugin.Artifact) string {
		cctx := e.Opts.CleanupContext
		if cctx == nil {
			cctx = context.WithoutCancel(ctx)
		}
		cctx, cancel := context.WithTimeout(cctx, timeout+10*time.Second)
		defer cancel()
		cr, err := tg.Impl.Cleanup(cctx, plugin.CleanupRequest{
			TestID: t.ID, Marker: marker, Workdir: workdir, Params: cleanupParams, Artifacts: artifacts, Timeout: timeout,
			Host: j.Host,
		})
		switch {
		case err != nil:
			return fmt.Sprintf("cleanup failed: %v", err)
		case cr.Error != "":
			return "cleanup: " + cr.Error
		case cr.ExitCode != 0:
			return fmt.Sprintf("cleanup command exited %d: %s", cr.ExitCode, excerpt(cr.Output, 300))
		}
		return ""
	}
	if err != nil {
		msg := cleanup(nil)
		rs = setAll(rs, measure.Error, fmt.Sprintf("injector %q: inject: %v", tg.Plugin, err))
		for i := range rs {
			rs[i].Injection = &measure.Injection{Outcome: "error", Cleanup: msg}
		}
		return rs
	}
	inj := &measure.Injection{
		Outcome: string(ir.Outcome), ExitCode: ir.ExitCode, StartedAt: ir.StartedAt, EndedAt: ir.EndedAt,
		DurationMS: ir.EndedAt.Sub(ir.StartedAt).Milliseconds(), Output: injectionOutput(ir),
	}
	injectedAt := ir.StartedAt
	host := ir.Host
	if host == "" {
		host = j.hostName()
	}
	for i := range rs {
		rs[i].Injection = inj
		rs[i].InjectedAt = &injectedAt
		rs[i].Host = host
	}
	if ir.Outcome != plugin.OutcomeSucceeded {
		inj.Cleanup = cleanup(ir.Artifacts)
		why := ir.Error
		if why == "" {
			why = fmt.Sprintf("exit code %d", ir.ExitCode)
			if ex := excerpt(ir.Stderr, 300); ex != "" {
				why += ": " + ex
			}
		}
		return setAll(rs, measure.Error, fmt.Sprintf("injection %s: %s", ir.Outcome, why))
	}

	// Replay: telemetry the injector produced goes to every SIEM that ingests.
	ingestErr := map[string]string{}
	if len(ir.Events) > 0 {
		for _, s := range j.SIEMs {
			if !s.Desc.Has(plugin.CapIngest) {
				ingestErr[s.Name] = fmt.Sprintf("siem %q cannot ingest replayed telemetry", s.Name)
				continue
			}
			res, err := s.Impl.Ingest(ctx, plugin.IngestRequest{Events: ir.Events, Marker: marker})
			switch {
			case err != nil:
				ingestErr[s.Name] = fmt.Sprintf("siem %q: ingest: %v", s.Name, err)
			case res.Accepted == 0:
				ingestErr[s.Name] = fmt.Sprintf("siem %q: ingest accepted none of %d events: %v", s.Name, len(ir.Events), plugin.Problems(res.Problems))
			}
		}
	}

	// Register the expectations with each SIEM's watcher, then wait.
	type waiting struct {
		res   int
		index int
		exp   catalog.Expectation
		p     *pending
	}
	var all []waiting
	for i, s := range j.SIEMs {
		if msg, bad := ingestErr[s.Name]; bad {
			rs[i].Status, rs[i].Error = measure.Error, msg
			continue
		}
		pr := j.Pairings[s.Name]
		locs := intersect(pr.MarkerLocations, ir.MarkerLocations)
		if !pr.Fallback && len(locs) == 0 && len(ir.MarkerLocations) > 0 {
			rs[i].Status, rs[i].Error = measure.Error, fmt.Sprintf("injector planted the marker only in %v, which siem %q cannot match", ir.MarkerLocations, s.Name)
			continue
		}
		if len(ir.MarkerLocations) == 0 {
			locs = pr.MarkerLocations
		}
		for _, ie := range expectationsFor(t, s) {
			within := ie.exp.Within
			if within <= 0 {
				within = s.Timeout
			}
			if within <= 0 {
				within = time.Minute
			}
			query := ie.exp.Query[s.Name]
			if query == "" {
				query = ie.exp.Query[s.Plugin]
			}
			if query != "" {
				if query, err = catalog.RenderString(query, vars, false); err != nil {
					rs[i].Status, rs[i].Error = measure.Error, fmt.Sprintf("render query: %v", err)
					continue
				}
			}
			tech := string(ie.exp.Technique)
			if tech == "" {
				tech = string(t.Technique.ID)
			}
			p := &pending{
				exp: plugin.Expectation{
					ID: fmt.Sprintf("%s/%d/%s", marker, ie.index, s.Name), TestID: t.ID, Technique: tech,
					RuleName: ie.exp.Rule, RuleID: ie.exp.RuleID, Query: query, Marker: marker, Host: host,
					NotBefore: injectedAt, Deadline: injectedAt.Add(within), Absent: ie.exp.Absent,
				},
				markerLocs: locs,
				done:       make(chan outcome, 1),
			}
			all = append(all, waiting{res: i, index: ie.index, exp: ie.exp, p: p})
			e.watcher(s.Name).add(p)
		}
	}
	for _, w := range all {
		o := <-w.p.done
		r := &rs[w.res]
		er := measure.ExpectationResult{
			Index: w.index, Technique: w.p.exp.Technique, Rule: w.exp.Rule, RuleID: w.exp.RuleID, Absent: w.exp.Absent,
			Deadline: w.p.exp.Deadline, Status: o.status, Correlation: o.correlation, Error: o.err,
		}
		if o.signal != nil {
			er.SignalID = o.signal.ID
			er.LatencyMS = measure.Millis(nonNegative(o.signal.Timestamp.Sub(injectedAt)))
			r.Signals = append(r.Signals, measure.SignalRef{ID: o.signal.ID, Rule: o.signal.RuleName, RuleID: o.signal.RuleID, Timestamp: o.signal.Timestamp})
			if o.status == measure.Detected {
				ts, obs := o.signal.Timestamp, o.observedAt
				if r.DetectedAt == nil || ts.After(*r.DetectedAt) {
					r.DetectedAt = &ts
					r.LatencyMS = measure.Millis(nonNegative(ts.Sub(injectedAt)))
				}
				if r.ObservedLatencyMS == nil || obs.Sub(injectedAt).Milliseconds() > *r.ObservedLatencyMS {
					r.ObservedLatencyMS = measure.Millis(obs.Sub(injectedAt))
				}
				r.Correlation = o.correlation
			}
		}
		r.Expectations = append(r.Expectations, er)
	}
	for i := range rs {
		if rs[i].Status == "" {
			rs[i].Status = combine(rs[i].Expectations)
			for _, x := range rs[i].Expectations {
				if x.Status == measure.Missed && rs[i].Status == measure.Missed {
					rs[i].Reason = fmt.Sprintf("no matching signal by the deadline (%s after injection)", x.Deadline.Sub(injectedAt).Round(time.Millisecond))
					break
				}
				if x.Status == measure.Noisy && rs[i].Status == measure.Noisy {
					rs[i].Reason = "a signal fired for a benign action that must not raise it"
					break
				}
			}
			if rs[i].Status == measure.Error {
				for _, x := range rs[i].Expectations {
					if x.Error != "" {
						rs[i].Error = x.Error
						break
					}
				}
			}
		}
	}

	e.afterDetection(ctx, j, rs, marker, injectedAt)
	inj.Cleanup = cleanup(ir.Artifacts)
	return rs
}

// afterDetection runs the optional calls: raw-event search for the
// ingestion delay, and closing the matched signals.
func (e *Engine) afterDetection(ctx context.Context, j *Job, rs []measure.Result, marker string, injectedAt time.Time) {
	for i, s := range j.SIEMs {
		r := &rs[i]
		if r.Status == measure.Error || r.Status == measure.Skipped {
			continue
		}
		if s.Desc.Has(plugin.CapRawEvents) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			evs, err := s.Impl.SearchRawEvents(cctx, plugin.RawEventsRequest{
				Start: injectedAt.Add(-ClockTolerance), End: e.now(), Markers: []string{marker}, Hosts: []string{r.Host},
			})
			cancel()
			if err == nil {
				var first time.Time
				for _, ev := range evs {
					at := ev.IngestedAt
					if at.IsZero() {
						at = ev.Timestamp
					}
					if !at.IsZero() && (first.IsZero() || at.Before(first)) {
						first = at
					}
				}
				if !first.IsZero() {
					d := first.Sub(injectedAt)
					if d < 0 {
						d = 0
					}
					r.IngestLatencyMS = measure.Millis(d)
				}
			}
		}
		if e.Opts.CloseSignals && s.Desc.Has(plugin.CapCloseSignals) && len(r.Signals) > 0 {
			ids := make([]string, len(r.Signals))
			for k, sg := range r.Signals {
				ids[k] = sg.ID
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if err := s.Impl.CloseSignals(cctx, plugin.CloseSignalsRequest{SignalIDs: ids, Reason: "testing or maintenance (vigil " + marker + ")"}); err != nil {
				r.Reason = fmt.Sprintf("close signals: %v", err)
			}
			cancel()
		}
	}
}

// nonNegative clamps a latency measured across the clock tolerance to 0.
func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// combine turns the expectation outcomes of one (test, SIEM) into its status:
// any error is an error; then a missed positive expectation; then a noisy
// negative one; a test with only negative expectations is quiet.
func combine(xs []measure.ExpectationResult) measure.Status {
	if len(xs) == 0 {
		return measure.Skipped
	}
	has := map[measure.Status]bool{}
	positive := false
	for _, x := range xs {
		has[x.Status] = true
		if !x.Absent {
			positive = true
		}
	}
	switch {
	case has[measure.Error]:
		return measure.Error
	case has[measure.Missed]:
		return measure.Missed
	case has[measure.Noisy]:
		return measure.Noisy
	case positive:
		return measure.Detected
	default:
		return measure.Quiet
	}
}

func (e *Engine) watcher(name string) *watcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.watchers[name]
}

func injectionOutput(ir plugin.InjectResult) string {
	out := excerpt(ir.Stdout, 500)
	if errOut := excerpt(ir.Stderr, 500); errOut != "" {
		if out != "" {
			out += "\n"
		}
		out += "stderr: " + errOut
	}
	return out
}

// excerpt returns at most n bytes of b, trimmed, marking a cut.
func excerpt(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + " [...]"
	}
	return s
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
