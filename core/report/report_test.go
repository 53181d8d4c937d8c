package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/measure"
	"github.com/vigilsec/vigil/internal/reportcheck"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixture is a hand-written run of two SIEMs covering every status, a
// budget breach, a test on two targets, a sub-technique with two tactics,
// and names full of markup and formula characters.
func fixture(t *testing.T) *measure.Run {
	t.Helper()
	b, err := os.ReadFile("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	var run measure.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	return &run
}

func TestGolden(t *testing.T) {
	run := fixture(t)
	dir := t.TempDir()
	paths, err := WriteDir(dir, run, All)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"navigator.json", "navigator-acme.json", "navigator-local.json", "junit.xml", "report.html", "summary.md", "results.csv"}
	var got []string
	for _, p := range paths {
		got = append(got, filepath.Base(p))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantB, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./core/report -update)", err)
			}
			if !bytes.Equal(b, wantB) {
				t.Fatalf("%s differs from %s (run go test ./core/report -update and review the diff)", name, golden)
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{[]string{"junit"}, "junit", ""},
		{[]string{"csv,junit", "html"}, "junit html csv", ""},
		{[]string{"all"}, "navigator junit html markdown csv", ""},
		{[]string{"md", "Markdown", " xml "}, "junit markdown", ""},
		{[]string{"layer"}, "navigator", ""},
		{[]string{"pdf"}, "", `unknown report format "pdf" (known: navigator, junit, html, markdown, csv, all)`},
		{nil, "", ""},
	}
	for _, tc := range tests {
		fs, err := ParseFormats(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("ParseFormats(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		var names []string
		for _, f := range fs {
			names = append(names, string(f))
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("ParseFormats(%q) = %v, %v; want %q", tc.in, names, err, tc.want)
		}
	}
}

func TestNavigatorLayers(t *testing.T) {
	run := fixture(t)
	layers := SIEMLayers(run)
	layers[AllSIEMs] = CombinedLayer(run)
	if len(layers) != 3 {
		t.Fatalf("%d layers, want acme, local and combined", len(layers))
	}
	for name, l := range layers {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := reportcheck.ValidateLayer(b); err != nil {
			t.Errorf("layer %s is not a valid 4.5 layer:\n%v", name, err)
		}
	}
	type want struct {
		score   float64 // -1: unscored
		comment string
	}
	tests := []struct {
		layer string
		tech  map[string]want
	}{
		{"local", map[string]want{
			"T1140":     {100, "1 test: 1 detected; median latency 47ms"},
			"T1070.004": {100, "2 tests: 2 detected; median latency 6ms"},
			"T1003.008": {0, "1 test: 1 missed"},
			"T1548.001": {-1, "1 test: 1 skipped"},
			"T1053.003": {100, "2 tests: 1 detected, 1 quiet; median latency 39ms"},
		}},
		{"acme", map[string]want{
			"T1140":     {0, "1 test: 1 missed"},
			"T1070.004": {100, "2 tests: 1 detected, 1 error; median latency 25.0s"},
			"T1053.003": {100, "2 tests: 1 detected, 1 noisy; median latency 1.5s"},
			"T1059.004": {0, "1 test: 1 missed"},
		}},
		{AllSIEMs, map[string]want{
			"T1140":     {100, "1 test: 1 detected; median latency 47ms"},
			"T1070.004": {100, "2 tests: 2 detected; median latency 6ms"},
			"T1003.008": {0, "1 test: 1 missed"},
			"T1053.003": {100, "2 tests: 1 detected, 1 noisy; median latency 39ms"},
		}},
	}
	for _, tc := range tests {
		l := layers[tc.layer]
		got := map[string]LayerTechnique{}
		for _, lt := range l.Techniques {
			got[lt.TechniqueID] = lt
		}
		for id, w := range tc.tech {
			lt, ok := got[id]
			switch {
			case !ok:
				t.Errorf("%s: no entry for %s", tc.layer, id)
			case w.score < 0 && (lt.Score != nil || lt.Color != colorUntried):
				t.Errorf("%s %s: score %v colour %q, want unscored and grey", tc.layer, id, lt.Score, lt.Color)
			case w.score >= 0 && (lt.Score == nil || *lt.Score != w.score):
				t.Errorf("%s %s: score %v, want %v", tc.layer, id, lt.Score, w.score)
			case lt.Comment != w.comment:
				t.Errorf("%s %s: comment %q, want %q", tc.layer, id, lt.Comment, w.comment)
			}
		}
		for _, parent := range []string{"T1053", "T1070", "T1003", "T1548"} {
			if p, ok := got[parent]; ok && (!p.ShowSubtechniques || p.Score != nil) {
				t.Errorf("%s: parent %s = %+v, want unscored with showSubtechniques", tc.layer, parent, p)
			}
		}
		if _, ok := got["T1053"]; !ok {
			t.Errorf("%s: no parent entry unfolding T1053.003", tc.layer)
		}
		md := map[string]string{}
		for _, m := range l.Metadata {
			md[m.Name] = m.Value
		}
		if md["run_id"] != run.RunID || md["siem"] != tc.layer {
			t.Errorf("%s: metadata %v", tc.layer, md)
		}
	}
}

func TestJUnit(t *testing.T) {
	run := fixture(t)
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, run); err != nil {
		t.Fatal(err)
	}
	xsd, err := os.ReadFile("testdata/junit/jenkins-junit.xsd")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := reportcheck.ParseSchema(xsd)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(buf.Bytes()); err != nil {
		t.Fatalf("junit.xml does not conform to the Jenkins JUnit schema:\n%v\n%s", err, buf.String())
	}
	var doc struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Time    string    `xml:"time,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// The two host changes are failing cases of the host-integrity suite.
	if doc.Tests != 18 || len(doc.Suites) != 3 {
		t.Fatalf("%d tests in %d suites, want 18 in 3", doc.Tests, len(doc.Suites))
	}
	wantSuites := map[string][4]int{"acme": {8, 4, 1, 1}, "local": {8, 1, 0, 1}, "host-integrity": {2, 2, 0, 0}} // tests, failures (missed+noisy), errors, skipped
	for _, s := range doc.Suites {
		w := wantSuites[s.Name]
		if [4]int{s.Tests, s.Failures, s.Errors, s.Skipped} != w {
			t.Errorf("suite %s: tests/failures/errors/skipped %d/%d/%d/%d, want %v", s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, w)
		}
		var f, e, sk int
		for _, c := range s.Cases {
			f, e, sk = f+btoi(c.Failure != nil), e+btoi(c.Error != nil), sk+btoi(c.Skipped != nil)
			if s.Name == "local" && c.Name == "linux-base64-decode" && c.Time != "0.047" {
				t.Errorf("local linux-base64-decode time %q, want the latency 0.047", c.Time)
			}
		}
		if f != s.Failures || e != s.Errors || sk != s.Skipped {
			t.Errorf("suite %s: counted %d/%d/%d elements, attributes say %d/%d/%d", s.Name, f, e, sk, s.Failures, s.Errors, s.Skipped)
		}
	}
	// The test on two targets is named by target; the others are not.
	if !strings.Contains(buf.String(), `name="linux-file-delete-decoy @lab"`) || strings.Contains(buf.String(), `name="linux-base64-decode @`) {
		t.Errorf("test names on several targets not disambiguated:\n%s", buf.String())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCSV(t *testing.T) {
	run := fixture(t)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, run); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 17 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	find := func(test, target, siem string) []string {
		for _, r := range rows[1:] {
			if r[col["test_id"]] == test && r[col["target"]] == target && r[col["siem"]] == siem {
				return r
			}
		}
		t.Fatalf("no row for %s@%s/%s", test, target, siem)
		return nil
	}
	r := find("linux-file-delete-decoy", "localhost", "acme")
	if r[col["latency_ms"]] != "25000" || r[col["budget_ms"]] != "20000" || r[col["budget_breached"]] != "true" {
		t.Errorf("breach row %v", r)
	}
	r = find("weird-names", "localhost", "local")
	if got := r[col["rules"]]; got != "'=cmd|' /C calc'!A0 <b>bold</b>" {
		t.Errorf("formula not defused: %q", got)
	}
	if r[col["tactics"]] != "execution" || r[col["status"]] != "detected" || r[col["budget_breached"]] != "false" {
		t.Errorf("row %v", r)
	}
	r = find("weird-names", "localhost", "acme")
	if got := r[col["reason"]]; got != "no matching signal by the deadline | (20s)" {
		t.Errorf("reason %q, want one line", got)
	}
	r = find("linux-setuid-decoy", "localhost", "local")
	if r[col["tactics"]] != "privilege-escalation; defense-evasion" || r[col["latency_ms"]] != "" || r[col["budget_ms"]] != "" {
		t.Errorf("row %v", r)
	}
}

