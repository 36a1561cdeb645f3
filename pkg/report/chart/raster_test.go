package chart

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// drawBuiltin renders c with the built-in renderer. Encoding and decoding
// the PNG, which TestBuiltinDrawsEveryPart checks, would double the time
// of each test under the race detector.
func drawBuiltin(t *testing.T, p *painter, c report.Chart) *image.RGBA {
	t.Helper()
	img := p.draw(c)
	if got, want := img.Bounds(), image.Rect(0, 0, pngWidthPx, pngHeightPx); got != want {
		t.Fatalf("%s is %v, want %v (the Chromium snapshot's size)", c.Name, got, want)
	}
	return img
}

// drawPNG renders c with the built-in renderer, encodes it, and returns
// the decoded PNG: what a reader of plots/<Name>.png gets.
func drawPNG(t *testing.T, p *painter, c report.Chart) *image.RGBA {
	t.Helper()
	var b bytes.Buffer
	if err := p.writePNG(&b, c); err != nil {
		t.Fatalf("writePNG(%s): %v", c.Name, err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("%s: the PNG does not decode: %v", c.Name, err)
	}
	if got, want := img.Bounds(), image.Rect(0, 0, pngWidthPx, pngHeightPx); got != want {
		t.Fatalf("%s is %v, want %v (the Chromium snapshot's size)", c.Name, got, want)
	}
	// The encoder writes an opaque RGBA image as 8-bit RGB, which decodes
	// as *image.RGBA.
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("%s decodes as %T, want *image.RGBA", c.Name, img)
	}
	return m
}

func newTestPainter(t *testing.T) *painter {
	t.Helper()
	p, err := newPainter()
	if err != nil {
		t.Fatalf("newPainter: %v", err)
	}
	return p
}

// count counts the pixels of img inside r for which match is true.
func count(img *image.RGBA, r image.Rectangle, match func(color.RGBA) bool) int {
	n := 0
	r = r.Intersect(img.Bounds())
	// Straight from Pix: RGBAAt per pixel is slow under the race detector.
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[img.PixOffset(r.Min.X, y):img.PixOffset(r.Max.X, y)]
		for i := 0; i < len(row); i += 4 {
			if match(color.RGBA{R: row[i], G: row[i+1], B: row[i+2], A: row[i+3]}) {
				n++
			}
		}
	}
	return n
}

func isColor(want color.RGBA) func(color.RGBA) bool {
	return func(c color.RGBA) bool { return near(c.R, want.R) && near(c.G, want.G) && near(c.B, want.B) }
}

// dark matches text and axis pixels: clearly darker than the grid lines
// (#e0e6f1) and the background.
func dark(c color.RGBA) bool { return c.R < 160 && c.G < 160 && c.B < 160 }

func notWhite(c color.RGBA) bool { return c.R < 250 || c.G < 250 || c.B < 250 }

// Regions of the 2000×1200 image, from html.go's layout.
var (
	titleArea  = image.Rect(0, 0, pngWidthPx, px2(legendTop))
	legendArea = image.Rect(0, px2(legendTop), pngWidthPx, px2(gridTop))
	plotArea   = image.Rect(px2(gridLeft+90), px2(gridTop), pngWidthPx-px2(gridRight), pngHeightPx-px2(gridBot))
)

func px2(css int) int { return css * pixelRatio }

func TestBuiltinDrawsEveryPart(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	// A log x axis, a linear one, and a chart with a NaN point; the first
	// through PNG encoding and decoding (slow under the race detector).
	for i, c := range []report.Chart{stressCharts()[0], stressCharts()[2], prefillChart()} {
		draw := drawBuiltin
		if i == 0 {
			draw = drawPNG
		}
		img := draw(t, p, c)
		if n := count(img, titleArea, dark); n < 2000 {
			t.Errorf("%s: %d dark pixels in the title area, want >= 2000 (no title?)", c.Name, n)
		}
		if n := count(img, legendArea, dark); n < 300 {
			t.Errorf("%s: %d dark pixels in the legend area, want >= 300 (no legend text?)", c.Name, n)
		}
		for i := range c.Series {
			col := seriesColor(i)
			if n := count(img, plotArea, isColor(col)); n < 1000 {
				t.Errorf("%s: %d pixels of series %d's colour %v in the plot, want >= 1000", c.Name, n, i, col)
			}
			if n := count(img, legendArea, isColor(col)); n < 100 {
				t.Errorf("%s: %d pixels of series %d's colour in the legend, want >= 100", c.Name, n, i)
			}
		}
		if n := count(img, plotArea, isColor(gridColor)); n < 10000 {
			t.Errorf("%s: %d grid-line pixels in the plot, want >= 10000", c.Name, n)
		}
		// Tick labels left of the plot and under it, axis names beyond them.
		left := image.Rect(0, px2(gridTop), px2(gridLeft+60), pngHeightPx-px2(gridBot))
		under := image.Rect(0, pngHeightPx-px2(gridBot)+2, pngWidthPx, pngHeightPx)
		if n := count(img, left, dark); n < 1000 {
			t.Errorf("%s: %d dark pixels left of the plot, want >= 1000 (no y labels?)", c.Name, n)
		}
		if n := count(img, under, dark); n < 1000 {
			t.Errorf("%s: %d dark pixels under the plot, want >= 1000 (no x labels?)", c.Name, n)
		}
	}
}

