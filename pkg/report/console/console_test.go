package console

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMain turns go-pretty's global colour switch on before any test runs,
// so the tests prove that Color: false gives no escape codes even when the
// library would colour by default (as it does on most terminals).
func TestMain(m *testing.M) {
	text.EnableColors()
	os.Exit(m.Run())
}

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

type row struct {
	length   int
	p50, p99 float64
	count    int
}

func prefillLike() report.Table[row] {
	ms := func(f func(row) float64) func(row) (float64, bool) {
		return func(r row) (float64, bool) { return f(r), r.count > 0 }
	}
	return report.Table[row]{
		Title: "Prefill Results (TTFC)",
		Columns: []report.Column[row]{
			{Header: "Input Length", Key: "input_length", Value: func(r row) (float64, bool) { return float64(r.length), true }},
			{Header: "P50 (ms)", Key: "p50_ms", Decimals: 2, Value: ms(func(r row) float64 { return r.p50 })},
			{Header: "P99 (ms)", Key: "p99_ms", Decimals: 2, Value: ms(func(r row) float64 { return r.p99 })},
			{Header: "Count", Key: "count", Value: func(r row) (float64, bool) { return float64(r.count), true }},
		},
		Rows: []row{
			{length: 128, p50: 6.4321, p99: 7.005, count: 10},
			{length: 8192, p50: 152.5, p99: 160.125, count: 10},
			{length: 16384, count: 0}, // no successful request: missing values
		},
		Notes: []string{"TTFC: first content chunk minus send time."},
	}
}

func sampleReport() validate.Report {
	var r validate.Report
	r.Add("session count", "", validate.Pass, "30 of 30 requests completed")
	r.Add("output tokens", "il=128", validate.Warn, "server reported 2 tokens, asked for 1")
	r.Add("sequential execution", "", validate.Fail, "2 requests overlapped")
	return r
}

// decodeLikeReport is a 10-point run: batch_held passes at nine points and
// warns at one, no_errors passes everywhere, and two thresholds are
// checked at every point, one crossed at two of them.
func decodeLikeReport() validate.Report {
	var r validate.Report
	for bs := 1; bs <= 512; bs *= 2 {
		label := fmt.Sprintf("bs=%d,il=128", bs)
		r.Add("no_errors", label, validate.Pass, "all requests succeeded")
		if bs == 256 {
			r.Add("batch_held", label, validate.Warn, "at most 200 of the 256 requests decoded at once")
		} else {
			r.Add("batch_held", label, validate.Pass, "all %d requests decoded together", bs)
		}
	}
	r.Add("run_complete", "", validate.Pass, "every combination ran")
	for bs := 1; bs <= 512; bs *= 2 {
		label := fmt.Sprintf("bs=%d,il=128", bs)
		r.Thresholds = append(r.Thresholds, validate.Check{Name: "tbt_p99<20ms", Label: label, Status: validate.Pass, Detail: "tbt_p99 = 10.00 ms"})
		c := validate.Check{Name: "decode_tokens_per_s>100", Label: label, Status: validate.Pass, Detail: "decode_tokens_per_s = 500.0 tok/s"}
		if bs <= 2 {
			c.Status, c.Detail = validate.Fail, "decode_tokens_per_s = 90.0 tok/s, crossing > 100.0 tok/s"
		}
		r.Thresholds = append(r.Thresholds, c)
	}
	return r
}

