// Package sdk is what a third-party vigil plugin imports: implement
// plugin.SIEM or plugin.Injector (embedding SIEMBase or InjectorBase for the
// calls you do not need) and call ServeSIEM or ServeInjector from main.
//
//	func main() { sdk.ServeSIEM(&AcmeSIEM{}) }
//
// Build the binary as vigil-plugin-siem-<name> (or vigil-plugin-injector-<name>),
// put it in ~/.vigil/plugins or a --plugin-dir, and pin its SHA-256 in
// vigil.toml ([[plugin]] name/sha256).
package sdk

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigilsec/vigil/core/plugin"
)

// ServeSIEM serves a SIEM plugin on stdio. It does not return while the host
// is connected.
func ServeSIEM(s plugin.SIEM) { goplugin.Serve(plugin.ServeConfig(nil, s)) }

// ServeInjector serves an injector plugin on stdio.
func ServeInjector(i plugin.Injector) { goplugin.Serve(plugin.ServeConfig(i, nil)) }

// SIEMBase implements the optional SIEM calls as unsupported and the
// lifecycle calls as no-ops. Embed it and override what you support.
type SIEMBase struct{}

// Check reports no problem.
func (SIEMBase) Check(context.Context, plugin.CheckRequest) ([]plugin.Problem, error) {
	return nil, nil
}

// SearchRawEvents is unsupported.
func (SIEMBase) SearchRawEvents(context.Context, plugin.RawEventsRequest) ([]plugin.RawEvent, error) {
	return nil, plugin.ErrUnsupported
}

// CloseSignals is unsupported.
func (SIEMBase) CloseSignals(context.Context, plugin.CloseSignalsRequest) error {
	return plugin.ErrUnsupported
}

// Ingest is unsupported.
func (SIEMBase) Ingest(context.Context, plugin.IngestRequest) (plugin.IngestResult, error) {
	return plugin.IngestResult{}, plugin.ErrUnsupported
}

// ClaimedRules is unsupported: `vigil coverage` reports the SIEM's claims
// as unknown.
func (SIEMBase) ClaimedRules(context.Context) ([]plugin.Rule, error) {
	return nil, plugin.ErrUnsupported
}

// Clock is unsupported: vigil cannot tell the SIEM's clock skew.
func (SIEMBase) Clock(context.Context) (plugin.ClockReading, error) {
	return plugin.ClockReading{}, plugin.ErrUnsupported
}

// Stats returns no counters.
func (SIEMBase) Stats(context.Context) (map[string]int64, error) { return nil, nil }

// Close does nothing.
func (SIEMBase) Close(context.Context) error { return nil }

// InjectorBase implements the optional injector calls: no validation
// problems, prerequisites always met (elevation is not checked), nothing to
// close.
type InjectorBase struct{}

// Validate reports no problem.
func (InjectorBase) Validate(context.Context, plugin.ValidateRequest) ([]plugin.Problem, error) {
	return nil, nil
}

// CheckPrerequisites reports every prerequisite met.
func (InjectorBase) CheckPrerequisites(context.Context, plugin.PrerequisitesRequest) ([]plugin.UnmetPrerequisite, error) {
	return nil, nil
}

// Close does nothing.
func (InjectorBase) Close(context.Context) error { return nil }
