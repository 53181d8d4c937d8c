// Package plugin defines vigil's two plugin kinds, once: the Injector, which
// performs or emulates an ATT&CK technique on a target, and the SIEM, which
// searches a SIEM for the signals a fired technique should raise.
//
// Each kind is a Go interface (injector.go, siem.go), a protobuf service
// (proto/v1) and a pair of gRPC shims, served over hashicorp/go-plugin. The
// built-in plugins are served by the vigil binary itself (`vigil plugin serve
// KIND NAME`) and launched through exactly the same go-plugin client path as
// third-party plugins. Third-party plugin authors implement an interface and
// call sdk.ServeSIEM or sdk.ServeInjector.
package plugin

import (
	"errors"
	"fmt"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"

	pluginv1 "github.com/vigilsec/vigil/core/plugin/proto/v1"
)

// ProtocolVersion is the vigil plugin protocol version this build speaks.
const ProtocolVersion = 1

// Kind names, used in go-plugin plugin maps, executable names
// (vigil-plugin-<kind>-<name>) and registry IDs (<kind>.<name>).
const (
	KindInjector = "injector"
	KindSIEM     = "siem"
)

// Handshake is shared by vigil and every plugin. The magic cookie values
// must NEVER change: they only stop a plugin binary from being run by hand.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "VIGIL_PLUGIN",
	MagicCookieValue: "f2b6c3e0-vigil-plugin-9a41",
}

// ErrUnsupported is returned by optional SIEM calls a plugin does not
// implement. It travels over gRPC as codes.Unimplemented.
var ErrUnsupported = errors.New("not supported by this plugin")

// ErrDenied means the SIEM refused vigil's credentials or permissions (a
// wrong key or password, a missing permission, a locked account): asking
// again cannot succeed, and may lock the account. A plugin wraps it
// (fmt.Errorf("datadog: search signals: %w: ...", plugin.ErrDenied)); the
// engine then stops searching that SIEM and ends its tests as errors at
// once. It travels over gRPC as codes.PermissionDenied.
var ErrDenied = errors.New("the SIEM refused the credentials or their permissions")

// Capabilities of plugins (Description.Capabilities).
const (
	CapRawEvents    = "raw_events"
	CapCloseSignals = "close_signals"
	CapIngest       = "ingest"
	// CapRules: the plugin lists its detection rules and the ATT&CK
	// techniques they claim (SIEM.ClaimedRules).
	CapRules = "rules"
	// CapClock: the plugin reads the SIEM's clock against this host's
	// (SIEM.Clock).
	CapClock = "clock"
	// CapRulesOffline: listing the rules needs no network and no
	// credential (the local SIEM's Sigma files): vigil validate reads them
	// without --online.
	CapRulesOffline = "rules_offline"
	// CapIngestTime: the raw events the plugin returns carry when the SIEM
	// received each one (RawEvent.IngestedAt), which is how vigil measures
	// ingest_latency_ms. Without it the figure is not measured: an event's
	// own time says nothing about when the SIEM had it.
	CapIngestTime = "ingest_time"
	// CapLocalHost: an injector that changes the host vigil runs on (the
	// exec injector): the host-integrity check reads this host around its
	// steps.
	CapLocalHost = "local_host"
	// CapCleanupByMarker: an injector whose Cleanup finds what an
	// injection created by its run marker (names, labels, tags) and
	// deletes it, whatever the injection got to, with no cleanup params
	// (the k8s and aws injectors).
	CapCleanupByMarker = "cleanup_by_marker"
)

// MarkerLocation is where an injector plants the run marker, or where a SIEM
// plugin can find it again.
type MarkerLocation string

// The marker locations of the protocol.
const (
	MarkerCommandLine MarkerLocation = "process.command_line"
	MarkerProcessName MarkerLocation = "process.name"
	MarkerFilePath    MarkerLocation = "file.path"
	MarkerUserAgent   MarkerLocation = "user_agent"
	MarkerHostname    MarkerLocation = "host.name"
	MarkerEnvironment MarkerLocation = "process.env"
	MarkerLogField    MarkerLocation = "log.marker"
)

var markerToProto = map[MarkerLocation]pluginv1.MarkerLocation{
	MarkerCommandLine: pluginv1.MarkerLocation_MARKER_LOCATION_PROCESS_COMMAND_LINE,
	MarkerProcessName: pluginv1.MarkerLocation_MARKER_LOCATION_PROCESS_NAME,
	MarkerFilePath:    pluginv1.MarkerLocation_MARKER_LOCATION_FILE_PATH,
	MarkerUserAgent:   pluginv1.MarkerLocation_MARKER_LOCATION_USER_AGENT,
	MarkerHostname:    pluginv1.MarkerLocation_MARKER_LOCATION_HOSTNAME,
	MarkerEnvironment: pluginv1.MarkerLocation_MARKER_LOCATION_ENVIRONMENT,
	MarkerLogField:    pluginv1.MarkerLocation_MARKER_LOCATION_LOG_FIELD,
}

