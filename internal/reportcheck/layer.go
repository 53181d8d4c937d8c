// Package reportcheck checks report files against the specifications of
// their formats, for tests: ATT&CK Navigator layers against layer format
// 4.5 (ValidateLayer), and XML documents against an XML Schema of the
// subset the JUnit schemas use (ParseSchema, Schema.Validate). A check
// reports every problem it finds, each with the path to the offending
// value.
package reportcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
)

// The ATT&CK Navigator layer format 4.5, as specified in the Navigator's
// layers/spec/v4.5/layerformat.md: property names, types, required
// properties and allowed values.
var (
	layerProps = map[string]string{
		"versions": "object", "name": "string", "description": "string", "domain": "string", "customDataURL": "string",
		"filters": "object", "sorting": "number", "layout": "object", "hideDisabled": "boolean", "techniques": "array",
		"gradient": "object", "legendItems": "array", "showTacticRowBackground": "boolean", "tacticRowBackground": "string",
		"selectTechniquesAcrossTactics": "boolean", "selectSubtechniquesWithParent": "boolean", "selectVisibleTechniques": "boolean",
		"metadata": "array", "links": "array",
	}
	versionProps   = map[string]string{"attack": "string", "navigator": "string", "layer": "string"}
	filterProps    = map[string]string{"platforms": "array"}
	techniqueProps = map[string]string{
		"techniqueID": "string", "tactic": "string", "comment": "string", "enabled": "boolean", "score": "number",
		"color": "string", "metadata": "array", "links": "array", "showSubtechniques": "boolean",
	}
	gradientProps = map[string]string{"colors": "array", "minValue": "number", "maxValue": "number"}
	legendProps   = map[string]string{"label": "string", "color": "string"}
	layoutProps   = map[string]string{
		"layout": "string", "showID": "boolean", "showName": "boolean", "showAggregateScores": "boolean",
		"countUnscored": "boolean", "aggregateFunction": "string", "expandedSubtechniques": "string",
	}
	metadataProps = map[string]string{"name": "string", "value": "string", "divider": "boolean"}
	linkProps     = map[string]string{"label": "string", "url": "string", "divider": "boolean"}

	domains           = []string{"enterprise-attack", "mobile-attack", "ics-attack"}
	layouts           = []string{"side", "flat", "mini"}
	aggregates        = []string{"average", "min", "max", "sum"}
	expandedSubs      = []string{"none", "all", "annotated"}
	hexColor          = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	techniqueIDFormat = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	urlWithScheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)
	semver            = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)
	attackVersion     = regexp.MustCompile(`^\d+(\.\d+)?$`)
)

// specPlatforms are the Enterprise platforms the 4.5 specification lists;
// the current ATT&CK table's platforms are accepted too.
var specPlatforms = []string{"PRE", "Windows", "Linux", "macOS", "Network", "AWS", "GCP", "Azure", "Azure AD", "Office 365", "SaaS"}

type checker struct {
	problems []string
}

func (c *checker) addf(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	errs := make([]error, len(c.problems))
	for i, p := range c.problems {
		errs[i] = errors.New(p)
	}
	return errors.Join(errs...)
}

// ValidateLayer checks a layer file: one layer object, or a list of them
// (the 4.5 multi-layer download). Beyond the specification's required
// properties, types and enumerations it checks value ranges: the version
// numbers, hexadecimal colours, the gradient's bounds and every score
// within them, technique IDs that exist in ATT&CK Enterprise (and are
// neither revoked nor deprecated), tactics a technique belongs to,
// showSubtechniques only on techniques that have sub-techniques, and no
// duplicate technique entry. Unknown properties are problems too, since
// the Navigator silently ignores misspelt ones.
func ValidateLayer(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("layer: not JSON: %w", err)
	}
	if dec.More() {
		return errors.New("layer: trailing data after the JSON value")
	}
	c := &checker{}
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			c.addf("$", "empty list of layers")
		}
		for i, l := range v {
			c.layer(fmt.Sprintf("$[%d]", i), l)
		}
	default:
		c.layer("$", v)
	}
	return c.err()
}

// object checks that v is an object of known properties with the right
// types and that the required ones are present.
func (c *checker) object(path string, v any, props map[string]string, required ...string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.addf(path, "want an object, have %s", typeOf(v))
		return nil, false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want, known := props[k]
		if !known {
			c.addf(path+"."+k, "unknown property")
			continue
		}
		if have := typeOf(m[k]); have != want {
			c.addf(path+"."+k, "want a %s, have %s", want, have)
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			c.addf(path+"."+k, "required property missing")
		}
	}
	return m, true
}

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

