package chart

import (
	"math"
	"strconv"
	"strings"
)

// tick is one labelled position on an axis.
type tick struct {
	v     float64
	label string
}

// scale is an axis of the built-in renderer: its range, linear or log2,
// and its ticks, chosen the way ECharts chooses them for the HTML chart.
type scale struct {
	lo, hi float64 // the drawn range; on a log2 axis both > 0
	log    bool
	ticks  []tick
}

// frac is where v lies along the axis: 0 at lo, 1 at hi.
func (s scale) frac(v float64) float64 {
	if s.log {
		return math.Log2(v/s.lo) / math.Log2(s.hi/s.lo)
	}
	return (v - s.lo) / (s.hi - s.lo)
}

// axes returns the x and y scales for the drawable points pts: y from 0 (or
// below the lowest negative value) to a round number above the highest; a
// linear x over the data, widened to round numbers; a log2 x from the power
// of two at or below the smallest x to the one at or above the largest.
// With no points the axes span 0..1 (log2: 1..2).
func axes(logX bool, pts []point) (x, y scale) {
	if len(pts) == 0 {
		if logX {
			return log2Scale(1, 2), linearScale(0, 1)
		}
		return linearScale(0, 1), linearScale(0, 1)
	}
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := 0.0, 0.0
	for _, p := range pts {
		xlo, xhi = min(xlo, p.x), max(xhi, p.x)
		ylo, yhi = min(ylo, p.y), max(yhi, p.y)
	}
	if logX {
		return log2Scale(xlo, xhi), linearScale(ylo, yhi)
	}
	return linearScale(xlo, xhi), linearScale(ylo, yhi)
}

// linearScale spans [lo, hi] widened to multiples of niceRange's step, with
// a tick at each.
func linearScale(lo, hi float64) scale {
	first, last, step := niceRange(lo, hi)
	decimals := stepDecimals(step)
	s := scale{lo: first, hi: last}
	for i := 0.0; first+i*step <= last+step*1e-9; i++ {
		v := first + i*step
		if math.Abs(v) < step*1e-9 {
			v = 0 // no "-0"
		}
		s.ticks = append(s.ticks, tick{v: v, label: trimZeros(axisLabel(v, decimals))})
	}
	return s
}

// trimZeros drops the zeros that end a decimal fraction, and then its
// point, as ECharts writes axis values: "1.50" -> "1.5", "1.0" -> "1".
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// log2Scale spans [lo, hi] (both > 0) widened to powers of two, at least a
// doubling either side of a single value, with a tick at every power (every
// second, fourth, ... one when there would be more than 8 steps).
func log2Scale(lo, hi float64) scale {
	first, last := int(math.Floor(math.Log2(lo))), int(math.Ceil(math.Log2(hi)))
	if first == last {
		first, last = first-1, last+1
	}
	step := 1
	for (last-first+step-1)/step > 8 {
		step *= 2
	}
	// Align the ends to the step, so the ticks are the ends' multiples.
	first = floorDiv(first, step) * step
	last = -floorDiv(-last, step) * step
	s := scale{lo: math.Exp2(float64(first)), hi: math.Exp2(float64(last)), log: true}
	for e := first; e <= last; e += step {
		v := math.Exp2(float64(e))
		s.ticks = append(s.ticks, tick{v: v, label: log2Label(v)})
	}
	return s
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// log2Label writes a power of two: "1,024", "0.25".
func log2Label(v float64) string {
	if v >= 1 {
		return axisLabel(v, 0)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// niceRange widens [lo, hi] to multiples of a round step that splits it
// in about five: ECharts' own choice for a value axis (splitNumber 5, the
// span / 5 rounded to 1, 2, 3, 5 or 10 times a power of ten), so the PNG
// gets the HTML chart's ticks and yNameGap the HTML chart's labels. A
// single value v is widened to v ± |v|/2 (0 to 0..1), as ECharts does.
func niceRange(lo, hi float64) (first, last, step float64) {
	if hi <= lo {
		if lo == 0 {
			hi = 1
		} else {
			lo, hi = lo-math.Abs(lo)/2, lo+math.Abs(lo)/2
		}
	}
	raw := (hi - lo) / 5
	exp := math.Floor(math.Log10(raw))
	mag := math.Pow(10, exp)
	var m float64
	switch f := raw / mag; {
	case f < 1.5:
		m = 1
	case f < 2.5:
		m = 2
	case f < 4:
		m = 3
	case f < 7:
		m = 5
	default:
		m = 10
	}
	step = m * mag
	if exp < 0 { // 3 * 0.001 is 0.0030000000000000001: round to the digits
		step, _ = strconv.ParseFloat(strconv.FormatFloat(step, 'f', int(-exp), 64), 64)
	}
	return math.Floor(lo/step+1e-9) * step, math.Ceil(hi/step-1e-9) * step, step
}

// stepDecimals is the number of decimals that writes step exactly:
// 2.5 -> 1, 0.003 -> 3, 200 -> 0.
func stepDecimals(step float64) int {
	decimals := 0
	for ; decimals < 12; decimals++ {
		scaled := step * math.Pow(10, float64(decimals))
		if math.Abs(scaled-math.Round(scaled)) < 1e-6*scaled {
			break
		}
	}
	return decimals
}
