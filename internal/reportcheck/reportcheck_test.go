package reportcheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validLayer = `{
  "name": "l", "domain": "enterprise-attack",
  "versions": {"attack": "18", "navigator": "5.2.0", "layer": "4.5"},
  "sorting": 3,
  "layout": {"layout": "side", "aggregateFunction": "average", "expandedSubtechniques": "annotated"},
  "techniques": [
    {"techniqueID": "T1053", "showSubtechniques": true, "enabled": true},
    {"techniqueID": "T1053.003", "score": 50, "comment": "x", "metadata": [{"name": "a", "value": "b"}, {"divider": true}]},
    {"techniqueID": "T1140", "tactic": "defense-evasion", "score": 0, "color": "#abc"}
  ],
  "gradient": {"colors": ["#ff0000", "#00ff00"], "minValue": 0, "maxValue": 100},
  "legendItems": [{"label": "x", "color": "#112233"}],
  "metadata": [{"name": "run_id", "value": "r"}],
  "links": [{"label": "MITRE", "url": "https://attack.mitre.org/"}]
}`

func TestValidateLayer(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // applied to validLayer
		want    string    // "" means valid
	}{
		{"valid", [2]string{}, ""},
		{"broken JSON", [2]string{`{`, `[{`}, "not JSON"},
		{"missing name", [2]string{`"name": "l", `, ``}, "$.name: required property missing"},
		{"empty name", [2]string{`"name": "l"`, `"name": " "`}, "$.name: empty"},
		{"bad domain", [2]string{`"enterprise-attack"`, `"enterprise"`}, `$.domain: "enterprise" is not one of`},
		{"old layer version", [2]string{`"layer": "4.5"`, `"layer": "4.4"`}, `$.versions.layer: "4.4", want "4.5"`},
		{"old navigator", [2]string{`"navigator": "5.2.0"`, `"navigator": "4.8.2"`}, "must be at least 4.9.0"},
		{"missing navigator version", [2]string{`"navigator": "5.2.0", `, ``}, "$.versions.navigator: required property missing"},
		{"sorting out of range", [2]string{`"sorting": 3`, `"sorting": 4`}, "$.sorting: 4 is not 0, 1, 2 or 3"},
		{"score above the gradient", [2]string{`"score": 50`, `"score": 101`}, "$.techniques[1].score: 101 is outside the gradient's range [0, 100]"},
		{"score below the gradient", [2]string{`"score": 0,`, `"score": -1,`}, "$.techniques[2].score: -1 is outside"},
		{"score as a string", [2]string{`"score": 50`, `"score": "50"`}, "$.techniques[1].score: want a number, have string"},
		{"unknown technique", [2]string{`"T1140"`, `"T9999"`}, "unknown ATT&CK Enterprise technique"},
		{"malformed technique", [2]string{`"T1140"`, `"t1140"`}, `"t1140" is not T#### or T####.###`},
		{"revoked technique", [2]string{`"T1140"`, `"T1086"`}, "revoked"},
		{"tactic the technique is not in", [2]string{`"defense-evasion"`, `"persistence"`}, `T1140 is not in tactic "persistence"`},
		{"tactic by display name", [2]string{`"defense-evasion"`, `"Defense Evasion"`}, "not an ATT&CK tactic short name"},
		{"bad colour", [2]string{`"#abc"`, `"red"`}, `"red" is not a hexadecimal RGB colour`},
		{"one gradient colour", [2]string{`["#ff0000", "#00ff00"]`, `["#ff0000"]`}, "1 colour(s), want at least 2"},
		{"inverted gradient", [2]string{`"maxValue": 100`, `"maxValue": 0`}, "maxValue 0 must be greater than minValue 0"},
		{"legend without colour", [2]string{`{"label": "x", "color": "#112233"}`, `{"label": "x"}`}, "$.legendItems[0].color: required property missing"},
		{"metadata without value", [2]string{`{"name": "run_id", "value": "r"}`, `{"name": "run_id"}`}, "$.metadata[0].value: required property missing"},
		{"link without protocol", [2]string{`"https://attack.mitre.org/"`, `"attack.mitre.org"`}, "has no protocol prefix"},
		{"unknown property", [2]string{`"sorting": 3`, `"sorting": 3, "sortng": 1`}, "$.sortng: unknown property"},
		{"bad layout", [2]string{`"layout": "side"`, `"layout": "grid"`}, `$.layout.layout: "grid" is not one of`},
		{"showSubtechniques on a leaf", [2]string{`"techniqueID": "T1053", "showSubtechniques": true`, `"techniqueID": "T1140", "showSubtechniques": true`}, "T1140 has no sub-techniques"},
		{"duplicate technique", [2]string{`"techniqueID": "T1053", `, `"techniqueID": "T1053.003", `}, "duplicate of $.techniques[0]"},
		{"techniqueID missing", [2]string{`"techniqueID": "T1053", `, ``}, "$.techniques[0].techniqueID: required property missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := validLayer
			if tc.replace[0] != "" {
				if !strings.Contains(doc, tc.replace[0]) {
					t.Fatalf("fixture lacks %q", tc.replace[0])
				}
				doc = strings.Replace(doc, tc.replace[0], tc.replace[1], 1)
			}
			err := ValidateLayer([]byte(doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid layer refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("invalid layer accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
	t.Run("list of layers", func(t *testing.T) {
		if err := ValidateLayer([]byte("[" + validLayer + "," + validLayer + "]")); err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(validLayer, `"layer": "4.5"`, `"layer": "3"`, 1)
		err := ValidateLayer([]byte("[" + validLayer + "," + bad + "]"))
		if err == nil || !strings.Contains(err.Error(), "$[1].versions.layer") {
			t.Fatalf("error %v, want one about $[1].versions.layer", err)
		}
	})
}

func jenkinsSchema(t *testing.T) *Schema {
	t.Helper()
	b, err := os.ReadFile("../../core/report/testdata/junit/jenkins-junit.xsd")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSchema(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJenkinsSchema(t *testing.T) {
	s := jenkinsSchema(t)
	const ok = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="x" tests="2" failures="1">
  <testsuite name="local" tests="2" failures="1" errors="0" time="0.047" timestamp="2026-11-23T10:00:00">
    <properties><property name="run_id" value="r"/></properties>
    <testcase name="a" classname="T1140" time="0.047"><system-out>rule: X</system-out></testcase>
    <testcase name="b" classname="T1140"><failure message="missed" type="missed">why</failure><system-out>x</system-out></testcase>
  </testsuite>
</testsuites>`
	tests := []struct {
		name    string
		replace [2]string
		want    string
	}{
		{"valid", [2]string{}, ""},
		{"skipped with an attribute", [2]string{`<failure message="missed" type="missed">why</failure>`, `<skipped message="x"/>`}, `attribute "message" not allowed`},
		{"failure before error", [2]string{`<failure message="missed" type="missed">why</failure>`, `<failure/><error/>`}, "children [failure, error, system-out] do not match"},
		{"system-out before failure", [2]string{`<failure message="missed" type="missed">why</failure><system-out>x</system-out>`, `<system-out>x</system-out><failure/>`}, "do not match the content model"},
		{"testcase without name", [2]string{`name="a" `, ``}, `required attribute "name" missing`},
		{"testsuite without tests", [2]string{`tests="2" failures="1" errors`, `failures="1" errors`}, `required attribute "tests" missing`},
		{"unknown attribute", [2]string{`classname="T1140" time="0.047"`, `classname="T1140" latency="47"`}, `attribute "latency" is not declared`},
		{"unknown element", [2]string{`<system-out>rule: X</system-out>`, `<signal/>`}, "element not allowed here"},
		{"two properties blocks", [2]string{`<properties>`, `<properties><property name="a" value="b"/></properties><properties>`}, "do not match"},
		{"text in testsuite", [2]string{`</properties>`, `</properties>stray`}, "text not allowed"},
		{"undeclared root", [2]string{`<testsuites name="x" tests="2" failures="1">`, `<results>`}, "not declared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := ok
			if tc.replace[0] != "" {
				if !strings.Contains(doc, tc.replace[0]) {
					t.Fatalf("fixture lacks %q", tc.replace[0])
				}
				doc = strings.Replace(doc, tc.replace[0], tc.replace[1], 1)
				if tc.name == "undeclared root" {
					doc = strings.Replace(doc, "</testsuites>", "</results>", 1)
				}
			}
			err := s.Validate([]byte(doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid document refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("invalid document accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestParseSchema(t *testing.T) {
	const head = `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">`
	tests := []struct {
		name, schema, doc, want string
	}{
		{"choice and pattern",
			head + `<xs:simpleType name="T"><xs:restriction base="xs:string"><xs:pattern value="[0-9]+(\.[0-9]*)?"/></xs:restriction></xs:simpleType>
<xs:element name="r"><xs:complexType><xs:choice minOccurs="0" maxOccurs="unbounded"><xs:element name="a" type="xs:string"/><xs:element name="b" type="xs:int"/></xs:choice><xs:attribute name="t" type="T"/></xs:complexType></xs:element></xs:schema>`,
			`<r t="1.5"><b>3</b><a>x</a><b>4</b></r>`, ""},
		{"pattern mismatch",
			head + `<xs:simpleType name="T"><xs:restriction base="xs:string"><xs:pattern value="[0-9]+"/></xs:restriction></xs:simpleType>
<xs:element name="r"><xs:complexType><xs:attribute name="t" type="T" use="required"/></xs:complexType></xs:element></xs:schema>`,
			`<r t="1s"/>`, `"1s" does not match the pattern`},
		{"int content",
			head + `<xs:element name="r" type="xs:int"/></xs:schema>`, `<r>x</r>`, `"x" is not an integer`},
		{"bounded occurrences",
			head + `<xs:element name="r"><xs:complexType><xs:sequence><xs:element name="a" type="xs:string" minOccurs="2" maxOccurs="3"/></xs:sequence></xs:complexType></xs:element></xs:schema>`,
			`<r><a/></r>`, "children [a] do not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchema([]byte(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, bad := range []string{
		head + `<xs:element name="r"><xs:complexType><xs:complexContent/></xs:complexType></xs:element></xs:schema>`,
		head + `<xs:group name="g"/></xs:schema>`,
		head + `<xs:element name="r"><xs:complexType><xs:sequence><xs:any/></xs:sequence></xs:complexType></xs:element></xs:schema>`,
	} {
		if _, err := ParseSchema([]byte(bad)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseSchema(%s) = %v, want ErrUnsupported", bad, err)
		}
	}
}

// TestRenderCatchesConsole proves the Chromium harness can fail: a page
// with a script error, a console message and a blocked fetch is caught,
// and the DOM is the one after the scripts ran.
func TestRenderCatchesConsole(t *testing.T) {
	if _, err := Chromium(); err != nil {
		if os.Getenv("VIGIL_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("VIGIL_REQUIRE_CHROMIUM is set: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "p.html")
	html := `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'"></head>
<body><p id="x">before</p><img src="https://example.invalid/x.png"><script>
document.getElementById('x').textContent = 'after ' + location.hash; undefinedFunction();</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Render(ctx, page, "frag")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.DOM, `<p id="x">after #frag</p>`) {
		t.Errorf("DOM does not show the script's work:\n%s", p.DOM)
	}
	all := strings.Join(p.Console, "\n")
	for _, want := range []string{"undefinedFunction is not defined", "Content Security Policy"} {
		if !strings.Contains(all, want) {
			t.Errorf("console lacks %q:\n%s", want, all)
		}
	}
}
