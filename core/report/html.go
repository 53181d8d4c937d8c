package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/vigilsec/vigil/core/attack"
	"github.com/vigilsec/vigil/core/measure"
)

// The HTML report is one file: its style, script and charts are inline
// and its Content-Security-Policy allows nothing else (no fetch, no
// image, no font, and only the exact inline style and script, by hash),
// so opening it makes no network request.

//go:embed assets/report.html.tmpl
var htmlTemplate string

//go:embed assets/report.css
var htmlCSS string

//go:embed assets/report.js
var htmlJS string

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":            optMS,
	"pct":           Percent,
	"tactic":        tacticDisplay,
	"techurl":       TechniqueURL,
	"join":          strings.Join,
	"oneline":       func(s string) string { return truncate(oneLine(s), 300) },
	"ptr":           func(v int64) *int64 { return &v },
	"add":           func(a, b int) int { return a + b },
	"coverageClass": CoverageClass,
}).Parse(htmlTemplate))

// CoverageClass is the HTML report's colour class of a coverage share:
// cov-all (every test detected), cov-mid (half or more), cov-low (some),
// cov-0 (none), cov-none (nothing measured).
func CoverageClass(c *float64) string {
	switch {
	case c == nil:
		return "cov-none"
	case *c >= 1:
		return "cov-all"
	case *c >= 0.5:
		return "cov-mid"
	case *c > 0:
		return "cov-low"
	}
	return "cov-0"
}

// MatrixCells is the number of cells of the HTML report's ATT&CK matrix:
// one per tested technique under each tactic its tests demonstrate.
func MatrixCells(run *measure.Run) int {
	n := 0
	for _, t := range ByTechnique(run.Results) {
		n += len(t.Tactics)
	}
	return n
}

type htmlPage struct {
	Title      string
	CSP        string
	CSS        template.CSS
	JS         template.JS
	Run        *measure.Run
	Meta       [][2]string
	Notes      []string
	Config     string
	Summary    measure.Summary
	SIEMs      []string
	Views      []string
	Tactics    []htmlTactic
	Cells      int
	Charts     []htmlChart
	Rows       []htmlRow
	Statuses   []string
	Diagnoses  []string
	TacticOpts []string
	Breaches   []Breach
	Compare    *Comparison
	Stats      []htmlStats
}

type htmlTactic struct {
	ID, Short, Name string
	Cells           []htmlCell
}

type htmlCell struct {
	ID, Name, Class, Label, Title, Views string
}

type htmlChart struct {
	SIEM          string
	Width, Height int
	Bars          []htmlBar
	Count         int
	P50, P95, Max *int64
	AxisY         int
}

type htmlBar struct {
	X, Y, W, H   int
	Label, Count string
	N            int
	LabelX       int
	CountY       int
}

type htmlRow struct {
	R    measure.Result
	Name string
	// Diagnosis is the class of a missed or noisy result's diagnosis.
	Diagnosis string
	Tactics   string
	Detail    string
	Budget    string
	Breached  bool
	Search    string
}

type htmlStats struct {
	SIEM  string
	Items [][2]string
}

// latencyBins are the upper bounds (ms) of the latency histogram's bins;
// the last bin is open.
var latencyBins = []struct {
	upTo  int64
	label string
}{
	{100, "<100ms"}, {250, "100-250ms"}, {500, "250-500ms"}, {1000, "0.5-1s"}, {2000, "1-2s"},
	{5000, "2-5s"}, {10000, "5-10s"}, {30000, "10-30s"}, {60000, "30-60s"}, {math.MaxInt64, "≥60s"},
}

