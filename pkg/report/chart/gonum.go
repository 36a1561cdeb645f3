package chart

import (
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// The gonum drawing is 10×6 inches at 200 dpi: 2000×1200 pixels, the size
// of a Chromium snapshot. Font sizes are in points (1/72 inch) and match
// the HTML chart's pixel sizes at that scale (1 px = 0.72 pt).
const (
	gonumDPI       = 200
	gonumWidth     = 10 * vg.Inch
	gonumHeight    = 6 * vg.Inch
	titleFontPt    = 14.4
	labelFontPt    = 9.4
	tickFontPt     = 8.6
	legendFontPt   = 8.6
	lineWidthPt    = 1.5
	markerRadiusPt = 3
)

// Fonts and colours of the gonum drawing, close to ECharts' defaults.
var (
	sans       = font.Font{Typeface: "Liberation", Variant: "Sans"}
	boldSans   = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
	textColor  = color.RGBA{R: 0x46, G: 0x46, B: 0x46, A: 0xff}
	labelColor = color.RGBA{R: 0x6e, G: 0x70, B: 0x79, A: 0xff}
	axisColor  = color.RGBA{R: 0x6e, G: 0x70, B: 0x79, A: 0xff}
	gridColor  = color.RGBA{R: 0xe0, G: 0xe6, B: 0xf1, A: 0xff}
)

// writePNG draws c with gonum/plot and writes it as PNG.
func writePNG(w io.Writer, c report.Chart) error {
	p, err := newPlot(c)
	if err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	canvas := vgimg.NewWith(vgimg.UseWH(gonumWidth, gonumHeight), vgimg.UseDPI(gonumDPI))
	// gonum draws up to the image's edges: keep a margin, as ECharts does.
	p.Draw(draw.Crop(draw.New(canvas), vg.Points(12), -vg.Points(24), vg.Points(8), -vg.Points(12)))
	// Fast compression: the default level takes twice as long for files
	// only ~20% smaller.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(w, canvas.Image()); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	return nil
}

// newPlot builds the gonum plot for c, styled like the HTML chart.
func newPlot(c report.Chart) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font = font.From(boldSans, titleFontPt)
	p.Title.TextStyle.Color = textColor
	p.Title.Padding = vg.Points(16)
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, labelFontPt)
		a.Label.TextStyle.Color = labelColor
		a.Label.Padding = vg.Points(8)
		a.Tick.Label.Font = font.From(sans, tickFontPt)
		a.Tick.Label.Color = labelColor
		a.Tick.Color = axisColor
		a.Color = axisColor
		a.Padding = 0
	}
	p.Legend.TextStyle.Font = font.From(sans, legendFontPt)
	p.Legend.Padding = vg.Points(3)
	p.Legend.ThumbnailWidth = vg.Points(28)
	p.Legend.Top = true
	grid := plotter.NewGrid()
	grid.Vertical.Color = gridColor
	grid.Horizontal.Color = gridColor
	p.Add(grid)

	var all []point
	for i, s := range c.Series {
		pts := points(s, c.LogX)
		all = append(all, pts...)
		xys := make(plotter.XYs, len(pts))
		for j, pt := range pts {
			xys[j] = plotter.XY{X: pt.x, Y: pt.y}
		}
		line, marks, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		col := seriesColor(i)
		line.Color = col
		line.Width = vg.Points(lineWidthPt)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		}
		marks.Color = col
		marks.Radius = vg.Points(markerRadiusPt)
		marks.Shape = glyphs[i%len(glyphs)]
		if len(pts) > 0 {
			p.Add(line, marks)
		}
		p.Legend.Add(s.Name, line, marks)
	}

	setRanges(p, c.LogX, all)
	if c.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.TickerFunc(log2Ticks)
	} else {
		p.X.Tick.Marker = plot.TickerFunc(niceTicks)
	}
	p.Y.Tick.Marker = plot.TickerFunc(niceTicks)
	p.Legend.Left = legendLeft(p, c.LogX, all)
	p.Legend.XOffs = vg.Points(-8)
	if p.Legend.Left {
		p.Legend.XOffs = vg.Points(8)
	}
	p.Legend.YOffs = vg.Points(-6)
	return p, nil
}

// glyphs are the gonum shapes of the HTML chart's symbols: circle, rect,
// triangle, diamond.
var glyphs = [...]draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, diamondGlyph{}}

