package report_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// lengthPoint is a row of the example table.
type lengthPoint struct {
	InputLength int
	TTFCms      float64
}

func Example() {
	base, err := os.MkdirTemp("", "veeksha-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)

	// One table declaration feeds the CSV file and the console table.
	table := report.Table[lengthPoint]{
		Title: "Prefill Results (TTFC)",
		Columns: []report.Column[lengthPoint]{
			{Header: "Input Length", Key: "input_length", Value: func(p lengthPoint) (float64, bool) { return float64(p.InputLength), true }},
			{Header: "P50 (ms)", Key: "p50_ms", Decimals: 2, Value: func(p lengthPoint) (float64, bool) { return p.TTFCms, p.TTFCms > 0 }},
		},
		Rows: []lengthPoint{{128, 6.4321}, {256, 0}},
	}

	start := time.Date(2026, 3, 7, 23, 7, 30, 0, time.UTC)
	d, err := report.Create(base, "prefill", start)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = d.WriteFile("prefill_results.csv", func(w io.Writer) error { return report.WriteCSV(w, table) })
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := d.Finish(); err != nil {
		fmt.Println(err)
		return
	}

	// Later, --validate-only finds the run through `latest`.
	dir, err := report.Resolve(base, "prefill", "latest")
	if err != nil {
		fmt.Println(err)
		return
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "prefill_results.csv"))
	fmt.Println(filepath.Base(dir))
	fmt.Print(string(csv))
	// Output:
	// 2026-03-07_23-07-30
	// input_length,p50_ms
	// 128,6.4321
	// 256,
}
