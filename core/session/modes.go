package session

import (
	"fmt"

	"github.com/vigilsec/vigil/core/catalog"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
)

// MakeReplay turns the run into a replay: one target of the replaying
// injector (recordings of dir, "" for the built-in ones), every test
// injecting through it, and every SIEM that has a replay mode in it.
// Nothing is performed on this host.
func (l *Loaded) MakeReplay(dir string) error {
	name, r, ok := plugin.ReplayerPlugin()
	if !ok {
		return fmt.Errorf("replay: no built-in injector replays recordings")
	}
	l.Targets = []config.Target{{Name: "replay", Plugin: name, Params: r.Target(dir)}}
	for i, t := range l.Tests {
		c := *t
		c.Inject = catalog.Step{Plugin: name, Params: r.Step(t.ID)}
		c.Cleanup = nil
		c.Prerequisites = nil
		c.ElevationRequired = false
		l.Tests[i] = &c
	}
	for i, s := range l.SIEMs {
		if m, ok := plugin.SIEMModesOf(s.Plugin); ok {
			l.SIEMs[i].Params = m.Replay(s.Params)
		}
	}
	l.Notes = append(l.Notes, "replay: recorded telemetry of each test is re-timestamped, stamped with a fresh marker and ingested by the SIEMs; nothing is performed on this host")
	return nil
}

// AddRuleDirs gives the SIEMs that load rules from files the rules below
// dirs too; the others are returned unchanged.
func AddRuleDirs(siems []config.SIEM, dirs []string) []config.SIEM {
	out := append([]config.SIEM(nil), siems...)
	for i, s := range out {
		if m, ok := plugin.SIEMModesOf(s.Plugin); ok {
			out[i].Params = m.AddRuleDirs(s.Params, dirs)
		}
	}
	return out
}

// RulesOnly returns s configured to list its rules and nothing else, when
// its plugin has modes; else s unchanged.
func RulesOnly(s config.SIEM) config.SIEM {
	if m, ok := plugin.SIEMModesOf(s.Plugin); ok {
		s.Params = m.RulesOnly(s.Params)
	}
	return s
}

// DryRun configures every SIEM that has modes to describe itself and list
// its rules, and nothing else (RulesOnly): a plan starts no sensor and
// writes no record file, so it changes nothing on the host and needs no
// root.
func (l *Loaded) DryRun() {
	for i, s := range l.SIEMs {
		l.SIEMs[i] = RulesOnly(s)
	}
}

// RecordInto keeps, of the selected SIEMs, the first whose plugin can
// record (with the default config: the local SIEM), collecting live and
// appending every event it sees to path (vigil record).
func (l *Loaded) RecordInto(path string) error {
	for _, s := range l.SIEMs {
		if m, ok := plugin.SIEMModesOf(s.Plugin); ok {
			s.Params = m.Record(s.Params, path)
			l.SIEMs = []config.SIEM{s}
			return nil
		}
	}
	return configErr(fmt.Errorf("record: no selected SIEM can record telemetry (the local SIEM can)"))
}
