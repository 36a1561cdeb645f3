package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 ok, 1 a run
// failed, 2 bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "burst-worker" {
		if err := runBurstWorker(ctx, args[1:], stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "loadharness:", err)
			return 1
		}
		return 0
	}
	if len(args) > 0 && args[0] == "worker" {
		if err := runWorker(ctx, args[1:], stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "loadharness:", err)
			return 1
		}
		return 0
	}
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "loadharness:", err)
		return 2
	}
	rows, bursts, err := orchestrate(ctx, o, stderr)
	printTables(stdout, o, rows)
	printBursts(stdout, o, bursts)
	if o.rounds > 1 {
		printRounds(stdout, rows, bursts)
	}
	if o.jsonOut != "" {
		if werr := writeJSON(o.jsonOut, o, rows, bursts); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadharness:", err)
		return 1
	}
	return 0
}

// scenario is a number of concurrent streams, each receiving Rate tokens
// per second (one token per chunk).
type scenario struct {
	Streams int     `json:"streams"`
	Rate    float64 `json:"tokens_per_s"`
}

func (s scenario) String() string {
	return strconv.Itoa(s.Streams) + "x" + strconv.FormatFloat(s.Rate, 'g', -1, 64)
}

// gap is the time between two chunks of one stream.
func (s scenario) gap() time.Duration { return time.Duration(float64(time.Second) / s.Rate) }

// parseScenarios reads "STREAMSxRATE,..." such as "100x100,1000x50".
func parseScenarios(v string) ([]scenario, error) {
	var out []scenario
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		a, b, ok := strings.Cut(f, "x")
		n, err1 := strconv.Atoi(a)
		r, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil || n < 1 || !(r > 0) || math.IsInf(r, 1) {
			return nil, fmt.Errorf("-scenarios: %q is not STREAMSxTOKENS_PER_S (e.g. 1000x50)", f)
		}
		out = append(out, scenario{Streams: n, Rate: r})
	}
	return out, nil
}

// options are the harness's flags.
type options struct {
	scenarios []scenario
	readers   []string
	duration  time.Duration // planned length of each stream
	ttft      time.Duration // 0: one gap
	ramp      time.Duration
	settle    time.Duration
	pin       bool
	engine    string
	jsonOut   string
	profile   string // directory for worker profiles; "" = none
	rounds    int    // every measurement this many times, readers alternating

	bursts      []int // burst sizes; none when empty
	burstTTFT   time.Duration
	burstRepeat int
	burstPrompt int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadharness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadharness [flags]\n\nMeasures the client's receive lag, CPU and memory against the zero-cost\nsimulated engine in another process (see tools/loadharness/README.md).\n\nFlags:")
		fs.PrintDefaults()
	}
	sc := fs.String("scenarios", "100x100,1000x50,10000x5", "comma-separated STREAMSxTOKENS_PER_S (empty: none)")
	bs := fs.String("bursts", "100,500,1000", "comma-separated burst sizes: requests released together (empty: none)")
	fs.DurationVar(&o.burstTTFT, "burst-ttft", 40*time.Millisecond, "the engine's time to first token in the burst scenario")
	fs.IntVar(&o.burstRepeat, "burst-repeat", 5, "measured bursts per size and reader, after one warm-up burst")
	fs.IntVar(&o.burstPrompt, "burst-prompt-bytes", 4096, "prompt length of the burst requests, in bytes")
	rd := fs.String("readers", "bare,client", "readers to run each scenario with: bare (net/http + bufio baseline) and/or client (pkg/client)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "planned length of each stream (tokens = duration × rate)")
	fs.DurationVar(&o.ttft, "ttft", 0, "the engine's time to first token (0: one gap)")
	fs.DurationVar(&o.ramp, "ramp", 2*time.Second, "streams start evenly spread over this time")
	fs.DurationVar(&o.settle, "settle", time.Second, "the steady state starts this long after the last stream's first chunk")
	fs.BoolVar(&o.pin, "pin", runtime.NumCPU() >= 2, "run the engine on CPU 1 and the worker on CPU 0 (taskset)")
	fs.StringVar(&o.engine, "simengine", "", "prebuilt tools/simengine binary (default: build it with the go command)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every result to this JSON file")
	fs.StringVar(&o.profile, "profile", "", "write each worker's CPU and mid-run heap profiles (pprof) into this directory")
	fs.IntVar(&o.rounds, "rounds", 1, "run every scenario and burst size this many times, the readers alternating, and summarize the rounds (medians, and the client's ratio to the bare reader per round)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.scenarios, err = parseScenarios(*sc); err != nil {
		return o, err
	}
	for f := range strings.SplitSeq(*bs, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return o, fmt.Errorf("-bursts: %q is not a positive number of requests", f)
		}
		o.bursts = append(o.bursts, n)
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if o.burstTTFT < 0 || o.burstRepeat < 1 || o.burstPrompt < 1 {
		return o, fmt.Errorf("-burst-ttft %v must not be negative, -burst-repeat %d and -burst-prompt-bytes %d positive", o.burstTTFT, o.burstRepeat, o.burstPrompt)
	}
	for r := range strings.SplitSeq(*rd, ",") {
		r = strings.TrimSpace(r)
		if r != "bare" && r != "client" {
			return o, fmt.Errorf("-readers: %q is not bare or client", r)
		}
		o.readers = append(o.readers, r)
	}
	if o.duration <= 0 || o.ttft < 0 || o.ramp < 0 || o.settle < 0 {
		return o, fmt.Errorf("-duration %v must be positive; -ttft %v, -ramp %v, -settle %v not negative", o.duration, o.ttft, o.ramp, o.settle)
	}
	if o.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			return o, fmt.Errorf("-pin needs taskset (util-linux): %w; or use -pin=false", err)
		}
	}
	return o, nil
}

