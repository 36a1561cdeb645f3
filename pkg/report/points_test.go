package report

import (
	"slices"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
)

func TestPointGrids(t *testing.T) {
	t.Parallel()
	running, kv := 8.0, 0.375
	pts := []Point{
		{Label: "c=1"}, // neither sampled nor scraped: no row
		{
			Label:    "c=8",
			Fidelity: fidelity.Assessment{Sample: fidelity.Sample{WallS: 10, CPUCores: 0.25, Cores: 2, SchedP99S: 0.0012, SchedMaxS: 0.004, GCCycles: 3}, SendLag: metrics.Summary{Count: 5, P99: 0.0005}},
			Server:   &servermetrics.Summary{Scrapes: 4, MaxRunning: &running, MaxKVUsage: &kv},
		},
	}
	g, ok := FidelityGrid(pts)
	if !ok || len(g.Rows) != 1 {
		t.Fatalf("FidelityGrid: ok %v, rows %v; want one row", ok, g.Rows)
	}
	if want := []string{"c=8", "0.25", "2", "1.200", "4.000", "3", "0.50"}; !slices.Equal(g.Rows[0], want) {
		t.Errorf("fidelity row %q, want %q", g.Rows[0], want)
	}
	g, ok = ServerGrid(pts)
	if !ok || len(g.Rows) != 1 {
		t.Fatalf("ServerGrid: ok %v, rows %v; want one row", ok, g.Rows)
	}
	if want := []string{"c=8", "4", "8", Missing, "37.5", Missing, Missing}; !slices.Equal(g.Rows[0], want) {
		t.Errorf("server row %q, want %q", g.Rows[0], want)
	}
	if _, ok := ServerGrid(pts[:1]); ok {
		t.Error("ServerGrid of a point never scraped: want no grid")
	}
}
