package console

import (
	"fmt"
	"io"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Missing is what a cell shows when its value is missing.
const Missing = "—"

// Box is a table's border style.
type Box int

// The border styles.
const (
	// Rounded draws ╭─┬─╮ corners (the default).
	Rounded Box = iota
	// Light draws ┌─┬─┐ corners.
	Light
)

// minColumnWidth is the narrowest a column is squeezed to when the table is
// wider than the terminal.
const minColumnWidth = 6

// Options control how tables are drawn.
type Options struct {
	// Color turns on bold titles and headers and coloured statuses. Set it
	// only when the output is a terminal.
	Color bool
	// Width is the terminal width in columns; 0 means unknown (no limit).
	// A table wider than Width has its widest columns wrapped at word
	// boundaries.
	Width int
	// Box is the border style.
	Box Box
}

// Table writes t as a titled table: headers in their own case, numbers
// right-aligned with each column's Decimals, Missing for missing values,
// then t.Notes, one per line, under the table.
func Table[T any](w io.Writer, t report.Table[T], opts Options) error {
	if err := t.Validate(); err != nil {
		return err
	}
	header := make([]string, len(t.Columns))
	right := make([]bool, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.Header
		right[i] = c.Value != nil
	}
	rows := make([][]string, len(t.Rows))
	for r, row := range t.Rows {
		rows[r] = make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cell := c.Format(row)
			rows[r][i] = cell.Text
			if cell.Missing {
				rows[r][i] = Missing
			}
		}
	}
	return render(w, grid{title: t.Title, header: header, right: right, rows: rows, notes: t.Notes}, opts)
}

// Banner writes a titled key/value panel, e.g. the run's configuration
// under "Veeksha Microbenchmark — prefill".
func Banner(w io.Writer, title string, rows [][2]string, opts Options) error {
	g := grid{title: title, right: []bool{false, false}}
	for _, r := range rows {
		key := r[0]
		if opts.Color {
			key = text.Bold.Sprint(key)
		}
		g.rows = append(g.rows, []string{key, r[1]})
	}
	return render(w, g, opts)
}

// Validation writes every check of r as Status | Check | Detail, then the
// summary line ("7 passed, 1 warnings, 0 failures"). The title says
// "Failures Detected" when a check failed. The thresholds of r, if any,
// follow in their own table (Thresholds).
func Validation(w io.Writer, r validate.Report, opts Options) error {
	if len(r.Checks) > 0 || len(r.Thresholds) == 0 {
		if err := checks(w, r, opts); err != nil {
			return err
		}
	}
	if len(r.Thresholds) > 0 {
		return Thresholds(w, r.Thresholds, opts)
	}
	return nil
}

// Thresholds writes each threshold at each point as Status | Threshold |
// Point | Value, then how many held. The title says "Crossed" when one
// failed.
func Thresholds(w io.Writer, ths []validate.Check, opts Options) error {
	g := grid{
		title:  "Thresholds",
		header: []string{"Status", "Threshold", "Point", "Value"},
		right:  []bool{false, false, false, false},
	}
	held, crossed := 0, 0
	for _, c := range ths {
		switch c.Status {
		case validate.Pass:
			held++
		case validate.Fail:
			crossed++
		}
		status := string(c.Status)
		if opts.Color {
			status = statusColors(c.Status).Sprint(status)
		}
		g.rows = append(g.rows, []string{status, c.Name, c.Label, c.Detail})
	}
	if crossed > 0 {
		g.title = "Thresholds — Crossed"
	}
	g.notes = []string{fmt.Sprintf("%d held, %d crossed, %d not measured", held, crossed, len(ths)-held-crossed)}
	return render(w, g, opts)
}

// checks writes the validity checks of r.
func checks(w io.Writer, r validate.Report, opts Options) error {
	g := grid{
		title:  "Post-Run Validation",
		header: []string{"Status", "Check", "Detail"},
		right:  []bool{false, false, false},
		notes:  []string{r.Summary()},
	}
	if r.Failed() {
		g.title = "Post-Run Validation — Failures Detected"
	}
	for _, c := range r.Checks {
		status := string(c.Status)
		if opts.Color {
			status = statusColors(c.Status).Sprint(status)
		}
		g.rows = append(g.rows, []string{status, c.Title(), c.Detail})
	}
	return render(w, g, opts)
}

