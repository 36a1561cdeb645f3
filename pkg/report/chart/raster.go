package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// The built-in renderer draws a chart the way the HTML chart looks once
// ECharts has drawn it: the same 1000×600 layout (html.go's constants) at
// pixelRatio 2, the same palette, symbols, line widths, dash pattern,
// colours and font sizes (ECharts 5 defaults). Sizes below are in CSS
// pixels; px converts them to image pixels.
const (
	titleFontPx = 20 // bold, like the HTML title
	// titleMiddlePx and legendMiddlePx are where ECharts centres the title
	// and the first legend row (measured on its snapshots; html.go's
	// titleTop and legendTop are the tops of their boxes, padding included).
	titleMiddlePx  = 20
	legendMiddlePx = 60
	textFontPx     = 12 // legend, ticks, axis names and point labels
	lineWidthPx    = 2
	symbolPx       = 8 // marker width and height
	tickMarginPx   = 8 // between an axis and its tick labels
	tickLenPx      = 5
	xNameGapPx     = 34 // from the x axis to the middle of its name
	yNameSpacePx   = 10 // between the widest y tick label and the y axis name
	labelGapPx     = 5  // between a point's marker and its label
	legendIconWPx  = 25
	legendIconHPx  = 14
	legendSymbolPx = 14 // the series' marker in its legend icon, as high as the icon
	legendGapPx    = 10 // between legend items, and between legend rows
	legendTextPx   = 5  // between a legend icon and its text
	legendRightPx  = 20 // a legend row never comes closer to the edges
	dashOnPx       = 4 * lineWidthPx
	dashOffPx      = 2 * lineWidthPx
	// maxMarkerDensity: a series with more points than the plot is wide in
	// markers is drawn as a line alone, since its markers would merge into
	// a band.
	maxMarkerDensity = 1.0
)

// px converts CSS pixels to image pixels.
func px(css float64) float64 { return css * pixelRatio }

// Colours of ECharts 5's default theme.
var (
	titleColor  = color.RGBA{R: 0x46, G: 0x46, B: 0x46, A: 0xff}
	legendColor = color.RGBA{R: 0x33, G: 0x33, B: 0x33, A: 0xff}
	axisColor   = color.RGBA{R: 0x6e, G: 0x70, B: 0x79, A: 0xff}
	gridColor   = color.RGBA{R: 0xe0, G: 0xe6, B: 0xf1, A: 0xff}
	noteColor   = color.RGBA{R: 0xaa, G: 0xaa, B: 0xaa, A: 0xff}
)

// painter draws charts as PNG in pure Go: vector shapes through
// golang.org/x/image/vector, text in the Go fonts (regular and bold). It
// is made once per WriteAll and is not safe for concurrent use (font faces
// cache glyphs).
type painter struct {
	title, text face
	z           vector.Rasterizer
}

// face is a font at one size. Text is placed by its em box, size high, as
// a canvas places it: centred on the em box's middle.
type face struct {
	font.Face
	size float64 // in image pixels
}

// newPainter parses the two fonts and makes the faces at their sizes.
func newPainter() (*painter, error) {
	newFace := func(ttf []byte, sizePx float64) (face, error) {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return face{}, fmt.Errorf("parse the Go font: %w", err)
		}
		// At 72 DPI a point is a pixel, so Size is in image pixels.
		ff, err := opentype.NewFace(f, &opentype.FaceOptions{Size: sizePx, DPI: 72, Hinting: font.HintingNone})
		if err != nil {
			return face{}, fmt.Errorf("load the Go font: %w", err)
		}
		return face{Face: ff, size: sizePx}, nil
	}
	title, err := newFace(gobold.TTF, px(titleFontPx))
	if err != nil {
		return nil, err
	}
	text, err := newFace(goregular.TTF, px(textFontPx))
	if err != nil {
		return nil, err
	}
	return &painter{title: title, text: text}, nil
}

// writePNG draws c and writes it as a 2000×1200 PNG.
func (p *painter) writePNG(w io.Writer, c report.Chart) error {
	img := p.draw(c)
	// Fast compression: the default level takes about twice as long for
	// files a fifth smaller.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("chart %s: encode png: %w", c.Name, err)
	}
	return nil
}

// vec is a point in image pixels, y down.
type vec struct{ x, y float64 }

// box is a rectangle in image pixels: [x0, x1) × [y0, y1).
type box struct{ x0, y0, x1, y1 float64 }

func (b box) overlaps(o box) bool {
	return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1
}

func (b box) shift(dx, dy float64) box { return box{b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy} }

