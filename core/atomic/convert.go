package atomic

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/catalog"
)

// Timeout is the injection timeout of imported tests: atomics have none,
// and some wait (sleep) or compile.
const Timeout = "2m"

// Tags every imported test has, or may have.
const (
	TagAtomic  = "atomic-red-team"
	TagPayload = "payload" // uses files of the checkout (PathToAtomicsFolder)
	TagNetwork = "network" // downloads or installs something
)

// SerialGroupPrefix starts the serial group of every imported test,
// followed by its technique ID ("atomic-red-team/T1070.004"): the atomics of
// one technique often share fixed paths (/tmp/T1070.004), so the runner
// never runs two of them at once on one host.
const SerialGroupPrefix = "atomic-red-team/"

var (
	guidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	inputArgRE = regexp.MustCompile(`#\{([^{}]+)\}`)
	argSlugRE  = regexp.MustCompile(`[^a-z0-9_]+`)
	// pathVarRE matches the variables Atomic Red Team replaces with the
	// atomics directory, with or without the PowerShell $.
	pathVarRE = regexp.MustCompile(`\$?(?:PathToAtomicsFolder|PathToPayloads)`)
	// convertedLineRE is the line number left of a catalog error's position.
	convertedLineRE = regexp.MustCompile(`(?m)^\d+: `)
)

// spec is a converted atomic test before it is written as TOML.
type spec struct {
	id, technique, name, description string
	tactic                           string
	safety, safetyWhy                string
	elevation                        bool
	guid                             string
	serialGroup                      string
	references, tags                 []string
	args                             map[string]string
	prereqs                          []catalog.Prerequisite
	shell, command, cleanup          string
	origin                           Origin
}

// argSlug turns an input argument name into a catalog arg name
// (^[a-z_][a-z0-9_]*$): "project-id" → project_id, "7zip_exe" → _7zip_exe.
func argSlug(name string) string {
	s := argSlugRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(name)), "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// defaultString is an input argument's default as text, the way Atomic Red
// Team substitutes it.
func defaultString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

