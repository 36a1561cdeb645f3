package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/session"
)

// comparison is an earlier run to set this one against (--compare-to).
type comparison struct {
	dir  string
	name string
	// predicted says which run is a prediction (a run on a profile fitted
	// to a server's runs, sim:<dir>): "this", "other", or "" for neither
	// or both. The deltas are then labelled as prediction error.
	predicted string
	// differences names what the two runs measured differently, when
	// --compare-anyway let them be compared.
	differences []string
}

// setPrediction notes which of the runs is a prediction (results saved
// with settings.predicted: a run on a profile fitted to a server's runs).
func (cmp *comparison) setPrediction(thisPredicted, otherPredicted bool) {
	switch {
	case thisPredicted && !otherPredicted:
		cmp.predicted = "this"
	case otherPredicted && !thisPredicted:
		cmp.predicted = "other"
	}
}

// workload is what a run measured, as (setting, value) pairs in a fixed
// order: two runs compare only when they agree on every pair.
type workload [][2]string

// sameWorkload refuses a comparison between runs that measured different
// things, naming every difference in one line, unless anyway is set; then
// the differences are kept for the banner above the comparison table.
func (cmp *comparison) sameWorkload(this, other workload, anyway bool) error {
	theirs := map[string]string{}
	for _, kv := range other {
		theirs[kv[0]] = kv[1]
	}
	var diffs []string
	for _, kv := range this {
		if o, ok := theirs[kv[0]]; ok && o != kv[1] {
			diffs = append(diffs, fmt.Sprintf("%s %s vs %s", kv[0], kv[1], o))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if !anyway {
		return usagef("--compare-to %s measured a different workload (%s): add --compare-anyway to compare it under a banner naming the differences", cmp.dir, strings.Join(diffs, "; "))
	}
	cmp.differences = diffs
	return nil
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
func (cmp *comparison) write(files *runFiles, this, other view) (report.Table[compare.Delta], error) {
	deltas := compare.Deltas(this.values, other.values)
	table := compare.Table(deltas, cmp.dir+serverDifferences(this.meta, other.meta))
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

// printComparison prints a comparison table, or says that nothing matched;
// under a banner naming the workload differences, if any.
func printComparison(e *env, cmp *comparison, t report.Table[compare.Delta]) error {
	if len(cmp.differences) > 0 {
		fmt.Fprintf(e.stdout, "WARNING: comparing different workloads: %s\n", strings.Join(cmp.differences, "; "))
	}
	if len(t.Rows) == 0 {
		fmt.Fprintf(e.stdout, "%s: no point in common\n", t.Title)
		return nil
	}
	if err := console.Table(e.stdout, t, consoleOptions(e)); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	return nil
}

// serverDifferences names a different model or server of the two runs,
// for the comparison table's title: " (model a vs b)".
func serverDifferences(this, other *result.Meta) string {
	if this == nil || other == nil {
		return ""
	}
	var d []string
	if a, b := this.Settings.Model, other.Settings.Model; a != b {
		d = append(d, fmt.Sprintf("model %s vs %s", a, b))
	}
	if a, b := session.ServerLabel(this.Settings), session.ServerLabel(other.Settings); a != b {
		d = append(d, fmt.Sprintf("server %s vs %s", a, b))
	}
	if len(d) == 0 {
		return ""
	}
	return " (" + strings.Join(d, ", ") + ")"
}
