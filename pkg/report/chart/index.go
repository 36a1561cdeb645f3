package chart

import (
	"fmt"
	"html/template"
	"io"
	"path"
)

// Index is the content of a run's index.html.
type Index struct {
	// Title heads the page, e.g. "Veeksha prefill run 2026-03-07_23-07-30".
	Title string
	// Facts are key/value rows shown as a table: the configuration, the
	// PNG renderer used, ...
	Facts [][2]string
	// Links are the run's files, relative to the index: results JSON and
	// CSV, requests.jsonl, ...
	Links []Link
	// ChartDir is the folder of the charts relative to the index, e.g.
	// "plots" ("" = beside it).
	ChartDir string
	// Charts are the charts' file stems, shown in this order: each PNG
	// inline, linked to its HTML page.
	Charts []string
}

// Link is one link of an Index: the text shown and the relative address.
type Link struct {
	Name string
	Href string
}

var indexPage = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { margin: 0 auto; padding: 16px 24px; max-width: 1040px; font-family: sans-serif; color: #222; }
table.facts { border-collapse: collapse; margin-bottom: 16px; }
table.facts th, table.facts td { text-align: left; padding: 4px 12px; border-bottom: 1px solid #ddd; vertical-align: top; }
table.facts th { font-weight: 600; white-space: nowrap; }
figure { margin: 24px 0; }
figure img { width: 100%; max-width: 1000px; height: auto; border: 1px solid #ddd; }
figcaption { margin-top: 4px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{- if .Facts}}
<table class="facts">
{{- range .Facts}}
<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .Links}}
<h2>Files</h2>
<ul>
{{- range .Links}}
<li><a href="{{.Href}}">{{.Name}}</a></li>
{{- end}}
</ul>
{{- end}}
{{- if .Charts}}
<h2>Charts</h2>
{{- range .Charts}}
<figure id="{{.Stem}}">
<a href="{{.HTML}}"><img src="{{.PNG}}" alt="{{.Stem}}" width="1000" height="600"></a>
<figcaption><a href="{{.HTML}}">{{.Stem}}</a> (interactive)</figcaption>
</figure>
{{- end}}
{{- end}}
</body>
</html>
`))

// WriteIndex writes page as a self-contained HTML page: no scripts, no
// remote resources. Every text is HTML-escaped.
func WriteIndex(w io.Writer, page Index) error {
	type chartLinks struct{ Stem, HTML, PNG string }
	data := struct {
		Index
		Charts []chartLinks
	}{Index: page}
	for _, stem := range page.Charts {
		if !stemPattern.MatchString(stem) {
			return fmt.Errorf("index: chart name %q is not a plain file stem", stem)
		}
		base := path.Join(page.ChartDir, stem)
		data.Charts = append(data.Charts, chartLinks{Stem: stem, HTML: base + ".html", PNG: base + ".png"})
	}
	if err := indexPage.Execute(w, data); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}
