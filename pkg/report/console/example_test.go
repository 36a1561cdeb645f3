package console_test

import (
	"os"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

func ExampleTable() {
	type point struct {
		batch int
		tbtMs float64
	}
	t := report.Table[point]{
		Title: "Decode Results (TBT in decode window)",
		Columns: []report.Column[point]{
			{Header: "Batch Size", Key: "batch_size", Value: func(p point) (float64, bool) { return float64(p.batch), true }},
			{Header: "P50 (ms)", Key: "p50_ms", Decimals: 2, Value: func(p point) (float64, bool) { return p.tbtMs, p.tbtMs > 0 }},
		},
		Rows:  []point{{1, 6.561}, {8, 0}},
		Notes: []string{"— : no sample in the decode window"},
	}
	_ = console.Table(os.Stdout, t, console.Options{})
	// Output:
	// ╭───────────────────────────────────────╮
	// │ Decode Results (TBT in decode window) │
	// ├────────────────────┬──────────────────┤
	// │         Batch Size │         P50 (ms) │
	// ├────────────────────┼──────────────────┤
	// │                  1 │             6.56 │
	// │                  8 │                — │
	// ╰────────────────────┴──────────────────╯
	// — : no sample in the decode window
}

func ExampleValidation() {
	var r validate.Report
	r.Add("session count", "", validate.Pass, "30 of 30 requests completed")
	_ = console.Validation(os.Stdout, r, console.Options{Box: console.Light})
	// Output:
	// ┌───────────────────────────────────────────────────────────────┐
	// │                      Post-Run Validation                      │
	// ├────────┬───────────────┬────────┬─────────────────────────────┤
	// │ Status │ Check         │ Passed │ Detail                      │
	// ├────────┼───────────────┼────────┼─────────────────────────────┤
	// │ PASS   │ session count │    1/1 │ 30 of 30 requests completed │
	// └────────┴───────────────┴────────┴─────────────────────────────┘
	// 1 passed, 0 warnings, 0 failures (every check: validation.json)
}
