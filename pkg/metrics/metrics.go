// Package metrics turns per-request measurements into the statistics the
// benchmarks report: summaries (mean, percentiles, min, max, standard
// deviation) and token throughput over a fixed time window.
//
// Percentiles use linear interpolation between closest ranks (Hyndman and
// Fan type 7, numpy's default), through montanaflynn/stats. The per-request
// metric definitions themselves live in package result.
package metrics

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/montanaflynn/stats"
)

// Summary describes one sample. Values are in the sample's unit (the
// callers use seconds for times). Count 0 means the sample was empty and
// every other field is meaningless; writers omit them.
type Summary struct {
	Count  int     `json:"count"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Std is the population standard deviation (ddof 0, as numpy's default).
	Std float64 `json:"std"`
	// CI95 holds distribution-free 95 % confidence intervals of Median,
	// P90 and P99 (order statistics); an interval that reaches the
	// sample's minimum or maximum is marked unsupported.
	CI95 Intervals `json:"ci95,omitzero"`
}

// Percentile returns the p-th percentile (0 <= p <= 100) of data by linear
// interpolation between closest ranks. Empty data gives 0. p = 0 gives the
// minimum (montanaflynn/stats rejects 0; numpy returns the minimum).
func Percentile(data []float64, p float64) (float64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if p < 0 || p > 100 || math.IsNaN(p) {
		return 0, fmt.Errorf("percentile %v is outside [0, 100]", p)
	}
	if p == 0 {
		return stats.Min(data)
	}
	v, err := stats.Percentile(data, p)
	if err != nil {
		return 0, fmt.Errorf("percentile %v of %d values: %w", p, len(data), err)
	}
	return v, nil
}

// Summarize computes the summary of data. It never returns NaN: an empty
// sample gives the zero Summary (Count 0).
func Summarize(data []float64) Summary {
	if len(data) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(data)
	slices.Sort(sorted)
	s := Summary{Count: len(sorted), Min: sorted[0], Max: sorted[len(sorted)-1]}
	// The errors below can only come from an empty sample or a bad p,
	// both excluded here, so they are safe to ignore.
	s.Mean, _ = stats.Mean(sorted)
	s.Median, _ = stats.Percentile(sorted, 50)
	s.P90, _ = stats.Percentile(sorted, 90)
	s.P99, _ = stats.Percentile(sorted, 99)
	s.Std, _ = stats.StandardDeviationPopulation(sorted)
	s.CI95 = Intervals{
		Median: PercentileInterval(sorted, 50),
		P90:    PercentileInterval(sorted, 90),
		P99:    PercentileInterval(sorted, 99),
	}
	return s
}

// Seconds converts durations to seconds, the unit Summarize is fed with
// for times.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// Window is a closed time interval [Start, End] as offsets from the run start.
type Window struct {
	Start time.Duration `json:"-"`
	End   time.Duration `json:"-"`
}

// Len is the window's length.
func (w Window) Len() time.Duration { return w.End - w.Start }

// Contains reports whether t lies in [Start, End].
func (w Window) Contains(t time.Duration) bool { return t >= w.Start && t <= w.End }

// Rate is count divided by the window's length in seconds; 0 for an empty window.
func (w Window) Rate(count float64) float64 {
	if w.Len() <= 0 {
		return 0
	}
	return count / w.Len().Seconds()
}
