package chart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/pkg/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", name, diff)
	}
}

var levels = []float64{1, 2, 4, 8, 16, 32, 64}

// stressCharts are seven charts shaped like the stress benchmark's: log x
// axes, two series each, the second dashed.
func stressCharts() []report.Chart {
	curve := func(scale, power float64) []float64 {
		y := make([]float64, len(levels))
		for i, x := range levels {
			y[i] = scale * math.Pow(x, power)
		}
		return y
	}
	two := func(name, title, x, y string, a, b []float64) report.Chart {
		return report.Chart{Name: name, Title: title, XLabel: x, YLabel: y, LogX: true, Series: []report.Series{
			{Name: "P50", X: levels, Y: a},
			{Name: "P99", X: levels, Y: b, Dashed: true},
		}}
	}
	return []report.Chart{
		{Name: "throughput_vs_load", Title: "Throughput vs Load", XLabel: "Concurrency", YLabel: "Throughput (tok/s)", LogX: true, Series: []report.Series{
			{Name: "Input", X: levels, Y: curve(900, 0.8)},
			{Name: "Output", X: levels, Y: curve(140, 0.8), Dashed: true},
		}},
		two("e2e_latency_vs_load", "E2E Latency vs Load", "Concurrency", "E2E Latency (ms)", curve(800, 0.3), curve(950, 0.35)),
		{Name: "output_throughput_vs_latency", Title: "Output Throughput vs Latency", XLabel: "E2E Latency (ms)", YLabel: "Output Throughput (tok/s)", Series: []report.Series{
			{Name: "P50", X: curve(800, 0.3), Y: curve(140, 0.8)},
			{Name: "P99", X: curve(950, 0.35), Y: curve(140, 0.8), Dashed: true},
		}},
		two("ttfc_vs_load", "Time to First Token vs Load", "Concurrency", "TTFC (ms)", curve(20, 0.5), curve(30, 0.6)),
		two("interactivity_vs_load", "Interactivity vs Load", "Concurrency", "Interactivity (tok/s/user)", curve(150, -0.2), curve(120, -0.25)),
		{Name: "input_throughput_vs_interactivity", Title: "Input Throughput vs Interactivity", XLabel: "Interactivity (tok/s/user)", YLabel: "Input Throughput (tok/s)", Series: []report.Series{
			{Name: "P50", X: curve(150, -0.2), Y: curve(900, 0.8)},
			{Name: "P99", X: curve(120, -0.25), Y: curve(900, 0.8), Dashed: true},
		}},
		{Name: "output_throughput_vs_interactivity", Title: "Output Throughput vs Interactivity", XLabel: "Interactivity (tok/s/user)", YLabel: "Output Throughput (tok/s)", Series: []report.Series{
			{Name: "P50", X: curve(150, -0.2), Y: curve(140, 0.8)},
			{Name: "P99", X: curve(120, -0.25), Y: curve(140, 0.8), Dashed: true},
		}},
	}
}

// prefillChart is a linear chart with a non-finite point that must be
// skipped.
func prefillChart() report.Chart {
	return report.Chart{
		Name: "ttfc_vs_input_length", Title: "Time to First Token vs Input Length",
		XLabel: "Input Length (tokens)", YLabel: "TTFC (ms)",
		Series: []report.Series{
			{Name: "P50", X: []float64{128, 256, 512, 1024, 2048}, Y: []float64{6.4, 7.1, 15.6, math.NaN(), 55}},
			{Name: "P99", X: []float64{128, 256, 512, 1024, 2048}, Y: []float64{7.4, 8.1, 17.6, 31.3, 60}, Dashed: true},
		},
	}
}

func renderHTML(t *testing.T, c report.Chart) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeHTML(&b, c); err != nil {
		t.Fatalf("writeHTML(%s): %v", c.Name, err)
	}
	return b.Bytes()
}

func TestHTMLGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		golden string
		chart  report.Chart
	}{
		{"TestHTMLLinear.golden", prefillChart()},
		{"TestHTMLLogX.golden", stressCharts()[0]},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			got := renderHTML(t, tt.chart)
			if again := renderHTML(t, tt.chart); !bytes.Equal(got, again) {
				t.Errorf("two renderings of %s differ: HTML is not deterministic", tt.chart.Name)
			}
			html := string(got)
			if !strings.Contains(html, `<script src="./echarts.min.js"></script>`) {
				t.Errorf("HTML does not load ./echarts.min.js")
			}
			if strings.Contains(html, "http://") || strings.Contains(html, "https://") || strings.Contains(html, "//cdn") {
				t.Errorf("HTML references the network:\n%s", html)
			}
			if id := chartID(tt.chart.Name); !strings.Contains(html, `id="`+id+`"`) {
				t.Errorf("HTML lacks the chart element id %q", id)
			}
			if strings.Contains(html, "NaN") {
				t.Errorf("HTML holds a NaN point")
			}
			if tt.chart.LogX != strings.Contains(html, "logBase: 2") {
				t.Errorf("LogX = %v but logBase 2 present = %v", tt.chart.LogX, !tt.chart.LogX)
			}
			golden(t, tt.golden, got)
		})
	}
}