func (b box) inside(o box) bool {
	return b.x0 >= o.x0 && b.x1 <= o.x1 && b.y0 >= o.y0 && b.y1 <= o.y1
}

// plotted is one series ready to draw.
type plotted struct {
	name   string
	color  color.RGBA
	symbol string
	dashed bool
	pts    []point
}

// draw renders c into a new image.
func (p *painter) draw(c report.Chart) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, pngWidthPx, pngHeightPx))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	series := make([]plotted, len(c.Series))
	var all []point
	for i, s := range c.Series {
		series[i] = plotted{name: s.Name, color: seriesColor(i), symbol: symbols[i%len(symbols)], dashed: s.Dashed, pts: points(s, c.LogX)}
		all = append(all, series[i].pts...)
	}
	xs, ys := axes(c.LogX, all)

	// Title, then the legend under it; the plot starts below both.
	titleText := fitText(p.title, c.Title, pngWidthPx-px(2*legendRightPx))
	p.text1(img, p.title, titleColor, titleText, pngWidthPx/2, px(titleMiddlePx), alignCenter, alignMiddle)
	legendBottom := p.legend(img, series)

	// The y axis sits right of its rotated name and its widest tick label.
	widest := 0.0
	for _, t := range ys.ticks {
		widest = max(widest, textWidth(p.text, t.label))
	}
	plot := box{
		x0: px(gridLeft) + p.text.size/2 + px(yNameSpacePx) + widest + px(tickMarginPx),
		y0: max(px(gridTop), legendBottom+px(2*legendGapPx)),
		x1: pngWidthPx - px(gridRight),
		y1: pngHeightPx - px(gridBot),
	}
	toX := func(v float64) float64 { return plot.x0 + xs.frac(v)*(plot.x1-plot.x0) }
	toY := func(v float64) float64 { return plot.y1 - ys.frac(v)*(plot.y1-plot.y0) }
	// Like ECharts, each axis line crosses the other axis at its zero when
	// that is in range, else runs along the plot's edge; ticks and their
	// labels go beside the line.
	axisY, axisX := plot.y1, plot.x0
	if ys.lo < 0 && ys.hi > 0 {
		axisY = toY(0)
	}
	if !xs.log && xs.lo < 0 && xs.hi > 0 {
		axisX = toX(0)
	}

	// Grid lines at every tick, then the axis lines, tick marks and labels.
	thin := px(0.5)
	for _, t := range xs.ticks {
		fillRect(img, gridColor, box{toX(t.v) - thin, plot.y0, toX(t.v) + thin, plot.y1})
	}
	for _, t := range ys.ticks {
		fillRect(img, gridColor, box{plot.x0, toY(t.v) - thin, plot.x1, toY(t.v) + thin})
	}
	fillRect(img, axisColor, box{plot.x0, axisY - thin, plot.x1, axisY + thin})
	fillRect(img, axisColor, box{axisX - thin, plot.y0, axisX + thin, plot.y1})
	for _, t := range xs.ticks {
		x := toX(t.v)
		fillRect(img, axisColor, box{x - thin, axisY, x + thin, axisY + px(tickLenPx)})
		p.text1(img, p.text, axisColor, t.label, x, axisY+px(tickMarginPx), alignCenter, alignTop)
	}
	for _, t := range ys.ticks {
		y := toY(t.v)
		fillRect(img, axisColor, box{axisX - px(tickLenPx), y - thin, axisX, y + thin})
		p.text1(img, p.text, axisColor, t.label, axisX-px(tickMarginPx), y, alignRight, alignMiddle)
	}
	xName := fitText(p.text, c.XLabel, plot.x1-plot.x0)
	p.text1(img, p.text, axisColor, xName, (plot.x0+plot.x1)/2, plot.y1+px(xNameGapPx), alignCenter, alignMiddle)
	yName := fitText(p.text, c.YLabel, plot.y1-plot.y0)
	p.textUp(img, axisColor, yName, px(gridLeft), (plot.y0+plot.y1)/2)
	if len(all) == 0 {
		p.text1(img, p.text, noteColor, "no data", (plot.x0+plot.x1)/2, (plot.y0+plot.y1)/2, alignCenter, alignMiddle)
	}

	// Series: each line, then its markers over it.
	for _, s := range series {
		line := make([]vec, len(s.pts))
		for i, pt := range s.pts {
			line[i] = vec{toX(pt.x), toY(pt.y)}
		}
		var dash []float64
		if s.dashed {
			dash = []float64{px(dashOnPx), px(dashOffPx)}
		}
		p.fill(img, s.color, stroke(line, px(lineWidthPx), dash))
		if float64(len(line)) <= maxMarkerDensity*(plot.x1-plot.x0)/px(symbolPx) {
			// One small fill per marker: a single fill would scan the
			// bounding box of them all, most of the plot.
			for _, v := range line {
				p.fill(img, s.color, []polygon{symbol(s.symbol, v, px(symbolPx))})
			}
		}
	}

	// Point labels last, so no line crosses them.
	p.labels(img, series, func(pt point) vec { return vec{toX(pt.x), toY(pt.y)} }, box{0, legendBottom, pngWidthPx, pngHeightPx})
	return img
}

