package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
)

// ReadRules starts SIEM s's plugin configured to list its rules and
// nothing else (RulesOnly), lists them and closes it: plugin.ErrUnsupported
// when it has no rules call.
func ReadRules(ctx context.Context, host *pluginhost.Host, s config.SIEM) ([]plugin.Rule, error) {
	s = RulesOnly(s)
	impl, _, err := host.SIEM(ctx, s.Plugin)
	if err != nil {
		return nil, err
	}
	params, err := s.ParamsTOML()
	if err != nil {
		return nil, err
	}
	if err := impl.Configure(ctx, params); err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_ = impl.Close(cctx)
	}()
	rules, err := impl.ClaimedRules(ctx)
	if err != nil && !errors.Is(err, plugin.ErrUnsupported) {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return rules, err
}