func TestHTMLEscapesText(t *testing.T) {
	t.Parallel()
	evil := `</script><script>alert("x")</script><!--`
	c := report.Chart{Name: "evil", Title: evil, XLabel: evil, YLabel: evil,
		Series: []report.Series{{Name: evil, X: []float64{1, 2}, Y: []float64{1, 2}}}}
	html := string(renderHTML(t, c))
	// Exactly our three script elements: the library, the guard, the chart.
	if got := strings.Count(html, "</script>"); got != 3 {
		t.Errorf("HTML holds %d </script>, want 3: chart text broke out of the script:\n%s", got, html)
	}
	// "<!--" inside a script element changes how the HTML parser finds
	// its end; the text may stay only as a JavaScript string.
	if strings.Contains(html, "<!--") {
		t.Errorf("HTML holds \"<!--\":\n%s", html)
	}
}

func TestChartID(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"ttfc_vs_input_length": "chart_ttfc_vs_input_length",
		"tbt-p50.v2":           "chart_tbt_p50_v2",
	}
	for in, want := range tests {
		if got := chartID(in); got != want {
			t.Errorf("chartID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteAllRejects(t *testing.T) {
	t.Parallel()
	ok := report.Series{Name: "a", X: []float64{1}, Y: []float64{1}}
	tests := []struct {
		name   string
		charts []report.Chart
		opts   Options
		want   string
	}{
		{"bad renderer", []report.Chart{{Name: "a"}}, Options{Renderer: "svg"}, `renderer "svg"`},
		{"empty name", []report.Chart{{Name: ""}}, Options{}, "not a plain file stem"},
		{"path in name", []report.Chart{{Name: "../a"}}, Options{}, "not a plain file stem"},
		{"duplicate name", []report.Chart{{Name: "a", Series: []report.Series{ok}}, {Name: "a"}}, Options{}, "used twice"},
		{"x/y length mismatch", []report.Chart{{Name: "a", Series: []report.Series{{Name: "s", X: []float64{1, 2}, Y: []float64{1}}}}}, Options{}, "2 x values but 1 y values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := WriteAll(t.Context(), dir, tt.charts, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteAll = %v, want an error containing %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("WriteAll wrote %d files before rejecting its input", len(entries))
			}
		})
	}
}

// checkPNG decodes the PNG at path and checks that it is a 2000×1200 chart:
// mostly white, with enough drawn pixels, and with the first series'
// colour (#5470c6) present. It returns the share of non-white pixels.
func checkPNG(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if got, want := img.Bounds().Size(), (image.Point{X: pngWidthPx, Y: pngHeightPx}); got != want {
		t.Errorf("%s is %v, want %v", filepath.Base(path), got, want)
	}
	// Read pixels straight from the decoded buffer: image.At per pixel is
	// slow under the race detector. Both renderers write 8-bit RGB(A).
	var pix []uint8
	switch m := img.(type) {
	case *image.NRGBA:
		pix = m.Pix
	case *image.RGBA:
		pix = m.Pix
	default:
		t.Fatalf("%s: unexpected image type %T", path, img)
	}
	var nonWhite, series int
	for i := 0; i+3 < len(pix); i += 4 {
		r, g, b := pix[i], pix[i+1], pix[i+2]
		if r < 245 || g < 245 || b < 245 {
			nonWhite++
		}
		if near(r, 0x54) && near(g, 0x70) && near(b, 0xc6) {
			series++
		}
	}
	b := img.Bounds()
	share := float64(nonWhite) / float64(b.Dx()*b.Dy())
	// A bare frame with a title is ~1%; lines, markers, grid and labels
	// make 2-10%. All-white or all-dark means a broken render.
	if share < 0.015 || share > 0.5 {
		t.Errorf("%s: %.2f%% of pixels are not white, want 1.5%%..50%%", filepath.Base(path), 100*share)
	}
	if series < 500 {
		t.Errorf("%s: %d pixels of the first series' colour, want >= 500 (no line drawn?)", filepath.Base(path), series)
	}
	return share
}

// near reports whether two colour components differ by less than 12.
func near(x, y uint8) bool { return max(x, y)-min(x, y) < 12 }

