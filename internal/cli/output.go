package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/chart"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// plotTimeout bounds the chart rendering of one run: a browser that hangs
// must not keep results from being written.
const plotTimeout = 2 * time.Minute

// runFiles writes one run's files into its folder and remembers what it
// wrote for the index page.
type runFiles struct {
	dir   *report.Dir
	log   *slog.Logger
	links []chart.Link
}

func newRunFiles(dir *report.Dir, log *slog.Logger) *runFiles {
	return &runFiles{dir: dir, log: log}
}

func (f *runFiles) write(rel string, fn func(io.Writer) error) error {
	if err := f.dir.WriteFile(rel, fn); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	f.links = append(f.links, chart.Link{Name: rel, Href: filepath.ToSlash(rel)})
	return nil
}

func (f *runFiles) requests(rel string, reqs []result.Request) error {
	return f.write(rel, func(w io.Writer) error { return result.WriteJSONL(w, reqs) })
}

func (f *runFiles) json(rel string, v any) error {
	return f.write(rel, func(w io.Writer) error { return report.WriteJSON(w, v) })
}

func writeCSV[T any](f *runFiles, rel string, t report.Table[T]) error {
	return f.write(rel, func(w io.Writer) error { return report.WriteCSV(w, t) })
}

// plots renders the charts into plots/. A rendering failure is logged and
// recorded, never fatal: the measurements are already on disk.
func (f *runFiles) plots(ctx context.Context, charts []report.Chart, meta *result.Meta) []string {
	if len(charts) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), plotTimeout)
	defer cancel()
	res, err := chart.WriteAll(pctx, filepath.Join(f.dir.Path(), "plots"), charts, chart.Options{Logger: f.log})
	meta.PlotRenderer, meta.PlotFallbackReason = res.Renderer, res.FallbackReason
	if err != nil {
		f.log.Warn("could not draw the plots", "err", err)
		meta.PlotFallbackReason = err.Error()
		return nil
	}
	stems := make([]string, 0, len(charts))
	for _, c := range charts {
		stems = append(stems, c.Name)
	}
	return stems
}

// index writes index.html linking everything written so far.
func (f *runFiles) index(title string, facts [][2]string, charts []string) error {
	page := chart.Index{Title: title, Facts: facts, Links: f.links, ChartDir: "plots", Charts: charts}
	return f.write("index.html", func(w io.Writer) error { return chart.WriteIndex(w, page) })
}

// consoleOptions are the console writers' options for this process.
func consoleOptions(e *env) console.Options {
	return console.Options{Color: e.stdoutTTY, Width: e.width}
}

// finishValidation prints the validation table and turns a failure into
// exit code 3.
func finishValidation(e *env, rep *validate.Report) error {
	if rep == nil {
		return nil
	}
	if err := console.Validation(e.stdout, *rep, consoleOptions(e)); err != nil {
		return fmt.Errorf("print validation: %w", err)
	}
	if rep.Failed() {
		return exitError{code: ExitValidation}
	}
	return nil
}

// meta starts a results header for a run.
func newMeta(e *env, bench Bench, metric string, started time.Time, settings result.Settings) result.Meta {
	return result.Meta{
		SchemaVersion: result.SchemaVersion, Tool: result.Tool, ToolVersion: e.build.String(),
		Type: string(bench), Metric: metric, StartedAt: started.UTC(), Settings: settings,
		Definitions: result.Definitions(),
	}
}

// runOutput is everything a finished run writes and prints after its own
// files (requests, per-point folders) are on disk.
type runOutput[T any] struct {
	// title heads index.html, facts are its key/value table.
	title string
	facts [][2]string
	// charts are the run's plots (comparison overlays included).
	charts []report.Chart
	// meta is the results header; the plots record their renderer in it
	// before results is written.
	meta *result.Meta
	// resultsFile and results are the results JSON.
	resultsFile string
	results     any
	// csvFile and table are the results table, as CSV and on the console.
	csvFile string
	table   report.Table[T]
	// validation is nil with --skip-validation.
	validation *validate.Report
	// cmp, this and other compare with an earlier run when cmp is set.
	cmp         *comparison
	this, other []compare.Value
}

// finishRun draws the plots, writes the results JSON and CSV, the
// validation, the comparison and index.html, renames the run folder into
// place, and prints the results (and comparison) tables. What is left is
// the caller's exit code.
func finishRun[T any](ctx context.Context, e *env, dir *report.Dir, files *runFiles, o runOutput[T]) error {
	stems := files.plots(ctx, o.charts, o.meta)
	if err := files.json(o.resultsFile, o.results); err != nil {
		return err
	}
	if err := writeCSV(files, o.csvFile, o.table); err != nil {
		return err
	}
	if o.validation != nil {
		if err := files.json("validation.json", o.validation); err != nil {
			return err
		}
	}
	var cmpTable report.Table[compare.Delta]
	if o.cmp != nil {
		var err error
		if cmpTable, err = o.cmp.write(files, o.this, o.other); err != nil {
			return err
		}
	}
	facts := append(o.facts, [2]string{"Started", o.meta.StartedAt.Format(time.RFC3339)}, [2]string{"End", o.meta.EndReason})
	if err := files.index(o.title, facts, stems); err != nil {
		return err
	}
	if err := dir.Finish(); err != nil {
		return fmt.Errorf("finish the run folder: %w", err)
	}
	if err := console.Table(e.stdout, o.table, consoleOptions(e)); err != nil {
		return fmt.Errorf("print results: %w", err)
	}
	if o.cmp != nil {
		if err := printComparison(e, cmpTable); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Results saved to %s (plots: %s)\n", dir.FinalPath(), plotNote(*o.meta))
	return nil
}

// plotNote says which renderer drew the PNGs.
func plotNote(m result.Meta) string {
	switch {
	case m.PlotRenderer == "":
		return "none"
	case m.PlotFallbackReason != "":
		return m.PlotRenderer + ", because " + m.PlotFallbackReason
	default:
		return m.PlotRenderer
	}
}
