package chart

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteIndexGolden(t *testing.T) {
	t.Parallel()
	page := Index{
		Title: "Veeksha prefill run 2026-03-07_23-07-30",
		Facts: [][2]string{
			{"Model", "llama3-8b"},
			{"API base", "sim"},
			{"PNG renderer", "gonum (no Chromium found)"},
			{"Note", `<b>not bold</b> & "quoted"`},
		},
		Links: []Link{
			{Name: "prefill_results.json", Href: "prefill_results.json"},
			{Name: "prefill_results.csv", Href: "prefill_results.csv"},
			{Name: "requests.jsonl", Href: "requests.jsonl"},
		},
		ChartDir: "plots",
		Charts:   []string{"ttfc_vs_input_length"},
	}
	var b bytes.Buffer
	if err := WriteIndex(&b, page); err != nil {
		t.Fatalf("WriteIndex: %v", err)
	}
	html := b.String()
	for _, want := range []string{
		`<a href="plots/ttfc_vs_input_length.html"><img src="plots/ttfc_vs_input_length.png"`,
		`<a href="requests.jsonl">requests.jsonl</a>`,
		`&lt;b&gt;not bold&lt;/b&gt; &amp; &#34;quoted&#34;`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(html, "http") || strings.Contains(html, "<script") {
		t.Errorf("index references the network or runs scripts:\n%s", html)
	}
	golden(t, "TestWriteIndex.golden", b.Bytes())
}

func TestWriteIndexChartsBeside(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteIndex(&b, Index{Title: "t", Charts: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<img src="a.png"`) {
		t.Errorf("with no ChartDir the PNG should be beside the index:\n%s", b.String())
	}
	if err := WriteIndex(&b, Index{Title: "t", Charts: []string{"../x"}}); err == nil {
		t.Errorf("WriteIndex with chart %q = nil, want an error", "../x")
	}
}