// diamondGlyph draws a filled diamond (gonum has none).
type diamondGlyph struct{}

// DrawGlyph implements draw.GlyphDrawer.
func (diamondGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	r := sty.Radius * 1.2
	var path vg.Path
	path.Move(vg.Point{X: pt.X, Y: pt.Y + r})
	path.Line(vg.Point{X: pt.X + r, Y: pt.Y})
	path.Line(vg.Point{X: pt.X, Y: pt.Y - r})
	path.Line(vg.Point{X: pt.X - r, Y: pt.Y})
	path.Close()
	c.SetColor(sty.Color)
	c.Fill(path)
}

// seriesColor returns palette colour i (cycling).
func seriesColor(i int) color.Color {
	var r, g, b uint8
	// The palette holds valid "#rrggbb" strings, so this cannot fail.
	_, _ = fmt.Sscanf(palette[i%len(palette)], "#%02x%02x%02x", &r, &g, &b)
	return color.RGBA{R: r, G: g, B: b, A: 255}
}

// setRanges sets the axes' ranges like the HTML chart's: y from 0 (or
// below the lowest negative value) up to a round number above the highest
// value; a linear x over the data, widened to round numbers; a log x over
// the data with a small margin.
func setRanges(p *plot.Plot, logX bool, pts []point) {
	if len(pts) == 0 {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		if logX {
			p.X.Min, p.X.Max = 1, 2
		}
		return
	}
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := 0.0, 0.0
	for _, pt := range pts {
		xlo, xhi = math.Min(xlo, pt.x), math.Max(xhi, pt.x)
		ylo, yhi = math.Min(ylo, pt.y), math.Max(yhi, pt.y)
	}
	if logX {
		p.X.Min, p.X.Max = xlo/1.12, xhi*1.12
	} else {
		p.X.Min, p.X.Max, _ = niceRange(xlo, xhi)
	}
	p.Y.Min, p.Y.Max, _ = niceRange(ylo, yhi)
}

// niceRange widens [lo, hi] to multiples of a round step (1, 2, 2.5 or 5
// times a power of ten) that splits it in about five, as ECharts does.
func niceRange(lo, hi float64) (min, max, step float64) {
	if hi <= lo {
		pad := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step, step
}

// niceTicks labels every step of niceRange(lo, hi) within [lo, hi].
func niceTicks(lo, hi float64) []plot.Tick {
	_, _, step := niceRange(lo, hi)
	var ticks []plot.Tick
	for i := math.Ceil(lo/step - 1e-9); i*step <= hi+step*1e-9; i++ {
		v := i * step
		if math.Abs(v) < step*1e-9 {
			v = 0 // no "-0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v)})
	}
	return ticks
}

// legendLeft reports whether the legend goes in the top-left corner: it
// goes in whichever top corner covers fewer points.
func legendLeft(p *plot.Plot, logX bool, pts []point) bool {
	left, right := 0, 0
	for _, pt := range pts {
		x := (pt.x - p.X.Min) / (p.X.Max - p.X.Min)
		if logX {
			x = math.Log(pt.x/p.X.Min) / math.Log(p.X.Max/p.X.Min)
		}
		y := (pt.y - p.Y.Min) / (p.Y.Max - p.Y.Min)
		switch {
		case y < 0.7:
		case x < 0.4:
			left++
		case x > 0.6:
			right++
		}
	}
	return left < right
}

// log2Ticks puts labelled ticks at the powers of two in [lo, hi] (every
// second or fourth one when there are many).
func log2Ticks(lo, hi float64) []plot.Tick {
	first, last := int(math.Ceil(math.Log2(lo))), int(math.Floor(math.Log2(hi)))
	step := 1
	for (last-first)/step > 12 {
		step *= 2
	}
	var ticks []plot.Tick
	for e := first; e <= last; e++ {
		v := math.Exp2(float64(e))
		label := ""
		if (e-first)%step == 0 {
			label = tickLabel(v)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	if len(ticks) < 2 { // less than a doubling: fall back to plain ticks
		return niceTicks(lo, hi)
	}
	return ticks
}

// tickLabel formats an axis value: integers with thousands separators as
// ECharts does ("12,000"), others with at most 6 significant digits.
func tickLabel(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		s := groupThousands(strconv.FormatInt(int64(math.Abs(v)), 10))
		if v < 0 {
			s = "-" + s
		}
		return s
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
