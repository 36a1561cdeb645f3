package decode

import (
	"slices"
	"strconv"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Results is decode_results.json: the reference layout ("type", "metric",
// "results" with TBT in seconds) plus metadata, configuration, errors and
// validation.
type Results struct {
	result.Meta
	Config  Config             `json:"config"`
	Results []Row              `json:"results"`
	Errors  result.ErrorCounts `json:"errors"`
	// WarmupErrors tallies the warm-up requests that failed (they are not
	// in Errors, which counts the combinations' requests).
	WarmupErrors result.ErrorCounts `json:"warmup_errors"`
	// StopReason says why the run ended early when the server failed two
	// combinations in a row (EndReason server_failing); empty otherwise,
	// also when one combination was ended early (its row says why).
	StopReason string           `json:"stop_reason,omitempty"`
	Validation *validate.Report `json:"validation,omitempty"`
}

func ms(s float64) float64 { return s * 1000 }

// Table is the results table, shared by the console and the CSV file.
func Table(rows []Row) report.Table[Row] {
	tbt := func(header, key string, get func(Row) float64) report.Column[Row] {
		return report.Column[Row]{Header: header, Key: key, Decimals: 2, Value: func(r Row) (float64, bool) {
			return ms(get(r)), r.TBT.Count > 0
		}}
	}
	integer := func(header, key string, get func(Row) int) report.Column[Row] {
		return report.Column[Row]{Header: header, Key: key, Value: func(r Row) (float64, bool) { return float64(get(r)), true }}
	}
	cols := []report.Column[Row]{
		integer("Batch Size", "batch_size", func(r Row) int { return r.BatchSize }),
		integer("Input Length", "input_length", func(r Row) int { return r.InputLength }),
		tbt("Mean (ms)", "mean_ms", func(r Row) float64 { return r.TBT.Mean }),
		tbt("P50 (ms)", "p50_ms", func(r Row) float64 { return r.TBT.Median }),
		tbt("P99 (ms)", "p99_ms", func(r Row) float64 { return r.TBT.P99 }),
		tbt("Min (ms)", "min_ms", func(r Row) float64 { return r.TBT.Min }),
		tbt("Max (ms)", "max_ms", func(r Row) float64 { return r.TBT.Max }),
		integer("Samples", "samples", func(r Row) int { return r.TBT.Count }),
		{Header: "Per-token P50 (ms)", Key: "per_token_p50_ms", Decimals: 2, Value: func(r Row) (float64, bool) {
			return ms(r.TBTPerToken.Median), r.TBTPerToken.Count > 0
		}},
		{Header: "Tok/chunk", Key: "tokens_per_chunk_mean", Decimals: 2, Value: func(r Row) (float64, bool) {
			return r.TokensPerChunkMean, r.TokensPerChunkMean > 0
		}},
		{Header: "Decode (tok/s)", Key: "decode_tokens_per_s", Decimals: 1, Value: func(r Row) (float64, bool) { return r.DecodeTPS, r.DecodeTPS > 0 }},
		integer("Peak", "peak_concurrency", func(r Row) int { return r.PeakConcurrency }),
		integer("Errors", "errors", func(r Row) int { return r.Errors }),
	}
	notes := []string{
		"TBT = gap between content chunks while the whole batch decoded together; per-token = chunk gap / tokens in the chunk",
		"decode tok/s = batch size x tokens per chunk / mean TBT; Peak = most requests the server decoded at once",
		"tok/chunk comes from per-chunk usage when the server sends it, else from usage.completion_tokens / chunks",
	}
	var thin []string
	for _, r := range rows {
		if r.TBT.Count > 0 && !r.TBT.CI95.P99.Supported {
			thin = append(thin, Combination{BatchSize: r.BatchSize, InputLength: r.InputLength}.CheckLabel())
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
		notes = append(notes, "goodput = share of the batch's requests that succeeded and met the SLO (failures included)")
	}
	return report.Table[Row]{Title: "Decode Results (TBT in decode window)", Columns: cols, Rows: rows, Notes: notes}
}

// Charts are the run's plots: TBT P50 and P99 against batch size, one line
// per input length.
func Charts(rows []Row, inputLengths []int) []report.Chart {
	series := func(dashed bool, get func(Row) float64) []report.Series {
		var out []report.Series
		for _, l := range inputLengths {
			s := report.Series{Name: "il=" + strconv.Itoa(l), Dashed: dashed}
			for _, r := range rows {
				if r.InputLength == l && r.TBT.Count > 0 {
					s.X, s.Y = append(s.X, float64(r.BatchSize)), append(s.Y, ms(get(r)))
				}
			}
			out = append(out, s)
		}
		return out
	}
	return []report.Chart{
		{Name: "tbt_p50_vs_batch_size", Title: "Time Between Tokens (P50) vs Batch Size", XLabel: "Batch Size", YLabel: "TBT P50 (ms)",
			Series: series(false, func(r Row) float64 { return r.TBT.Median })},
		{Name: "tbt_p99_vs_batch_size", Title: "Time Between Tokens (P99) vs Batch Size", XLabel: "Batch Size", YLabel: "TBT P99 (ms)",
			Series: series(true, func(r Row) float64 { return r.TBT.P99 })},
	}
}

// CompareValues are the headline numbers of each row, for comparing runs.
func CompareValues(rows []Row) []compare.Value {
	var out []compare.Value
	for _, r := range rows {
		if r.TBT.Count == 0 {
			continue
		}
		p := Combination{BatchSize: r.BatchSize, InputLength: r.InputLength}.CheckLabel()
		o := float64(r.BatchSize)*1e7 + float64(r.InputLength)
		out = append(out,
			compare.Value{Point: p, Order: o, Metric: "tbt_p50_ms", Value: ms(r.TBT.Median),
				Low: ms(r.TBT.CI95.Median.Low), High: ms(r.TBT.CI95.Median.High), Bounded: true},
			compare.Value{Point: p, Order: o, Metric: "tbt_p99_ms", Value: ms(r.TBT.P99),
				Low: ms(r.TBT.CI95.P99.Low), High: ms(r.TBT.CI95.P99.High), Bounded: true},
			compare.Value{Point: p, Order: o, Metric: "decode_tok_s", Value: r.DecodeTPS, HigherIsBetter: true},
		)
	}
	return out
}
