package cli

import (
	"fmt"
	"path/filepath"

	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
)

// comparison is an earlier run to set this one against (--compare-to).
type comparison struct {
	dir  string
	name string
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

// load reads the other run's results file into v.
func (cmp *comparison) load(file string, v any) error {
	if err := readJSON(filepath.Join(cmp.dir, file), v); err != nil {
		return usagef("--compare-to %s: %v", cmp.dir, err)
	}
	return nil
}

// overlay is the comparison's extra charts (none without a comparison).
func (cmp *comparison) overlay(this, other []report.Chart) []report.Chart {
	if cmp == nil {
		return nil
	}
	return compare.Overlay(this, other, "this run", cmp.name)
}

// write saves comparison.json and comparison.csv into the run and returns
// the table to print.
func (cmp *comparison) write(files *runFiles, this, other []compare.Value) (report.Table[compare.Delta], error) {
	deltas := compare.Deltas(this, other)
	table := compare.Table(deltas, cmp.dir)
	doc := struct {
		Other  string          `json:"other_run"`
		Deltas []compare.Delta `json:"deltas"`
	}{cmp.dir, deltas}
	if files != nil {
		if err := files.json("comparison.json", doc); err != nil {
			return table, err
		}
		if err := writeCSV(files, "comparison.csv", table); err != nil {
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
