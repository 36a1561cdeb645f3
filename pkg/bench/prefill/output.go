package prefill

import (
	"slices"
	"strconv"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Results is prefill_results.json: the reference layout ("type", "metric",
// "results" with TTFC in seconds) plus the run's metadata, configuration,
// error counts and validation.
type Results struct {
	result.Meta
	Config  Config             `json:"config"`
	Results []Row              `json:"results"`
	Errors  result.ErrorCounts `json:"errors"`
	// StopReason says why the run ended early when the server kept
	// failing (EndReason server_failing); empty otherwise.
	StopReason string `json:"stop_reason,omitempty"`
	// Fidelity says whether the client kept up (CPU, scheduling, send lag).
	Fidelity fidelity.Assessment `json:"client_fidelity"`
	// Server is what the server's own metrics reported during the run.
	Server     *servermetrics.Summary `json:"server_metrics,omitempty"`
	Validation *validate.Report       `json:"validation,omitempty"`
}

func ms(s float64) float64 { return s * 1000 }

// Table is the results table, shared by the console and the CSV file.
func Table(rows []Row) report.Table[Row] {
	ttfc := func(header, key string, get func(Row) float64) report.Column[Row] {
		return report.Column[Row]{Header: header, Key: key, Decimals: 2, Value: func(r Row) (float64, bool) {
			return ms(get(r)), r.TTFC.Count > 0
		}}
	}
	cols := []report.Column[Row]{
		{Header: "Input Length", Key: "input_length", Value: func(r Row) (float64, bool) { return float64(r.InputLength), true }},
		ttfc("Mean (ms)", "mean_ms", func(r Row) float64 { return r.TTFC.Mean }),
		ttfc("P50 (ms)", "p50_ms", func(r Row) float64 { return r.TTFC.Median }),
		ttfc("P99 (ms)", "p99_ms", func(r Row) float64 { return r.TTFC.P99 }),
		ttfc("Min (ms)", "min_ms", func(r Row) float64 { return r.TTFC.Min }),
		ttfc("Max (ms)", "max_ms", func(r Row) float64 { return r.TTFC.Max }),
		{Header: "Count", Key: "count", Value: func(r Row) (float64, bool) { return float64(r.TTFC.Count), true }},
		{Header: "Errors", Key: "errors", Value: func(r Row) (float64, bool) { return float64(r.Errors), true }},
		{Header: "Prefill (tok/s)", Key: "prefill_tokens_per_s", Value: func(r Row) (float64, bool) { return r.PrefillTPS, r.PrefillTPS > 0 }},
	}
	notes := []string{"TTFC = first generated chunk - send; prefill tok/s = input length / P50 TTFC (includes network, queueing and the first decode step)"}
	var thin []string
	for _, r := range rows {
		if r.TTFC.Count > 0 && !r.TTFC.CI95.P99.Supported {
			thin = append(thin, "il="+strconv.Itoa(r.InputLength))
		}
	}
	if note := report.ThinP99Note(thin); note != "" {
		notes = append(notes, note)
	}
	if slices.ContainsFunc(rows, func(r Row) bool { return r.Goodput != nil }) {
		cols = append(cols, report.Column[Row]{Header: "Goodput", Key: "goodput_ratio", Decimals: 2, Value: func(r Row) (float64, bool) {
			if r.Goodput == nil {
				return 0, false
			}
			return r.Goodput.Ratio, true
		}})
		notes = append(notes, "goodput = share of the length's requests that succeeded and met the SLO (failures included)")
	}
	return report.Table[Row]{Title: "Prefill Results (TTFC)", Columns: cols, Rows: rows, Notes: notes}
}

// Charts are the run's plots: TTFC P50 and P99 against input length.
func Charts(rows []Row) []report.Chart {
	p50 := report.Series{Name: "P50"}
	p99 := report.Series{Name: "P99", Dashed: true}
	for _, r := range rows {
		if r.TTFC.Count == 0 {
			continue
		}
		p50.X, p50.Y = append(p50.X, float64(r.InputLength)), append(p50.Y, ms(r.TTFC.Median))
		p99.X, p99.Y = append(p99.X, float64(r.InputLength)), append(p99.Y, ms(r.TTFC.P99))
	}
	return []report.Chart{{
		Name: "ttfc_vs_input_length", Title: "Time to First Token vs Input Length",
		XLabel: "Input Length (tokens)", YLabel: "TTFC (ms)", Series: []report.Series{p50, p99},
	}}
}

// CompareValues are the headline numbers of each row, for comparing runs.
func CompareValues(rows []Row) []compare.Value {
	var out []compare.Value
	for _, r := range rows {
		if r.TTFC.Count == 0 {
			continue
		}
		p, o := "il="+strconv.Itoa(r.InputLength), float64(r.InputLength)
		out = append(out,
			compare.Value{Point: p, Order: o, Metric: "ttfc_p50_ms", Value: ms(r.TTFC.Median),
				Low: ms(r.TTFC.CI95.Median.Low), High: ms(r.TTFC.CI95.Median.High), Bounded: true},
			compare.Value{Point: p, Order: o, Metric: "ttfc_p99_ms", Value: ms(r.TTFC.P99),
				Low: ms(r.TTFC.CI95.P99.Low), High: ms(r.TTFC.CI95.P99.High), Bounded: true},
			compare.Value{Point: p, Order: o, Metric: "prefill_tok_s", Value: r.PrefillTPS, HigherIsBetter: true},
		)
	}
	return out
}