func markersToProto(ms []MarkerLocation) []pluginv1.MarkerLocation {
	out := make([]pluginv1.MarkerLocation, 0, len(ms))
	for _, m := range ms {
		if p, ok := markerToProto[m]; ok {
			out = append(out, p)
		}
	}
	return out
}

func markerFromProto(p pluginv1.MarkerLocation) MarkerLocation {
	for m, v := range markerToProto {
		if v == p {
			return m
		}
	}
	return ""
}

func markersFromProto(ps []pluginv1.MarkerLocation) []MarkerLocation {
	out := make([]MarkerLocation, 0, len(ps))
	for _, p := range ps {
		if m := markerFromProto(p); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// ParamSpec describes one parameter an injector accepts.
type ParamSpec struct {
	Name string
	// Type is "string", "shell" (a shell command line: values substituted
	// into it are shell-quoted), "int", "bool", "duration", "list" or "table".
	Type        string
	Required    bool
	Description string
}

// Description is what a plugin says of itself (vigil plugins list).
type Description struct {
	Name            string
	Kind            string
	Version         string
	ProtocolVersion int
	Summary         string
	// Injector: target platforms and accepted params.
	Platforms []string
	Params    []ParamSpec
	// MarkerLocations: where an injector plants the marker, or where a SIEM
	// can match it.
	MarkerLocations []MarkerLocation
	// SIEM: native query dialect, optional calls implemented, and whether
	// signals carry the host name.
	QueryDialect string
	Capabilities []string
	ReportsHost  bool
}

// Has reports whether the description lists capability c.
func (d Description) Has(c string) bool {
	for _, x := range d.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// ShellParams returns the names of the params of type "shell".
func (d Description) ShellParams() map[string]bool {
	out := map[string]bool{}
	for _, p := range d.Params {
		if p.Type == "shell" {
			out[p.Name] = true
		}
	}
	return out
}

func (d Description) toProto() *pluginv1.Description {
	pd := &pluginv1.Description{
		Name: d.Name, Kind: d.Kind, Version: d.Version, ProtocolVersion: int32(d.ProtocolVersion),
		Platforms: d.Platforms, MarkerLocations: markersToProto(d.MarkerLocations),
		QueryDialect: d.QueryDialect, Capabilities: d.Capabilities, ReportsHost: d.ReportsHost,
		Summary: d.Summary,
	}
	if pd.ProtocolVersion == 0 {
		pd.ProtocolVersion = ProtocolVersion
	}
	for _, p := range d.Params {
		pd.Params = append(pd.Params, &pluginv1.ParamSpec{Name: p.Name, Type: p.Type, Required: p.Required, Description: p.Description})
	}
	return pd
}

func descriptionFromProto(pd *pluginv1.Description) Description {
	d := Description{
		Name: pd.GetName(), Kind: pd.GetKind(), Version: pd.GetVersion(), ProtocolVersion: int(pd.GetProtocolVersion()),
		Platforms: pd.GetPlatforms(), MarkerLocations: markersFromProto(pd.GetMarkerLocations()),
		QueryDialect: pd.GetQueryDialect(), Capabilities: pd.GetCapabilities(), ReportsHost: pd.GetReportsHost(),
		Summary: pd.GetSummary(),
	}
	for _, p := range pd.GetParams() {
		d.Params = append(d.Params, ParamSpec{Name: p.GetName(), Type: p.GetType(), Required: p.GetRequired(), Description: p.GetDescription()})
	}
	return d
}

// Problem is one thing a validation or check found wrong.
type Problem struct {
	Subject string // the param, expectation ID or setting concerned
	Message string
}

func (p Problem) String() string {
	if p.Subject == "" {
		return p.Message
	}
	return p.Subject + ": " + p.Message
}

// Problems is a list of problems usable as an error.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// Err returns nil for an empty list and the list otherwise.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func problemsToProto(ps []Problem) []*pluginv1.Problem {
	out := make([]*pluginv1.Problem, len(ps))
	for i, p := range ps {
		out[i] = &pluginv1.Problem{Subject: p.Subject, Message: p.Message}
	}
	return out
}

func problemsFromProto(ps []*pluginv1.Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = Problem{Subject: p.GetSubject(), Message: p.GetMessage()}
	}
	return out
}

// PluginSet returns the go-plugin plugin set (one entry per kind) for serving
// or dispensing the given implementations; nil implementations are fine on
// the client side.
func PluginSet(inj Injector, siem SIEM) goplugin.PluginSet {
	return goplugin.PluginSet{
		KindInjector: &InjectorPlugin{Impl: inj},
		KindSIEM:     &SIEMPlugin{Impl: siem},
	}
}

// VersionedPlugins is the client-side map of protocol versions to plugin
// sets. A new protocol version is added beside version 1, never instead of it.
func VersionedPlugins() map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{ProtocolVersion: PluginSet(nil, nil)}
}

// ID is a namespaced plugin ID such as "siem.local" or "injector.exec".
func ID(kind, name string) string { return fmt.Sprintf("%s.%s", kind, name) }