func oneOf(c *checker, path string, v any, allowed []string) {
	s, ok := v.(string)
	if !ok {
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	c.addf(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

func (c *checker) color(path string, v any) {
	if s, ok := v.(string); ok && !hexColor.MatchString(s) {
		c.addf(path, "%q is not a hexadecimal RGB colour (#rgb or #rrggbb)", s)
	}
}

func (c *checker) layer(path string, v any) {
	m, ok := c.object(path, v, layerProps, "name", "domain")
	if !ok {
		return
	}
	if s, ok := m["name"].(string); ok && strings.TrimSpace(s) == "" {
		c.addf(path+".name", "empty")
	}
	oneOf(c, path+".domain", m["domain"], domains)
	if vv, ok := m["versions"]; ok {
		c.versions(path+".versions", vv)
	}
	if f, ok := m["filters"]; ok {
		if fm, ok := c.object(path+".filters", f, filterProps); ok {
			if ps, ok := fm["platforms"].([]any); ok {
				known := platforms()
				for i, p := range ps {
					s, ok := p.(string)
					if !ok || !known[s] {
						c.addf(fmt.Sprintf("%s.filters.platforms[%d]", path, i), "unknown platform %v", p)
					}
				}
			}
		}
	}
	if s, ok := m["sorting"]; ok {
		if f, ok := number(s); !ok || f != math.Trunc(f) || f < 0 || f > 3 {
			c.addf(path+".sorting", "%v is not 0, 1, 2 or 3", s)
		}
	}
	if l, ok := m["layout"]; ok {
		if lm, ok := c.object(path+".layout", l, layoutProps); ok {
			oneOf(c, path+".layout.layout", lm["layout"], layouts)
			oneOf(c, path+".layout.aggregateFunction", lm["aggregateFunction"], aggregates)
			oneOf(c, path+".layout.expandedSubtechniques", lm["expandedSubtechniques"], expandedSubs)
		}
	}
	c.color(path+".tacticRowBackground", m["tacticRowBackground"])
	lo, hi := 0.0, 100.0 // the default gradient
	if g, ok := m["gradient"]; ok {
		lo, hi = c.gradient(path+".gradient", g)
	}
	if li, ok := m["legendItems"].([]any); ok {
		for i, it := range li {
			p := fmt.Sprintf("%s.legendItems[%d]", path, i)
			if im, ok := c.object(p, it, legendProps, "label", "color"); ok {
				c.color(p+".color", im["color"])
			}
		}
	}
	if md, ok := m["metadata"].([]any); ok {
		c.metadata(path+".metadata", md)
	}
	if ls, ok := m["links"].([]any); ok {
		c.links(path+".links", ls)
	}
	if ts, ok := m["techniques"].([]any); ok {
		domain, _ := m["domain"].(string)
		c.techniques(path+".techniques", ts, lo, hi, domain)
	}
}

func (c *checker) versions(path string, v any) {
	m, ok := c.object(path, v, versionProps, "navigator", "layer")
	if !ok {
		return
	}
	if l, ok := m["layer"].(string); ok && l != "4.5" {
		c.addf(path+".layer", "%q, want \"4.5\"", l)
	}
	if n, ok := m["navigator"].(string); ok {
		sm := semver.FindStringSubmatch(n)
		if sm == nil {
			c.addf(path+".navigator", "%q is not a version number", n)
		} else {
			major, _ := strconv.Atoi(sm[1])
			minor, _ := strconv.Atoi(sm[2])
			if major < 4 || major == 4 && minor < 9 {
				c.addf(path+".navigator", "%q, must be at least 4.9.0", n)
			}
		}
	}
	if a, ok := m["attack"].(string); ok && !attackVersion.MatchString(a) {
		c.addf(path+".attack", "%q is not an ATT&CK version", a)
	}
}

func (c *checker) gradient(path string, v any) (lo, hi float64) {
	lo, hi = 0, 100
	m, ok := c.object(path, v, gradientProps, "colors", "minValue", "maxValue")
	if !ok {
		return
	}
	if cs, ok := m["colors"].([]any); ok {
		if len(cs) < 2 {
			c.addf(path+".colors", "%d colour(s), want at least 2", len(cs))
		}
		for i, col := range cs {
			if _, ok := col.(string); !ok {
				c.addf(fmt.Sprintf("%s.colors[%d]", path, i), "want a string, have %s", typeOf(col))
				continue
			}
			c.color(fmt.Sprintf("%s.colors[%d]", path, i), col)
		}
	}
	l, lok := number(m["minValue"])
	h, hok := number(m["maxValue"])
	if lok && hok {
		if h <= l {
			c.addf(path, "maxValue %v must be greater than minValue %v", h, l)
		}
		lo, hi = l, h
	}
	return
}

func (c *checker) metadata(path string, md []any) {
	for i, it := range md {
		p := fmt.Sprintf("%s[%d]", path, i)
		im, ok := c.object(p, it, metadataProps)
		if !ok {
			continue
		}
		if _, div := im["divider"]; div {
			if len(im) != 1 {
				c.addf(p, "a divider has no other property")
			}
			continue
		}
		for _, k := range []string{"name", "value"} {
			if _, ok := im[k]; !ok {
				c.addf(p+"."+k, "required property missing")
			}
		}
	}
}

func (c *checker) links(path string, ls []any) {
	for i, it := range ls {
		p := fmt.Sprintf("%s[%d]", path, i)
		im, ok := c.object(p, it, linkProps)
		if !ok {
			continue
		}
		if _, div := im["divider"]; div {
			continue
		}
		for _, k := range []string{"label", "url"} {
			if _, ok := im[k]; !ok {
				c.addf(p+"."+k, "required property missing")
			}
		}
		if u, ok := im["url"].(string); ok && !urlWithScheme.MatchString(u) {
			c.addf(p+".url", "%q has no protocol prefix", u)
		}
	}
}

func (c *checker) techniques(path string, ts []any, lo, hi float64, domain string) {
	table := attack.Default()
	parents := map[attack.TechniqueID]bool{}
	for _, t := range table.Techniques() {
		if t.ID.IsSub() {
			parents[t.ID.Parent()] = true
		}
	}
	seen := map[string]int{}
	for i, it := range ts {
		p := fmt.Sprintf("%s[%d]", path, i)
		m, ok := c.object(p, it, techniqueProps, "techniqueID")
		if !ok {
			continue
		}
		id, _ := m["techniqueID"].(string)
		tactic, _ := m["tactic"].(string)
		if id != "" {
			key := id + "/" + tactic
			if j, dup := seen[key]; dup {
				c.addf(p, "duplicate of %s[%d] (%s)", path, j, key)
			}
			seen[key] = i
		}
		var tech attack.Technique
		known := false
		switch {
		case id == "":
		case !techniqueIDFormat.MatchString(id):
			c.addf(p+".techniqueID", "%q is not T#### or T####.###", id)
		case domain == "enterprise-attack":
			t, err := table.Lookup(id)
			if err != nil {
				c.addf(p+".techniqueID", "%v", err)
			} else {
				tech, known = t, true
			}
		}
		if _, ok := m["tactic"]; ok {
			if _, err := table.Tactic(tactic); err != nil || strings.ToLower(tactic) != tactic || strings.Contains(tactic, " ") {
				c.addf(p+".tactic", "%q is not an ATT&CK tactic short name", tactic)
			} else if known && !contains(tech.Tactics, tactic) {
				c.addf(p+".tactic", "%s is not in tactic %q (its tactics: %s)", id, tactic, strings.Join(tech.Tactics, ", "))
			}
		}
		if s, ok := m["score"]; ok {
			if f, ok := number(s); !ok || f < lo || f > hi {
				c.addf(p+".score", "%v is outside the gradient's range [%v, %v]", s, lo, hi)
			}
		}
		c.color(p+".color", m["color"])
		if show, ok := m["showSubtechniques"].(bool); ok && show && known && !parents[tech.ID] {
			c.addf(p+".showSubtechniques", "%s has no sub-techniques", id)
		}
		if md, ok := m["metadata"].([]any); ok {
			c.metadata(p+".metadata", md)
		}
		if ls, ok := m["links"].([]any); ok {
			c.links(p+".links", ls)
		}
	}
}

func platforms() map[string]bool {
	out := map[string]bool{}
	for _, p := range specPlatforms {
		out[p] = true
	}
	for _, t := range attack.Default().Techniques() {
		for _, p := range t.Platforms {
			out[p] = true
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