func TestMarkdown(t *testing.T) {
	run := fixture(t)
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, run); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"## vigil: 7 of 11 detected (64%)",
		"| acme | 8 | 2 | 3 | 1 | 1 | 40% | 1.5s | 25.0s | 25.0s |",
		"| local | 8 | 5 | 1 | 0 | 1 | 83% | 47ms | 3.2s | 3.2s |",
		"| Defense Evasion | 8 | 4 | 1 | 80% |",
		"### Missed (4)",
		"### Errors (1)",
		"### Noisy negative tests (1)",
		"### Latency budget breaches (1)",
		"| `linux-file-delete-decoy` | T1070.004 | localhost | acme | 25.0s | 20.0s |",
		`no matching signal by the deadline \| (20s)`,
		"&lt;b&gt;bold&lt;/b&gt;",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "<b>") || strings.Contains(md, "<script>") {
		t.Errorf("markdown lets markup through:\n%s", md)
	}
	// The tactic table follows the kill chain.
	if strings.Index(md, "| Execution |") > strings.Index(md, "| Persistence |") ||
		strings.Index(md, "| Persistence |") > strings.Index(md, "| Defense Evasion |") {
		t.Errorf("tactics out of kill-chain order:\n%s", md)
	}
}

func TestBudgetOf(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ms := func(v int64) *int64 { return &v }
	exp := func(within time.Duration, lat *int64, st measure.Status, absent bool) measure.ExpectationResult {
		return measure.ExpectationResult{Deadline: at.Add(within), LatencyMS: lat, Status: st, Absent: absent}
	}
	tests := []struct {
		name string
		r    measure.Result
		want Budget
		ok   bool
	}{
		{"within budget", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{exp(5*time.Second, ms(4999), measure.Detected, false)}},
			Budget{BudgetMS: 5000, LatencyMS: 4999}, true},
		{"at the budget", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{exp(5*time.Second, ms(5000), measure.Detected, false)}},
			Budget{BudgetMS: 5000, LatencyMS: 5000}, true},
		{"breached", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{exp(5*time.Second, ms(5001), measure.Detected, false)}},
			Budget{BudgetMS: 5000, LatencyMS: 5001, Breached: true}, true},
		{"one of two expectations breached", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{
			exp(time.Second, ms(10), measure.Detected, false), exp(10*time.Second, ms(12000), measure.Detected, false)}},
			Budget{BudgetMS: 10000, LatencyMS: 12000, Breached: true}, true},
		{"tightest budget when none breached", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{
			exp(10*time.Second, ms(10), measure.Detected, false), exp(time.Second, ms(20), measure.Detected, false)}},
			Budget{BudgetMS: 1000, LatencyMS: 20}, true},
		{"absent expectations have no budget", measure.Result{Status: measure.Detected, InjectedAt: &at, Expectations: []measure.ExpectationResult{
			exp(time.Second, ms(5000), measure.Noisy, true), exp(10*time.Second, ms(20), measure.Detected, false)}},
			Budget{BudgetMS: 10000, LatencyMS: 20}, true},
		{"missed", measure.Result{Status: measure.Missed, InjectedAt: &at, Expectations: []measure.ExpectationResult{exp(time.Second, nil, measure.Missed, false)}}, Budget{}, false},
		{"no injection time", measure.Result{Status: measure.Detected, Expectations: []measure.ExpectationResult{exp(time.Second, ms(1), measure.Detected, false)}}, Budget{}, false},
	}
	for _, tc := range tests {
		got, ok := BudgetOf(tc.r)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: BudgetOf = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCompare(t *testing.T) {
	c := Compare(fixture(t))
	if strings.Join(c.SIEMs, ",") != "acme,local" {
		t.Fatalf("SIEMs %v", c.SIEMs)
	}
	var only []string
	for _, e := range c.OnlyOne {
		only = append(only, e.TestID+"@"+e.Target+":"+e.SIEM+"<"+strings.Join(e.MissedBy, ","))
	}
	if got := strings.Join(only, " "); got != "linux-base64-decode@localhost:local<acme weird-names@localhost:local<acme" {
		t.Errorf("caught by only one: %s", got)
	}
	if len(c.NoneCaught) != 1 || c.NoneCaught[0].TestID != "linux-shadow-read" || strings.Join(c.NoneCaught[0].MissedBy, ",") != "acme,local" {
		t.Errorf("caught by none: %+v", c.NoneCaught)
	}
	var tactics []string
	for _, row := range c.Tactics {
		tactics = append(tactics, row.Tactic)
	}
	if got := strings.Join(tactics, " "); got != "execution persistence privilege-escalation defense-evasion credential-access" {
		t.Errorf("tactics %s, want kill-chain order", got)
	}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, fixture(t)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`caught by only one SIEM \(2\):`, `caught by no SIEM \(1\):`,
		`\ndefense-evasion\s+50% \(1/2\)\s+100% \(3/3\)\n`, `\nprivilege-escalation\s+-\s+-\n`,
		`\nacme\s+8\s+2\s+3\s+1\s+40%\s+1\.5s\s+25\.0s\n`} {
		if !regexp.MustCompile(want).MatchString(buf.String()) {
			t.Errorf("comparison lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestDiffRuns(t *testing.T) {
	ms := func(v int64) *int64 { return &v }
	res := func(id string, st measure.Status, lat *int64) measure.Result {
		return measure.Result{TestID: id, Target: "t", SIEM: "s", Technique: "T1140", Status: st, LatencyMS: lat}
	}
	a := &measure.Run{RunID: "a", Results: []measure.Result{
		res("lost", measure.Detected, ms(40)),
		res("found", measure.Missed, nil),
		res("slow", measure.Detected, ms(100)),
		res("slightly-slower", measure.Detected, ms(100)),
		res("tiny", measure.Detected, ms(2)),
		res("fast", measure.Detected, ms(3000)),
		res("broke", measure.Detected, ms(10)),
		res("same", measure.Detected, ms(50)),
		res("gone", measure.Missed, nil),
	}}
	b := &measure.Run{RunID: "b", Results: []measure.Result{
		res("lost", measure.Missed, nil),
		res("found", measure.Detected, ms(70)),
		res("slow", measure.Detected, ms(450)),
		res("slightly-slower", measure.Detected, ms(190)),
		res("tiny", measure.Detected, ms(90)), // x45 but under the 100ms floor
		res("fast", measure.Detected, ms(900)),
		res("broke", measure.Error, nil),
		res("same", measure.Detected, ms(55)),
		res("new", measure.Detected, ms(1)),
	}}
	ids := func(cs []Change) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.TestID)
		}
		return strings.Join(s, ",")
	}
	d := DiffRuns(a, b, DefaultThresholds)
	for _, tc := range []struct{ name, got, want string }{
		{"newly missed", ids(d.NewlyMissed), "lost"},
		{"newly detected", ids(d.NewlyDetected), "found"},
		{"slower", ids(d.Slower), "slow"},
		{"faster", ids(d.Faster), "fast"},
		{"other", ids(d.Other), "broke"},
		{"added", ids(d.Added), "new"},
		{"removed", ids(d.Removed), "gone"},
		{"regressions", ids(d.Regressions()), "lost,slow"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if d.Unchanged != 3 {
		t.Errorf("unchanged %d, want 3 (slightly-slower, tiny, same)", d.Unchanged)
	}
	off := DiffRuns(a, b, Thresholds{})
	if len(off.Slower)+len(off.Faster) != 0 || ids(off.Regressions()) != "lost" {
		t.Errorf("ratio 0 must turn latency off: %+v", off)
	}
	strict := DiffRuns(a, b, Thresholds{Ratio: 1.5})
	if ids(strict.Slower) != "slightly-slower,slow,tiny" {
		t.Errorf("ratio 1.5 without floor: slower %q", ids(strict.Slower))
	}
	var buf bytes.Buffer
	if err := WriteRegressions(&buf, "a", d.Regressions()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || lines[0] != "REGRESSIONS against baseline a (2):" ||
		!regexp.MustCompile(`^lost\s+T1140\s+t\s+s\s+detected 40ms\s+missed\s+no longer detected$`).MatchString(lines[2]) ||
		!regexp.MustCompile(`^slow\s+T1140\s+t\s+s\s+detected 100ms\s+detected 450ms\s+\+350ms \(x4\.5\)$`).MatchString(lines[3]) {
		t.Errorf("regressions:\n%s", buf.String())
	}
}

var externalRef = regexp.MustCompile(`(?i)(<(script|img|link|iframe|object|embed|source|audio|video)\b[^>]*\s(src|href|data)=)|@import|url\(|\bfetch\(|XMLHttpRequest|<base\b`)

func TestHTMLSelfContained(t *testing.T) {
	run := fixture(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, run); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if m := externalRef.FindString(page); m != "" {
		t.Errorf("the page references an outside resource: %q", m)
	}
	for _, href := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(href[1], "https://attack.mitre.org/techniques/") {
			t.Errorf("link to %q (only ATT&CK technique pages are linked)", href[1])
		}
	}
	csp := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;sha256-([A-Za-z0-9/=]|&#43;)+&#39;; script-src &#39;sha256-([A-Za-z0-9/=]|&#43;)+&#39;; base-uri &#39;none&#39;; form-action &#39;none&#39;">`)
	if !csp.MatchString(page) {
		t.Errorf("no strict Content-Security-Policy in the page head")
	}
	if strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "<b>bold</b>") {
		t.Errorf("names are not escaped")
	}
	if n, want := strings.Count(page, `<a class="cell `), MatrixCells(run); n != want || want != 7 {
		t.Errorf("%d matrix cells, MatrixCells says %d, want 7", n, want)
	}
	if n := strings.Count(page, "<svg "); n != 2 {
		t.Errorf("%d latency charts, want one per SIEM (2)", n)
	}
	for _, want := range []string{`id="compare"`, "Caught by only one SIEM (2)", "Caught by no SIEM (1)", `id="budgets"`, "20261123T100000Z-f1x7ur", "1.2.3-test"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestHTMLInChromium opens the report in headless Chromium: it must load
// without a single console message (script errors and blocked fetches
// are console messages), its script must have run, the matrix must have
// the expected cells, and the filters given in the address must apply.
func TestHTMLInChromium(t *testing.T) {
	if _, err := reportcheck.Chromium(); err != nil {
		if os.Getenv("VIGIL_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("VIGIL_REQUIRE_CHROMIUM is set: %v", err)
		}
		t.Skipf("skipped: the HTML report is rendered in headless Chromium, and %v", err)
	}
	run := fixture(t)
	path := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, run); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fragment  string
		shown     string
		cellClass map[string]string // technique -> class after the script ran
	}{
		{"", "16", map[string]string{"T1140": "cov-all", "T1003.008": "cov-0", "T1548.001": "cov-none"}},
		{"status=missed&siem=acme", "3", nil},
		{"tactic=defense-evasion", "8", nil},
		{"q=shadow", "2", nil},
		{"breach=1", "1", nil},
		{"view=acme", "16", map[string]string{"T1140": "cov-0", "T1070.004": "cov-all", "T1003.008": "cov-0"}},
	}
	for _, tc := range tests {
		t.Run("#"+tc.fragment, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p, err := reportcheck.Render(ctx, path, tc.fragment)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Console) > 0 {
				t.Errorf("console messages:\n%s", strings.Join(p.Console, "\n"))
			}
			if !strings.Contains(p.DOM, `data-ready="true"`) {
				t.Fatalf("the page's script did not run to its end")
			}
			if n := strings.Count(p.DOM, `<a class="cell `); n != MatrixCells(run) {
				t.Errorf("%d matrix cells in the DOM, want %d", n, MatrixCells(run))
			}
			if !strings.Contains(p.DOM, `<span id="matrix-cells">7</span>`) {
				t.Errorf("the script counted a different number of cells")
			}
			if !strings.Contains(p.DOM, `<b id="shown">`+tc.shown+`</b>`) {
				m := regexp.MustCompile(`<b id="shown">[^<]*</b>`).FindString(p.DOM)
				t.Errorf("filter shows %s, want %s rows", m, tc.shown)
			}
			for tech, class := range tc.cellClass {
				re := regexp.MustCompile(`<a class="cell ([a-z0-9-]+)" href="https://attack.mitre.org/techniques/` + strings.ReplaceAll(tech, ".", "/") + `/"`)
				m := re.FindStringSubmatch(p.DOM)
				if m == nil || m[1] != class {
					t.Errorf("cell %s: %v, want class %s", tech, m, class)
				}
			}
		})
	}
}
