// Package chart draws a run's line charts, described as plain data by
// report.Chart, twice: interactive in the run's report page (go-echarts,
// with the ECharts library vendored in assets/ and inlined once in the
// page, so it opens offline) and as PNG images.
//
// PNGs come from a headless Chromium driven through chromedp, which
// snapshots the chart as ECharts draws it in the page; when no browser is
// installed, or it fails, the built-in pure-Go renderer draws them instead
// (raster.go: golang.org/x/image/vector for shapes, the Go fonts regular
// and bold for text, the HTML chart's layout, palette, symbols and ticks)
// and Result says so and why. WritePage writes a run's report page
// (index.html): one self-contained file with ECharts inline once, the
// charts drawn in it, and the tables and links the caller lays out.
//
// Typical use, after a run:
//
//	res, err := chart.WriteAll(ctx, filepath.Join(runDir, "plots"), charts, chart.Options{Logger: log})
//	// res.Renderer is "chromium" or "builtin"; res.FallbackReason tells why builtin was used.
//
// This is the only package that imports go-echarts, chromedp and
// golang.org/x/image; the benchmarks build their charts with package
// report alone.
package chart