// row is one measurement: a scenario read by one reader.
type row struct {
	Round      int          `json:"round"` // 1 to -rounds
	Scenario   scenario     `json:"scenario"`
	Reader     string       `json:"reader"`
	Worker     workerResult `json:"worker"`
	EngineCPU  float64      `json:"engine_cpu_cores"` // over the worker's run
	EngineRSS  float64      `json:"engine_rss_mib"`   // when the worker ended
	LoadBefore float64      `json:"load1_before"`     // 1-minute load average
	LoadAfter  float64      `json:"load1_after"`
	Err        string       `json:"error,omitempty"`
}

// workerCPU and engineCPU are the CPUs of the pinned processes.
const (
	workerCPU = 0
	engineCPU = 1
)

// orchestrate runs every scenario with every reader, each against a fresh
// engine process, and returns the rows measured so far, also on failure.
func orchestrate(ctx context.Context, o options, stderr io.Writer) ([]row, []burstRow, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find own executable: %w", err)
	}
	if o.engine == "" {
		dir, err := os.MkdirTemp("", "loadharness-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "loadharness: building", enginePackage)
		if o.engine, err = buildEngine(ctx, dir, stderr); err != nil {
			return nil, nil, err
		}
	}
	wcpu, ecpu := -1, -1
	if o.pin {
		wcpu, ecpu = workerCPU, engineCPU
	}
	var rows []row
	var bursts []burstRow
	var errs []error
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range o.scenarios {
			for _, rd := range o.readers {
				if ctx.Err() != nil {
					return rows, bursts, errors.Join(append(errs, ctx.Err())...)
				}
				r := measureOne(ctx, o, sc, rd, self, wcpu, ecpu, stderr)
				r.Round = round
				if r.Err != "" {
					errs = append(errs, fmt.Errorf("%s %s: %s", sc, rd, r.Err))
				}
				rows = append(rows, r)
			}
		}
		for _, n := range o.bursts {
			for _, rd := range o.readers {
				if ctx.Err() != nil {
					return rows, bursts, errors.Join(append(errs, ctx.Err())...)
				}
				r := measureBurst(ctx, o, n, rd, self, wcpu, ecpu, stderr)
				r.Round = round
				if r.Err != "" {
					errs = append(errs, fmt.Errorf("burst %d %s: %s", n, rd, r.Err))
				}
				bursts = append(bursts, r)
			}
		}
	}
	return rows, bursts, errors.Join(errs...)
}

