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
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// plotTimeout bounds the chart rendering of one run: a browser that hangs
// must not keep results from being written.
const plotTimeout = 2 * time.Minute

// runFiles writes one run's files into its folder and remembers what it
// wrote for the report page.
type runFiles struct {
	dir   *report.Dir
	log   *slog.Logger
	links []chart.Link
	// renderer draws the PNG charts (--plot-renderer).
	renderer string
}

func newRunFiles(dir *report.Dir, log *slog.Logger, renderer string) *runFiles {
	return &runFiles{dir: dir, log: log, renderer: renderer}
}

func (f *runFiles) write(rel string, fn func(io.Writer) error) error {
	if err := f.dir.WriteFile(rel, fn); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	f.links = append(f.links, chart.Link{Name: rel, Href: filepath.ToSlash(rel)})
	return nil
}

// records opens a record file that requests stream into as they end.
func (f *runFiles) records(rel string) (runner.Sink, error) {
	rf, err := f.dir.Records(rel)
	if err != nil {
		return nil, err
	}
	f.links = append(f.links, chart.Link{Name: rel, Href: filepath.ToSlash(rel)})
	return rf, nil
}

func (f *runFiles) json(rel string, v any) error {
	return f.write(rel, func(w io.Writer) error { return report.WriteJSON(w, v) })
}

// plots renders the charts into plots/. A rendering failure is logged and
// recorded, never fatal: the measurements are already on disk.
func (f *runFiles) plots(ctx context.Context, charts []report.Chart, meta *result.Meta) []string {
	if len(charts) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), plotTimeout)
	defer cancel()
	res, err := chart.WriteAll(pctx, filepath.Join(f.dir.Path(), "plots"), charts, chart.Options{Logger: f.log, Renderer: f.renderer})
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

// consoleOptions are the console writers' options for this process.
func consoleOptions(e *env) console.Options {
	return console.Options{Color: e.stdoutTTY, Width: e.width}
}

// finishValidation prints the validation and thresholds tables and turns
// a failed check into exit code 3, else a crossed threshold into 4.
func finishValidation(e *env, rep *validate.Report) error {
	if rep == nil {
		return nil
	}
	if err := console.Validation(e.stdout, *rep, consoleOptions(e)); err != nil {
		return fmt.Errorf("print validation: %w", err)
	}
	switch {
	case rep.Failed():
		return exitError{code: ExitValidation}
	case rep.Crossed():
		return exitError{code: ExitThreshold}
	}
	return nil
}

// finishRun writes what was measured first — the results JSON and CSV,
// the validation, the comparison — and prints the results table, then
// draws the PNG plots, rewrites the
// results JSON with the renderer used, writes index.html and renames the
// run folder into place. A full disk loses plots, never results: a
// failure after the results are written is logged, and the folder is
// still finished. What is left is the caller's exit code.
func finishRun(ctx context.Context, e *env, dir *report.Dir, files *runFiles, title string, v view, cmp *comparison, other view) error {
	if err := files.json(v.resultsFile, v.results); err != nil {
		return err
	}
	if err := files.write(v.csvFile, v.table.csv); err != nil {
		return err
	}
	if v.validation != nil {
		if err := files.json("validation.json", v.validation); err != nil {
			return err
		}
	}
	var cmpTable report.Table[compare.Delta]
	if cmp != nil {
		var err error
		if cmpTable, err = cmp.write(files, v, other); err != nil {
			return err
		}
	}
	if err := v.table.print(e.stdout, consoleOptions(e)); err != nil {
		return fmt.Errorf("print results: %w", err)
	}
	if cmp != nil {
		if err := printComparison(e, cmp, cmpTable); err != nil {
			return err
		}
	}

	charts := v.charts
	if cmp != nil {
		charts = append(charts, compare.Overlay(v.charts, other.charts, "this run", cmp.name)...)
	}
	stems := files.plots(ctx, charts, v.meta)
	if v.meta.PlotRenderer != "" || v.meta.PlotFallbackReason != "" {
		// Say which renderer drew the plots; the results are already safe.
		if err := files.dir.WriteFile(v.resultsFile, func(w io.Writer) error { return report.WriteJSON(w, v.results) }); err != nil {
			files.log.Warn("could not record the plot renderer in the results", "err", err)
		}
	}
	var cmpGrid *report.Grid
	if cmp != nil {
		g, err := cmpTable.Grid()
		if err != nil {
			files.log.Warn("could not lay out the comparison for the report page", "err", err)
		} else {
			cmpGrid = &g
		}
	}
	if p, err := reportPage(title, v, charts, cmpGrid, stems != nil); err != nil {
		files.log.Warn("could not build the report page", "err", err)
	} else if err := files.page(p); err != nil {
		files.log.Warn("could not write the report page", "err", err)
	}
	if err := dir.Finish(); err != nil {
		return fmt.Errorf("finish the run folder: %w", err)
	}
	fmt.Fprintf(e.stdout, "Results saved to %s (plots: %s)\n", dir.FinalPath(), plotNote(*v.meta))
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
