package chart

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// palette is ECharts' default series palette; the built-in PNG renderer
// uses it too, so both PNG renderers colour series alike.
var palette = [...]string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"}

// symbols are the markers of series 1, 2, 3, ... (cycling); the built-in
// PNG renderer draws the same shapes.
var symbols = [...]string{"circle", "rect", "triangle", "diamond"}

// Layout of the chart inside its 1000×600 box, in CSS pixels: the title
// sits at the top with padding (so it is never clipped), the legend under
// it, the plot below.
const (
	titleTop  = 14
	legendTop = 50
	gridTop   = 96
	gridLeft  = 20
	gridRight = 40
	gridBot   = 64
)

// page is the HTML page around a go-echarts snippet. It loads ECharts from
// the sibling file, never from the network, and says so when it is missing.
var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { margin: 0; padding: 16px; background: #ffffff; font-family: sans-serif; }
.container { display: flex; justify-content: center; }
#echarts-missing { color: #b00020; text-align: center; }
</style>
<script src="./` + EChartsFile + `"></script>
</head>
<body>
{{.Element}}
<p id="echarts-missing" hidden>This chart needs the file ` + EChartsFile + ` in the same folder as this page.</p>
<script>if (typeof echarts === "undefined") { document.getElementById("echarts-missing").hidden = false; }</script>
{{.Script}}
</body>
</html>
`))

// writeHTML writes c as a standalone page.
func writeHTML(w io.Writer, c report.Chart) error {
	snippet := newLine(c).RenderSnippet()
	script, err := scriptBody(snippet.Script)
	if err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	err = page.Execute(w, struct {
		Title   string
		Element template.HTML
		Script  template.HTML
	}{
		Title: c.Title,
		// go-echarts builds the element from the chart id (ours, plain
		// letters) and the fixed size.
		Element: template.HTML(strings.TrimSpace(snippet.Element)),
		Script:  template.HTML("<script>\n" + script + "\n</script>"),
	})
	if err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	return nil
}

// scriptBody takes the JavaScript out of go-echarts' <script> element and
// makes it safe to put back: go-echarts writes the option JSON without HTML
// escaping, so a label holding "</script>" would end the element early.
func scriptBody(s string) (string, error) {
	s = strings.TrimSpace(s)
	open := strings.Index(s, ">")
	if !strings.HasPrefix(s, "<script") || open < 0 || !strings.HasSuffix(s, "</script>") {
		return "", fmt.Errorf("unexpected go-echarts script snippet: %.60q", s)
	}
	body := s[open+1 : len(s)-len("</script>")]
	body = strings.ReplaceAll(body, "</", `<\/`)
	body = strings.ReplaceAll(body, "<!--", `<\!--`)
	return strings.TrimSpace(body), nil
}

// newLine builds the go-echarts chart for c.
func newLine(c report.Chart) *charts.Line {
	line := charts.NewLine()
	xType := "value"
	if c.LogX {
		xType = "log"
	}
	ymin, ymax := yRange(c)
	line.SetGlobalOptions(
		charts.WithInitializationOpts(opts.Initialization{
			PageTitle:       c.Title,
			ChartID:         chartID(c.Name),
			Width:           strconv.Itoa(widthPx) + "px",
			Height:          strconv.Itoa(heightPx) + "px",
			BackgroundColor: "#ffffff",
			AssetsHost:      "./",
		}),
		charts.WithAnimation(false),
		charts.WithTitleOpts(opts.Title{
			Title:      c.Title,
			Left:       "center",
			Top:        strconv.Itoa(titleTop),
			TitleStyle: &opts.TextStyle{FontSize: 20},
		}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: strconv.Itoa(legendTop)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "item"}),
		charts.WithToolboxOpts(opts.Toolbox{
			Show:    opts.Bool(true),
			Right:   "20",
			Feature: &opts.ToolBoxFeature{SaveAsImage: &opts.ToolBoxFeatureSaveAsImage{Show: opts.Bool(true), Type: "png", Name: c.Name, Title: "Save as PNG"}},
		}),
		charts.WithGridOpts(opts.Grid{
			Top: strconv.Itoa(gridTop),
			// The y axis sits far enough right for its labels and its
			// name (yNameGap) to fit left of it.
			Left:   strconv.Itoa(gridLeft + yNameGap(ymin, ymax)),
			Right:  strconv.Itoa(gridRight),
			Bottom: strconv.Itoa(gridBot),
		}),
		charts.WithXAxisOpts(opts.XAxis{
			Type:         xType,
			Name:         c.XLabel,
			NameLocation: "middle",
			NameGap:      34,
			Scale:        opts.Bool(true), // x does not have to start at 0
			SplitLine:    &opts.SplitLine{Show: opts.Bool(true)},
		}),
		charts.WithYAxisOpts(opts.YAxis{
			Type:         "value", // includes 0 unless data are negative
			Name:         c.YLabel,
			NameLocation: "middle",
			NameGap:      yNameGap(ymin, ymax),
			SplitLine:    &opts.SplitLine{Show: opts.Bool(true)},
		}),
	)
	for i, s := range c.Series {
		pts := points(s, c.LogX)
		data := make([]opts.LineData, len(pts))
		for j, p := range pts {
			data[j] = opts.LineData{Name: p.label, Value: []any{p.x, p.y}}
		}
		lineType := "solid"
		if s.Dashed {
			lineType = "dashed"
		}
		so := []charts.SeriesOpts{
			charts.WithLineChartOpts(opts.LineChart{
				Symbol:     symbols[i%len(symbols)],
				SymbolSize: 8,
				ShowSymbol: opts.Bool(true),
			}),
			charts.WithLineStyleOpts(opts.LineStyle{Width: 2, Type: lineType}),
		}
		if len(s.Labels) > 0 {
			// Each point names its level: on a throughput-vs-latency curve
			// nothing else tells the points apart.
			so = append(so, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Position: "top", Formatter: "{b}"}))
		}
		line.AddSeries(s.Name, data, so...)
	}
	line.AddJSFuncs(extraJS(c))
	return line
}

// extraJS sets what go-echarts' options cannot express: the log2 base of a
// log x axis (opts.XAxis has no LogBase) and a tooltip naming both axes.
// Labels are JSON strings (JSON escapes <, > and &) of HTML-escaped text,
// since ECharts shows tooltips as HTML.
func extraJS(c report.Chart) string {
	str := func(s string) string {
		b, _ := json.Marshal(html.EscapeString(s)) // a string always marshals
		return string(b)
	}
	var b strings.Builder
	b.WriteString("%MY_ECHARTS%.setOption({")
	if c.LogX {
		b.WriteString("xAxis: {logBase: 2}, ")
	}
	name := "" // the point's label, on charts that have them
	for _, s := range c.Series {
		if len(s.Labels) > 0 {
			name = ` + (p.name ? " " + echarts.format.encodeHTML(p.name) : "")`
		}
	}
	fmt.Fprintf(&b, `tooltip: {formatter: function (p) {
        var f = function (v) { return typeof v === "number" ? String(+v.toPrecision(6)) : String(v); };
        return p.marker + echarts.format.encodeHTML(p.seriesName)%s + "<br>" + %s + ": " + f(p.value[0]) + "<br>" + %s + ": " + f(p.value[1]);
    }}});`, name, str(c.XLabel), str(c.YLabel))
	return b.String()
}

// yRange returns the smallest and largest y over the drawable points, with
// 0 included (the y axis starts at 0 unless data are negative).
func yRange(c report.Chart) (lo, hi float64) {
	for _, s := range c.Series {
		for _, p := range points(s, c.LogX) {
			lo, hi = math.Min(lo, p.y), math.Max(hi, p.y)
		}
	}
	return lo, hi
}

// yNameGap is the distance in pixels between the y axis and its rotated
// name: it must clear the widest tick label. ECharts picks round ticks much as niceRange does and writes them with
// thousands separators ("12,000"), about 7 px per character at 12 px; one
// spare character covers the difference between the two tick choices.
func yNameGap(lo, hi float64) int {
	first, last, step := niceRange(lo, hi)
	decimals := stepDecimals(step)
	widest := 0
	for i := 0.0; first+i*step <= last+step/2; i++ {
		widest = max(widest, len(axisLabel(first+i*step, decimals)))
	}
	return 16 + 7*(widest+1)
}

// axisLabel formats v with the given decimals and thousands separators.
func axisLabel(v float64, decimals int) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	s = groupThousands(whole)
	if frac != "" {
		s += "." + frac
	}
	if v < 0 && strings.Trim(s, "0.,") != "" {
		s = "-" + s
	}
	return s
}

// groupThousands puts commas in a string of digits: "12000" -> "12,000".
func groupThousands(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
