package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Vars are the values of the placeholders of one injection:
//
//	{{marker}}     the run marker, e.g. vigil-3f9a2c1b7d4e
//	{{tmpdir}}     the per-injection temporary directory on the target
//	{{host}}       the target's host name
//	{{target}}     the target's name in the config
//	{{test_id}}    the test's ID
//	{{args.NAME}}  the test's arg NAME, after user overrides
//
// Any placeholder may end in "| raw" ({{args.NAME | raw}}): its value is
// then substituted as it is even in shell params, so that the shell parses
// it (Atomic Red Team's #{name} semantics: an arg may hold several words,
// ~ or $HOME). Spaces inside the braces are allowed ({{ marker }}). Text in double braces
// that is not a name, such as docker's {{.State.Pid}}, is left as it is.
type Vars struct {
	Marker string
	TmpDir string
	Host   string
	Target string
	TestID string
	// Args are the test's args after overrides (ArgOverrides.Resolve). Their
	// values may themselves use every placeholder but {{args.NAME}}; those
	// are filled in first, without quoting.
	Args map[string]string
}

// placeholderRE matches {{name}} and {{args.name}}, each optionally with
// "| raw"; other double-brace text is not a placeholder.
var placeholderRE = regexp.MustCompile(`\{\{\s*([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]*)?)(\s*\|\s*raw)?\s*\}\}`)

// basicPlaceholders are the placeholders that are not args.
var basicPlaceholders = []string{"marker", "tmpdir", "host", "target", "test_id"}

func (v Vars) basic(name string) (string, bool) {
	switch name {
	case "marker":
		return v.Marker, true
	case "tmpdir":
		return v.TmpDir, true
	case "host":
		return v.Host, true
	case "target":
		return v.Target, true
	case "test_id":
		return v.TestID, true
	}
	return "", false
}

// Render fills in the placeholders of a step's params. It walks nested
// tables and arrays and returns a new map; params is not modified. In string
// values under a top-level key listed in shellKeys (the params an injector
// declares as shell command lines), every substituted value is shell-quoted
// (see ShellQuote), so that it stays one literal word, unless the
// placeholder is raw; elsewhere values are substituted as they are. Write placeholders in shell params bare, not
// inside quotes: `rm -f {{tmpdir}}/x`, not `rm -f "{{tmpdir}}/x"`.
//
// An unknown placeholder or an arg missing from v.Args is an error.
func Render(params map[string]any, v Vars, shellKeys map[string]bool) (map[string]any, error) {
	r, err := newRenderer(v)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(params))
	for _, k := range keys {
		out[k] = r.value(k, params[k], shellKeys[k])
	}
	if len(r.errs) > 0 {
		return nil, fmt.Errorf("rendering params: %w", errors.Join(r.errs...))
	}
	return out, nil
}

// RenderString fills in the placeholders of one string, shell-quoting the
// substituted values when shell is set. Use it for prerequisites (shell)
// and expectation queries (not shell).
func RenderString(s string, v Vars, shell bool) (string, error) {
	r, err := newRenderer(v)
	if err != nil {
		return "", err
	}
	out := r.str("", s, shell)
	if len(r.errs) > 0 {
		return "", errors.Join(r.errs...)
	}
	return out, nil
}

// ShellQuote quotes s as one POSIX shell word. Plain words made of
// [A-Za-z0-9@%+=:,./_-] are returned as they are; anything else is put in
// single quotes, each single quote inside becoming a closing quote, an
// escaped quote and an opening quote:
//
//	ShellQuote("it's") == `'it'\''s'`
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./_-", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type renderer struct {
	v    Vars
	args map[string]string // resolved
	errs []error
}

func newRenderer(v Vars) (*renderer, error) {
	r := &renderer{v: v, args: make(map[string]string, len(v.Args))}
	names := make([]string, 0, len(v.Args))
	for name := range v.Args {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		val := v.Args[name]
		out := placeholderRE.ReplaceAllStringFunc(val, func(m string) string {
			p := placeholderName(m)
			if s, ok := v.basic(p); ok {
				return s
			}
			if strings.HasPrefix(p, "args.") {
				errs = append(errs, fmt.Errorf("arg %q: {{%s}}: an arg cannot refer to another arg", name, p))
			} else {
				errs = append(errs, fmt.Errorf("arg %q: unknown placeholder {{%s}}", name, p))
			}
			return m
		})
		r.args[name] = out
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("rendering args: %w", errors.Join(errs...))
	}
	return r, nil
}

func placeholderName(match string) string {
	name, _ := parsePlaceholder(match)
	return name
}

// parsePlaceholder returns the name of a placeholder match and whether it
// is raw ("| raw").
func parsePlaceholder(match string) (name string, raw bool) {
	sm := placeholderRE.FindStringSubmatch(match)
	if sm == nil {
		return strings.TrimSpace(match[2 : len(match)-2]), false
	}
	return sm[1], sm[2] != ""
}

func (r *renderer) value(path string, v any, shell bool) any {
	switch v := v.(type) {
	case string:
		return r.str(path, v, shell)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = r.value(path+"."+k, e, shell)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.value(fmt.Sprintf("%s[%d]", path, i), e, shell)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			out[i] = r.value(fmt.Sprintf("%s[%d]", path, i), e, shell).(map[string]any)
		}
		return out
	case []string:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = r.str(fmt.Sprintf("%s[%d]", path, i), e, shell)
		}
		return out
	default:
		return v
	}
}

func (r *renderer) str(path, s string, shell bool) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		name, raw := parsePlaceholder(m)
		val, ok := r.v.basic(name)
		if arg, isArg := strings.CutPrefix(name, "args."); isArg {
			val, ok = r.args[arg]
		}
		if !ok {
			where := ""
			if path != "" {
				where = path + ": "
			}
			r.errs = append(r.errs, fmt.Errorf("%s%s", where, placeholderProblem(name, r.v.Args)))
			return m
		}
		if shell && !raw {
			return ShellQuote(val)
		}
		return val
	})
}

// placeholderProblem explains why name is not a placeholder of a test with
// the given args, or returns "" when it is one.
func placeholderProblem(name string, args map[string]string) string {
	if arg, ok := strings.CutPrefix(name, "args."); ok {
		if _, declared := args[arg]; declared {
			return ""
		}
		if len(args) == 0 {
			return fmt.Sprintf("unknown arg {{%s}}: the test declares no [args]", name)
		}
		return fmt.Sprintf("unknown arg {{%s}} (the test's args: %s)", name, strings.Join(sortedKeys(args), ", "))
	}
	for _, b := range basicPlaceholders {
		if name == b {
			return ""
		}
	}
	return fmt.Sprintf("unknown placeholder {{%s}} (known: {{%s}}, {{args.NAME}})", name, strings.Join(basicPlaceholders, "}}, {{"))
}

// checkPlaceholders returns a problem for each placeholder of s that a test
// with the given args cannot fill; inArg forbids {{args.NAME}}.
func checkPlaceholders(s string, args map[string]string, inArg bool) []string {
	var probs []string
	for _, m := range placeholderRE.FindAllString(s, -1) {
		name := placeholderName(m)
		if inArg && strings.HasPrefix(name, "args.") {
			probs = append(probs, fmt.Sprintf("{{%s}}: an arg cannot refer to another arg", name))
			continue
		}
		if p := placeholderProblem(name, args); p != "" {
			probs = append(probs, p)
		}
	}
	return probs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
