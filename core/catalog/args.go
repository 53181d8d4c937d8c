package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ArgOverrides are the values a user gives to test args on the command line
// (--arg NAME=VALUE or --arg TEST_ID.NAME=VALUE). The zero value overrides
// nothing.
type ArgOverrides struct {
	global  map[string]string            // arg name -> value, for every test that declares it
	perTest map[string]map[string]string // test ID -> arg name -> value
}

// ParseArgOverrides parses --arg values. "NAME=VALUE" sets the arg NAME of
// every selected test that declares it; "TEST_ID.NAME=VALUE" sets it for one
// test and wins over the former. The value may be empty and may contain '='
// and placeholders such as {{tmpdir}}.
func ParseArgOverrides(specs []string) (ArgOverrides, error) {
	var (
		o    ArgOverrides
		errs []error
	)
	for _, spec := range specs {
		key, value, ok := strings.Cut(spec, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--arg %q: want NAME=VALUE or TEST_ID.NAME=VALUE", spec))
			continue
		}
		id, name, scoped := strings.Cut(key, ".")
		if !scoped {
			id, name = "", key
		}
		switch {
		case scoped && !idRE.MatchString(id):
			errs = append(errs, fmt.Errorf("--arg %q: %q is not a valid test id", spec, id))
			continue
		case !argNameRE.MatchString(name):
			errs = append(errs, fmt.Errorf("--arg %q: %q is not a valid arg name", spec, name))
			continue
		}
		m := o.global
		if scoped {
			if o.perTest == nil {
				o.perTest = map[string]map[string]string{}
			}
			m = o.perTest[id]
			if m == nil {
				m = map[string]string{}
				o.perTest[id] = m
			}
		} else if m == nil {
			o.global = map[string]string{}
			m = o.global
		}
		if _, dup := m[name]; dup {
			errs = append(errs, fmt.Errorf("--arg %s given twice", key))
			continue
		}
		m[name] = value
	}
	if len(errs) > 0 {
		return ArgOverrides{}, errors.Join(errs...)
	}
	return o, nil
}

// Resolve returns t's args with the overrides applied: the defaults of the
// file, then NAME=VALUE overrides of args t declares, then
// TEST_ID.NAME=VALUE overrides for t. The result is what Vars.Args takes.
func (o ArgOverrides) Resolve(t *Test) map[string]string {
	out := make(map[string]string, len(t.Args))
	for name, v := range t.Args {
		out[name] = v
		if g, ok := o.global[name]; ok {
			out[name] = g
		}
		if p, ok := o.perTest[t.ID][name]; ok {
			out[name] = p
		}
	}
	return out
}

// Check reports overrides that apply to none of the tests: a TEST_ID.NAME
// whose test is not among them or does not declare NAME, and a NAME that
// none of them declares. Call it with the selected tests to catch typos.
func (o ArgOverrides) Check(tests []*Test) error {
	var errs []error
	for _, name := range sortedKeys(o.global) {
		if !slices.ContainsFunc(tests, func(t *Test) bool { _, ok := t.Args[name]; return ok }) {
			errs = append(errs, fmt.Errorf("--arg %s: no selected test has an arg %q", name, name))
		}
	}
	for _, id := range sortedKeys(o.perTest) {
		i := slices.IndexFunc(tests, func(t *Test) bool { return t.ID == id })
		for _, name := range sortedKeys(o.perTest[id]) {
			if i < 0 {
				errs = append(errs, fmt.Errorf("--arg %s.%s: test %q is not selected", id, name, id))
				continue
			}
			args := tests[i].Args
			if _, ok := args[name]; ok {
				continue
			}
			if len(args) == 0 {
				errs = append(errs, fmt.Errorf("--arg %s.%s: test %q declares no args", id, name, id))
			} else {
				errs = append(errs, fmt.Errorf("--arg %s.%s: test %q has no arg %q (its args: %s)", id, name, id, name, strings.Join(sortedKeys(args), ", ")))
			}
		}
	}
	return errors.Join(errs...)
}
