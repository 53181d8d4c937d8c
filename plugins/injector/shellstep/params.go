// Package shellstep holds what the exec and ssh injectors share: a test's
// shell-step params (command, shell, env, expect_exit, ignore_exit, stdin;
// the cleanup command), their strict parsing, the verdict on how a command
// ended, and the bounded buffers its output goes to. The ssh injector takes
// exec's params so that a target with runs = ["exec"] runs the catalog's
// exec tests unchanged; one parser keeps the two from drifting apart.
package shellstep

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
)

// Step is a test's inject step, checked and completed from the injector's
// config.
type Step struct {
	Command string
	Shell   string
	// Env is the test's env only.
	Env        map[string]string
	ExpectExit int
	// IgnoreExit counts any exit status as success, as Atomic Red Team
	// does; the status is still recorded.
	IgnoreExit bool
	Stdin      string
}

// CleanupStep is a test's cleanup step.
type CleanupStep struct {
	Command string `json:"command"`
}

// injectParams are a test's inject params as written.
type injectParams struct {
	Command    string         `json:"command"`
	Shell      string         `json:"shell"`
	Env        map[string]any `json:"env"`
	ExpectExit *int           `json:"expect_exit"`
	IgnoreExit bool           `json:"ignore_exit"`
	Stdin      string         `json:"stdin"`
}

var (
	// InjectKeys are the inject params, sorted.
	InjectKeys = []string{"command", "env", "expect_exit", "ignore_exit", "shell", "stdin"}
	// CleanupKeys are the cleanup params.
	CleanupKeys = []string{"command"}
)

// ParseInject decodes p strictly and checks it. A step without a shell
// gets defaultShell; a step's own shell must pass checkShell. It returns
// every problem found.
func ParseInject(p plugin.Params, defaultShell string, checkShell func(string) error) (Step, []plugin.Problem) {
	var ip injectParams
	probs := DecodeStrict(p, InjectKeys, &ip)
	s := Step{Command: ip.Command, Shell: ip.Shell, IgnoreExit: ip.IgnoreExit, Stdin: ip.Stdin}
	if ip.ExpectExit != nil {
		s.ExpectExit = *ip.ExpectExit
	}
	switch {
	case strings.TrimSpace(s.Command) == "":
		probs = append(probs, plugin.Problem{Subject: "command", Message: "required: a non-empty shell command line"})
	case strings.IndexByte(s.Command, 0) >= 0:
		probs = append(probs, plugin.Problem{Subject: "command", Message: "contains a NUL byte"})
	}
	if s.Shell == "" {
		s.Shell = defaultShell
	} else if err := checkShell(s.Shell); err != nil {
		probs = append(probs, plugin.Problem{Subject: "shell", Message: err.Error()})
	}
	if s.ExpectExit < 0 || s.ExpectExit > 255 {
		probs = append(probs, plugin.Problem{Subject: "expect_exit", Message: fmt.Sprintf("%d out of range 0..255", s.ExpectExit)})
	}
	if ip.ExpectExit != nil && ip.IgnoreExit {
		probs = append(probs, plugin.Problem{Subject: "ignore_exit", Message: "conflicts with expect_exit: set one of them"})
	}
	env, eprobs := envStrings(ip.Env)
	s.Env = env
	probs = append(probs, eprobs...)
	return s, probs
}

// ParseCleanup decodes p strictly. Empty params are fine: the cleanup then
// only removes the workdir.
func ParseCleanup(p plugin.Params) (CleanupStep, []plugin.Problem) {
	var cp CleanupStep
	probs := DecodeStrict(p, CleanupKeys, &cp)
	if strings.IndexByte(cp.Command, 0) >= 0 {
		probs = append(probs, plugin.Problem{Subject: "command", Message: "contains a NUL byte"})
	}
	return cp, probs
}

// DecodeStrict reports each param not in known, by name, and decodes the
// known ones into v (a pointer to a struct with json tags), reporting type
// errors.
func DecodeStrict(p plugin.Params, known []string, v any) []plugin.Problem {
	var unknown []string
	kept := plugin.Params{}
	for k, val := range p {
		if slices.Contains(known, k) {
			kept[k] = val
		} else {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var probs []plugin.Problem
	for _, k := range unknown {
		probs = append(probs, plugin.Problem{Subject: k, Message: "unknown param (known: " + strings.Join(known, ", ") + ")"})
	}
	if err := kept.Decode(v); err != nil {
		probs = append(probs, plugin.Problem{Subject: "params", Message: err.Error()})
	}
	return probs
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ReservedEnv are the variables the injectors set themselves; neither a
// config nor a test may override them.
var ReservedEnv = map[string]bool{"VIGIL_MARKER": true, "VIGIL_WORKDIR": true, "VIGIL_TEST_ID": true}

// CheckEnv says why name=value cannot be added to a command's environment.
func CheckEnv(name, value string) error {
	switch {
	case !envNameRE.MatchString(name):
		return fmt.Errorf("bad variable name %q", name)
	case ReservedEnv[name]:
		return fmt.Errorf("%s is set by the injector and cannot be overridden", name)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%s: value contains a NUL byte", name)
	}
	return nil
}

// envStrings turns the env param (a table of scalars) into strings.
func envStrings(m map[string]any) (map[string]string, []plugin.Problem) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var probs []plugin.Problem
	out := make(map[string]string, len(m))
	for _, k := range names {
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		default:
			probs = append(probs, plugin.Problem{Subject: "env." + k, Message: fmt.Sprintf("want a string, number or boolean, got %T", x)})
			continue
		}
		if err := CheckEnv(k, v); err != nil {
			probs = append(probs, plugin.Problem{Subject: "env", Message: err.Error()})
			continue
		}
		out[k] = v
	}
	return out, probs
}

// ParamSpecs describes the params for an injector's Describe. where says
// where commands run ("" for the local host, "on the host" for a remote
// one).
func ParamSpecs(where string) []plugin.ParamSpec {
	on := ""
	if where != "" {
		on = " " + where
	}
	return []plugin.ParamSpec{
		{Name: "command", Type: "shell", Required: true, Description: "shell command line, run" + on + " as `<shell> -c <command> <marker>` in the workdir"},
		{Name: "shell", Type: "string", Description: "absolute path of the shell" + on + " (default: the config's shell, /bin/sh)"},
		{Name: "env", Type: "table", Description: "extra environment variables"},
		{Name: "expect_exit", Type: "int", Description: "exit code that counts as success (default 0)"},
		{Name: "ignore_exit", Type: "bool", Description: "count any exit code as success, as Atomic Red Team does (the code is still recorded); excludes expect_exit"},
		{Name: "stdin", Type: "string", Description: "text written to the command's standard input"},
		{Name: "cleanup.command", Type: "shell", Description: "cleanup step: shell command line run" + on + " before the workdir is removed"},
	}
}