func checkFiles(t *testing.T, dir string, charts []report.Chart, res Result) {
	t.Helper()
	var want []string
	for _, c := range charts {
		want = append(want, filepath.Join(dir, c.Name+".png"))
	}
	if !slices.Equal(res.Files, want) {
		t.Errorf("Result.Files = %v, want %v", res.Files, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("%s holds %d entries, want %d (temp files left?)", dir, len(entries), len(want))
	}
}

func TestWriteAllBuiltin(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "plots")
	long := report.Chart{Name: "long", Title: "Many points", XLabel: "x", YLabel: "y"}
	s := report.Series{Name: "sin"}
	for i := range 5000 {
		s.X = append(s.X, float64(i))
		s.Y = append(s.Y, 100*math.Sin(float64(i)/250))
	}
	long.Series = []report.Series{s} // negative values too
	empty := report.Chart{Name: "empty", Title: "Nothing measured", XLabel: "x", YLabel: "y", LogX: true,
		Series: []report.Series{{Name: "none", X: []float64{0, math.Inf(1)}, Y: []float64{1, 2}}}}
	// A log x axis is drawn by TestWriteAllFallsBack.
	charts := []report.Chart{prefillChart(), long, empty}
	res, err := WriteAll(t.Context(), dir, charts, Options{Renderer: RendererBuiltin})
	if err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	if res.Renderer != RendererBuiltin || res.FallbackReason != "" {
		t.Errorf("Result = %q (%q), want %q without a fallback reason", res.Renderer, res.FallbackReason, RendererBuiltin)
	}
	checkFiles(t, dir, charts, res)
	for _, c := range charts[:2] {
		checkPNG(t, filepath.Join(dir, c.Name+".png"))
	}
	// The empty chart still gets an image of the right size.
	f, err := os.Open(filepath.Join(dir, "empty.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width != pngWidthPx || cfg.Height != pngHeightPx {
		t.Errorf("empty.png: %+v, %v; want a %dx%d PNG", cfg, err, pngWidthPx, pngHeightPx)
	}
}

func TestWriteAllFallsBack(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	// A "browser" that exits at once, and one that never answers.
	dead := filepath.Join(bin, "dead-browser")
	hung := filepath.Join(bin, "hung-browser")
	if err := os.WriteFile(dead, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hung, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, browser, reason string
	}{
		{"missing browser", filepath.Join(bin, "no-such-browser"), "no-such-browser"},
		{"browser exits", dead, "start " + dead},
		{"browser hangs", hung, "no answer within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			charts := []report.Chart{stressCharts()[0]} // log x axis
			opts := Options{BrowserPath: tt.browser, SnapshotTimeout: 2 * time.Second}
			start := time.Now()
			res, err := WriteAll(t.Context(), dir, charts, opts)
			if err != nil {
				t.Fatalf("WriteAll(auto): %v", err)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("WriteAll took %v with a %v timeout", took, opts.SnapshotTimeout)
			}
			if res.Renderer != RendererBuiltin || !strings.Contains(res.FallbackReason, tt.reason) {
				t.Errorf("Result = %q, reason %q; want %q with a reason containing %q", res.Renderer, res.FallbackReason, RendererBuiltin, tt.reason)
			}
			checkFiles(t, dir, charts, res)
			checkPNG(t, filepath.Join(dir, charts[0].Name+".png"))

			// Forcing chromium turns the same problem into an error.
			opts.Renderer = RendererChromium
			if _, err := WriteAll(t.Context(), t.TempDir(), charts, opts); err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("WriteAll(chromium) = %v, want an error containing %q", err, tt.reason)
			}
		})
	}
}

func TestWriteAllCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := WriteAll(ctx, t.TempDir(), []report.Chart{prefillChart()}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WriteAll with a canceled context = %v, want context.Canceled", err)
	}
}

func TestWriteAllNoCharts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res, err := WriteAll(t.Context(), dir, nil, Options{})
	if err != nil || res.Renderer != "" || len(res.Files) != 0 {
		t.Errorf("WriteAll(no charts) = %+v, %v; want nothing done", res, err)
	}
}