// TestBuiltinDrawsWhereTheDataAre checks the mapping from data to pixels:
// a single point at a known place gets its marker there.
func TestBuiltinDrawsWhereTheDataAre(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	// x 0..10 and y 0..10 both span the nice range [0, 10]: the point (10,
	// 10) is the plot's top-right corner, (0, 0) its bottom-left.
	c := report.Chart{Name: "corners", Title: "Corners", XLabel: "x", YLabel: "y", Series: []report.Series{
		{Name: "a", X: []float64{10}, Y: []float64{10}},
		{Name: "b", X: []float64{0}, Y: []float64{0}},
	}}
	img := drawBuiltin(t, p, c)
	right, top := pngWidthPx-px2(gridRight), px2(gridTop)
	corner := image.Rect(right-6, top-6, right+6, top+6)
	if n := count(img, corner, isColor(seriesColor(0))); n < 60 {
		t.Errorf("%d pixels of series a's colour at the top-right corner %v, want its marker (>= 60)", n, corner)
	}
	if n := count(img, image.Rect(0, top+px2(20), pngWidthPx, pngHeightPx), isColor(seriesColor(0))); n != 0 {
		t.Errorf("%d pixels of series a's colour below the top of the plot, want none", n)
	}
	bottom := pngHeightPx - px2(gridBot)
	if n := count(img, image.Rect(0, bottom-8, pngWidthPx/2, bottom+8), isColor(seriesColor(1))); n < 60 {
		t.Errorf("%d pixels of series b's colour at the bottom-left corner, want its marker (>= 60)", n)
	}
}

// TestBuiltinSkipsNaN: a series whose points are all non-finite draws
// nothing in the plot, and a NaN point in a line is left out, not drawn
// at 0 or at the edge.
func TestBuiltinSkipsNaN(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	nan, inf := math.NaN(), math.Inf(1)
	c := report.Chart{Name: "nan", Title: "NaN", XLabel: "x", YLabel: "y", Series: []report.Series{
		{Name: "ok", X: []float64{1, 2, 3}, Y: []float64{45, nan, 45}},
		{Name: "none", X: []float64{1, inf}, Y: []float64{nan, 5}},
	}}
	img := drawBuiltin(t, p, c)
	if n := count(img, plotArea, isColor(seriesColor(1))); n != 0 {
		t.Errorf("%d pixels of the all-NaN series' colour in the plot, want 0", n)
	}
	// The line is flat at y = 45. Nothing of it may reach the bottom half.
	top, bottom := px2(gridTop), pngHeightPx-px2(gridBot)
	y45 := top + int((1-linearScale(0, 45).frac(45))*float64(bottom-top))
	if n := count(img, image.Rect(0, y45-10, pngWidthPx, y45+10), isColor(seriesColor(0))); n < 1000 {
		t.Errorf("%d pixels of the line at y = 45 (row %d), want >= 1000", n, y45)
	}
	if n := count(img, image.Rect(0, (top+bottom)/2, pngWidthPx, bottom+10), isColor(seriesColor(0))); n != 0 {
		t.Errorf("%d pixels of the line in the bottom half, want 0 (the NaN point was drawn)", n)
	}
}

