package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	vmetrics "github.com/veeksha-go/veeksha/pkg/metrics"
)

// workerConfig is one measurement: one reader, one scenario, against one
// running engine.
type workerConfig struct {
	URL     string        `json:"url"`
	Model   string        `json:"model"`
	Reader  string        `json:"reader"`  // "client" or "bare"
	Streams int           `json:"streams"` // concurrent streams
	Tokens  int           `json:"tokens"`  // content chunks per stream (one token each)
	TTFT    time.Duration `json:"ttft_ns"` // the engine's fixed time to first token
	Gap     time.Duration `json:"gap_ns"`  // the engine's fixed gap between tokens
	Ramp    time.Duration `json:"ramp_ns"` // stream i starts at i·Ramp/Streams
	Settle  time.Duration `json:"settle_ns"`
	// Profile, when set, is a file name prefix: the worker writes a CPU
	// profile of the whole run to Profile+"cpu.pprof" and a heap profile
	// taken mid-run to Profile+"heap.pprof".
	Profile string `json:"profile,omitempty"`
}

// drainAllowance bounds how long the worker waits, past the last planned
// chunk, for every stream to end.
const drainAllowance = 30 * time.Second

// memCheckpoint is when, from the first request, the worker measures
// memory: just after the planned steady state, when every stream holds all
// its chunks and the first streams are closing (at most 250 ms, and a
// quarter of the ramp, after the first stream's last chunk). The garbage
// collection forced there then cannot disturb the steady-state figures.
func (c workerConfig) memCheckpoint() time.Duration {
	steadyEnd := c.TTFT + time.Duration(c.Tokens-1)*c.Gap
	return steadyEnd + min(250*time.Millisecond, c.Ramp/4)
}

// deadline bounds the whole measurement: the ramp, the longest stream and
// drainAllowance.
func (c workerConfig) deadline() time.Duration {
	return c.Ramp + c.TTFT + time.Duration(c.Tokens)*c.Gap + drainAllowance
}

func (c workerConfig) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("-url is empty"))
	}
	if c.Reader != "client" && c.Reader != "bare" {
		errs = append(errs, fmt.Errorf("-reader %q: want client or bare", c.Reader))
	}
	if c.Streams < 1 || c.Tokens < 2 {
		errs = append(errs, fmt.Errorf("-streams %d and -tokens %d: want at least 1 and 2", c.Streams, c.Tokens))
	}
	if c.Gap <= 0 || c.TTFT < 0 || c.Ramp < 0 || c.Settle < 0 {
		errs = append(errs, fmt.Errorf("-gap %v must be positive, -ttft %v, -ramp %v and -settle %v not negative", c.Gap, c.TTFT, c.Ramp, c.Settle))
	}
	return errors.Join(errs...)
}

// workerResult is what a worker reports, as one JSON object on stdout.
// Times are milliseconds unless the name says otherwise.
type workerResult struct {
	Config     workerConfig `json:"config"`
	GOMAXPROCS int          `json:"gomaxprocs"`
	FDSoft     uint64       `json:"rlimit_nofile_soft"`
	FDHard     uint64       `json:"rlimit_nofile_hard"`

	RunS        float64 `json:"run_s"`         // first request to last stream's end
	SteadyFromS float64 `json:"steady_from_s"` // steady window, seconds from the first request
	SteadyToS   float64 `json:"steady_to_s"`

	Chunks       int     `json:"chunks"`
	SteadyChunks int     `json:"steady_chunks"`
	SteadyRate   float64 `json:"steady_chunks_per_s"`

	CPUCores       float64 `json:"cpu_cores"`        // whole run
	SteadyCPUCores float64 `json:"steady_cpu_cores"` // steady window
	CPUPerChunkUs  float64 `json:"steady_cpu_per_chunk_us"`

	RSSBaseMiB        float64 `json:"rss_base_mib"`       // before the first request (sample storage included)
	RSSCheckpointMiB  float64 `json:"rss_checkpoint_mib"` // at the memory checkpoint
	MemoryAtS         float64 `json:"memory_at_s"`        // the memory checkpoint, seconds from the first request
	OpenAtSample      int64   `json:"open_streams_at_sample"`
	Goroutines        int     `json:"goroutines_at_sample"`
	RSSPerStreamKiB   float64 `json:"rss_per_stream_kib"`   // (RSS at the checkpoint − base) / open streams
	GoPerStreamKiB    float64 `json:"go_per_stream_kib"`    // (live heap + stacks, checkpoint − base) / open streams
	HeapPerStreamKiB  float64 `json:"heap_per_stream_kib"`  // live heap part of GoPerStreamKiB
	StackPerStreamKiB float64 `json:"stack_per_stream_kib"` // goroutine stacks part of GoPerStreamKiB

	Lag        vmetrics.Summary `json:"lag_steady_ms"`
	BurstLag   vmetrics.Summary `json:"lag_burst_ms"`
	Late       vmetrics.Summary `json:"lateness_steady_ms"`
	AllLate    vmetrics.Summary `json:"lateness_all_ms"`
	ConnWait   vmetrics.Summary `json:"conn_wait_ms"` // GetConn → GotConn
	HeadersLag vmetrics.Summary `json:"headers_ms"`   // send → response headers
	NewConns   int              `json:"new_conns"`

	SchedP50Ms float64 `json:"sched_latency_p50_ms"` // Go scheduler: runnable → running
	SchedP99Ms float64 `json:"sched_latency_p99_ms"`
	GCCycles   uint64  `json:"gc_cycles"`

	Errors      int            `json:"errors"` // failed or short streams
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	FirstError  string         `json:"first_error,omitempty"`
	NoStamp     int            `json:"chunks_without_stamp"`
	Overflow    int            `json:"chunks_not_kept"`
	ClockSkewUs float64        `json:"clock_skew_us"` // wall clock − (start + monotonic elapsed) at the end
	Timeline    []second       `json:"timeline"`      // per second of the run
}

