// Package compare sets two runs of the same benchmark side by side: for
// every point both runs measured (an input length, a batch and length, a
// load level) and every headline metric, the value of each run, the
// difference and the relative change; and overlay charts that draw both
// runs' series on one plot.
package compare

import (
	"cmp"
	"math"
	"slices"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// Value is one metric of one point of a run.
type Value struct {
	// Point names the point ("il=512", "bs=4,il=128", "c=8"); Order sorts
	// points (the length, batch, level).
	Point string
	Order float64
	// Metric names the metric with its unit ("ttfc_p50_ms").
	Metric string
	Value  float64
	// HigherIsBetter says which direction is an improvement.
	HigherIsBetter bool
	// Low and High bound Value with its 95 % confidence interval when
	// Bounded (percentiles: metrics.Interval, in the metric's unit).
	Low, High float64
	Bounded   bool
}

// Delta is one metric of one point in both runs.
type Delta struct {
	Point  string  `json:"point"`
	Metric string  `json:"metric"`
	This   float64 `json:"this"`
	Other  float64 `json:"other"`
	// Diff is This - Other; Change is Diff / Other (0 when Other is 0).
	Diff   float64 `json:"diff"`
	Change float64 `json:"change"`
	// Better says whether this run improved on the other (false for no change).
	Better bool `json:"better"`
	// BeyondNoise, when both values carry confidence intervals, says
	// whether the intervals are disjoint: a change that cannot be the
	// sampling noise of two equal runs. nil when a value has no interval.
	BeyondNoise *bool `json:"beyond_noise,omitempty"`
	order       float64
}

// Deltas pairs the values both runs have for the same point and metric,
// ordered by point, then by the metrics' order in this run.
func Deltas(this, other []Value) []Delta {
	type key struct{ point, metric string }
	others := map[key]Value{}
	for _, v := range other {
		others[key{v.Point, v.Metric}] = v
	}
	var out []Delta
	for _, v := range this {
		o, ok := others[key{v.Point, v.Metric}]
		if !ok || math.IsNaN(v.Value) || math.IsNaN(o.Value) {
			continue
		}
		d := Delta{Point: v.Point, Metric: v.Metric, This: v.Value, Other: o.Value, Diff: v.Value - o.Value, order: v.Order}
		if o.Value != 0 {
			d.Change = d.Diff / o.Value
		}
		d.Better = (d.Diff > 0) == v.HigherIsBetter && d.Diff != 0
		if v.Bounded && o.Bounded {
			beyond := v.Low > o.High || o.Low > v.High
			d.BeyondNoise = &beyond
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b Delta) int { return cmp.Compare(a.order, b.order) })
	return out
}

// Table is the comparison table for the console and comparison.csv.
func Table(deltas []Delta, otherName string) report.Table[Delta] {
	num := func(header, key string, dec int, get func(Delta) float64) report.Column[Delta] {
		return report.Column[Delta]{Header: header, Key: key, Decimals: dec, Value: func(d Delta) (float64, bool) { return get(d), true }}
	}
	return report.Table[Delta]{
		Title: "Comparison with " + otherName,
		Columns: []report.Column[Delta]{
			{Header: "Point", Key: "point", Text: func(d Delta) string { return d.Point }},
			{Header: "Metric", Key: "metric", Text: func(d Delta) string { return d.Metric }},
			num("This run", "this", 2, func(d Delta) float64 { return d.This }),
			num("Other", "other", 2, func(d Delta) float64 { return d.Other }),
			num("Δ", "diff", 2, func(d Delta) float64 { return d.Diff }),
			{Header: "Δ %", Key: "change_pct", Decimals: 1, Value: func(d Delta) (float64, bool) { return 100 * d.Change, d.Other != 0 }},
			{Header: "Verdict", Key: "verdict", Text: func(d Delta) string {
				switch {
				case d.Diff == 0:
					return ""
				case d.BeyondNoise != nil && !*d.BeyondNoise:
					return "within noise"
				case d.Better:
					return "better"
				default:
					return "worse"
				}
			}},
		},
		Rows: deltas,
		Notes: []string{
			"Δ = this run - other; 'better' follows each metric's direction (lower latency, higher throughput)",
			"percentiles: 'within noise' when the two runs' 95% confidence intervals overlap; other metrics carry no interval",
		},
	}
}

// Overlay draws each chart of this run with the same chart of the other
// run: every series twice, named "<thisName> <series>" and "<otherName>
// <series>", the other run's dashed. File stems get a "compare_" prefix.
func Overlay(this, other []report.Chart, thisName, otherName string) []report.Chart {
	byName := map[string]report.Chart{}
	for _, c := range other {
		byName[c.Name] = c
	}
	var out []report.Chart
	for _, c := range this {
		o, ok := byName[c.Name]
		if !ok {
			continue
		}
		merged := c
		merged.Name = "compare_" + c.Name
		merged.Title = c.Title + " — " + thisName + " vs " + otherName
		merged.Series = nil
		for _, s := range c.Series {
			s.Name, s.Dashed = thisName+" "+s.Name, false
			merged.Series = append(merged.Series, s)
		}
		for _, s := range o.Series {
			s.Name, s.Dashed = otherName+" "+s.Name, true
			merged.Series = append(merged.Series, s)
		}
		out = append(out, merged)
	}
	return out
}

// PredictionTable is the comparison of a run on a profile fitted to a
// server's microbenchmarks (the prediction) with a run measured on the
// server: each delta is the prediction's error. predictedIsThis says which
// side of the deltas is the prediction; measuredName names the measured run.
func PredictionTable(deltas []Delta, predictedIsThis bool, measuredName string) report.Table[Delta] {
	pred, meas := func(d Delta) float64 { return d.This }, func(d Delta) float64 { return d.Other }
	if !predictedIsThis {
		pred, meas = meas, pred
	}
	num := func(header, key string, get func(Delta) float64) report.Column[Delta] {
		return report.Column[Delta]{Header: header, Key: key, Decimals: 2, Value: func(d Delta) (float64, bool) { return get(d), true }}
	}
	return report.Table[Delta]{
		Title: "Prediction error against the measured run " + measuredName,
		Columns: []report.Column[Delta]{
			{Header: "Point", Key: "point", Text: func(d Delta) string { return d.Point }},
			{Header: "Metric", Key: "metric", Text: func(d Delta) string { return d.Metric }},
			num("Predicted", "predicted", pred),
			num("Measured", "measured", meas),
			{Header: "Error %", Key: "prediction_error_pct", Decimals: 1, Value: func(d Delta) (float64, bool) {
				return 100 * (pred(d) - meas(d)) / meas(d), meas(d) != 0
			}},
		},
		Rows: deltas,
		Notes: []string{"predicted = the stress benchmark on the simulated engine fitted to the server's prefill and decode runs (sim:<dir>); error = (predicted - measured) / measured",
			"a measured curve below the prediction means the server loses throughput that its prefill and decode speeds allow (scheduling, batching limits, mixing)"},
	}
}
