package chart_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/chart"
)

func ExampleWriteAll() {
	dir := filepath.Join(os.TempDir(), "run", "plots")
	charts := []report.Chart{{
		Name:   "ttfc_vs_input_length",
		Title:  "Time to First Token vs Input Length",
		XLabel: "Input Length (tokens)",
		YLabel: "TTFC (ms)",
		Series: []report.Series{
			{Name: "P50", X: []float64{128, 256, 512}, Y: []float64{6.4, 7.1, 15.6}},
			{Name: "P99", X: []float64{128, 256, 512}, Y: []float64{7.4, 8.1, 17.6}, Dashed: true},
		},
	}}
	res, err := chart.WriteAll(context.Background(), dir, charts, chart.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if res.FallbackReason != "" {
		fmt.Println("PNGs drawn with", res.Renderer, "because", res.FallbackReason)
	}
	// The run's report page, one folder up: the charts inline and
	// interactive, the PNGs linked.
	page := chart.Page{
		Title:    "Veeksha prefill run",
		Facts:    [][2]string{{"PNG renderer", res.Renderer}},
		Charts:   charts,
		ChartDir: "plots",
		Links:    []chart.Link{{Name: "prefill_results.json", Href: "prefill_results.json"}},
	}
	err = report.WriteFileAtomic(filepath.Join(dir, "..", "index.html"), func(w io.Writer) error {
		return chart.WritePage(w, page)
	})
	if err != nil {
		fmt.Println(err)
	}
}
