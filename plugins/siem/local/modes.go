package local

import "github.com/vigilsec/vigil/core/plugin"

// The config keys the session's modes set (see Config).
const (
	keyMode      = "mode"
	keyRecord    = "record"
	keySigmaDirs = "sigma_dirs"
)

// modes are the local SIEM's typed session hooks (plugin.SIEMModes).
type modes struct{}

var _ plugin.SIEMModes = modes{}

// Replay starts no sensor: the SIEM sees only what Ingest brings.
func (modes) Replay(params map[string]any) map[string]any {
	p := plugin.CloneParams(params)
	p[keyMode] = ModeReplay
	return p
}

// RulesOnly starts no sensor and writes no record file.
func (modes) RulesOnly(params map[string]any) map[string]any {
	p := plugin.CloneParams(params)
	p[keyMode] = ModeReplay
	delete(p, keyRecord)
	return p
}

// Record runs the sensor and appends every event to path.
func (modes) Record(params map[string]any, path string) map[string]any {
	p := plugin.CloneParams(params)
	p[keyMode] = ModeLive
	p[keyRecord] = path
	return p
}

// AddRuleDirs loads the Sigma rules below dirs too, after those already
// configured.
func (modes) AddRuleDirs(params map[string]any, dirs []string) map[string]any {
	p := plugin.CloneParams(params)
	var all []any
	switch prev := p[keySigmaDirs].(type) {
	case []any:
		all = append(all, prev...)
	case []string:
		for _, d := range prev {
			all = append(all, d)
		}
	}
	for _, d := range dirs {
		all = append(all, d)
	}
	p[keySigmaDirs] = all
	return p
}
