// Package fidelity tells whether the client, not the server, limited a
// benchmark point. A load generator that is short of CPU, or whose
// goroutines wait to be scheduled, sends requests late and (where it
// cannot read the kernel's receive times, see pkg/client) stamps events
// late, and reports its own delay as the server's. For each point it
// records the process's CPU use, the Go scheduler's latency (how long
// runnable goroutines waited for a CPU, from runtime/metrics), and the
// send lag of the requests (actual minus intended send time); Check turns
// them into a validity check.
package fidelity

import (
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"time"

	pmetrics "github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

const (
	schedLatencies = "/sched/latencies:seconds"
	gcCycles       = "/gc/cycles/total:gc-cycles"
	gcCPU          = "/cpu/classes/gc/total:cpu-seconds"
)

// Meter samples the process from Start until Stop.
type Meter struct {
	began time.Time
	cpu   time.Duration
	sched *metrics.Float64Histogram
	gc    [2]metrics.Sample
}

// Start begins a sample.
func Start() *Meter {
	p := &Meter{began: time.Now(), cpu: ProcessCPU(), sched: readSched()}
	p.gc = readGC()
	return p
}

// readGC reads the garbage collector's cycle count and CPU time.
func readGC() [2]metrics.Sample {
	s := [2]metrics.Sample{{Name: gcCycles}, {Name: gcCPU}}
	metrics.Read(s[:])
	return s
}

// Sample is what the process did during one point.
type Sample struct {
	WallS float64 `json:"wall_s"`
	// CPUCores is the process's CPU time over the wall time: 1.5 means
	// one and a half cores busy on average. It includes the simulated
	// engine when it runs in the same process (--api-base sim).
	CPUCores float64 `json:"cpu_cores"`
	// Cores is GOMAXPROCS, the cores the process may use.
	Cores int `json:"cores"`
	// Sched* describe how long runnable goroutines waited for a CPU
	// during the point (Go runtime scheduler latency), in seconds, as
	// upper bounds of histogram buckets.
	SchedP50S float64 `json:"sched_latency_p50_s"`
	SchedP99S float64 `json:"sched_latency_p99_s"`
	SchedMaxS float64 `json:"sched_latency_max_s"`
	// GCCycles is the number of garbage collections during the point and
	// GCCPUS the CPU seconds they took (estimated by the runtime): on a
	// loaded client each collection delays the reading of streams.
	GCCycles uint64  `json:"gc_cycles"`
	GCCPUS   float64 `json:"gc_cpu_s"`
}

// Stop ends the sample.
func (p *Meter) Stop() Sample {
	wall := time.Since(p.began)
	cpu := ProcessCPU() - p.cpu
	s := Sample{WallS: wall.Seconds(), Cores: runtime.GOMAXPROCS(0)}
	if wall > 0 {
		s.CPUCores = cpu.Seconds() / wall.Seconds()
	}
	if gc := readGC(); gc[0].Value.Kind() == metrics.KindUint64 && p.gc[0].Value.Kind() == metrics.KindUint64 {
		s.GCCycles = gc[0].Value.Uint64() - p.gc[0].Value.Uint64()
		if gc[1].Value.Kind() == metrics.KindFloat64 && p.gc[1].Value.Kind() == metrics.KindFloat64 {
			s.GCCPUS = gc[1].Value.Float64() - p.gc[1].Value.Float64()
		}
	}
	if now := readSched(); now != nil && p.sched != nil {
		delta := make([]uint64, len(now.Counts))
		for i := range now.Counts {
			delta[i] = now.Counts[i] - p.sched.Counts[i]
		}
		s.SchedP50S = bucketQuantile(now.Buckets, delta, 0.50)
		s.SchedP99S = bucketQuantile(now.Buckets, delta, 0.99)
		s.SchedMaxS = bucketQuantile(now.Buckets, delta, 1)
	}
	return s
}

func readSched() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	h := s[0].Value.Float64Histogram()
	return &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
}

// bucketQuantile returns the upper bound of the bucket holding quantile q
// of the counts (0 when there are none). An infinite bound is replaced by
// the bucket's lower bound.
func bucketQuantile(buckets []float64, counts []uint64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			upper := buckets[i+1]
			if math.IsInf(upper, 1) {
				return math.Max(buckets[i], 0)
			}
			return upper
		}
	}
	return 0
}

// Assessment is a point's fidelity: the process sample and the requests'
// send lag, in seconds.
type Assessment struct {
	Sample
	SendLag pmetrics.Summary `json:"send_lag_s"`
}

// Assess combines a sample with the send lag of the point's measured
// requests.
func Assess(s Sample, reqs []result.Request) Assessment {
	var lag []float64
	for i := range reqs {
		if !reqs[i].Warmup && reqs[i].Sent > 0 {
			lag = append(lag, reqs[i].SendLag().Seconds())
		}
	}
	return Assessment{Sample: s, SendLag: pmetrics.Summarize(lag)}
}

// Bounds say when a point counts as limited by the client.
type Bounds struct {
	// Warn is the send-lag or scheduling-latency P99 above which the
	// point is flagged (WARN).
	Warn time.Duration
	// Fail is the bound above which the point is invalid (FAIL); 0 never fails.
	Fail time.Duration
	// CPU is the fraction of the process's cores above which the client
	// counts as saturated (WARN).
	CPU float64
}

// DefaultBounds flag a point whose client lagged by more than 5 ms at the
// 99th percentile or used more than 90 % of its cores, and fail it past 50 ms.
func DefaultBounds() Bounds {
	return Bounds{Warn: 5 * time.Millisecond, Fail: 50 * time.Millisecond, CPU: 0.9}
}

// Check adds client_fidelity for one point.
func (r Assessment) Check(rep *validate.Report, label string, b Bounds) {
	worst := math.Max(r.SendLag.P99, r.SchedP99S)
	detail := fmt.Sprintf("send lag P99 %.2f ms, scheduler latency P99 %.2f ms, CPU %.2f of %d cores, %d GCs",
		1000*r.SendLag.P99, 1000*r.SchedP99S, r.CPUCores, r.Cores, r.GCCycles)
	switch {
	case b.Fail > 0 && worst > b.Fail.Seconds():
		rep.Add("client_fidelity", label, validate.Fail, "the client, not the server, limited this point: %s (bound %v)", detail, b.Fail)
	case worst > b.Warn.Seconds():
		rep.Add("client_fidelity", label, validate.Warn, "the client lagged: %s (its delay is in the latencies)", detail)
	case r.Cores > 0 && r.CPUCores > b.CPU*float64(r.Cores):
		rep.Add("client_fidelity", label, validate.Warn, "the client process is CPU-saturated: %s", detail)
	default:
		rep.Add("client_fidelity", label, validate.Pass, "%s", detail)
	}
}