// TestBuiltinEdgeCases draws what must not break: no series, a series
// without points, one point, a log axis with one level, many points,
// negative values, long names.
func TestBuiltinEdgeCases(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	long := report.Series{Name: "sin"}
	for i := range 5000 {
		long.X = append(long.X, float64(i))
		long.Y = append(long.Y, 100*math.Sin(float64(i)/250))
	}
	name := "a very long series name that goes on and on " + string(bytes.Repeat([]byte("and on "), 40))
	tests := []struct {
		chart report.Chart
		ink   bool // whether a series must show in the plot
	}{
		{report.Chart{Name: "no_series", Title: "Nothing", XLabel: "x", YLabel: "y"}, false},
		{report.Chart{Name: "empty", Title: "Nothing measured", XLabel: "x", YLabel: "y", LogX: true,
			Series: []report.Series{{Name: "none"}}}, false},
		{report.Chart{Name: "one_point", Title: "One", XLabel: "x", YLabel: "y",
			Series: []report.Series{{Name: "one", X: []float64{3}, Y: []float64{7}, Labels: []string{"c=3"}}}}, true},
		{report.Chart{Name: "one_level", Title: "One level", XLabel: "Concurrency", YLabel: "y", LogX: true,
			Series: []report.Series{{Name: "one", X: []float64{8}, Y: []float64{7}}}}, true},
		{report.Chart{Name: "long", Title: "Many points", XLabel: "x", YLabel: "y", Series: []report.Series{long}}, true},
		{report.Chart{Name: "names", Title: name, XLabel: name, YLabel: name,
			Series: []report.Series{{Name: name, X: []float64{1, 2}, Y: []float64{1, 2}}, {Name: name, X: []float64{1, 2}, Y: []float64{2, 1}}}}, true},
	}
	for _, tt := range tests {
		img := drawBuiltin(t, p, tt.chart)
		if n := count(img, titleArea, dark); n < 500 {
			t.Errorf("%s: %d dark pixels in the title area, want a title", tt.chart.Name, n)
		}
		if n := count(img, plotArea, isColor(seriesColor(0))); tt.ink != (n > 50) {
			t.Errorf("%s: %d pixels of the first series' colour in the plot; want some = %v", tt.chart.Name, n, tt.ink)
		}
		// Long names are cut to fit: nothing touches the image's edges.
		edges := []image.Rectangle{image.Rect(0, 0, 4, pngHeightPx), image.Rect(pngWidthPx-4, 0, pngWidthPx, pngHeightPx)}
		for _, e := range edges {
			if n := count(img, e, notWhite); n != 0 {
				t.Errorf("%s: %d drawn pixels on the image's edge %v", tt.chart.Name, n, e)
			}
		}
	}
}

// TestPlaceLabel: labels stay inside the image and off each other, and
// one that fits nowhere is left out.
func TestPlaceLabel(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	frame := box{0, 0, pngWidthPx, pngHeightPx}
	var placed []box
	// Points in a corner, on an edge, and a crowd at one place.
	for _, v := range []vec{{2, 2}, {pngWidthPx - 1, pngHeightPx - 1}, {1000, 0}, {500, 500}, {500, 500}, {500, 500}, {500, 500}, {500, 500}} {
		b, ok := p.placeLabel("c=128", v, frame, placed)
		if !ok {
			continue
		}
		if !b.inside(frame) {
			t.Errorf("label for %v placed at %v, outside the image", v, b)
		}
		for _, o := range placed {
			if b.overlaps(o) {
				t.Errorf("label for %v at %v overlaps the label at %v", v, b, o)
			}
		}
		placed = append(placed, b)
	}
	// Four sides of the crowded point, plus the three others.
	if len(placed) != 7 {
		t.Errorf("placed %d labels, want 7 (3 lone points + 4 sides of the crowded one)", len(placed))
	}
}

// TestBuiltinLabels: the stress charts' level labels are drawn near their
// points (the gonum fallback had none).
func TestBuiltinLabels(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	base := report.Chart{Name: "labels", Title: "Labels", XLabel: "x", YLabel: "y", Series: []report.Series{
		{Name: "P50", X: []float64{100, 300, 500}, Y: []float64{10, 30, 50}},
	}}
	labelled := base
	labelled.Series = []report.Series{base.Series[0]}
	labelled.Series[0].Labels = []string{"c=1", "c=2", "c=4"}
	without := count(drawBuiltin(t, p, base), plotArea, dark)
	with := count(drawBuiltin(t, p, labelled), plotArea, dark)
	if with-without < 100 {
		t.Errorf("labels added %d dark pixels to the plot, want >= 100", with-without)
	}
}

func TestLinearScale(t *testing.T) {
	t.Parallel()
	labels := func(s scale) []string {
		var out []string
		for _, tk := range s.ticks {
			out = append(out, tk.label)
		}
		return out
	}
	tests := []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"0..97", 0, 97, []string{"0", "20", "40", "60", "80", "100"}},
		{"thousands", 0, 17900, []string{"0", "3,000", "6,000", "9,000", "12,000", "15,000", "18,000"}},
		{"fractions", 0, 1, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
		{"small", 0, 0.0153, []string{"0", "0.003", "0.006", "0.009", "0.012", "0.015", "0.018"}},
		{"negative", -40, 100, []string{"-60", "-30", "0", "30", "60", "90", "120"}},
		{"one value", 8, 8, []string{"4", "6", "8", "10", "12"}},
		{"zero", 0, 0, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
	}
	for _, tt := range tests {
		s := linearScale(tt.lo, tt.hi)
		if got := labels(s); !slices.Equal(got, tt.want) {
			t.Errorf("%s: linearScale(%v, %v) ticks = %q, want %q", tt.name, tt.lo, tt.hi, got, tt.want)
		}
		if s.lo > tt.lo || s.hi < tt.hi || s.ticks[0].v != s.lo || s.ticks[len(s.ticks)-1].v != s.hi {
			t.Errorf("%s: linearScale(%v, %v) spans [%v, %v] with ticks from %v to %v: want the data inside and ticks at both ends",
				tt.name, tt.lo, tt.hi, s.lo, s.hi, s.ticks[0].v, s.ticks[len(s.ticks)-1].v)
		}
		if f := s.frac(s.lo); f != 0 {
			t.Errorf("%s: frac(lo) = %v, want 0", tt.name, f)
		}
		if f := s.frac(s.hi); math.Abs(f-1) > 1e-12 {
			t.Errorf("%s: frac(hi) = %v, want 1", tt.name, f)
		}
	}
}