// statusColors returns the colours of a check status.
func statusColors(s validate.Status) text.Colors {
	switch s {
	case validate.Pass:
		return text.Colors{text.FgGreen, text.Bold}
	case validate.Warn:
		return text.Colors{text.FgYellow, text.Bold}
	case validate.Fail:
		return text.Colors{text.FgRed, text.Bold}
	}
	return nil
}

// grid is a table reduced to strings: what every writer here draws.
type grid struct {
	title  string
	header []string // nil: no header row
	right  []bool   // right-align column i
	rows   [][]string
	notes  []string
}

// render draws g with go-pretty and writes it, with its notes, to w.
func render(w io.Writer, g grid, opts Options) error {
	tw := table.NewWriter()
	style := table.StyleRounded
	if opts.Box == Light {
		style = table.StyleLight
	}
	style.Format.Header = text.FormatDefault // keep "P50 (ms)", not "P50 (MS)"
	style.Title.Align = text.AlignCenter
	if opts.Color {
		style.Title.Colors = text.Colors{text.Bold}
		style.Color.Header = text.Colors{text.Bold}
		style.Options.DoNotColorBordersAndSeparators = true
	}
	tw.SetStyle(style)
	if g.title != "" {
		tw.SetTitle("%s", g.title)
	}
	if g.header != nil {
		tw.AppendHeader(toRow(g.header))
	}
	for _, r := range g.rows {
		tw.AppendRow(toRow(r))
	}

	widths := naturalWidths(g)
	limits := fitWidths(widths, opts.Width)
	configs := make([]table.ColumnConfig, len(widths))
	for i := range widths {
		configs[i] = table.ColumnConfig{Number: i + 1}
		if i < len(g.right) && g.right[i] {
			configs[i].Align = text.AlignRight
			configs[i].AlignHeader = text.AlignRight
		}
		if limits[i] < widths[i] {
			configs[i].WidthMax = limits[i]
			configs[i].WidthMaxEnforcer = text.WrapSoft
		}
	}
	tw.SetColumnConfigs(configs)

	// Keep the title on one line when it fits the terminal: a narrow table
	// would otherwise wrap it.
	if g.title != "" {
		min := text.StringWidthWithoutEscSequences(g.title) + 4
		if opts.Width > 0 && min > opts.Width {
			min = opts.Width
		}
		tw.Style().Size.WidthMin = min
	}

	var b strings.Builder
	b.WriteString(tw.Render())
	b.WriteByte('\n')
	for _, n := range g.notes {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table %q: %w", g.title, err)
	}
	return nil
}

func toRow(cells []string) table.Row {
	r := make(table.Row, len(cells))
	for i, c := range cells {
		r[i] = c
	}
	return r
}

// naturalWidths returns each column's width when nothing is wrapped: its
// widest line over the header and all cells.
func naturalWidths(g grid) []int {
	n := len(g.header)
	for _, r := range g.rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	measure := func(cells []string) {
		for i, c := range cells {
			for line := range strings.SplitSeq(c, "\n") {
				widths[i] = max(widths[i], text.StringWidthWithoutEscSequences(line))
			}
		}
	}
	measure(g.header)
	for _, r := range g.rows {
		measure(r)
	}
	return widths
}

// fitWidths returns column width limits so that the table fits in total
// terminal columns: it narrows the widest column, one step at a time, until
// the table fits or every column is down to minColumnWidth. total 0 means
// no limit.
func fitWidths(widths []int, total int) []int {
	limits := append([]int(nil), widths...)
	if total <= 0 || len(widths) == 0 {
		return limits
	}
	// Each column takes its width plus one space of padding on each side
	// and one border; the table adds one more border.
	budget := total - 3*len(widths) - 1
	sum := 0
	for _, l := range limits {
		sum += l
	}
	for sum > budget {
		widest := 0
		for i, l := range limits {
			if l > limits[widest] {
				widest = i
			}
		}
		if limits[widest] <= minColumnWidth {
			break
		}
		limits[widest]--
		sum--
	}
	return limits
}