// labels writes the series' point labels. A label goes above its point,
// else below, right or left of it: wherever it stays inside frame (the
// image below the legend) and clear of the labels already placed. One
// that fits nowhere is left out (it would be unreadable), and so is a label
// already written for a point drawn at the same place (P50 and P99 of a
// level often coincide on a throughput axis).
func (p *painter) labels(img *image.RGBA, series []plotted, at func(point) vec, frame box) {
	type written struct {
		at    vec
		label string
	}
	var placed []box
	var done []written
	for _, s := range series {
		for _, pt := range s.pts {
			v := at(pt)
			if pt.label == "" || slices.ContainsFunc(done, func(w written) bool {
				return w.label == pt.label && math.Hypot(w.at.x-v.x, w.at.y-v.y) < px(symbolPx)
			}) {
				continue
			}
			if b, ok := p.placeLabel(pt.label, v, frame, placed); ok {
				placed = append(placed, b)
				done = append(done, written{v, pt.label})
				p.text1(img, p.text, legendColor, pt.label, b.x0, b.y0, alignLeft, alignTop)
			}
		}
	}
}

// placeLabel finds where label goes beside the point at v (see labels).
func (p *painter) placeLabel(label string, v vec, frame box, placed []box) (box, bool) {
	w, h := textWidth(p.text, label), p.text.size
	r := px(symbolPx)/2 + px(labelGapPx)
	candidates := []box{
		{v.x - w/2, v.y - r - h, v.x + w/2, v.y - r},
		{v.x - w/2, v.y + r, v.x + w/2, v.y + r + h},
		{v.x + r, v.y - h/2, v.x + r + w, v.y + h/2},
		{v.x - r - w, v.y - h/2, v.x - r, v.y + h/2},
	}
	for _, b := range candidates {
		// A label beside a point at the image's edge slides along it.
		b = b.shift(max(frame.x0-b.x0, 0)+min(frame.x1-b.x1, 0), 0)
		if !b.inside(frame) {
			continue
		}
		clear := true
		for _, o := range placed {
			if b.overlaps(o) {
				clear = false
				break
			}
		}
		if clear {
			return b, true
		}
	}
	return box{}, false
}

// legend draws the legend centred under the title, wrapping into more rows
// when it is wider than the image, and returns its bottom edge.
func (p *painter) legend(img *image.RGBA, series []plotted) float64 {
	if len(series) == 0 {
		return px(legendTop)
	}
	type item struct {
		s     plotted
		text  string
		width float64
	}
	maxRow := pngWidthPx - px(2*legendRightPx)
	var rows [][]item
	var widths []float64
	for _, s := range series {
		text := fitText(p.text, s.name, maxRow/2)
		it := item{s: s, text: text, width: px(legendIconWPx+legendTextPx) + textWidth(p.text, text)}
		n := len(rows)
		if n == 0 || widths[n-1]+px(legendGapPx)+it.width > maxRow {
			rows, widths = append(rows, nil), append(widths, -px(legendGapPx))
			n++
		}
		rows[n-1] = append(rows[n-1], it)
		widths[n-1] += px(legendGapPx) + it.width
	}
	y := px(legendMiddlePx) - px(legendIconHPx)/2
	for r, row := range rows {
		x := (pngWidthPx - widths[r]) / 2
		mid := y + px(legendIconHPx)/2
		for _, it := range row {
			var dash []float64
			if it.s.dashed {
				dash = []float64{px(dashOnPx), px(dashOffPx)}
			}
			p.fill(img, it.s.color, stroke([]vec{{x, mid}, {x + px(legendIconWPx), mid}}, px(lineWidthPx), dash))
			p.fill(img, it.s.color, []polygon{symbol(it.s.symbol, vec{x + px(legendIconWPx)/2, mid}, px(legendSymbolPx))})
			x += px(legendIconWPx + legendTextPx)
			p.text1(img, p.text, legendColor, it.text, x, mid, alignLeft, alignMiddle)
			x += it.width - px(legendIconWPx+legendTextPx) + px(legendGapPx)
		}
		y += px(legendIconHPx + legendGapPx)
	}
	return y - px(legendGapPx)
}

