package fidelity

import (
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

func TestBucketQuantile(t *testing.T) {
	t.Parallel()
	buckets := []float64{0, 1, 2, 4, math.Inf(1)}
	counts := []uint64{50, 40, 9, 1}
	tests := []struct {
		q    float64
		want float64
	}{{0.5, 1}, {0.9, 2}, {0.99, 4}, {1, 4}}
	for _, tt := range tests {
		if got := bucketQuantile(buckets, counts, tt.q); got != tt.want {
			t.Errorf("bucketQuantile(q=%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := bucketQuantile(buckets, []uint64{0, 0, 0, 0}, 0.5); got != 0 {
		t.Errorf("empty histogram quantile = %v, want 0", got)
	}
}

// A busy loop shows up as CPU use; the sample's wall time covers it.
func TestProbeMeasuresCPU(t *testing.T) {
	p := Start()
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	s := p.Stop()
	if s.WallS < 0.2 {
		t.Errorf("wall %v s, want >= 0.2", s.WallS)
	}
	// A loaded machine may give the loop only part of a core; it must
	// still show.
	if s.CPUCores < 0.05 || s.CPUCores > float64(runtime.NumCPU())+0.5 {
		t.Errorf("CPU %v cores during a busy loop", s.CPUCores)
	}
	if s.Cores != runtime.GOMAXPROCS(0) {
		t.Errorf("cores %d", s.Cores)
	}
	_ = x
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	reqs := func(lag time.Duration) []result.Request {
		var out []result.Request
		for i := range 100 {
			out = append(out, result.Request{Seq: i, Intended: time.Second, Sent: time.Second + lag})
		}
		return out
	}
	tests := []struct {
		name string
		lag  time.Duration
		cpu  float64
		want validate.Status
		text string
	}{
		{"clean", 100 * time.Microsecond, 0.5, validate.Pass, "send lag P99 0.10 ms"},
		{"lagging", 10 * ms, 0.5, validate.Warn, "the client lagged"},
		{"past the bound", 80 * ms, 0.5, validate.Fail, "the client, not the server, limited this point"},
		{"saturated", 0, 1.95, validate.Warn, "CPU-saturated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Assess(Sample{CPUCores: tt.cpu, Cores: 2}, reqs(tt.lag))
			var rep validate.Report
			r.Check(&rep, "c=8", DefaultBounds())
			c := rep.Checks[0]
			if c.Status != tt.want || !strings.Contains(c.Detail, tt.text) {
				t.Errorf("Check = %s %q, want %s containing %q", c.Status, c.Detail, tt.want, tt.text)
			}
		})
	}
}

// Garbage collections during a point are counted.
func TestProbeCountsGC(t *testing.T) {
	p := Start()
	runtime.GC()
	runtime.GC()
	if s := p.Stop(); s.GCCycles < 2 {
		t.Errorf("GCCycles = %d after two forced collections", s.GCCycles)
	}
}
