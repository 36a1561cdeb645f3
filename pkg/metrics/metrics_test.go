package metrics

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The reference's test vectors for the percentile helper (§2.7), plus the
// library comparison against numpy in libraries.md §5.
func TestPercentile(t *testing.T) {
	t.Parallel()
	oneToTen := []float64{7, 3, 10, 1, 5, 9, 2, 8, 4, 6}
	a := []float64{12.5, 3.1, 7.7, 45, 9.9, 15.2, 22.8, 5.5, 31.4, 18}
	tests := []struct {
		name string
		data []float64
		p    float64
		want float64
	}{
		{"even p50", []float64{1, 2, 3, 4}, 50, 2.5},
		{"even p99", []float64{1, 2, 3, 4}, 99, 3.97},
		{"single", []float64{10}, 99, 10},
		{"doubling p90", []float64{0.1, 0.2, 0.4, 0.8, 1.6}, 90, 1.28},
		{"1..10 p50", oneToTen, 50, 5.5},
		{"1..10 p90", oneToTen, 90, 9.1},
		{"1..10 p99", oneToTen, 99, 9.91},
		{"pair p99", []float64{1, 2}, 99, 1.99},
		{"empty", nil, 99, 0},
		{"numpy A p90", a, 90, 32.76},
		{"numpy A p99", a, 99, 43.776},
		{"numpy B p90", []float64{1, 2, 3, 4, 5, 6, 100}, 90, 43.6},
		{"p0 is the minimum", a, 0, 3.1},
		{"p100 is the maximum", a, 100, 45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Percentile(tt.data, tt.p)
			if err != nil {
				t.Fatalf("Percentile(%v, %v) error: %v", tt.data, tt.p, err)
			}
			if !near(got, tt.want) {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.data, tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileRejectsOutOfRange(t *testing.T) {
	t.Parallel()
	for _, p := range []float64{-1, 100.5, math.NaN()} {
		if _, err := Percentile([]float64{1, 2}, p); err == nil {
			t.Errorf("Percentile(_, %v) gave no error", p)
		}
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := Summarize([]float64{4, 1, 3, 2})
	want := Summary{Count: 4, Mean: 2.5, Median: 2.5, P90: 3.7, P99: 3.97, Min: 1, Max: 4, Std: math.Sqrt(1.25)}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mean", s.Mean, want.Mean}, {"median", s.Median, want.Median}, {"p90", s.P90, want.P90},
		{"p99", s.P99, want.P99}, {"min", s.Min, want.Min}, {"max", s.Max, want.Max}, {"std", s.Std, want.Std},
	} {
		if !near(c.got, c.want) {
			t.Errorf("Summarize: %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.Count != 4 {
		t.Errorf("Summarize: count = %d, want 4", s.Count)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

func TestWindowRate(t *testing.T) {
	t.Parallel()
	w := Window{Start: 2 * time.Second, End: 12 * time.Second}
	if got := w.Rate(500); !near(got, 50) {
		t.Errorf("Rate(500) over 10 s = %v, want 50", got)
	}
	if !w.Contains(2*time.Second) || !w.Contains(12*time.Second) || w.Contains(12*time.Second+1) {
		t.Errorf("Contains: bounds are not inclusive as documented")
	}
	if got := (Window{}).Rate(5); got != 0 {
		t.Errorf("empty window Rate = %v, want 0", got)
	}
}

func BenchmarkSummarizeMillion(b *testing.B) {
	data := make([]float64, 1_000_000)
	for i := range data {
		data[i] = float64((i * 7919) % 1_000_003)
	}
	for b.Loop() {
		Summarize(data)
	}
}
