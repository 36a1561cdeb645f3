package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Column is one column of a Table over rows of type T. It is declared once
// and used by both the CSV writer and the console table, so their columns
// cannot drift apart.
type Column[T any] struct {
	// Header is the console heading, with its unit: "P50 (ms)".
	Header string
	// Key is the CSV heading, snake_case with its unit: "p50_ms".
	Key string
	// Decimals is how many decimals the console shows; CSV files always
	// carry the full value.
	Decimals int
	// Value returns the row's number in the column's unit (the unit named
	// in Header and Key). false, NaN or ±Inf mean the value is missing.
	Value func(T) (float64, bool)
	// Text returns the row's text for a non-numeric column. It is used
	// when Value is nil.
	Text func(T) string
}

// Table is a titled list of rows with its columns and notes (lines shown
// under the table on the console, e.g. how a value was measured).
type Table[T any] struct {
	Title   string
	Columns []Column[T]
	Rows    []T
	Notes   []string
}

// Cell is one formatted cell: Text is empty and Missing true when the value
// is missing; Numeric tells whether it came from Value (and should be
// right-aligned).
type Cell struct {
	Text    string
	Numeric bool
	Missing bool
}

// Validate checks that every column has a Key and a Header, that keys are
// unique, and that every column has a Value or a Text function.
func (t Table[T]) Validate() error {
	var errs []error
	seen := make(map[string]bool, len(t.Columns))
	for i, c := range t.Columns {
		switch {
		case c.Key == "":
			errs = append(errs, fmt.Errorf("table %q: column %d (%q) has no key", t.Title, i, c.Header))
		case seen[c.Key]:
			errs = append(errs, fmt.Errorf("table %q: column key %q is used twice", t.Title, c.Key))
		}
		seen[c.Key] = true
		if c.Header == "" {
			errs = append(errs, fmt.Errorf("table %q: column %q has no header", t.Title, c.Key))
		}
		if c.Value == nil && c.Text == nil {
			errs = append(errs, fmt.Errorf("table %q: column %q has neither a Value nor a Text function", t.Title, c.Key))
		}
		if c.Decimals < 0 {
			errs = append(errs, fmt.Errorf("table %q: column %q has negative decimals %d", t.Title, c.Key, c.Decimals))
		}
	}
	return errors.Join(errs...)
}

// Number returns the column's value for row, and false when it is missing
// (no Value function, Value said so, or the value is NaN or infinite).
func (c Column[T]) Number(row T) (float64, bool) {
	if c.Value == nil {
		return 0, false
	}
	v, ok := c.Value(row)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// Format returns the cell for row, numbers rounded to the column's
// Decimals (for display).
func (c Column[T]) Format(row T) Cell {
	if c.Value == nil {
		return Cell{Text: c.Text(row)}
	}
	v, ok := c.Number(row)
	if !ok {
		return Cell{Numeric: true, Missing: true}
	}
	return Cell{Text: strconv.FormatFloat(v, 'f', c.Decimals, 64), Numeric: true}
}

// WriteCSV writes t as CSV: a header row of the column Keys, then one line
// per row. Numbers carry full precision (FormatNumber); a missing value is
// an empty cell. It refuses text holding terminal escape codes, which must
// never reach a file.
func WriteCSV[T any](w io.Writer, t Table[T]) error {
	if err := t.Validate(); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	record := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		record[i] = c.Key
	}
	if err := cw.Write(record); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}
	for r, row := range t.Rows {
		for i, c := range t.Columns {
			switch {
			case c.Value != nil:
				record[i] = ""
				if v, ok := c.Number(row); ok {
					record[i] = FormatNumber(v)
				}
			default:
				record[i] = c.Text(row)
				if strings.Contains(record[i], "\x1b") {
					return fmt.Errorf("write csv: row %d column %q holds a terminal escape code: %q", r, c.Key, record[i])
				}
			}
		}
		if err := cw.Write(record); err != nil {
			return fmt.Errorf("write csv row %d: %w", r, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// FormatNumber formats v for a data file with full precision: the shortest
// text that parses back to exactly v. Whole numbers print as integers
// ("512", not "512.0" or "5.12e+02"); other values print in plain decimal
// ("12.345") unless they are tiny or huge (below 1e-4 or at 1e21 and above
// in magnitude), which use an exponent ("1.5e-06").
func FormatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1<<53:
		return strconv.FormatInt(int64(v), 10)
	case a >= 1e-4 && a < 1e21:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
}

// WriteJSON writes v as JSON indented by two spaces, with a trailing
// newline and without HTML escaping (so "<" stays "<").
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// Missing is what a table cell shows when its value is missing, on the
// console and in the HTML report alike.
const Missing = "—"

// Grid is a table as the reader sees it: every cell formatted as text
// (numbers rounded to their column's Decimals, Missing for a missing
// value). The console and the HTML report both draw Grids, so they show
// the same cells.
type Grid struct {
	Title  string
	Header []string
	// Numeric tells, per column, whether the cells are numbers (drawn
	// right-aligned and sorted as numbers).
	Numeric []bool
	Rows    [][]string
	Notes   []string
}

// Grid formats t for display.
func (t Table[T]) Grid() (Grid, error) {
	if err := t.Validate(); err != nil {
		return Grid{}, err
	}
	g := Grid{Title: t.Title, Header: make([]string, len(t.Columns)), Numeric: make([]bool, len(t.Columns)), Notes: t.Notes}
	for i, c := range t.Columns {
		g.Header[i] = c.Header
		g.Numeric[i] = c.Value != nil
	}
	g.Rows = make([][]string, len(t.Rows))
	for r, row := range t.Rows {
		g.Rows[r] = make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cell := c.Format(row)
			g.Rows[r][i] = cell.Text
			if cell.Missing {
				g.Rows[r][i] = Missing
			}
		}
	}
	return g, nil
}
