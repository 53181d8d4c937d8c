package ssh

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/plugin"
)

// The params are exec's, so that a target with runs = ["exec"] runs the
// catalog's exec tests unchanged.

// injectParams are a test's inject params.
type injectParams struct {
	Command    string         `json:"command"`
	Shell      string         `json:"shell"`
	Env        map[string]any `json:"env"`
	ExpectExit int            `json:"expect_exit"`
	Stdin      string         `json:"stdin"`
}

// cleanupParams are a test's cleanup params.
type cleanupParams struct {
	Command string `json:"command"`
}

var (
	injectKeys  = []string{"command", "env", "expect_exit", "shell", "stdin"}
	cleanupKeys = []string{"command"}
)

// injectSpec is what an injection runs, checked and completed from the
// config.
type injectSpec struct {
	command    string
	shell      string
	env        map[string]string
	expectExit int
	stdin      string
}

// parseInjectParams decodes p strictly and checks it against c.
func parseInjectParams(p plugin.Params, c *config) (injectSpec, []plugin.Problem) {
	var ip injectParams
	probs := decodeStrict(p, injectKeys, &ip)
	s := injectSpec{command: ip.Command, shell: ip.Shell, expectExit: ip.ExpectExit, stdin: ip.Stdin}
	switch {
	case strings.TrimSpace(s.command) == "":
		probs = append(probs, plugin.Problem{Subject: "command", Message: "required: a non-empty shell command line"})
	case strings.IndexByte(s.command, 0) >= 0:
		probs = append(probs, plugin.Problem{Subject: "command", Message: "contains a NUL byte"})
	}
	if s.shell == "" {
		s.shell = c.Shell
	} else if err := checkShell(s.shell); err != nil {
		probs = append(probs, plugin.Problem{Subject: "shell", Message: err.Error()})
	}
	if s.expectExit < 0 || s.expectExit > 255 {
		probs = append(probs, plugin.Problem{Subject: "expect_exit", Message: fmt.Sprintf("%d out of range 0..255", s.expectExit)})
	}
	env, eprobs := envStrings(ip.Env)
	s.env = env
	probs = append(probs, eprobs...)
	return s, probs
}

// parseCleanupParams decodes p strictly; empty params only remove the
// workdir.
func parseCleanupParams(p plugin.Params) (cleanupParams, []plugin.Problem) {
	var cp cleanupParams
	probs := decodeStrict(p, cleanupKeys, &cp)
	if strings.IndexByte(cp.Command, 0) >= 0 {
		probs = append(probs, plugin.Problem{Subject: "command", Message: "contains a NUL byte"})
	}
	return cp, probs
}

// decodeStrict reports each param not in known and decodes the known ones
// into v.
func decodeStrict(p plugin.Params, known []string, v any) []plugin.Problem {
	var unknown []string
	kept := plugin.Params{}
	for k, val := range p {
		if contains(known, k) {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
		if err := checkEnv(k, v); err != nil {
			probs = append(probs, plugin.Problem{Subject: "env", Message: err.Error()})
			continue
		}
		out[k] = v
	}
	return out, probs
}
