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
const Missing = report.Missing

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
	g, err := t.Grid()
	if err != nil {
		return err
	}
	return render(w, grid{title: g.Title, header: g.Header, right: g.Numeric, rows: g.Rows, notes: g.Notes}, opts)
}

// CheckRows are the rows Validation and Thresholds draw for cs, without
// colour: Status, Check, Passed, Detail.
func CheckRows(cs []validate.Check) [][]string { return grouped(cs, Options{}) }

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

// Validation writes the checks of r as Status | Check | Passed | Detail,
// one row per check across all points ("batch_held PASS 10/10") and a
// detail row for each point that warned or failed, then the summary line
// ("7 passed, 1 warnings, 0 failures"). The title says "Failures
// Detected" when a check failed. The thresholds of r, if any, follow in
// their own table (Thresholds). validation.json keeps every check.
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

// Thresholds writes one row per threshold across the points (its worst
// status and how many points held), then a row per point where it was
// crossed or not measured, then the counts.
func Thresholds(w io.Writer, ths []validate.Check, opts Options) error {
	g := grid{
		title:  "Thresholds",
		header: []string{"Status", "Threshold", "Held", "Value"},
		right:  []bool{false, false, true, false},
		rows:   grouped(ths, opts),
	}
	held, crossed := 0, 0
	for _, c := range ths {
		switch c.Status {
		case validate.Pass:
			held++
		case validate.Fail:
			crossed++
		}
	}
	if crossed > 0 {
		g.title = "Thresholds — Crossed"
	}
	g.notes = []string{fmt.Sprintf("%d held, %d crossed, %d not measured (every point: thresholds in validation.json)", held, crossed, len(ths)-held-crossed)}
	return render(w, g, opts)
}

// checks writes the validity checks of r, one row per check across the
// points and a detail row per WARN, FAIL or SKIP.
func checks(w io.Writer, r validate.Report, opts Options) error {
	g := grid{
		title:  "Post-Run Validation",
		header: []string{"Status", "Check", "Passed", "Detail"},
		right:  []bool{false, false, true, false},
		rows:   grouped(r.Checks, opts),
		notes:  []string{r.Summary() + " (every check: validation.json)"},
	}
	if r.Failed() {
		g.title = "Post-Run Validation — Failures Detected"
	}
	return render(w, g, opts)
}

// grouped folds checks of one name into one row: the worst status, the
// name, passed/total and, for a single check, its detail. A name checked
// at several points is followed by a row per WARN, FAIL or SKIP point, with its
// label and detail (a SKIP's is its reason). Names keep the order of
// their first check.
func grouped(cs []validate.Check, opts Options) [][]string {
	var names []string
	byName := map[string][]validate.Check{}
	for _, c := range cs {
		if _, ok := byName[c.Name]; !ok {
			names = append(names, c.Name)
		}
		byName[c.Name] = append(byName[c.Name], c)
	}
	paint := func(s validate.Status) string {
		if opts.Color {
			return statusColors(s).Sprint(string(s))
		}
		return string(s)
	}
	var rows [][]string
	for _, name := range names {
		group := byName[name]
		worst, passed := validate.Pass, 0
		for _, c := range group {
			if c.Status == validate.Pass {
				passed++
			}
			if rank(c.Status) > rank(worst) {
				worst = c.Status
			}
		}
		count := fmt.Sprintf("%d/%d", passed, len(group))
		if len(group) == 1 {
			rows = append(rows, []string{paint(worst), group[0].Title(), count, group[0].Detail})
			continue
		}
		rows = append(rows, []string{paint(worst), name, count, ""})
		for _, c := range group {
			if c.Status != validate.Pass {
				rows = append(rows, []string{paint(c.Status), "  " + c.Label, "", c.Detail})
			}
		}
	}
	return rows
}

// rank orders statuses from best to worst. A check skipped at some point
// shows SKIP over PASS, so that a point it could not evaluate is listed.
func rank(s validate.Status) int {
	switch s {
	case validate.Fail:
		return 3
	case validate.Warn:
		return 2
	case validate.Skip:
		return 1
	}
	return 0
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
	case validate.Skip:
		return text.Colors{text.FgHiBlack}
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