// measureOne starts an engine for sc, runs one worker with reader rd
// against it and stops the engine.
func measureOne(ctx context.Context, o options, sc scenario, rd, self string, wcpu, ecpu int, stderr io.Writer) row {
	r := row{Scenario: sc, Reader: rd, LoadBefore: loadAverage()}
	gap := sc.gap()
	ttft := o.ttft
	if ttft == 0 {
		ttft = gap
	}
	cfg := workerConfig{
		Model:   engineModel,
		Reader:  rd,
		Streams: sc.Streams,
		Tokens:  max(2, int(o.duration/gap)),
		TTFT:    ttft,
		Gap:     gap,
		Ramp:    o.ramp,
		Settle:  o.settle,
	}
	if o.profile != "" {
		cfg.Profile = filepath.Join(o.profile, sc.String()+"-"+rd+"-")
	}
	fmt.Fprintf(stderr, "loadharness: %s (%d streams × %d chunks every %v), reader %s, load %.2f\n",
		sc, cfg.Streams, cfg.Tokens, gap, rd, r.LoadBefore)
	eng, err := startEngine(ctx, o.engine, ecpu, ttft, gap, stderr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	cfg.URL = eng.url
	cpu0, cpuErr := eng.cpu()
	r.Worker, err = runWorkerProcess(ctx, self, wcpu, cfg, stderr)
	cpu1, cpuErr1 := eng.cpu()
	if rss, err := eng.rss(); err == nil {
		r.EngineRSS = float64(rss) / (1 << 20)
	}
	if stopErr := eng.stop(); err == nil {
		err = stopErr
	}
	if cpuErr == nil && cpuErr1 == nil && r.Worker.RunS > 0 {
		r.EngineCPU = (cpu1 - cpu0).Seconds() / r.Worker.RunS
	}
	r.LoadAfter = loadAverage()
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// runWorkerProcess runs "self worker ..." for cfg (pinned to cpu unless
// negative) and decodes its result.
func runWorkerProcess(ctx context.Context, self string, cpu int, cfg workerConfig, stderr io.Writer) (workerResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.deadline()+time.Minute)
	defer cancel()
	cmd := pinnedCommand(ctx, cpu, self, "worker",
		"-url", cfg.URL, "-model", cfg.Model, "-reader", cfg.Reader,
		"-streams", strconv.Itoa(cfg.Streams), "-tokens", strconv.Itoa(cfg.Tokens),
		"-ttft", cfg.TTFT.String(), "-gap", cfg.Gap.String(),
		"-ramp", cfg.Ramp.String(), "-settle", cfg.Settle.String(), "-profile", cfg.Profile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return workerResult{}, fmt.Errorf("worker: %w", err)
	}
	var res workerResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("worker output %q: %w", excerpt(out.String()), err)
	}
	return res, nil
}

func excerpt(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// printTables writes the two result tables: resources, then latency.
func printTables(w io.Writer, o options, rows []row) {
	if len(rows) == 0 {
		return
	}
	pin := "unpinned"
	if o.pin {
		pin = fmt.Sprintf("engine on CPU %d, worker on CPU %d (taskset)", engineCPU, workerCPU)
	}
	fmt.Fprintf(w, "loadharness: %d CPUs, %s, %s; streams last %v, ramp %v, settle %v\n",
		runtime.NumCPU(), runtime.Version(), pin, o.duration, o.ramp, o.settle)
	if len(rows) > 0 {
		wr := rows[0].Worker
		fmt.Fprintf(w, "worker: GOMAXPROCS %d, RLIMIT_NOFILE %d soft / %d hard\n", wr.GOMAXPROCS, wr.FDSoft, wr.FDHard)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treader\tchunks/s\tclient CPU\tµs/chunk\tengine CPU\tengine MiB\tRSS MiB\tKiB/str RSS\tKiB/str heap\tKiB/str stack\tnew conns\terrors\tload\t")
	for _, r := range rows {
		x := r.Worker
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.1f\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%s\t%.1f–%.1f\t\n",
			r.Scenario, r.Reader, x.SteadyRate, x.SteadyCPUCores, x.CPUPerChunkUs, r.EngineCPU, r.EngineRSS,
			x.RSSCheckpointMiB, x.RSSPerStreamKiB, x.HeapPerStreamKiB, x.StackPerStreamKiB,
			x.NewConns, errorsCell(r), r.LoadBefore, r.LoadAfter)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "ms\t\treceive lag (steady)\t\t\tburst lag\t\tengine lateness\t\tconn open\t\theaders\tsched\t")
	fmt.Fprintln(tw, "scenario\treader\tp50\tp99\tmax\tp99\tmax\tp50\tp99\tp50\tp99\tp99\tp99\t")
	for _, r := range rows {
		x := r.Worker
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.2f\t%.2f\t%.1f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.3f\t\n",
			r.Scenario, r.Reader, x.Lag.Median, x.Lag.P99, x.Lag.Max, x.BurstLag.P99, x.BurstLag.Max,
			x.Late.Median, x.Late.P99, x.ConnWait.Median, x.ConnWait.P99, x.HeadersLag.P99, x.SchedP99Ms)
	}
	_ = tw.Flush()
}

func errorsCell(r row) string {
	if r.Err != "" {
		return "run failed"
	}
	if r.Worker.Errors == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Worker.ErrorKinds)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, r.Worker.ErrorKinds[k]))
	}
	return strings.Join(parts, ",")
}

// writeJSON writes the options and every row to path.
func writeJSON(path string, o options, rows []row, bursts []burstRow) error {
	doc := struct {
		Date      time.Time  `json:"date"`
		GoVersion string     `json:"go_version"`
		CPUs      int        `json:"cpus"`
		Pinned    bool       `json:"pinned"`
		Scenarios []scenario `json:"scenarios"`
		Rows      []row      `json:"rows"`
		Bursts    []burstRow `json:"bursts,omitempty"`
	}{time.Now().UTC(), runtime.Version(), runtime.NumCPU(), o.pin, o.scenarios, rows, bursts}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("-json %s: %w", path, err)
	}
	return nil
}