// Text alignment relative to the anchor point.
const (
	alignLeft = iota
	alignCenter
	alignRight
	alignTop
	alignMiddle
)

// text1 draws one line of text anchored at (x, y): h is alignLeft,
// alignCenter or alignRight; v is alignTop or alignMiddle of its em box.
func (p *painter) text1(img *image.RGBA, f face, col color.RGBA, s string, x, y float64, h, v int) {
	if s == "" {
		return
	}
	w := textWidth(f, s)
	switch h {
	case alignCenter:
		x -= w / 2
	case alignRight:
		x -= w
	}
	if v == alignTop {
		y += f.size / 2
	}
	d := font.Drawer{Dst: img, Src: image.NewUniform(col), Face: f,
		Dot: fixed.Point26_6{X: toFixed(x), Y: toFixed(y + baselineBelowMiddle(f))}}
	d.DrawString(s)
}

// baselineBelowMiddle is how far the baseline lies below the middle of the
// em box: capitals and digits end up centred on it.
func baselineBelowMiddle(f face) float64 {
	return fromFixed(f.Metrics().CapHeight) / 2
}

// textUp draws one line of text turned a quarter left, reading upwards
// (the y axis name), centred on (cx, cy).
func (p *painter) textUp(img *image.RGBA, col color.RGBA, s string, cx, cy float64) {
	if s == "" {
		return
	}
	f := p.text
	w := int(math.Ceil(textWidth(f, s)))
	h := int(math.Ceil(f.size * 1.5)) // the em box, with room for descenders
	flat := image.NewAlpha(image.Rect(0, 0, w, h))
	d := font.Drawer{Dst: flat, Src: image.Opaque, Face: f,
		Dot: fixed.Point26_6{X: 0, Y: toFixed(float64(h)/2 + baselineBelowMiddle(f))}}
	d.DrawString(s)
	// Turn left: flat (fx, fy) goes to (fy, w-1-fx).
	up := image.NewAlpha(image.Rect(0, 0, h, w))
	for fy := range h {
		for fx := range w {
			up.Pix[(w-1-fx)*up.Stride+fy] = flat.Pix[fy*flat.Stride+fx]
		}
	}
	x0, y0 := int(math.Round(cx))-h/2, int(math.Round(cy))-w/2
	draw.DrawMask(img, image.Rect(x0, y0, x0+h, y0+w), image.NewUniform(col), image.Point{}, up, image.Point{}, draw.Over)
}

// fitText returns s, or s cut short with "…" so that it is at most maxW
// wide in f.
func fitText(f face, s string, maxW float64) string {
	if textWidth(f, s) <= maxW {
		return s
	}
	r := []rune(s)
	for n := len(r) - 1; n > 0; n-- {
		cut := strings.TrimSpace(string(r[:n])) + "…"
		if textWidth(f, cut) <= maxW {
			return cut
		}
	}
	return ""
}

func textWidth(f face, s string) float64 {
	return fromFixed(font.MeasureString(f, s))
}

func toFixed(v float64) fixed.Int26_6 { return fixed.Int26_6(math.Round(v * 64)) }

func fromFixed(v fixed.Int26_6) float64 { return float64(v) / 64 }

// fillRect fills b (rounded to whole pixels, at least one wide) with col:
// crisp axis-parallel lines without anti-aliasing.
func fillRect(img *image.RGBA, col color.RGBA, b box) {
	x0, y0 := int(math.Round(b.x0)), int(math.Round(b.y0))
	x1, y1 := max(int(math.Round(b.x1)), x0+1), max(int(math.Round(b.y1)), y0+1)
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(col), image.Point{}, draw.Over)
}

// polygon is a closed outline in image pixels.
type polygon []vec