func TestNiceRange(t *testing.T) {
	t.Parallel()
	// ECharts' choices for a value axis with splitNumber 5 (the HTML chart's).
	tests := []struct {
		lo, hi         float64
		min, max, step float64
	}{
		{0, 97, 0, 100, 20},
		{0, 290.4, 0, 300, 50},
		{0, 5134, 0, 6000, 1000},
		{0, 17900, 0, 18000, 3000},
		{128, 8192, 0, 10000, 2000},
		{0, 1, 0, 1, 0.2},
		{-40, 100, -60, 120, 30},
		{0, 0, 0, 1, 0.2},
		{8, 8, 4, 12, 2},
		{0, 12.5, 0, 15, 3},
		{0, 0.0153, 0, 0.018, 0.003},
	}
	for _, tt := range tests {
		min, max, step := niceRange(tt.lo, tt.hi)
		if math.Abs(min-tt.min) > 1e-9 || math.Abs(max-tt.max) > 1e-9 || math.Abs(step-tt.step) > 1e-12 {
			t.Errorf("niceRange(%v, %v) = %v, %v, %v; want %v, %v, %v", tt.lo, tt.hi, min, max, step, tt.min, tt.max, tt.step)
		}
	}
}

func TestAssetsVersions(t *testing.T) {
	t.Parallel()
	versions, err := os.ReadFile(filepath.Join("assets", "VERSIONS"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^sha256: ([0-9a-f]{64})$`).FindSubmatch(versions)
	if m == nil {
		t.Fatalf("assets/VERSIONS has no sha256 line:\n%s", versions)
	}
	sum := sha256.Sum256([]byte(echartsJS))
	if got := hex.EncodeToString(sum[:]); got != string(m[1]) {
		t.Errorf("embedded echarts.min.js sha256 = %s, VERSIONS says %s", got, m[1])
	}
	if !strings.Contains(string(versions), "version: 5.6.0") || !strings.Contains(echartsJS, `version="5.6.0"`) {
		t.Errorf("VERSIONS and the embedded library should both be ECharts 5.6.0")
	}
}

// browserForTest returns the browser to test with. In CI (CI=true) a
// browser must be installed: the Chromium path is part of the product.
func browserForTest(t *testing.T) string {
	t.Helper()
	path, err := FindBrowser("")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no browser: %v (install chromium)", err)
		}
		t.Skipf("no browser installed: %v", err)
	}
	return path
}

func TestWriteAllChromium(t *testing.T) {
	t.Parallel()
	browserForTest(t)
	dir := filepath.Join(t.TempDir(), "plots")
	charts := stressCharts()
	start := time.Now()
	res, err := WriteAll(t.Context(), dir, charts, Options{Renderer: RendererChromium})
	if err != nil {
		t.Fatalf("WriteAll(chromium): %v", err)
	}
	t.Logf("WriteAll: %d charts with chromium in %v", len(charts), time.Since(start))
	if res.Renderer != RendererChromium || res.FallbackReason != "" {
		t.Errorf("Result = %q (%q), want %q", res.Renderer, res.FallbackReason, RendererChromium)
	}
	checkFiles(t, dir, charts, res)
	for _, c := range charts {
		checkPNG(t, filepath.Join(dir, c.Name+".png"))
	}
}

// TestChromiumPage checks, in a real browser, what a PNG cannot show: the
// log2 axis and the tooltip text.
func TestChromiumPage(t *testing.T) {
	t.Parallel()
	path := browserForTest(t)
	dir := t.TempDir()
	c := stressCharts()[0]
	c.Series[0].Name = "<b>Input</b>"
	if err := os.WriteFile(filepath.Join(dir, EChartsFile), []byte(echartsJS), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, c.Name+".html"), renderHTML(t, c), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := startBrowser(t.Context(), path, DefaultSnapshotTimeout, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := chromedp.Do(b.ctx, chromedp.Navigate("file://"+filepath.Join(dir, c.Name+".html"))); err != nil {
		t.Fatal(err)
	}
	js := `(function () {
		var o = echarts.getInstanceByDom(document.getElementById("` + chartID(c.Name) + `")).getOption();
		return [String(o.xAxis[0].type), String(o.xAxis[0].logBase),
			o.tooltip[0].formatter({marker: "", seriesName: o.series[0].name, value: [8, 6000.123456789]})];
	})()`
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	want := []string{"log", "2", "&lt;b&gt;Input&lt;/b&gt;<br>Concurrency: 8<br>Throughput (tok/s): 6000.12"}
	if !slices.Equal(got, want) {
		t.Errorf("page state = %q, want %q", got, want)
	}
}

func TestYNameGap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lo, hi float64
		widest string // the widest tick label
	}{
		{0, 0.0153, "0.018"},
		{0, 290, "300"},
		{0, 17900, "18,000"},
		{-12.5, 20, "-15"},
		{0, 12.5, "15"},
	}
	for _, tt := range tests {
		if got, want := yNameGap(tt.lo, tt.hi), 16+7*(len(tt.widest)+1); got != want {
			t.Errorf("yNameGap(%v, %v) = %d, want %d (room for %q)", tt.lo, tt.hi, got, want, tt.widest)
		}
	}
}
