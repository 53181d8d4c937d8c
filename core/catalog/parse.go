package catalog

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/config/tomldoc"
)

var (
	idRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,63}$`)
	argNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	guidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// serialGroupRE is a serial group name: "atomic-red-team/T1070.004".
	serialGroupRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$`)
)

// knownPlatforms are the values of a test's platforms, lower-case forms of
// the ATT&CK Enterprise platforms with the cloud providers spelled out.
var knownPlatforms = []string{
	"linux", "macos", "windows", "esxi", "network-devices",
	"containers", "kubernetes",
	"iaas", "iaas:aws", "iaas:azure", "iaas:gcp",
	"saas", "office-suite", "identity-provider",
}

// KnownPlatforms returns the platform names a test may list.
func KnownPlatforms() []string { return slices.Clone(knownPlatforms) }

func knownPlatform(p string) bool { return slices.Contains(knownPlatforms, p) }

// parseTest decodes and validates one catalog file. base is the file's name,
// which must be the test's ID with ".toml".
func parseTest(file, base string, data []byte) (*Test, []error) {
	doc, err := tomldoc.Parse(file, data)
	if err != nil {
		return nil, []error{err}
	}
	r := doc.Root()
	r.Require("id", "technique", "name", "description", "platforms", "safety")
	t := &Test{
		ID:                r.String("id"),
		Name:              strings.TrimSpace(r.String("name")),
		Description:       strings.TrimSpace(r.String("description")),
		ElevationRequired: r.Bool("elevation_required"),
		SerialGroup:       r.String("serial_group"),
		AtomicGUID:        r.String("atomic_guid"),
		Tags:              r.Strings("tags"),
		Source:            Position{File: file, Line: r.Line("id")},
	}
	if r.Has("id") {
		switch {
		case !idRE.MatchString(t.ID):
			r.Errorf("id", "%q is not a valid test id (want lower-case letters, digits and dashes, 3 to 64 characters: ^[a-z0-9][a-z0-9-]{2,63}$)", t.ID)
		case base != t.ID+".toml":
			r.Errorf("id", "test id %q does not match the file name %s (want %s.toml)", t.ID, base, t.ID)
		}
	}
	if r.Has("name") && t.Name == "" {
		r.Errorf("name", "must not be empty")
	}
	if r.Has("description") && t.Description == "" {
		r.Errorf("description", "must not be empty")
	}

	techOK := false
	if id := r.String("technique"); id != "" {
		tech, err := attack.Lookup(id)
		if err != nil {
			r.Errorf("technique", "%v", err)
		} else {
			t.Technique, techOK = tech, true
		}
	}
	t.Tactics = parseTactics(r, t.Technique, techOK)
	t.Platforms = parsePlatforms(r)
	t.Safety = parseSafety(r)

	t.Timeout = DefaultTimeout
	if d, ok := r.Duration("timeout"); ok {
		if d <= 0 || d > MaxTimeout {
			r.Errorf("timeout", "%s is out of range (want more than 0 and at most %s)", d, MaxTimeout)
		} else {
			t.Timeout = d
		}
	}
	if r.Has("atomic_guid") && !guidRE.MatchString(t.AtomicGUID) {
		r.Errorf("atomic_guid", "%q is not an Atomic Red Team test GUID (want a lower-case UUID)", t.AtomicGUID)
	}
	if v, ok := r.Any("serial_group"); ok {
		_, isString := v.(string)
		switch {
		case !isString: // String reported the type
		case t.SerialGroup == "":
			r.Errorf("serial_group", "must not be empty (leave it out for a test that may run alongside any other)")
		case !serialGroupRE.MatchString(t.SerialGroup):
			r.Errorf("serial_group", "%q is not a valid serial group (want letters, digits and ._:/@+-, starting with a letter or digit, at most 128 characters)", t.SerialGroup)
		}
	}
	t.References = r.Strings("references")
	for i, ref := range t.References {
		if u, err := url.Parse(ref); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			doc.Errorf(tomldoc.Index(r.PathOf("references"), i), "%q is not an http(s) URL", ref)
		}
	}
	for i, tag := range t.Tags {
		if strings.TrimSpace(tag) == "" {
			doc.Errorf(tomldoc.Index(r.PathOf("tags"), i), "must not be empty")
		}
	}

	t.Args = parseArgs(r)
	t.Prerequisites = parsePrerequisites(r, t.Args)
	parseSteps(r, t)
	t.Expect = parseExpectations(r, t, techOK)
	r.Close()
	if errs := doc.Errors(); len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e
		}
		return nil, out
	}
	return t, nil
}

