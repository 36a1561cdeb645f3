package chart

import (
	"bytes"
	"strings"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/report"
)

func testPage() Page {
	return Page{
		Title:       "Stress — llama3-8b",
		Verdict:     "WARN",
		VerdictText: "valid, with warnings",
		Facts:       [][2]string{{"Model", "llama3-8b"}, {"Note", `<b>not bold</b> & "quoted"`}},
		Results: report.Grid{
			Title: "Stress Results", Header: []string{"Concurrency", "E2E P50 (ms)"}, Numeric: []bool{false, true},
			Rows: [][]string{{"1", "212.17"}, {"2", report.Missing}}, Notes: []string{"closed loop"},
		},
		Charts: []report.Chart{{
			Name: "output_throughput_vs_latency", Title: "Output Throughput vs Latency", XLabel: "E2E Latency (ms)", YLabel: "Output Throughput (tok/s)",
			Series: []report.Series{{Name: "P50", X: []float64{212, 220}, Y: []float64{150, 291}, Labels: []string{"c=1", "c=2</script>"}}},
		}, {
			Name: "throughput_vs_load", Title: "Throughput vs Load", XLabel: "Concurrency", YLabel: "Throughput (tok/s)", LogX: true,
			Series: []report.Series{{Name: "Input", X: []float64{1, 2}, Y: []float64{563, 1126}}},
		}},
		ChartDir: "plots",
		Sections: []report.Grid{{Title: "Validation", Header: []string{"Status", "Check"}, Numeric: []bool{false, false}, Rows: [][]string{{"FAIL", "no_errors"}}}},
		Links:    []Link{{Name: "stress_results.json", Href: "stress_results.json"}},
	}
}

func TestWritePage(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WritePage(&b, testPage()); err != nil {
		t.Fatalf("WritePage: %v", err)
	}
	html := b.String()
	for _, want := range []string{
		`<div class="verdict v-WARN" id="verdict">WARN — valid, with warnings</div>`,
		`&lt;b&gt;not bold&lt;/b&gt; &amp; &#34;quoted&#34;`,
		`<table id="results" class="sortable">`,
		`<th class="num">E2E P50 (ms)</th>`,
		`<td class="num">212.17</td>`,
		`<td class="num">—</td>`,
		`<li>closed loop</li>`,
		`<a href="plots/throughput_vs_load.png">`,
		`id="chart_output_throughput_vs_latency"`,
		`"name":"c=1"`,      // the point's level
		`"formatter":"{b}"`, // written beside the point
		`c=2<\/script>`,     // a label cannot end the script
		`<td class=" FAIL">FAIL</td>`,
		`<a href="stress_results.json">stress_results.json</a>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// ECharts inline exactly once, nothing loaded from elsewhere.
	if n := strings.Count(html, echartsJS); n != 1 {
		t.Errorf("ECharts inlined %d times, want 1", n)
	}
	for _, bad := range []string{"<script src", "http://", "https://cdn", "<link "} {
		if strings.Contains(strings.ReplaceAll(html, echartsJS, ""), bad) {
			t.Errorf("page refers to something outside it: %q", bad)
		}
	}
}

func TestWritePageRefusesBadInput(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Page){
		"short row":       func(p *Page) { p.Results.Rows[0] = []string{"1"} },
		"bad chart name":  func(p *Page) { p.Charts[0].Name = "../x" },
		"labels too few":  func(p *Page) { p.Charts[0].Series[0].Labels = []string{"c=1"} },
		"numeric missing": func(p *Page) { p.Sections[0].Numeric = nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := testPage()
			mutate(&p)
			if err := WritePage(&bytes.Buffer{}, p); err == nil {
				t.Errorf("WritePage accepted a page with a %s", name)
			}
		})
	}
}