func TestLog2Scale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"levels", 1, 64, []string{"1", "2", "4", "8", "16", "32", "64"}},
		{"between powers", 3, 40, []string{"2", "4", "8", "16", "32", "64"}},
		{"rates", 0.25, 4, []string{"0.25", "0.5", "1", "2", "4"}},
		{"one level", 8, 8, []string{"4", "8", "16"}},
		{"many", 1, 1 << 20, []string{"1", "16", "256", "4,096", "65,536", "1,048,576"}},
		{"ten doublings", 1, 1024, []string{"1", "4", "16", "64", "256", "1,024"}},
	}
	for _, tt := range tests {
		s := log2Scale(tt.lo, tt.hi)
		var got []string
		for _, tk := range s.ticks {
			got = append(got, tk.label)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: log2Scale(%v, %v) ticks = %q, want %q", tt.name, tt.lo, tt.hi, got, tt.want)
		}
		if !s.log || s.lo > tt.lo || s.hi < tt.hi {
			t.Errorf("%s: log2Scale(%v, %v) spans [%v, %v] (log %v), want a log axis around the data", tt.name, tt.lo, tt.hi, s.lo, s.hi, s.log)
		}
		// Powers of two are evenly spaced on a log2 axis.
		if len(s.ticks) >= 3 {
			d1 := s.frac(s.ticks[1].v) - s.frac(s.ticks[0].v)
			d2 := s.frac(s.ticks[2].v) - s.frac(s.ticks[1].v)
			if math.Abs(d1-d2) > 1e-9 {
				t.Errorf("%s: ticks at fractions %v apart, then %v: not evenly spaced", tt.name, d1, d2)
			}
		}
	}
}

func TestStroke(t *testing.T) {
	t.Parallel()
	line := []vec{{0, 0}, {100, 0}, {100, 100}}
	solid := stroke(line, 4, nil)
	// Two rectangles and the round join where they meet.
	if len(solid) != 3 {
		t.Errorf("solid stroke of 2 segments = %d polygons, want 3", len(solid))
	}
	// 200 px of line, 8 on and 4 off: 200/12 dashes, one more where a dash
	// is cut by the bend.
	dashed := stroke(line, 4, []float64{8, 4})
	dashes := 0
	for _, p := range dashed {
		if len(p) == 4 {
			dashes++
		}
	}
	if dashes < 16 || dashes > 19 {
		t.Errorf("dashed stroke of 200 px with 8/4 dashes = %d rectangles, want 16..19", dashes)
	}
	if got := stroke([]vec{{5, 5}}, 4, nil); len(got) != 0 {
		t.Errorf("stroke of one point = %d polygons, want none (its marker shows it)", len(got))
	}
}

func TestFitText(t *testing.T) {
	t.Parallel()
	p := newTestPainter(t)
	if got := fitText(p.text, "P50", 1000); got != "P50" {
		t.Errorf("fitText(short) = %q, want it unchanged", got)
	}
	long := "a rather long axis name (tokens per second per user)"
	got := fitText(p.text, long, 200)
	if w := textWidth(p.text, got); w > 200 || len(got) >= len(long) || got[len(got)-len("…"):] != "…" {
		t.Errorf("fitText(long, 200) = %q (%.0f px wide), want a cut ending in … at most 200 px wide", got, w)
	}
}

// BenchmarkBuiltin draws and encodes the seven stress charts with the
// built-in renderer, as WriteAll does after a stress run without Chromium.
func BenchmarkBuiltin(b *testing.B) {
	p, err := newPainter()
	if err != nil {
		b.Fatal(err)
	}
	charts := stressCharts()
	for b.Loop() {
		for _, c := range charts {
			if err := p.writePNG(io.Discard, c); err != nil {
				b.Fatal(err)
			}
		}
	}
}
