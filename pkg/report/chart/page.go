package chart

import (
	"fmt"
	"html/template"
	"io"
	"path"
	"strings"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// Page is the content of a run's report page (index.html): one file that
// renders offline, with ECharts inline once and every chart drawn in it.
// What it says about a benchmark comes from the caller; the page only
// lays it out.
type Page struct {
	// Title heads the page, e.g. "Stress — qwen3:0.6b".
	Title string
	// Verdict is the overall outcome, "PASS", "WARN" or "FAIL" ("" when
	// the run was not validated), and VerdictText says it in words.
	Verdict, VerdictText string
	// Facts are the header's key/value rows: benchmark, model, server,
	// start, duration, end reason, tool version.
	Facts [][2]string
	// Results is the results table as on the console; the page lets the
	// reader sort it by a column.
	Results report.Grid
	// Charts are drawn inline, interactive, in this order. ChartDir is
	// the folder of their PNG snapshots relative to the page ("" = none
	// linked).
	Charts   []report.Chart
	ChartDir string
	// Sections are further tables after the charts: validation, client
	// fidelity, server metrics, comparison, settings.
	Sections []report.Grid
	// Links are the run's raw files, relative to the page.
	Links []Link
}

// Link is one link of a Page: the text shown and the relative address.
type Link struct {
	Name string
	Href string
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{"gridOf": gridOf}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { margin: 0 auto; padding: 16px 24px; max-width: 1100px; font-family: sans-serif; color: #222; }
.verdict { font-size: 1.4em; font-weight: 700; padding: 8px 14px; border-radius: 6px; display: inline-block; margin-bottom: 12px; }
.v-PASS { background: #e3f4e4; color: #1b5e20; } .v-WARN { background: #fff4d6; color: #7a5200; } .v-FAIL { background: #fde2e1; color: #a4161a; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " ▲"; } table.sortable th[aria-sort=descending]::after { content: " ▼"; }
.notes { color: #555; font-size: 13px; margin: 4px 0 16px; padding-left: 18px; }
.scroll { overflow-x: auto; }
.chart { margin: 16px 0; }
.chart figcaption { font-size: 13px; }
td.PASS { color: #1b5e20; } td.WARN { color: #7a5200; font-weight: 600; } td.FAIL { color: #a4161a; font-weight: 700; } td.SKIP { color: #6b6b6b; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{- if .Verdict}}
<div class="verdict v-{{.Verdict}}" id="verdict">{{.Verdict}} — {{.VerdictText}}</div>
{{- end}}
<table class="facts" id="facts">
{{- range .Facts}}
<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{- end}}
</table>
{{with .Results}}{{template "grid" (gridOf . "results" true)}}{{end}}
{{- if .Charts}}
<h2>Charts</h2>
{{.ECharts}}
{{- range .ChartParts}}
<figure class="chart" id="fig_{{.Name}}">
<div class="scroll">{{.Element}}</div>
{{.Script}}
{{- if .PNG}}
<figcaption>Snapshot: <a href="{{.PNG}}">{{.PNG}}</a></figcaption>
{{- end}}
</figure>
{{- end}}
{{- end}}
{{- range $i, $g := .Sections}}{{template "grid" (gridOf $g (printf "section%d" $i) false)}}{{end}}
{{- if .Links}}
<h2>Files</h2>
<ul id="files">
{{- range .Links}}
<li><a href="{{.Href}}">{{.Name}}</a></li>
{{- end}}
</ul>
{{- end}}
<script>
// Sort a results table by the clicked column: numbers as numbers (also
// in a text column that holds only numbers, such as the levels), a
// missing value ("—") last; a second click reverses.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var num = th.classList.contains("num") || rows.every(function (r) { var t = r.cells[col].textContent; return t === "—" || isFinite(t); });
      var key = function (r) { var t = r.cells[col].textContent; return num ? (t === "—" ? NaN : parseFloat(t)) : t; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (num) { if (isNaN(x)) return isNaN(y) ? 0 : 1; if (isNaN(y)) return -1; return asc ? x - y : y - x; }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>
</body>
</html>
{{define "grid"}}
{{- if .G.Title}}<h2>{{.G.Title}}</h2>{{end}}
<div class="scroll"><table id="{{.ID}}"{{if .Sortable}} class="sortable"{{end}}>
<thead><tr>{{range $i, $h := .G.Header}}<th{{if index $.G.Numeric $i}} class="num"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>
{{- range .G.Rows}}
<tr>{{range $i, $c := .}}<td class="{{if index $.G.Numeric $i}}num{{end}}{{if and (eq $i 0) (or (eq $c "PASS") (eq $c "WARN") (eq $c "FAIL") (eq $c "SKIP"))}} {{$c}}{{end}}">{{$c}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>
{{- if .G.Notes}}
<ul class="notes">{{range .G.Notes}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
{{- end}}`))

// gridData is one table for the "grid" template.
type gridData struct {
	G        report.Grid
	ID       string
	Sortable bool
}

func gridOf(g report.Grid, id string, sortable bool) gridData {
	return gridData{G: g, ID: id, Sortable: sortable}
}

// chartPart is one inline chart: go-echarts' element and script, and the
// PNG snapshot's address.
type chartPart struct {
	Name            string
	Element, Script template.HTML
	PNG             string
}

// WritePage writes p as one self-contained HTML page: ECharts inline
// once, every chart drawn from its option in the page, no remote
// resource. Every text is HTML-escaped.
func WritePage(w io.Writer, p Page) error {
	if err := validate(p.Charts); err != nil {
		return fmt.Errorf("report page: %w", err)
	}
	for _, g := range append([]report.Grid{p.Results}, p.Sections...) {
		if len(g.Numeric) != len(g.Header) {
			return fmt.Errorf("report page: table %q has %d column kinds for %d columns", g.Title, len(g.Numeric), len(g.Header))
		}
		for r, row := range g.Rows {
			if len(row) != len(g.Header) {
				return fmt.Errorf("report page: table %q row %d has %d cells for %d columns", g.Title, r, len(row), len(g.Header))
			}
		}
	}
	parts := make([]chartPart, 0, len(p.Charts))
	for _, c := range p.Charts {
		snippet := newLine(c).RenderSnippet()
		script, err := scriptBody(snippet.Script)
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
		part := chartPart{
			Name: c.Name,
			// go-echarts builds the element from the chart id (ours, plain
			// letters) and the fixed size.
			Element: template.HTML(strings.TrimSpace(snippet.Element)),
			Script:  template.HTML("<script>\n" + script + "\n</script>"),
		}
		if p.ChartDir != "" {
			part.PNG = path.Join(p.ChartDir, c.Name+".png")
		}
		parts = append(parts, part)
	}
	if strings.Contains(strings.ToLower(echartsJS), "</script") {
		return fmt.Errorf("report page: the embedded ECharts holds </script and cannot be inlined")
	}
	data := struct {
		Page
		ECharts    template.HTML
		ChartParts []chartPart
	}{Page: p, ECharts: template.HTML("<script>" + echartsJS + "</script>"), ChartParts: parts}
	if err := reportPage.Execute(w, data); err != nil {
		return fmt.Errorf("write report page: %w", err)
	}
	return nil
}
