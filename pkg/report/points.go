package report

import (
	"strconv"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
)

// Point is what a run measured about one point besides its results: how
// well the client kept up and what the server's /metrics said.
type Point struct {
	// Label names the point as its results table does ("c=8", "bs=4,il=512").
	Label    string
	Fidelity fidelity.Assessment
	Server   *servermetrics.Summary
}

// FidelityGrid is the client fidelity of each point; false when no point
// has one.
func FidelityGrid(pts []Point) (Grid, bool) {
	g := Grid{
		Title:   "Client fidelity",
		Header:  []string{"Point", "CPU (cores)", "Cores", "Sched P99 (ms)", "Sched max (ms)", "GC cycles", "Send lag P99 (ms)"},
		Numeric: []bool{false, true, true, true, true, true, true},
		Notes:   []string{"CPU includes the simulated engine when it runs in this process; scheduler latency is how long runnable goroutines waited for a core"},
	}
	f := func(v float64, d int) string { return strconv.FormatFloat(v, 'f', d, 64) }
	for _, p := range pts {
		a := p.Fidelity
		if a.WallS == 0 {
			continue
		}
		lag := Missing
		if a.SendLag.Count > 0 {
			lag = f(1000*a.SendLag.P99, 2)
		}
		g.Rows = append(g.Rows, []string{p.Label, f(a.CPUCores, 2), strconv.Itoa(a.Cores), f(1000*a.SchedP99S, 3), f(1000*a.SchedMaxS, 3), strconv.FormatUint(a.GCCycles, 10), lag})
	}
	return g, len(g.Rows) > 0
}

// ServerGrid is the server's /metrics summary of each point (a point
// too short for a scrape while it ran still has its counters, from the
// scrapes at its start and end); false when none was scraped.
func ServerGrid(pts []Point) (Grid, bool) {
	g := Grid{
		Title:   "Server /metrics",
		Header:  []string{"Point", "Scrapes", "Max running", "Max waiting", "Max KV cache (%)", "Prefix cache hits", "Prefix cache queries"},
		Numeric: []bool{false, true, true, true, true, true, true},
	}
	opt := func(v *float64, scale float64, d int) string {
		if v == nil {
			return Missing
		}
		return strconv.FormatFloat(scale**v, 'f', d, 64)
	}
	for _, p := range pts {
		s := p.Server
		if s == nil || (s.Scrapes == 0 && !s.Bracketed) {
			continue
		}
		g.Rows = append(g.Rows, []string{p.Label, strconv.Itoa(s.Scrapes), opt(s.MaxRunning, 1, 0), opt(s.MaxWaiting, 1, 0), opt(s.MaxKVUsage, 100, 1), opt(s.PrefixHits, 1, 0), opt(s.PrefixQueries, 1, 0)})
	}
	return g, len(g.Rows) > 0
}
