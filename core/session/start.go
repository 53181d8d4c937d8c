package session

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/runner"
)

// Started holds the plugin processes of a session, ready for the engine.
type Started struct {
	Host    *pluginhost.Host
	SIEMs   []*runner.SIEM
	Targets []*runner.Target
}

// Engine returns an engine over the started plugins.
func (s *Started) Engine() *runner.Engine {
	return &runner.Engine{SIEMs: s.SIEMs, Targets: s.Targets}
}

// Close closes every plugin and the host.
func (s *Started) Close(ctx context.Context) {
	for _, x := range s.SIEMs {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_ = x.Impl.Close(cctx)
		cancel()
	}
	for _, t := range s.Targets {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_ = t.Impl.Close(cctx)
		cancel()
	}
	s.Host.Close()
}

// Start launches and configures every SIEM and target plugin of l, their
// logs to stderr. A failure names the plugin (a ConfigError when its params
// are at fault); what was started is closed again.
func (l *Loaded) Start(ctx context.Context, stderr io.Writer) (*Started, error) {
	st := &Started{Host: l.Host(stderr)}
	fail := func(err error) (*Started, error) {
		st.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	for _, s := range l.SIEMs {
		rs, err := startSIEM(ctx, st.Host, s)
		if rs != nil {
			st.SIEMs = append(st.SIEMs, rs)
		}
		if err != nil {
			return fail(err)
		}
	}
	for _, t := range l.Targets {
		rt, err := startTarget(ctx, st.Host, t)
		if rt != nil {
			st.Targets = append(st.Targets, rt)
		}
		if err != nil {
			return fail(err)
		}
	}
	return st, nil
}

// startSIEM starts and configures one SIEM. It returns the SIEM as soon as
// its process runs, so that a failure to configure still closes it.
func startSIEM(ctx context.Context, host *pluginhost.Host, s config.SIEM) (*runner.SIEM, error) {
	impl, _, err := host.SIEM(ctx, s.Plugin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	desc, err := impl.Describe(ctx)
	if err != nil {
		return &runner.SIEM{Impl: impl}, fmt.Errorf("%s: describe: %w", s, err)
	}
	rs := &runner.SIEM{Name: s.Name, Plugin: s.Plugin, Impl: impl, Desc: desc, PollInterval: s.PollInterval, Timeout: s.Timeout, ClockSlack: s.ClockSlack}
	params, err := s.ParamsTOML()
	if err != nil {
		return rs, configErr(err)
	}
	if err := impl.Configure(ctx, params); err != nil {
		return rs, fmt.Errorf("%s: configure: %w", s, err)
	}
	return rs, nil
}

// startTarget starts and configures one target (see startSIEM).
func startTarget(ctx context.Context, host *pluginhost.Host, t config.Target) (*runner.Target, error) {
	impl, _, err := host.Injector(ctx, t.Plugin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	desc, err := impl.Describe(ctx)
	if err != nil {
		return &runner.Target{Impl: impl}, fmt.Errorf("%s: describe: %w", t, err)
	}
	rt := &runner.Target{
		Name: t.Name, Plugin: t.Plugin, Impl: impl, Desc: desc, Host: targetHost(t), TmpRoot: targetTmpRoot(t),
		Hosts: t.Hosts, Runs: t.Runs,
	}
	params, err := t.ParamsTOML()
	if err != nil {
		return rt, configErr(err)
	}
	if err := impl.Configure(ctx, params); err != nil {
		return rt, fmt.Errorf("%s: configure: %w", t, err)
	}
	return rt, nil
}

// targetHost is the host name of a target: its `host` param, else this
// machine's name (local injectors).
func targetHost(t config.Target) string {
	if h, ok := t.Params["host"].(string); ok && h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// targetTmpRoot is where a target's work directories go: its `tmp_root`
// param, else /tmp on remote hosts (a target with hosts) and this
// machine's temporary directory for local injectors.
func targetTmpRoot(t config.Target) string {
	if r, ok := t.Params["tmp_root"].(string); ok && r != "" {
		return r
	}
	if len(t.Hosts) > 0 {
		return "/tmp"
	}
	return os.TempDir()
}

// ValidateTests asks each target's injector to validate the params of the
// tests that use it; each problem names the test's file and the injector.
func (s *Started) ValidateTests(ctx context.Context, tests []*catalog.Test) []string {
	var problems []string
	for _, tg := range s.Targets {
		for _, t := range tests {
			if !tg.Accepts(t.Inject.Plugin) {
				continue
			}
			req := plugin.ValidateRequest{TestID: t.ID, Params: t.Inject.Params}
			if t.Cleanup != nil {
				req.CleanupParams = t.Cleanup.Params
			}
			probs, err := tg.Impl.Validate(ctx, req)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: target %q: validate: %v", t.Source, tg.Name, err))
				continue
			}
			for _, p := range probs {
				problems = append(problems, fmt.Sprintf("%s: %s (injector %s)", t.Source, p, tg.Plugin))
			}
		}
	}
	return problems
}