// WriteHTML writes the run as one self-contained HTML page: run metadata,
// coverage per SIEM, the ATT&CK matrix (tactics as columns, one cell per
// tested technique coloured by coverage, switchable per SIEM), a latency
// histogram per SIEM (inline SVG), budget breaches, the comparison of
// SIEMs when there are several, and every result in a filterable table.
func WriteHTML(w io.Writer, run *measure.Run) error {
	p := htmlPage{
		Title:   "vigil report " + run.RunID,
		CSS:     template.CSS(htmlCSS),
		JS:      template.JS(htmlJS),
		Run:     run,
		Summary: Summary(run),
		SIEMs:   SIEMs(run),
	}
	p.CSP = fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; base-uri 'none'; form-action 'none'", cspHash(htmlCSS), cspHash(htmlJS))
	p.Meta = [][2]string{{"Run", run.RunID}, {"vigil", nonEmpty(run.Vigil, "unknown")}}
	if !run.StartedAt.IsZero() {
		p.Meta = append(p.Meta, [2]string{"Started", run.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC")})
	}
	if !run.FinishedAt.IsZero() {
		p.Meta = append(p.Meta, [2]string{"Finished", run.FinishedAt.UTC().Format("2006-01-02 15:04:05 UTC")})
	}
	if d := duration(run); d > 0 {
		p.Meta = append(p.Meta, [2]string{"Duration", FormatMS(d.Milliseconds())})
	}
	if path, _ := run.Config["path"].(string); path != "" {
		p.Meta = append(p.Meta, [2]string{"Config", path})
	}
	p.Meta = append(p.Meta, [2]string{"ATT&CK", "Enterprise v" + attack.Default().Version})
	p.Notes = run.Notes
	if len(run.Config) > 0 {
		if b, err := json.MarshalIndent(run.Config, "", "  "); err == nil {
			p.Config = string(b)
		}
	}

	// The matrix: the combined view first, then each SIEM.
	p.Views = append([]string{AllSIEMs}, p.SIEMs...)
	views := map[string]map[string]TechniqueStats{AllSIEMs: statsByID(CombinedResults(run))}
	for _, s := range p.SIEMs {
		var rs []measure.Result
		for _, r := range run.Results {
			if r.SIEM == s {
				rs = append(rs, r)
			}
		}
		views[s] = statsByID(rs)
	}
	byTactic := map[string][]TechniqueStats{}
	for _, t := range ByTechnique(run.Results) {
		for _, tac := range t.Tactics {
			byTactic[tac] = append(byTactic[tac], t)
		}
	}
	for _, tac := range Tactics() {
		col := htmlTactic{ID: tac.ID, Short: tac.ShortName, Name: tac.Name}
		for _, t := range byTactic[tac.ShortName] {
			col.Cells = append(col.Cells, matrixCell(t, p.Views, views))
		}
		p.Cells += len(col.Cells)
		p.Tactics = append(p.Tactics, col)
	}
	for _, tac := range tacticNames(byTactic) { // tactics outside ATT&CK Enterprise, if any
		if _, err := attack.Default().Tactic(tac); err == nil {
			continue
		}
		col := htmlTactic{Short: tac, Name: tac}
		for _, t := range byTactic[tac] {
			col.Cells = append(col.Cells, matrixCell(t, p.Views, views))
		}
		p.Cells += len(col.Cells)
		p.Tactics = append(p.Tactics, col)
	}

	for _, s := range p.SIEMs {
		p.Charts = append(p.Charts, latencyChart(s, run.Results))
	}

	seenStatus := map[string]bool{}
	seenTactic := map[string]bool{}
	seenDiag := map[string]bool{}
	for _, r := range run.Results {
		row := htmlRow{R: r, Name: techniqueName(r), Tactics: strings.Join(r.Tactics, " "), Detail: detail(r)}
		if r.Diagnosis != nil {
			row.Diagnosis = string(r.Diagnosis.Class)
			row.Detail = r.Diagnosis.Summary
			seenDiag[row.Diagnosis] = true
		}
		if b, ok := BudgetOf(r); ok {
			row.Budget, row.Breached = FormatMS(b.BudgetMS), b.Breached
		}
		row.Search = strings.ToLower(strings.Join([]string{r.TestID, r.TestName, r.Technique, row.Name, r.Target, r.SIEM,
			string(r.Status), row.Diagnosis, row.Detail, r.Marker}, " "))
		p.Rows = append(p.Rows, row)
		seenStatus[string(r.Status)] = true
		for _, t := range r.Tactics {
			seenTactic[t] = true
		}
	}
	for _, st := range []measure.Status{measure.Detected, measure.Missed, measure.Error, measure.Skipped, measure.Quiet, measure.Noisy} {
		if seenStatus[string(st)] {
			p.Statuses = append(p.Statuses, string(st))
		}
	}
	p.TacticOpts = tacticNames(seenTactic)
	p.Diagnoses = sortedKeys(seenDiag)
	p.Breaches = Breaches(run)
	if len(p.SIEMs) > 1 {
		c := Compare(run)
		p.Compare = &c
	}
	for _, s := range sortedKeys(run.SIEMStats) {
		st := htmlStats{SIEM: s}
		for _, k := range sortedKeys(run.SIEMStats[s]) {
			st.Items = append(st.Items, [2]string{k, fmt.Sprint(run.SIEMStats[s][k])})
		}
		p.Stats = append(p.Stats, st)
	}
	if err := pageTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func statsByID(rs []measure.Result) map[string]TechniqueStats {
	out := map[string]TechniqueStats{}
	for _, t := range ByTechnique(rs) {
		out[t.ID] = t
	}
	return out
}

// matrixCell renders a technique's cell; its data-views attribute holds
// the class and label of every view for the view selector.
func matrixCell(t TechniqueStats, order []string, views map[string]map[string]TechniqueStats) htmlCell {
	cell := htmlCell{ID: t.ID, Name: t.Name}
	vs := map[string][2]string{}
	var titles []string
	for _, v := range order {
		st, ok := views[v][t.ID]
		if !ok {
			continue
		}
		label := fmt.Sprintf("%d/%d", st.Counts.Detected, st.Counts.Detected+st.Counts.Missed)
		if st.Counts.Coverage == nil {
			label = "–"
		}
		vs[v] = [2]string{CoverageClass(st.Counts.Coverage), label}
		titles = append(titles, v+": "+layerComment(st))
	}
	b, _ := json.Marshal(vs)
	cell.Views = string(b)
	cell.Class, cell.Label = vs[order[0]][0], vs[order[0]][1]
	cell.Title = t.ID + " " + t.Name + "\n" + strings.Join(titles, "\n")
	return cell
}

// latencyChart bins a SIEM's detection latencies into a histogram.
func latencyChart(siem string, results []measure.Result) htmlChart {
	c := htmlChart{SIEM: siem, Width: 636, Height: 190, AxisY: 150}
	counts := make([]int, len(latencyBins))
	var lat []int64
	for _, r := range results {
		if r.SIEM != siem || r.Status != measure.Detected || r.LatencyMS == nil {
			continue
		}
		lat = append(lat, *r.LatencyMS)
		for i, b := range latencyBins {
			if *r.LatencyMS < b.upTo {
				counts[i]++
				break
			}
		}
	}
	c.Count = len(lat)
	if len(lat) > 0 {
		p50, p95, max := measure.Percentile(lat, 50), measure.Percentile(lat, 95), measure.Percentile(lat, 100)
		c.P50, c.P95, c.Max = &p50, &p95, &max
	}
	peak := 1
	for _, n := range counts {
		if n > peak {
			peak = n
		}
	}
	const left, barW, gap, top = 8, 56, 6, 20
	for i, b := range latencyBins {
		h := counts[i] * (c.AxisY - top) / peak
		x := left + i*(barW+gap)
		c.Bars = append(c.Bars, htmlBar{
			X: x, Y: c.AxisY - h, W: barW, H: h, Label: b.label, N: counts[i], Count: fmt.Sprint(counts[i]),
			LabelX: x + barW/2, CountY: c.AxisY - h - 4,
		})
	}
	return c
}