func parseTactics(r *tomldoc.Table, tech attack.Technique, techOK bool) []string {
	if !r.Has("tactics") {
		return slices.Clone(tech.Tactics)
	}
	names := r.Strings("tactics")
	if isEmptyArray(r, "tactics") {
		r.Errorf("tactics", "must not be empty (leave it out to use all of the technique's tactics)")
		return nil
	}
	var out []string
	for i, name := range names {
		path := tomldoc.Index(r.PathOf("tactics"), i)
		tac, err := attack.Default().Tactic(name)
		switch {
		case err != nil:
			r.Doc().Errorf(path, "%v", err)
		case slices.Contains(out, tac.ShortName):
			r.Doc().Errorf(path, "tactic %q listed twice", tac.ShortName)
		case techOK && !slices.Contains(tech.Tactics, tac.ShortName):
			r.Doc().Errorf(path, "%s %q is not in tactic %q (its tactics: %s)", tech.ID, tech.Name, tac.ShortName, strings.Join(tech.Tactics, ", "))
		default:
			out = append(out, tac.ShortName)
		}
	}
	// Keep ATT&CK's kill-chain order.
	slices.SortFunc(out, func(a, b string) int {
		return slices.Index(tech.Tactics, a) - slices.Index(tech.Tactics, b)
	})
	return out
}

// isEmptyArray reports whether key is set to [].
func isEmptyArray(t *tomldoc.Table, key string) bool {
	v, ok := t.Any(key)
	arr, isArr := v.([]any)
	return ok && isArr && len(arr) == 0
}

func parsePlatforms(r *tomldoc.Table) []string {
	ps := r.Strings("platforms")
	if isEmptyArray(r, "platforms") {
		r.Errorf("platforms", "must list at least one platform")
	}
	var out []string
	for i, p := range ps {
		path := tomldoc.Index(r.PathOf("platforms"), i)
		switch {
		case !knownPlatform(p):
			r.Doc().Errorf(path, "unknown platform %q (known: %s)", p, strings.Join(knownPlatforms, ", "))
		case slices.Contains(out, p):
			r.Doc().Errorf(path, "platform %q listed twice", p)
		default:
			out = append(out, p)
		}
	}
	return out
}

func parseSafety(r *tomldoc.Table) Safety {
	s := Safety(r.String("safety"))
	switch s {
	case SafetySafe, SafetyReversible, SafetyDestructive:
		return s
	case "":
		if r.Has("safety") {
			r.Errorf("safety", "must be one of safe, reversible, destructive")
		}
	default:
		r.Errorf("safety", "unknown safety %q (want safe, reversible or destructive)", string(s))
	}
	return ""
}

func parseArgs(r *tomldoc.Table) map[string]string {
	args := r.StringMap("args")
	for _, name := range sortedKeys(args) {
		path := tomldoc.Join(r.PathOf("args"), name)
		if !argNameRE.MatchString(name) {
			r.Doc().Errorf(path, "invalid arg name (want lower-case letters, digits and underscores: ^[a-z_][a-z0-9_]*$)")
			continue
		}
		for _, p := range checkPlaceholders(args[name], args, true) {
			r.Doc().Errorf(path, "%s", p)
		}
	}
	if args == nil {
		args = map[string]string{}
	}
	return args
}

func parsePrerequisites(r *tomldoc.Table, args map[string]string) []Prerequisite {
	var out []Prerequisite
	for _, pt := range r.Tables("prerequisites") {
		pt.Require("description", "check")
		p := Prerequisite{
			Description: strings.TrimSpace(pt.String("description")),
			Check:       pt.String("check"),
			Get:         pt.String("get"),
		}
		checkTemplate(pt, "check", p.Check, args)
		checkTemplate(pt, "get", p.Get, args)
		pt.Close()
		out = append(out, p)
	}
	return out
}

// checkTemplate records a problem for every placeholder of the string value
// at key that the test cannot fill.
func checkTemplate(t *tomldoc.Table, key, s string, args map[string]string) {
	for _, p := range checkPlaceholders(s, args, false) {
		t.Errorf(key, "%s", p)
	}
}

