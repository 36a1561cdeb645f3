package compare

import (
	"math"
	"strings"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/report"
)

func TestDeltas(t *testing.T) {
	t.Parallel()
	this := []Value{
		{Point: "il=512", Order: 512, Metric: "ttfc_p50_ms", Value: 18},
		{Point: "il=128", Order: 128, Metric: "ttfc_p50_ms", Value: 8},
		{Point: "il=128", Order: 128, Metric: "prefill_tok_s", Value: 16000, HigherIsBetter: true},
		{Point: "il=2048", Order: 2048, Metric: "ttfc_p50_ms", Value: 66},
	}
	other := []Value{
		{Point: "il=128", Order: 128, Metric: "ttfc_p50_ms", Value: 10},
		{Point: "il=128", Order: 128, Metric: "prefill_tok_s", Value: 12800, HigherIsBetter: true},
		{Point: "il=512", Order: 512, Metric: "ttfc_p50_ms", Value: 15},
		{Point: "il=512", Order: 512, Metric: "ttfc_p99_ms", Value: math.NaN()},
	}
	got := Deltas(this, other)
	if len(got) != 3 {
		t.Fatalf("Deltas = %+v, want 3 common metrics", got)
	}
	if got[0].Point != "il=128" || got[0].Metric != "ttfc_p50_ms" || got[0].Diff != -2 || got[0].Change != -0.2 || !got[0].Better {
		t.Errorf("first delta = %+v, want il=128 ttfc 8 vs 10: -2, -20%%, better", got[0])
	}
	if !got[1].Better || got[1].Change != 0.25 {
		t.Errorf("throughput delta = %+v, want +25%% better", got[1])
	}
	if got[2].Point != "il=512" || got[2].Better {
		t.Errorf("last delta = %+v, want il=512 worse", got[2])
	}
}

func TestOverlay(t *testing.T) {
	t.Parallel()
	a := []report.Chart{{Name: "ttfc", Title: "TTFC", Series: []report.Series{{Name: "P50", X: []float64{1}, Y: []float64{2}}}}, {Name: "only_here"}}
	b := []report.Chart{{Name: "ttfc", Series: []report.Series{{Name: "P50", X: []float64{1}, Y: []float64{3}}}}}
	got := Overlay(a, b, "new", "old")
	if len(got) != 1 || got[0].Name != "compare_ttfc" || len(got[0].Series) != 2 {
		t.Fatalf("Overlay = %+v", got)
	}
	if got[0].Series[0].Name != "new P50" || got[0].Series[1].Name != "old P50" || !got[0].Series[1].Dashed {
		t.Errorf("series = %+v", got[0].Series)
	}
}

// A change between two percentiles whose intervals overlap is within the
// noise; disjoint intervals are beyond it; a value without an interval
// gets no mark.
func TestDeltasNoise(t *testing.T) {
	t.Parallel()
	iv := func(metric string, v, lo, hi float64) Value {
		return Value{Point: "c=1", Metric: metric, Value: v, Low: lo, High: hi, Bounded: true}
	}
	this := []Value{iv("overlap", 103, 98, 108), iv("disjoint", 150, 140, 160), {Point: "c=1", Metric: "plain", Value: 2, HigherIsBetter: true}}
	other := []Value{iv("overlap", 100, 95, 105), iv("disjoint", 100, 95, 105), {Point: "c=1", Metric: "plain", Value: 1}}
	got := map[string]*bool{}
	for _, d := range Deltas(this, other) {
		got[d.Metric] = d.BeyondNoise
	}
	if b := got["overlap"]; b == nil || *b {
		t.Errorf("overlapping intervals: BeyondNoise = %v, want false", b)
	}
	if b := got["disjoint"]; b == nil || !*b {
		t.Errorf("disjoint intervals: BeyondNoise = %v, want true", b)
	}
	if b := got["plain"]; b != nil {
		t.Errorf("no interval: BeyondNoise = %v, want nil", *b)
	}
	tab := Table(Deltas(this, other), "old")
	var verdicts []string
	for _, d := range tab.Rows {
		verdicts = append(verdicts, tab.Columns[len(tab.Columns)-1].Text(d))
	}
	if strings.Join(verdicts, ",") != "within noise,worse,better" {
		t.Errorf("verdicts = %v, want within noise, worse, better", verdicts)
	}
}
