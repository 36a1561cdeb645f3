package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/chart"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// reportPage builds the run's report page from its view: the header and
// verdict, the results table, the charts, the validation, the client
// fidelity and server metrics per point, the comparison, the settings
// and the files. pngs says whether the PNG snapshots were written.
func reportPage(title string, v view, charts []report.Chart, cmp *report.Grid, pngs bool) (chart.Page, error) {
	results, err := v.table.grid()
	if err != nil {
		return chart.Page{}, err
	}
	m := v.meta
	p := chart.Page{Title: title, Results: results, Charts: charts}
	if pngs {
		p.ChartDir = "plots"
	}
	p.Facts = append([][2]string{{"Benchmark", m.Type}}, v.facts...)
	p.Facts = append(p.Facts,
		[2]string{"Started", m.StartedAt.UTC().Format(time.RFC3339)},
		[2]string{"Duration", strconv.FormatFloat(m.DurationS, 'f', 1, 64) + " s"},
		[2]string{"End reason", m.EndReason},
		[2]string{"Tool version", m.ToolVersion},
		[2]string{"PNG snapshots", plotNote(*m)},
	)
	if rep := v.validation; rep != nil {
		p.Verdict, p.VerdictText = overallVerdict(*rep)
		if len(rep.Checks) > 0 {
			p.Sections = append(p.Sections, report.Grid{
				Title: "Validation", Header: []string{"Status", "Check", "Passed", "Detail"}, Numeric: make([]bool, 4),
				Rows: console.CheckRows(rep.Checks), Notes: []string{rep.Summary() + " (every check: validation.json)"},
			})
		}
		if len(rep.Thresholds) > 0 {
			p.Sections = append(p.Sections, report.Grid{
				Title: "Thresholds", Header: []string{"Status", "Threshold", "Held", "Value"}, Numeric: make([]bool, 4),
				Rows: console.CheckRows(rep.Thresholds),
			})
		}
	}
	if g, ok := report.FidelityGrid(v.points); ok {
		p.Sections = append(p.Sections, g)
	}
	if g, ok := report.ServerGrid(v.points); ok {
		p.Sections = append(p.Sections, g)
	}
	if cmp != nil {
		p.Sections = append(p.Sections, *cmp)
	}
	settings, err := settingsGrid(v.results)
	if err != nil {
		return chart.Page{}, err
	}
	p.Sections = append(p.Sections, settings)
	return p, nil
}

// overallVerdict is the run's outcome in one word and in words: a failed
// check first (the measurement is not valid), then a crossed threshold,
// then warnings.
func overallVerdict(r validate.Report) (string, string) {
	th := ""
	if len(r.Thresholds) > 0 {
		th = "; thresholds held"
		if r.Crossed() {
			th = "; thresholds crossed (the server is slower than the gate)"
		}
	}
	switch {
	case r.Failed():
		return "FAIL", "the measurement is not valid: " + r.Summary() + th
	case r.Crossed():
		return "FAIL", "a valid measurement" + th + " — " + r.Summary()
	case r.Count(validate.Warn) > 0:
		return "WARN", "valid, with warnings: " + r.Summary() + th
	case r.Count(validate.Skip) > 0:
		return "PASS", "every check that could be evaluated passed: " + r.Summary() + th
	default:
		return "PASS", "every check passed: " + r.Summary() + th
	}
}

// settingsGrid lists every setting that shaped the run — the server
// settings and the benchmark's configuration, as echoed in the results
// JSON — one row per leaf, sorted. No API key is ever in them; a key
// named like one is left out all the same.
func settingsGrid(results any) (report.Grid, error) {
	b, err := json.Marshal(results)
	if err != nil {
		return report.Grid{}, fmt.Errorf("settings: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return report.Grid{}, fmt.Errorf("settings: %w", err)
	}
	var rows [][]string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if k := strings.ToLower(prefix); strings.Contains(k, "api_key") || strings.Contains(k, "apikey") {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(prefix+"."+k, e)
			}
		case nil:
		default:
			s, _ := json.Marshal(x) // values that came from JSON marshal again
			rows = append(rows, []string{strings.TrimPrefix(prefix, "."), string(s)})
		}
	}
	walk("settings", doc["settings"])
	walk("config", doc["config"])
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return report.Grid{Title: "Settings", Header: []string{"Setting", "Value"}, Numeric: []bool{false, false}, Rows: rows}, nil
}

// page writes index.html, the run's report page, linking every file
// written so far.
func (f *runFiles) page(p chart.Page) error {
	p.Links = f.links
	return f.dir.WriteFile("index.html", func(w io.Writer) error { return chart.WritePage(w, p) })
}