// checkParams checks the placeholders of every string in a params tree.
func checkParams(doc *tomldoc.Doc, path string, v any, args map[string]string) {
	switch v := v.(type) {
	case string:
		for _, p := range checkPlaceholders(v, args, false) {
			doc.Errorf(path, "%s", p)
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			checkParams(doc, tomldoc.Join(path, k), v[k], args)
		}
	case []map[string]any:
		for i, e := range v {
			checkParams(doc, tomldoc.Index(path, i), e, args)
		}
	case []any:
		for i, e := range v {
			checkParams(doc, tomldoc.Index(path, i), e, args)
		}
	}
}

func parseSteps(r *tomldoc.Table, t *Test) {
	inject := r.Table("inject")
	if inject == nil {
		if !r.Has("inject") {
			r.Errorf("", "missing required table [inject]")
		}
	} else {
		if inject.Require("plugin") {
			t.Inject.Plugin = strings.TrimSpace(inject.String("plugin"))
			if t.Inject.Plugin == "" && inject.Has("plugin") {
				inject.Errorf("plugin", "must name an injector plugin")
			}
		}
		t.Inject.Params = stepParams(inject, t.Args)
		inject.Close()
	}
	if t.Inject.Params == nil {
		t.Inject.Params = map[string]any{}
	}

	cleanup := r.Table("cleanup")
	if cleanup == nil {
		return
	}
	if cleanup.Has("plugin") {
		if p := cleanup.String("plugin"); p != t.Inject.Plugin {
			cleanup.Errorf("plugin", "cleanup runs on the inject plugin %q; remove this key", t.Inject.Plugin)
		}
	}
	t.Cleanup = &Step{Plugin: t.Inject.Plugin, Params: stepParams(cleanup, t.Args)}
	if t.Cleanup.Params == nil {
		t.Cleanup.Params = map[string]any{}
	}
	cleanup.Close()
}

// stepParams returns the raw params table of a step and checks its
// placeholders.
func stepParams(step *tomldoc.Table, args map[string]string) map[string]any {
	raw, ok := step.Any("params")
	if !ok {
		return nil
	}
	params, ok := raw.(map[string]any)
	if !ok {
		step.Errorf("params", "want a table, got %s", tomldoc.TypeName(raw))
		return nil
	}
	checkParams(step.Doc(), step.PathOf("params"), params, args)
	return params
}

func parseExpectations(r *tomldoc.Table, t *Test, techOK bool) []Expectation {
	var out []Expectation
	for _, et := range r.Tables("expect") {
		e := Expectation{
			Technique: t.Technique.ID,
			Rule:      strings.TrimSpace(et.String("rule")),
			RuleID:    strings.TrimSpace(et.String("rule_id")),
			Absent:    et.Bool("absent"),
			SIEMs:     et.Strings("siems"),
			Query:     et.StringMap("query"),
			Source:    Position{File: t.Source.File, Line: et.Line("")},
		}
		if id := et.String("technique"); id != "" {
			tech, err := attack.Lookup(id)
			if err != nil {
				et.Errorf("technique", "%v", err)
			} else {
				e.Technique = tech.ID
			}
		} else if et.Has("technique") {
			et.Errorf("technique", "must not be empty (leave it out to expect the test's technique)")
		}
		if d, ok := et.Duration("within"); ok {
			if d <= 0 {
				et.Errorf("within", "%s is out of range (want more than 0)", d)
			} else {
				e.Within = d
			}
		}
		for i, s := range e.SIEMs {
			if strings.TrimSpace(s) == "" {
				et.Doc().Errorf(tomldoc.Index(et.PathOf("siems"), i), "must not be empty")
			}
		}
		if isEmptyArray(et, "siems") {
			et.Errorf("siems", "must not be empty (leave it out for every SIEM)")
		}
		for _, k := range sortedKeys(e.Query) {
			path := tomldoc.Join(et.PathOf("query"), k)
			if strings.TrimSpace(e.Query[k]) == "" {
				et.Doc().Errorf(path, "must not be empty")
			}
			for _, p := range checkPlaceholders(e.Query[k], t.Args, false) {
				et.Doc().Errorf(path, "%s", p)
			}
		}
		et.Close()
		out = append(out, e)
	}
	if len(out) == 0 && techOK {
		out = append(out, Expectation{Technique: t.Technique.ID, Source: t.Source})
	}
	return out
}
