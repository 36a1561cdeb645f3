package main

import (
	"math"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/metrics"
)

// window is a closed interval of wall-clock Unix nanoseconds.
type window struct {
	start, end int64
}

func (w window) contains(t int64) bool { return t >= w.start && t <= w.end }

// len is the window's length; 0 for an empty window.
func (w window) len() time.Duration { return time.Duration(max(w.end-w.start, 0)) }

// steadyWindow returns the steady state of a run, by the engine's stamps:
// from settle after the last stream's first chunk (every stream is open by
// then and the connection-opening burst is over) to the first stream's last
// chunk (no stream has closed yet). Streams without chunks are ignored. ok
// is false when the window is empty: the streams were too short for the
// ramp, or none had chunks.
func steadyWindow(recs []streamRecord, settle time.Duration) (w window, ok bool) {
	w = window{start: math.MinInt64, end: math.MaxInt64}
	seen := false
	for i := range recs {
		s := recs[i].samples
		if len(s) == 0 {
			continue
		}
		seen = true
		w.start = max(w.start, s[0].sent)
		w.end = min(w.end, s[len(s)-1].sent)
	}
	if !seen {
		return window{}, false
	}
	w.start += int64(settle)
	return w, w.end > w.start
}

// gridLateness appends to out, for each chunk i of one stream, how late the
// engine sent it compared with a perfect grid: sent_i − (t0 + i·gap), in
// nanoseconds. The engine plans chunk i at t0 + i·gap (t0 = request arrival
// + TTFT) but does not say when t0 was, so t0 is estimated as the earliest
// min over i of sent_i − i·gap: the stream's least late chunk counts as on
// time. The result is therefore a lower bound of the true lateness, short
// by that chunk's lateness (the timer's wake-up floor, tens of µs when the
// engine is not overloaded). The samples must be the stream's chunks 0, 1,
// 2, ... with none missing.
func gridLateness(s []sample, gap time.Duration, out []int64) []int64 {
	if len(s) == 0 {
		return out
	}
	t0 := int64(math.MaxInt64)
	for i, x := range s {
		t0 = min(t0, x.sent-int64(i)*int64(gap))
	}
	for i, x := range s {
		out = append(out, x.sent-int64(i)*int64(gap)-t0)
	}
	return out
}

// lagStats holds the per-chunk figures of a run, in milliseconds.
type lagStats struct {
	steadyLag  []float64 // receive lag of chunks sent inside the steady window
	burstLag   []float64 // receive lag of chunks sent outside it
	steadyLate []float64 // engine lateness of chunks sent inside the steady window
	allLate    []float64 // engine lateness of every chunk
}

// split computes receive lag and engine lateness of every recorded chunk
// and sorts them by the steady window w. Streams with missing chunks (an
// error, a chunk without stamp, an overflow) get no lateness: their chunk
// indexes are unknown.
func split(recs []streamRecord, gap time.Duration, w window) lagStats {
	var st lagStats
	var late []int64
	for i := range recs {
		r := &recs[i]
		s := r.samples
		exact := r.noStamp == 0 && r.overflow == 0 && r.errClass == ""
		late = late[:0]
		if exact {
			late = gridLateness(s, gap, late)
		}
		for j, x := range s {
			lag := ms(x.arrived - x.sent)
			steady := w.contains(x.sent)
			if steady {
				st.steadyLag = append(st.steadyLag, lag)
			} else {
				st.burstLag = append(st.burstLag, lag)
			}
			if exact {
				l := ms(late[j])
				st.allLate = append(st.allLate, l)
				if steady {
					st.steadyLate = append(st.steadyLate, l)
				}
			}
		}
	}
	return st
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }

// durationsMs summarizes durations in milliseconds, skipping the zero
// ones (events that never happened).
func durationsMs(ds []time.Duration) metrics.Summary {
	var v []float64
	for _, d := range ds {
		if d > 0 {
			v = append(v, ms(int64(d)))
		}
	}
	return metrics.Summarize(v)
}

