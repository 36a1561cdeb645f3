package prefill

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
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

// prefill_results.json for a fixed run: the keys other tools read.
func TestResultsJSONGolden(t *testing.T) {
	cfg := Config{InputLengths: []int{128}, OutputTokens: 1, SamplesPerLength: 2, WarmupRequests: 1}
	reqs := []result.Request{done(0, 128, 0, 9*time.Millisecond), done(1, 128, 20*time.Millisecond, 8*time.Millisecond)}
	reqs[0].Warmup = true
	res := Results{
		Meta: result.Meta{SchemaVersion: result.SchemaVersion, Tool: result.Tool, ToolVersion: "test", Type: "prefill", Metric: "ttfc",
			StartedAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), EndReason: result.EndCompleted,
			Settings:    result.Settings{APIBase: "http://127.0.0.1:8000/v1", Server: "external", Model: "m", Endpoint: "chat", Seed: 42},
			Definitions: result.Definitions()},
		Config:  cfg,
		Results: Analyze(reqs),
		Errors:  result.CountErrors(reqs),
	}
	rep := Check(cfg, reqs, fidelity.Assessment{}, fidelity.DefaultBounds())
	res.Validation = &rep
	var b bytes.Buffer
	if err := report.WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	golden(t, "prefill_results.json", b.Bytes())
}
