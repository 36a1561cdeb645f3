package prefill

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

// The results table as CSV and on the console, for fixed rows.
func TestTableGolden(t *testing.T) {
	rows := []Row{
		{InputLength: 128, TTFC: metrics.Summarize([]float64{0.0081, 0.0083, 0.0085}), PrefillTPS: 128 / 0.0083, Requests: 3},
		{InputLength: 2048, TTFC: metrics.Summarize([]float64{0.066, 0.0664}), PrefillTPS: 2048 / 0.0662, Requests: 3, Errors: 1},
		{InputLength: 8192, Requests: 2, Errors: 2},
	}
	var csv, con bytes.Buffer
	if err := report.WriteCSV(&csv, Table(rows)); err != nil {
		t.Fatal(err)
	}
	if err := console.Table(&con, Table(rows), console.Options{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.csv", csv.Bytes())
	golden(t, "table.txt", con.Bytes())
}