// usagePoint is one reading of the worker's resource use.
type usagePoint struct {
	at         int64         // wall-clock Unix ns
	cpu        time.Duration // process user+sys CPU so far
	rss        int64         // resident set size, bytes
	heapLive   uint64        // Go heap live at the last GC, bytes
	stacks     uint64        // goroutine stacks, bytes
	open       int64         // streams open (started, not finished)
	goroutines int
	gcCycles   uint64 // garbage collections completed so far
}

// cpuCores returns the CPU used between the window's ends divided by its
// length (1.0 = one core busy all the time), interpolating linearly
// between readings. ok is false when the readings do not cover the window.
func cpuCores(points []usagePoint, w window) (float64, bool) {
	a, okA := cpuAt(points, w.start)
	b, okB := cpuAt(points, w.end)
	if !okA || !okB || w.len() <= 0 {
		return 0, false
	}
	return float64(b-a) / float64(w.len()), true
}

// cpuAt interpolates the process CPU time at wall time t.
func cpuAt(points []usagePoint, t int64) (time.Duration, bool) {
	i, found := slices.BinarySearchFunc(points, t, func(p usagePoint, t int64) int {
		switch {
		case p.at < t:
			return -1
		case p.at > t:
			return 1
		}
		return 0
	})
	switch {
	case found:
		return points[i].cpu, true
	case i == 0 || i == len(points):
		return 0, false
	}
	p, q := points[i-1], points[i]
	f := float64(t-p.at) / float64(q.at-p.at)
	return p.cpu + time.Duration(f*float64(q.cpu-p.cpu)), true
}

// histPercentile returns the p-th percentile (0 < p <= 100) of the
// observations added to a runtime/metrics histogram between two readings
// with the same buckets: counts0 before, counts1 after. buckets has
// len(counts)+1 boundaries. The result is the upper boundary of the bucket
// holding the percentile (the lower one for the last, unbounded bucket),
// so it errs high by at most one bucket's width. It is 0 without
// observations.
func histPercentile(buckets []float64, counts0, counts1 []uint64, p float64) float64 {
	var total uint64
	for i := range counts1 {
		total += counts1[i] - counts0[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(total)))
	var cum uint64
	for i := range counts1 {
		cum += counts1[i] - counts0[i]
		if cum >= rank {
			if hi := buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return buckets[i]
		}
	}
	return buckets[len(buckets)-1]
}

// second is one second of a run: the chunks the engine sent in it and the
// worker's resource use over it.
type second struct {
	T        int     `json:"t_s"` // start, whole seconds from the first request
	Chunks   int     `json:"chunks"`
	LagP50   float64 `json:"lag_p50_ms"`
	LagP99   float64 `json:"lag_p99_ms"`
	LagMax   float64 `json:"lag_max_ms"`
	CPU      float64 `json:"cpu_cores"`
	GCCycles uint64  `json:"gc_cycles"` // collections completed during the second (by 250 ms readings)
}

// timeline splits a run that started at began (Unix ns) into seconds, by
// the engine's send stamps, so that lag spikes can be matched with CPU use
// and garbage collections.
func timeline(recs []streamRecord, points []usagePoint, began int64) []second {
	var lags [][]float64
	for i := range recs {
		for _, x := range recs[i].samples {
			k := int((x.sent - began) / 1e9)
			if k < 0 {
				continue
			}
			for len(lags) <= k {
				lags = append(lags, nil)
			}
			lags[k] = append(lags[k], ms(x.arrived-x.sent))
		}
	}
	out := make([]second, len(lags))
	for k, l := range lags {
		sum := metrics.Summarize(l)
		w := window{start: began + int64(k)*1e9, end: began + int64(k+1)*1e9}
		out[k] = second{T: k, Chunks: sum.Count, LagP50: sum.Median, LagP99: sum.P99, LagMax: sum.Max}
		out[k].CPU, _ = cpuCores(points, w)
		out[k].GCCycles = gcAt(points, w.end) - gcAt(points, w.start)
	}
	return out
}

// gcAt returns the garbage collections completed by wall time t, as of
// the last reading at or before t.
func gcAt(points []usagePoint, t int64) uint64 {
	var n uint64
	for _, p := range points {
		if p.at > t {
			break
		}
		n = p.gcCycles
	}
	return n
}
