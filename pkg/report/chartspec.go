package report

// Chart describes one line chart as plain data: the benchmarks fill it in
// and package report/chart draws it (HTML and PNG). Keeping the description
// here, away from the renderers, lets measuring packages build their charts
// without importing go-echarts, chromedp or golang.org/x/image.
type Chart struct {
	// Name is the file stem: <Name>.html and <Name>.png. Letters, digits,
	// '_', '-' and '.' only, e.g. "ttfc_vs_input_length".
	Name string
	// Title is drawn above the chart; XLabel and YLabel name the axes with
	// their units, e.g. "TTFC (ms)".
	Title, XLabel, YLabel string
	// LogX draws the x axis in log2 scale (for load levels that double).
	LogX   bool
	Series []Series
}

// Series is one line of a chart: points (X[i], Y[i]) in the units of the
// chart's axis labels, drawn in the given order. Points with a non-finite
// coordinate (and, on a LogX chart, with X <= 0) are skipped.
type Series struct {
	// Name is the legend entry, e.g. "P50".
	Name string
	X, Y []float64
	// Dashed draws the line dashed, to tell it from a solid one.
	Dashed bool
	// Labels, when set, name each point (Labels[i] for point i, e.g. its
	// load level "c=8"): the HTML chart writes them beside the points and
	// in the tooltip. Empty or as long as X.
	Labels []string
}