// fill paints the union of polys in col, anti-aliased. The rasterizer sums
// signed coverage, so every outline is turned the same way round first:
// overlapping shapes then add up (and are clamped) instead of cancelling.
func (p *painter) fill(img *image.RGBA, col color.RGBA, polys []polygon) {
	lo, hi := vec{math.Inf(1), math.Inf(1)}, vec{math.Inf(-1), math.Inf(-1)}
	for _, poly := range polys {
		for _, v := range poly {
			lo.x, lo.y = min(lo.x, v.x), min(lo.y, v.y)
			hi.x, hi.y = max(hi.x, v.x), max(hi.y, v.y)
		}
	}
	r := image.Rect(int(math.Floor(lo.x))-1, int(math.Floor(lo.y))-1, int(math.Ceil(hi.x))+1, int(math.Ceil(hi.y))+1).
		Intersect(img.Bounds())
	if r.Empty() {
		return
	}
	p.z.Reset(r.Dx(), r.Dy())
	ox, oy := float64(r.Min.X), float64(r.Min.Y)
	for _, poly := range polys {
		if len(poly) < 3 {
			continue
		}
		if area(poly) < 0 {
			for i, j := 0, len(poly)-1; i < j; i, j = i+1, j-1 {
				poly[i], poly[j] = poly[j], poly[i]
			}
		}
		p.z.MoveTo(float32(poly[0].x-ox), float32(poly[0].y-oy))
		for _, v := range poly[1:] {
			p.z.LineTo(float32(v.x-ox), float32(v.y-oy))
		}
		p.z.ClosePath()
	}
	p.z.Draw(img, r, image.NewUniform(col), image.Point{})
}

// area is the signed area of poly (positive when it turns clockwise on
// screen, y down).
func area(poly polygon) float64 {
	a := 0.0
	for i, v := range poly {
		w := poly[(i+1)%len(poly)]
		a += v.x*w.y - w.x*v.y
	}
	return a / 2
}

// stroke outlines the polyline pts drawn width wide: one rectangle per
// segment (butt ends, as ECharts draws them) and, where a solid line bends,
// a round join. dash, when set, is the on and off lengths, repeated along
// the whole line as a canvas does.
func stroke(pts []vec, width float64, dash []float64) []polygon {
	var out []polygon
	seg := func(a, b vec) {
		dx, dy := b.x-a.x, b.y-a.y
		l := math.Hypot(dx, dy)
		if l == 0 {
			return
		}
		nx, ny := -dy/l*width/2, dx/l*width/2
		out = append(out, polygon{{a.x + nx, a.y + ny}, {b.x + nx, b.y + ny}, {b.x - nx, b.y - ny}, {a.x - nx, a.y - ny}})
	}
	if len(dash) == 0 {
		for i := 1; i < len(pts); i++ {
			seg(pts[i-1], pts[i])
			if i > 1 {
				out = append(out, circle(pts[i-1], width/2, 12))
			}
		}
		return out
	}
	k, left, on := 0, dash[0], true // the dash element, what is left of it, and whether it draws
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		l := math.Hypot(b.x-a.x, b.y-a.y)
		for t := 0.0; t < l; {
			step := min(left, l-t)
			if on {
				seg(lerp(a, b, t/l), lerp(a, b, (t+step)/l))
			}
			t += step
			left -= step
			if left <= 1e-9 {
				k = (k + 1) % len(dash)
				left, on = dash[k], !on
			}
		}
		if on && i < len(pts)-1 {
			out = append(out, circle(b, width/2, 12)) // a dash bending at a point
		}
	}
	return out
}

func lerp(a, b vec, t float64) vec { return vec{a.x + (b.x-a.x)*t, a.y + (b.y-a.y)*t} }

// circle approximates a circle with n straight sides.
func circle(c vec, r float64, n int) polygon {
	poly := make(polygon, n)
	for i := range poly {
		a := 2 * math.Pi * float64(i) / float64(n)
		poly[i] = vec{c.x + r*math.Cos(a), c.y + r*math.Sin(a)}
	}
	return poly
}

// symbol outlines the ECharts marker shape (html.go's symbols) centred at
// c in a size × size square.
func symbol(shape string, c vec, size float64) polygon {
	r := size / 2
	switch shape {
	case "rect":
		return polygon{{c.x - r, c.y - r}, {c.x + r, c.y - r}, {c.x + r, c.y + r}, {c.x - r, c.y + r}}
	case "triangle":
		return polygon{{c.x, c.y - r}, {c.x + r, c.y + r}, {c.x - r, c.y + r}}
	case "diamond":
		return polygon{{c.x, c.y - r}, {c.x + r, c.y}, {c.x, c.y + r}, {c.x - r, c.y}}
	default:
		return circle(c, r, 32)
	}
}

// seriesColor returns palette colour i (cycling).
func seriesColor(i int) color.RGBA {
	var r, g, b uint8
	// The palette holds valid "#rrggbb" strings, so this cannot fail.
	_, _ = fmt.Sscanf(palette[i%len(palette)], "#%02x%02x%02x", &r, &g, &b)
	return color.RGBA{R: r, G: g, B: b, A: 255}
}
