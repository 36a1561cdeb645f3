package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The intervals cover the true percentile about 95 % of the time, and
// never less than 95 % by more than the simulation's noise, for a skewed
// distribution (exponential, as latencies are) at sample sizes where
// each percentile is supported.
func TestPercentileIntervalCoverage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	// The exponential(1) quantile function: -ln(1 - q).
	truth := func(q float64) float64 { return -logOneMinus(q) }
	tests := []struct {
		p float64
		n int
	}{{50, 30}, {90, 200}, {99, 1000}}
	const trials = 2000
	for _, tt := range tests {
		covered := 0
		sample := make([]float64, tt.n)
		for range trials {
			for i := range sample {
				sample[i] = rng.ExpFloat64()
			}
			slices.Sort(sample)
			iv := PercentileInterval(sample, tt.p)
			if !iv.Supported {
				t.Fatalf("P%v from %d samples: unsupported", tt.p, tt.n)
			}
			if x := truth(tt.p / 100); iv.Low <= x && x <= iv.High {
				covered++
			}
		}
		// Order-statistic intervals are conservative: at least 95 %; the
		// binomial noise of 2000 trials is ~0.5 %.
		if c := float64(covered) / trials; c < 0.935 || c > 0.99 {
			t.Errorf("P%v from %d samples: covered the truth in %.1f%% of %d trials, want ~95%%", tt.p, tt.n, 100*c, trials)
		}
	}
}

func logOneMinus(q float64) float64 { return math.Log1p(-q) }

func TestPercentileIntervalSmallSamples(t *testing.T) {
	t.Parallel()
	sample := make([]float64, 40)
	for i := range sample {
		sample[i] = float64(i + 1)
	}
	// 40 samples support a median but not a P99: its interval reaches the
	// maximum.
	if iv := PercentileInterval(sample, 50); !iv.Supported || iv.Low <= 1 || iv.High >= 40 || iv.Low > 20.5 || iv.High < 20.5 {
		t.Errorf("median of 1..40: %+v, want a supported interval around 20.5", iv)
	}
	if iv := PercentileInterval(sample, 99); iv.Supported || iv.High != 40 {
		t.Errorf("P99 of 1..40: %+v, want unsupported, reaching the maximum 40", iv)
	}
	if iv := PercentileInterval(nil, 50); iv != (Interval{}) {
		t.Errorf("empty sample: %+v", iv)
	}
	// SamplesFor agrees with the intervals it predicts.
	for _, p := range []float64{50, 90, 99} {
		n := SamplesFor(p, 2000)
		if n == 0 {
			t.Fatalf("SamplesFor(%v) = 0", p)
		}
		if _, _, ok := ranks(n, p/100, Confidence); !ok {
			t.Errorf("SamplesFor(%v) = %d, but that sample is not supported", p, n)
		}
		if _, _, ok := ranks(n-1, p/100, Confidence); ok {
			t.Errorf("SamplesFor(%v) = %d, but %d samples are already supported", p, n, n-1)
		}
	}
	if s := Summarize(sample); !s.CI95.Median.Supported || s.CI95.P99.Supported {
		t.Errorf("Summarize(1..40).CI95 = %+v", s.CI95)
	}
}