// convert turns one runnable atomic test into a catalog test, validated by
// the catalog.
func convert(at atomicTest, tech attack.Technique, shell, atomicsDir string, origin Origin, file string) (*Test, error) {
	if strings.TrimSpace(at.Executor.Command) == "" {
		return nil, &problem{keys: []string{"executor"}, reason: ReasonMalformed, msg: "executor has no command"}
	}
	if strings.TrimSpace(at.Name) == "" {
		return nil, &problem{reason: ReasonMalformed, msg: "atomic test has no name"}
	}
	payload := false
	paths := func(s string) string {
		if pathVarRE.MatchString(s) {
			payload = true
		}
		return pathVarRE.ReplaceAllLiteralString(s, atomicsDir)
	}

	// Args: catalog names for the input arguments, and their defaults.
	slugs := map[string]string{} // lower-case input argument name -> arg name
	args := map[string]string{}
	defaults := map[string]string{} // arg name -> default, for the heuristics
	// classDefaults are the defaults with AtomicsFolder for the atomics
	// directory: a safety label never depends on where it is.
	classDefaults := map[string]string{}
	names := make([]string, 0, len(at.InputArguments))
	for name := range at.InputArguments {
		names = append(names, name)
	}
	sort.Strings(names)
	network := false
	for _, name := range names {
		slug := argSlug(name)
		if _, dup := args[slug]; dup {
			return nil, &problem{keys: []string{"input_arguments", name}, msg: fmt.Sprintf("input arguments %q and another one both become arg %q", name, slug)}
		}
		ia := at.InputArguments[name]
		v := paths(defaultString(ia.Default))
		args[slug], defaults[slug] = v, v
		classDefaults[slug] = pathVarRE.ReplaceAllLiteralString(defaultString(ia.Default), AtomicsFolder)
		slugs[strings.ToLower(name)] = slug
		if strings.EqualFold(ia.Type, "url") {
			network = true
		}
	}
	// template turns #{name} into a raw arg placeholder; expand into the
	// default value (what runs unless --arg overrides it).
	template := func(s string) string {
		s = paths(s)
		return inputArgRE.ReplaceAllStringFunc(s, func(m string) string {
			if slug, ok := slugs[strings.ToLower(m[2:len(m)-1])]; ok {
				return "{{args." + slug + " | raw}}"
			}
			return m
		})
	}
	expand := func(s string) string {
		s = paths(s)
		return inputArgRE.ReplaceAllStringFunc(s, func(m string) string {
			if slug, ok := slugs[strings.ToLower(m[2:len(m)-1])]; ok {
				return defaults[slug]
			}
			return m
		})
	}
	// classText is s as classify reads it.
	classText := func(s string) string {
		s = pathVarRE.ReplaceAllLiteralString(s, AtomicsFolder)
		return inputArgRE.ReplaceAllStringFunc(s, func(m string) string {
			if slug, ok := slugs[strings.ToLower(m[2:len(m)-1])]; ok {
				return classDefaults[slug]
			}
			return m
		})
	}

	sp := &spec{
		technique: string(tech.ID), tactic: tech.Tactics[0],
		name:        oneLine(at.Name),
		description: strings.TrimSpace(at.Description),
		elevation:   at.Executor.ElevationRequired,
		args:        args,
		shell:       shell,
		command:     template(at.Executor.Command),
		cleanup:     template(at.Executor.CleanupCommand),
		origin:      origin,
		serialGroup: SerialGroupPrefix + string(tech.ID),
	}
	if sp.description == "" {
		sp.description = sp.name
	}
	idBase := "art-" + strings.ReplaceAll(strings.ToLower(string(tech.ID)), ".", "-")
	if g := strings.ToLower(strings.TrimSpace(at.GUID)); guidRE.MatchString(g) {
		sp.guid = g
		sp.id = idBase + "-" + g[:8]
	} else {
		sp.id = idBase + "-" + strconv.Itoa(origin.Number)
	}

	// Dependencies run in dependency_executor_name's shell, else the
	// executor's (as Invoke-AtomicTest does).
	depExec := strings.ToLower(strings.TrimSpace(at.DependencyExecutorName))
	if depExec == "" {
		depExec = strings.ToLower(at.Executor.Name)
	}
	depShell, ok := shells[depExec]
	if len(at.Dependencies) > 0 && !ok {
		return nil, &problem{keys: []string{"dependency_executor_name"}, reason: ReasonExecutor,
			msg: fmt.Sprintf("dependency_executor_name %q (vigil runs sh and bash)", at.DependencyExecutorName)}
	}
	texts := []string{expand(at.Executor.Command), expand(at.Executor.CleanupCommand)}
	for i, d := range at.Dependencies {
		if strings.TrimSpace(d.PrereqCommand) == "" {
			return nil, &problem{keys: []string{"dependencies"}, reason: ReasonMalformed, msg: fmt.Sprintf("dependency %d has no prereq_command", i+1)}
		}
		p := catalog.Prerequisite{
			Description: oneLine(expand(d.Description)),
			Check:       inShell(depShell, template(d.PrereqCommand)),
			Get:         inShell(depShell, template(d.GetPrereqCommand)),
		}
		if p.Description == "" {
			p.Description = fmt.Sprintf("dependency %d", i+1)
		}
		sp.prereqs = append(sp.prereqs, p)
		texts = append(texts, expand(d.PrereqCommand), expand(d.GetPrereqCommand))
	}
	for _, v := range defaults {
		texts = append(texts, v)
	}
	if !network {
		network = needsNetwork(texts...)
	}
	sp.safety, sp.safetyWhy = classify(classText(at.Executor.Command), classText(at.Executor.CleanupCommand))

	sp.tags = []string{TagAtomic}
	if payload {
		sp.tags = append(sp.tags, TagPayload)
	}
	if network {
		sp.tags = append(sp.tags, TagNetwork)
	}
	sp.references = []string{attackURL(tech.ID), "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/" + string(tech.ID) + "/" + string(tech.ID) + ".md"}

	t := &Test{
		ID: sp.id, Technique: tech.ID, Name: sp.name, GUID: sp.guid, Origin: origin,
		Path:   "linux/" + sp.tactic + "/" + sp.id + ".toml",
		Safety: sp.safety, Tags: sp.tags, SerialGroup: sp.serialGroup,
	}
	t.TOML = sp.encode(file)
	if _, err := catalog.Load(catalog.Source{Label: "converted", FS: fstest.MapFS{t.Path: {Data: t.TOML}}, Root: "."}); err != nil {
		// The converted file exists nowhere: name the catalog key only.
		msg := strings.ReplaceAll(err.Error(), "converted/"+t.Path+":", "")
		msg = convertedLineRE.ReplaceAllString(msg, "")
		return nil, &problem{msg: "catalog: " + strings.Join(strings.Fields(msg), " ")}
	}
	return t, nil
}

// attackURL is the technique's page on attack.mitre.org.
func attackURL(id attack.TechniqueID) string {
	return "https://attack.mitre.org/techniques/" + strings.ReplaceAll(string(id), ".", "/") + "/"
}

// inShell makes a dependency command run in bash when its executor is
// bash (the exec injector runs prerequisites with its own shell, /bin/sh
// by default). The command goes through a quoted here-document, so that
// raw placeholders are still parsed by bash.
func inShell(shell, cmd string) string {
	if strings.TrimSpace(cmd) == "" {
		return ""
	}
	if shell != "/bin/bash" {
		return cmd
	}
	return "/bin/bash -c \"$(cat <<'VIGIL_ATOMIC'\n" + strings.TrimRight(cmd, "\n") + "\nVIGIL_ATOMIC\n)\"\n"
}

// oneLine joins the lines of s with spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