// runWorker is "loadharness worker": one measurement, result as JSON on
// stdout.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg workerConfig
	fs := flag.NewFlagSet("loadharness worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "", "engine base URL")
	fs.StringVar(&cfg.Model, "model", "sim", "model id")
	fs.StringVar(&cfg.Reader, "reader", "client", "client or bare")
	fs.IntVar(&cfg.Streams, "streams", 100, "concurrent streams")
	fs.IntVar(&cfg.Tokens, "tokens", 100, "chunks per stream")
	fs.DurationVar(&cfg.TTFT, "ttft", 0, "the engine's time to first token")
	fs.DurationVar(&cfg.Gap, "gap", 10*time.Millisecond, "the engine's gap between tokens")
	fs.DurationVar(&cfg.Ramp, "ramp", time.Second, "streams start evenly over this time")
	fs.DurationVar(&cfg.Settle, "settle", time.Second, "steady state starts this long after the last stream's first chunk")
	fs.StringVar(&cfg.Profile, "profile", "", "write CPU and heap profiles to files with this name prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	res, err := measure(ctx, cfg)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return json.NewEncoder(stdout).Encode(res)
}

// Names of the runtime/metrics the worker reads.
const (
	mHeapLive = "/gc/heap/live:bytes"
	mStacks   = "/memory/classes/heap/stacks:bytes"
	mSched    = "/sched/latencies:seconds"
	mGC       = "/gc/cycles/total:gc-cycles"
)

// sampleInterval is how often the monitor reads CPU and memory.
const sampleInterval = 250 * time.Millisecond

// measure opens cfg.Streams streams, spread over cfg.Ramp, waits for all of
// them to end (or the deadline), and analyzes what the reader recorded.
func measure(ctx context.Context, cfg workerConfig) (workerResult, error) {
	res := workerResult{Config: cfg, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	res.FDSoft, res.FDHard = openFileLimit()
	// Each stream holds one socket; the process needs a few more.
	if need := uint64(cfg.Streams) + 64; res.FDSoft != 0 && res.FDSoft < need {
		return res, fmt.Errorf("RLIMIT_NOFILE is %d, %d streams need about %d", res.FDSoft, cfg.Streams, need)
	}

	recs := newRecords(cfg.Streams, cfg.Tokens)
	var open atomic.Int64
	mon := newMonitor(&open) // its first reading is the memory baseline
	stats0 := readRuntime()
	began := time.Now()
	rd, err := newReader(cfg, began)
	if err != nil {
		return res, err
	}
	mon.start(began.Add(cfg.memCheckpoint()))

	ctx, cancel := context.WithTimeout(ctx, cfg.deadline())
	defer cancel()
	if cfg.Profile != "" {
		stop, err := startProfiles(ctx, cfg, began)
		if err != nil {
			_, _ = mon.stop()
			return res, err
		}
		defer stop()
	}
	var wg sync.WaitGroup
	for i := range cfg.Streams {
		// An absolute schedule: a late launcher catches up, never drifts.
		at := began.Add(time.Duration(int64(cfg.Ramp) * int64(i) / int64(cfg.Streams)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			recs[i].errClass, recs[i].err = "not_started", "deadline passed before the stream started"
			continue
		}
		open.Add(1)
		wg.Go(func() {
			defer open.Add(-1)
			rd.stream(ctx, i, &recs[i])
		})
	}
	wg.Wait()
	ended := time.Now()
	points, checkpoint := mon.stop()
	stats1 := readRuntime()
	skew := time.Now().UnixNano() - (began.UnixNano() + int64(time.Since(began)))

	analyze(&res, recs, points, checkpoint, began, ended)
	res.ClockSkewUs = float64(skew) / 1e3
	res.Timeline = timeline(recs, points, began.UnixNano())
	res.SchedP50Ms = 1e3 * histPercentile(stats1.sched.Buckets, stats0.sched.Counts, stats1.sched.Counts, 50)
	res.SchedP99Ms = 1e3 * histPercentile(stats1.sched.Buckets, stats0.sched.Counts, stats1.sched.Counts, 99)
	res.GCCycles = stats1.gc - stats0.gc
	return res, nil
}

// startProfiles starts a CPU profile and schedules a heap profile for the
// middle of the planned streams. The returned function stops the CPU
// profile.
func startProfiles(ctx context.Context, cfg workerConfig, began time.Time) (stop func(), err error) {
	f, err := os.Create(cfg.Profile + "cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	mid := cfg.Ramp + cfg.TTFT + time.Duration(cfg.Tokens)*cfg.Gap/2
	t := time.AfterFunc(time.Until(began.Add(mid)), func() { // uses the last collection's figures: no forced GC
		if ctx.Err() != nil {
			return
		}
		h, err := os.Create(cfg.Profile + "heap.pprof")
		if err != nil {
			return
		}
		defer h.Close()
		_ = pprof.Lookup("heap").WriteTo(h, 0)
	})
	return func() {
		t.Stop()
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// newReader builds the reader cfg names; its times are offsets from began.
func newReader(cfg workerConfig, began time.Time) (reader, error) {
	if cfg.Reader == "bare" {
		return newBareReader(cfg, began)
	}
	return newClientReader(cfg, began)
}

// analyze fills res from the records and resource readings of a run that
// started at began and ended at ended; points[checkpoint] is the memory
// checkpoint (none if checkpoint < 0).
func analyze(res *workerResult, recs []streamRecord, points []usagePoint, checkpoint int, began, ended time.Time) {
	cfg := res.Config
	res.RunS = ended.Sub(began).Seconds()
	res.ErrorKinds = map[string]int{}
	var conn, headers []time.Duration
	for i := range recs {
		r := &recs[i]
		res.Chunks += len(r.samples)
		res.NoStamp += r.noStamp
		res.Overflow += r.overflow
		kind := r.errClass
		if kind == "" && r.chunks != cfg.Tokens {
			kind = "short"
			r.err = fmt.Sprintf("%d chunks, want %d", r.chunks, cfg.Tokens)
		}
		if kind != "" {
			res.Errors++
			res.ErrorKinds[kind]++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("stream %d: %s: %s", i, kind, r.err)
			}
		}
		if r.gotConn > 0 {
			conn = append(conn, r.gotConn-r.getConn)
			if !r.reused {
				res.NewConns++
			}
		}
		if r.headers > 0 {
			headers = append(headers, r.headers-r.sent)
		}
	}
	res.ConnWait = durationsMs(conn)
	res.HeadersLag = durationsMs(headers)

	w, ok := steadyWindow(recs, cfg.Settle)
	st := split(recs, cfg.Gap, w) // an empty window puts every chunk in the burst
	res.Lag = vmetrics.Summarize(st.steadyLag)
	res.BurstLag = vmetrics.Summarize(st.burstLag)
	res.Late = vmetrics.Summarize(st.steadyLate)
	res.AllLate = vmetrics.Summarize(st.allLate)
	res.SteadyChunks = len(st.steadyLag)
	if len(points) > 0 {
		res.RSSBaseMiB = float64(points[0].rss) / (1 << 20)
	}
	if !ok {
		return
	}
	b := began.UnixNano()
	res.SteadyFromS = float64(w.start-b) / 1e9
	res.SteadyToS = float64(w.end-b) / 1e9
	res.SteadyRate = float64(res.SteadyChunks) / w.len().Seconds()
	if c, ok := cpuCores(points, window{start: b, end: ended.UnixNano()}); ok {
		res.CPUCores = c
	}
	if c, ok := cpuCores(points, w); ok {
		res.SteadyCPUCores = c
		if res.SteadyChunks > 0 {
			res.CPUPerChunkUs = c * w.len().Seconds() / float64(res.SteadyChunks) * 1e6
		}
	}
	if checkpoint >= 0 {
		base, mid := points[0], points[checkpoint] // mid: the checkpoint
		res.MemoryAtS = float64(mid.at-began.UnixNano()) / 1e9
		res.RSSCheckpointMiB = float64(mid.rss) / (1 << 20)
		res.OpenAtSample = mid.open
		res.Goroutines = mid.goroutines
		if mid.open > 0 {
			perStream := func(now, before uint64) float64 {
				return (float64(now) - float64(before)) / float64(mid.open) / 1024
			}
			res.RSSPerStreamKiB = perStream(uint64(mid.rss), uint64(base.rss))
			res.HeapPerStreamKiB = perStream(mid.heapLive, base.heapLive)
			res.StackPerStreamKiB = perStream(mid.stacks, base.stacks)
			res.GoPerStreamKiB = res.HeapPerStreamKiB + res.StackPerStreamKiB
		}
	}
}

// runtimeStats is one reading of the runtime metrics compared across a run.
type runtimeStats struct {
	sched *metrics.Float64Histogram
	gc    uint64
}

func readRuntime() runtimeStats {
	s := []metrics.Sample{{Name: mSched}, {Name: mGC}}
	metrics.Read(s)
	var st runtimeStats
	if s[0].Value.Kind() == metrics.KindFloat64Histogram {
		st.sched = s[0].Value.Float64Histogram()
	} else {
		st.sched = &metrics.Float64Histogram{Buckets: []float64{0}}
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		st.gc = s[1].Value.Uint64()
	}
	return st
}

// monitor reads the process's CPU and memory every sampleInterval, from
// before the first request to after the last stream ends. Reading
// runtime/metrics does not stop the world, so it does not disturb the
// streams it measures. Once, at the memory checkpoint, it forces a garbage
// collection first, so that the live heap it reads is current rather than
// as of whenever the last collection happened (a run has several anyway).
type monitor struct {
	open       *atomic.Int64
	points     []usagePoint
	checkpoint int // index in points of the memory checkpoint; -1 before it
	quit       chan struct{}
	done       chan struct{}
	sample     []metrics.Sample
}

// newMonitor takes the baseline reading, after a garbage collection.
func newMonitor(open *atomic.Int64) *monitor {
	m := &monitor{
		open:       open,
		checkpoint: -1,
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		sample:     []metrics.Sample{{Name: mHeapLive}, {Name: mStacks}, {Name: mGC}},
	}
	runtime.GC()
	debug.FreeOSMemory()
	m.read()
	return m
}

// start begins the periodic readings, with the memory checkpoint at
// checkpoint.
func (m *monitor) start(checkpoint time.Time) {
	go m.loop(time.Until(checkpoint))
}

func (m *monitor) loop(untilCheckpoint time.Duration) {
	defer close(m.done)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	cp := time.NewTimer(untilCheckpoint)
	defer cp.Stop()
	for {
		select {
		case <-t.C:
			m.read()
		case <-cp.C:
			runtime.GC()
			m.read()
			m.checkpoint = len(m.points) - 1
		case <-m.quit:
			return
		}
	}
}

func (m *monitor) read() {
	metrics.Read(m.sample)
	value := func(s metrics.Sample) uint64 {
		if s.Value.Kind() == metrics.KindUint64 {
			return s.Value.Uint64()
		}
		return 0
	}
	m.points = append(m.points, usagePoint{
		at:         time.Now().UnixNano(),
		cpu:        fidelity.ProcessCPU(),
		rss:        residentBytes(),
		heapLive:   value(m.sample[0]),
		stacks:     value(m.sample[1]),
		gcCycles:   value(m.sample[2]),
		open:       m.open.Load(),
		goroutines: runtime.NumGoroutine(),
	})
}

// stop ends the monitor after one last reading and returns all readings
// and the index of the memory checkpoint (-1 if the run ended before it).
func (m *monitor) stop() ([]usagePoint, int) {
	close(m.quit)
	<-m.done
	m.read()
	return m.points, m.checkpoint
}
