package metrics

import "math"

// Confidence is the level of the intervals Summarize reports.
const Confidence = 0.95

// Interval is a distribution-free confidence interval for a percentile:
// two order statistics of the sample, chosen from the binomial law of the
// number of samples below the true percentile, so that it holds whatever
// the distribution (continuous) of the data.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Supported is false when the interval reaches the sample's minimum or
	// maximum: the sample is too small to bound the percentile on that
	// side (a P99 from a few hundred samples or fewer).
	Supported bool `json:"supported"`
}

// Intervals are the 95 % intervals of a Summary's percentiles.
type Intervals struct {
	Median Interval `json:"median"`
	P90    Interval `json:"p90"`
	P99    Interval `json:"p99"`
}

// ranks returns the 1-based order statistics (l, u) of a sample of n
// whose interval [x(l), x(u)] covers the q-quantile (0 < q < 1) with
// probability at least conf, and whether the interval is bounded inside
// the sample (1 < l and u < n). With B ~ Binomial(n, q) the number of
// samples at or below the quantile, P(x(l) <= ξ < x(u)) = P(l <= B < u);
// l is the largest rank with P(B < l) <= (1-conf)/2 and u the smallest
// with P(B >= u) <= (1-conf)/2. Where no rank meets the bound the
// interval is opened to the sample's end (l = 1 or u = n).
func ranks(n int, q, conf float64) (l, u int, bounded bool) {
	tail := (1 - conf) / 2
	// cdf[k] = P(B <= k), for k in 0..n.
	cdf := make([]float64, n+1)
	lq, lr := math.Log(q), math.Log1p(-q)
	ln1, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for k := 0; k <= n; k++ {
		lk, _ := math.Lgamma(float64(k + 1))
		lnk, _ := math.Lgamma(float64(n - k + 1))
		sum += math.Exp(ln1 - lk - lnk + float64(k)*lq + float64(n-k)*lr)
		cdf[k] = sum
	}
	lowOK, highOK := false, false
	l, u = 1, n
	for j := n; j >= 1; j-- {
		if cdf[j-1] <= tail {
			l, lowOK = j, true
			break
		}
	}
	for j := 1; j <= n; j++ {
		if 1-cdf[j-1] <= tail {
			u, highOK = j, true
			break
		}
	}
	return l, u, lowOK && highOK && l > 1 && u < n
}

// PercentileInterval is the Confidence interval of the p-th percentile
// (0 < p < 100) of sorted, an ascending sample; the zero Interval for an
// empty one.
func PercentileInterval(sorted []float64, p float64) Interval {
	if len(sorted) == 0 {
		return Interval{}
	}
	l, u, ok := ranks(len(sorted), p/100, Confidence)
	return Interval{Low: sorted[l-1], High: sorted[u-1], Supported: ok}
}

// SamplesFor is the fewest samples whose Confidence interval of the p-th
// percentile stops short of both ends of the sample (Interval.Supported):
// 9 for the median, 54 for P90, 555 for P99; 0 when more than limit.
func SamplesFor(p float64, limit int) int {
	for n := 1; n <= limit; n++ {
		if _, _, ok := ranks(n, p/100, Confidence); ok {
			return n
		}
	}
	return 0
}