// The grouped verdict: one row per check with passed/total, detail rows
// only where a point warned or failed.
func TestValidationGrouped(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Validation(&b, decodeLikeReport(), Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"batch_held", "9/10", "bs=256,il=128", "at most 200", "no_errors", "10/10",
		"Thresholds — Crossed", "decode_tokens_per_s>100", "8/10", "bs=2,il=128", "18 held, 2 crossed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Passing points get no row of their own.
	if strings.Contains(out, "bs=8,il=128") || strings.Count(out, "all requests succeeded") != 0 {
		t.Errorf("passing points are listed:\n%s", out)
	}
}

// A check skipped at some points shows SKIP, lists those points with the
// reason, and counts them in the summary; it does not make the run fail.
func TestValidationSkip(t *testing.T) {
	t.Parallel()
	var r validate.Report
	r.Add("no_errors", "", validate.Pass, "all requests succeeded")
	r.Add("prefix_cache", "c=1", validate.Pass, "the server reports no prefix-cache hits")
	r.Add("prefix_cache", "c=2", validate.Skip, "no /metrics scrape during the point")
	var b bytes.Buffer
	if err := Validation(&b, r, Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"SKIP   │ prefix_cache", "1/2", "SKIP   │   c=2", "no /metrics scrape during the point", "2 passed, 0 warnings, 0 failures, 1 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Failures Detected") {
		t.Errorf("a SKIP made the table say failures:\n%s", out)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"TestTable.golden", func(b *bytes.Buffer) error { return Table(b, prefillLike(), Options{}) }},
		{"TestTableLight.golden", func(b *bytes.Buffer) error { return Table(b, prefillLike(), Options{Box: Light}) }},
		{"TestTableNarrow.golden", func(b *bytes.Buffer) error {
			tab := prefillLike()
			tab.Columns[0].Header = "Input Length (tokens, server-reported)"
			return Table(b, tab, Options{Width: 50})
		}},
		{"TestBanner.golden", func(b *bytes.Buffer) error {
			return Banner(b, "Veeksha Microbenchmark — prefill", [][2]string{
				{"Model", "llama3-8b"},
				{"API base", "http://127.0.0.1:8000/v1"},
				{"Input lengths", "[128, 256, 512]"},
			}, Options{})
		}},
		{"TestValidation.golden", func(b *bytes.Buffer) error { return Validation(b, sampleReport(), Options{}) }},
		{"TestValidationGrouped.golden", func(b *bytes.Buffer) error { return Validation(b, decodeLikeReport(), Options{}) }},
		{"TestValidationPass.golden", func(b *bytes.Buffer) error {
			var r validate.Report
			r.Add("session count", "", validate.Pass, "30 of 30 requests completed")
			return Validation(b, r, Options{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b.Bytes(), []byte("\x1b")) {
				t.Errorf("output without Color holds escape codes:\n%q", b.String())
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

func TestTableFormatting(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Table(&b, prefillLike(), Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"P50 (ms)", "Input Length", "6.43", "160.12", Missing, "TTFC: first content chunk"} {
		if !strings.Contains(out, want) {
			t.Errorf("Table output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "P50 (MS)") {
		t.Errorf("headers were uppercased:\n%s", out)
	}
	// Numbers are right-aligned: "6.43" ends where "152.50" ends.
	var l1, l2 string
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.Contains(line, "6.43"):
			l1 = line
		case strings.Contains(line, "152.50"):
			l2 = line
		}
	}
	if e1, e2 := strings.Index(l1, "6.43")+len("6.43"), strings.Index(l2, "152.50")+len("152.50"); e1 != e2 {
		t.Errorf("P50 cells end at %d and %d, want the same column (right-aligned):\n%s\n%s", e1, e2, l1, l2)
	}
}

func TestWidthLimit(t *testing.T) {
	t.Parallel()
	var r validate.Report
	r.Add("decode window overlap", "bs=8,il=1024", validate.Warn,
		"only 12 samples in the steady decode window, fewer than the 50 wanted; raise --samples-per-length or the output length")
	for _, width := range []int{60, 80, 100} {
		var b bytes.Buffer
		if err := Validation(&b, r, Options{Width: width}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		for _, line := range lines[:len(lines)-1] { // the summary line is not part of the table
			if w := text.StringWidthWithoutEscSequences(line); w > width {
				t.Errorf("Width %d: line is %d wide: %q", width, w, line)
			}
		}
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), "raise") {
			t.Errorf("Width %d: wrapped detail lost its words:\n%s", width, b.String())
		}
	}
}

func TestColor(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Validation(&b, sampleReport(), Options{Color: true}); err != nil {
		t.Fatal(err)
	}
	// Colours are on globally (TestMain), so Color: true must colour.
	if !strings.Contains(b.String(), "\x1b[") {
		t.Errorf("Color: true gave no escape codes:\n%q", b.String())
	}
	if !strings.Contains(b.String(), text.Colors{text.FgRed, text.Bold}.Sprint("FAIL")) {
		t.Errorf("FAIL is not red:\n%q", b.String())
	}
}

func TestTableRejectsBadColumns(t *testing.T) {
	t.Parallel()
	tab := report.Table[row]{Title: "x", Columns: []report.Column[row]{{Header: "A", Key: "a"}}}
	if err := Table(&bytes.Buffer{}, tab, Options{}); err == nil {
		t.Errorf("Table with a column lacking Value and Text = nil, want an error")
	}
}
