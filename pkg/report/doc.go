// Package report writes a benchmark run's results to disk: it owns the run
// folder (<base>/<bench>/<UTC timestamp>, built under a staging name and
// renamed when complete, plus a relative `latest` link), atomic file writes,
// and the generic result tables that both the CSV files and the console
// output (package report/console) are built from, so the two cannot drift.
// Chart and Series describe a run's line charts as plain data, so the
// benchmarks can build them without importing a renderer; package
// report/chart draws them.
//
// A run's output is created like this:
//
//	d, err := report.Create(outDir, "prefill", time.Now())
//	...
//	err = d.WriteFile("prefill_results.csv", func(w io.Writer) error {
//		return report.WriteCSV(w, table)
//	})
//	...
//	err = d.Finish() // <outDir>/prefill/<ts>.partial -> <outDir>/prefill/<ts>, latest -> <ts>
//
// Nothing in this package prints, reads the environment or knows about a
// particular benchmark.
package report
