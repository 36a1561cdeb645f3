package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/predict"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
)

// comparison is an earlier run to set this one against (--compare-to).
type comparison struct {
	dir  string
	name string
	// predicted says which run is a prediction (a run on a profile fitted
	// to a server's runs, sim:<dir>): "this", "other", or "" for neither
	// or both. The deltas are then labelled as prediction error.
	predicted string
}

// setPrediction finds which of the runs is a prediction, given whether
// this run's engine profile was fitted to a server's runs.
func (cmp *comparison) setPrediction(thisFitted bool) {
	_, err := os.Stat(filepath.Join(cmp.dir, predict.ProfileFile))
	switch otherFitted := err == nil; {
	case thisFitted && !otherFitted:
		cmp.predicted = "this"
	case otherFitted && !thisFitted:
		cmp.predicted = "other"
	}
}

// resolveComparison finds the --compare-to run. It is called before the
// run starts, so that "latest" means the run before this one.
func (c *Common) resolveComparison(b Bench) (*comparison, error) {
	if c.CompareTo == "" {
		return nil, nil
	}
	dir, err := report.Resolve(c.OutputDir, string(b), c.CompareTo)
	if err != nil {
		return nil, usagef("--compare-to: %v", err)
	}
	return &comparison{dir: dir, name: filepath.Base(dir)}, nil
}

// write saves comparison.json and comparison.csv into the run and returns
// the table to print.
func (cmp *comparison) write(files *runFiles, this, other []compare.Value) (report.Table[compare.Delta], error) {
	deltas := compare.Deltas(this, other)
	table := compare.Table(deltas, cmp.dir)
	if cmp.predicted != "" {
		table = compare.PredictionTable(deltas, cmp.predicted == "this", cmp.dir)
	}
	doc := struct {
		Other  string          `json:"other_run"`
		Deltas []compare.Delta `json:"deltas"`
	}{cmp.dir, deltas}
	if files != nil {
		if err := files.json("comparison.json", doc); err != nil {
			return table, err
		}
		if err := files.write("comparison.csv", func(w io.Writer) error { return report.WriteCSV(w, table) }); err != nil {
			return table, err
		}
	}
	return table, nil
}

// printComparison prints a comparison table, or says that nothing matched.
func printComparison(e *env, t report.Table[compare.Delta]) error {
	if len(t.Rows) == 0 {
		fmt.Fprintf(e.stdout, "%s: no point in common\n", t.Title)
		return nil
	}
	if err := console.Table(e.stdout, t, consoleOptions(e)); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	return nil
}
