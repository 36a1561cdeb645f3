package report

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", name, diff)
	}
}

// point is a row type like a benchmark's result point.
type point struct {
	length int
	p50ms  float64
	count  int
	label  string
}

func sampleTable() Table[point] {
	return Table[point]{
		Title: "Sample",
		Columns: []Column[point]{
			{Header: "Input Length", Key: "input_length", Value: func(p point) (float64, bool) { return float64(p.length), true }},
			{Header: "P50 (ms)", Key: "p50_ms", Decimals: 2, Value: func(p point) (float64, bool) { return p.p50ms, p.count > 0 }},
			{Header: "Count", Key: "count", Value: func(p point) (float64, bool) { return float64(p.count), true }},
			{Header: "Label", Key: "label", Text: func(p point) string { return p.label }},
		},
		Rows: []point{
			{length: 128, p50ms: 12.345678901234, count: 10, label: "plain"},
			{length: 1000000, p50ms: 1500, count: 3, label: `with "quote", comma`},
			{length: 256, p50ms: 99, count: 0, label: ""},              // missing p50
			{length: 512, p50ms: math.NaN(), count: 5, label: "nan"},   // NaN is missing too
			{length: 1024, p50ms: 0.00001234, count: 1, label: "tiny"}, // exponent form
		},
	}
}

func TestWriteCSVGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, sampleTable()); err != nil {
		t.Fatalf("WriteCSV: %v", err)
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b")) {
		t.Errorf("CSV holds an escape code:\n%s", buf.String())
	}
	golden(t, "TestWriteCSV.golden", buf.Bytes())
}

func TestFormatNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{512, "512"},
		{-3, "-3"},
		{1e6, "1000000"},
		{12345678901, "12345678901"},
		{12.5, "12.5"},
		{0.1, "0.1"},
		{1234.5678, "1234.5678"},
		{0.0001, "0.0001"},
		{0.00001234, "1.234e-05"},
		{1e22, "1e+22"},
		{1.0 / 3, "0.3333333333333333"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.in); got != tt.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteCSVRejects(t *testing.T) {
	t.Parallel()
	text := func(s string) func(point) string { return func(point) string { return s } }
	tests := []struct {
		name string
		tab  Table[point]
		want string
	}{
		{"no key", Table[point]{Columns: []Column[point]{{Header: "A", Text: text("x")}}}, "has no key"},
		{"duplicate key", Table[point]{Columns: []Column[point]{{Header: "A", Key: "a", Text: text("x")}, {Header: "B", Key: "a", Text: text("y")}}}, "used twice"},
		{"no function", Table[point]{Columns: []Column[point]{{Header: "A", Key: "a"}}}, "neither a Value nor a Text"},
		{"ansi in text", Table[point]{Columns: []Column[point]{{Header: "A", Key: "a", Text: text("\x1b[92mok\x1b[0m")}}, Rows: []point{{}}}, "escape code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := WriteCSV(&bytes.Buffer{}, tt.tab)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteCSV = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestColumnFormat(t *testing.T) {
	t.Parallel()
	tab := sampleTable()
	p50 := tab.Columns[1]
	tests := []struct {
		row  point
		want Cell
	}{
		{point{p50ms: 12.345, count: 1}, Cell{Text: "12.35", Numeric: true}},
		{point{p50ms: 12.345, count: 0}, Cell{Numeric: true, Missing: true}},
		{point{p50ms: math.Inf(1), count: 1}, Cell{Numeric: true, Missing: true}},
	}
	for _, tt := range tests {
		if got := p50.Format(tt.row); got != tt.want {
			t.Errorf("Format(%+v) = %+v, want %+v", tt.row, got, tt.want)
		}
	}
	if got, want := tab.Columns[3].Format(point{label: "x"}), (Cell{Text: "x"}); got != want {
		t.Errorf("text Format = %+v, want %+v", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := map[string]any{"b": []int{1, 2}, "a": "<x> & y"}
	if err := WriteJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": \"<x> & y\",\n  \"b\": [\n    1,\n    2\n  ]\n}\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteJSON = %q, want %q", got, want)
	}
	if err := WriteJSON(&buf, math.NaN()); err == nil {
		t.Errorf("WriteJSON(NaN) = nil, want an error")
	}
}
