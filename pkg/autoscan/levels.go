package autoscan

import (
	"math"
	"slices"
)

// Manual returns levels sorted in ascending order without duplicates, as a
// new slice. The caller checks the values themselves (positive, integer in
// closed loop).
func Manual(levels []float64) []float64 {
	out := slices.Clone(levels)
	slices.Sort(out)
	return slices.Compact(out)
}

// LogSpaced returns up to n integer levels spaced evenly on a log scale
// between lo and hi, as the original tool's log_spaced: for n <= 1 it is
// [lo]; otherwise exp(a + (b-a)*i/(n-1)) for i = 0..n-1 with a = ln(max(lo,
// 1)) and b = ln(max(hi, 1)), each rounded half to even, clamped to at least
// 1, then sorted and deduplicated, so the result may have fewer than n
// levels. Non-finite bounds give nil.
func LogSpaced(lo, hi float64, n int) []float64 {
	if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return nil
	}
	if n <= 1 {
		return []float64{lo}
	}
	a, b := math.Log(math.Max(lo, 1)), math.Log(math.Max(hi, 1))
	out := make([]float64, 0, n)
	for i := range n {
		// Same order of operations as the original ((b-a)*i, then /(n-1))
		// so that values landing near .5 round the same way.
		v := math.Exp(a + (b-a)*float64(i)/float64(n-1))
		out = append(out, math.Max(math.RoundToEven(v), 1))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
