package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	vmetrics "github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// The burst scenario: N requests released at one instant, as a closed
// loop's first wave, a decode batch's launch or a cluster of open-loop
// arrivals are. The engine answers each after a fixed TTFT, so a request
// released at t0 should see its first token at t0 + TTFT: what it sees
// beyond that is the client's own delay (building, serializing, sending and
// reading, all N on one core), the TTFC error.

// burstConfig is one burst measurement: one reader, N streams.
type burstConfig struct {
	URL         string        `json:"url"`
	Model       string        `json:"model"`
	Reader      string        `json:"reader"`
	Streams     int           `json:"streams"`      // requests per burst
	Tokens      int           `json:"tokens"`       // content chunks per stream
	TTFT        time.Duration `json:"ttft_ns"`      // the engine's fixed time to first token
	Gap         time.Duration `json:"gap_ns"`       // the engine's gap between tokens
	Bursts      int           `json:"bursts"`       // measured bursts, after one warm-up burst
	Pause       time.Duration `json:"pause_ns"`     // between bursts
	PromptBytes int           `json:"prompt_bytes"` // length of every prompt
}

func (c burstConfig) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("-url is empty"))
	}
	if c.Reader != "client" && c.Reader != "bare" {
		errs = append(errs, fmt.Errorf("-reader %q: want client or bare", c.Reader))
	}
	if c.Streams < 1 || c.Tokens < 1 || c.Bursts < 1 || c.PromptBytes < 1 {
		errs = append(errs, fmt.Errorf("-streams %d, -tokens %d, -bursts %d, -prompt-bytes %d: want at least 1", c.Streams, c.Tokens, c.Bursts, c.PromptBytes))
	}
	if c.Gap <= 0 || c.TTFT < 0 || c.Pause < 0 {
		errs = append(errs, fmt.Errorf("-gap %v must be positive, -ttft %v and -pause %v not negative", c.Gap, c.TTFT, c.Pause))
	}
	return errors.Join(errs...)
}

// burstResult is what a burst worker reports, as JSON on stdout. Times are
// milliseconds.
type burstResult struct {
	Config     burstConfig `json:"config"`
	GOMAXPROCS int         `json:"gomaxprocs"`
	// TTFCError is first content chunk − release instant − the engine's
	// TTFT, over every request of the measured bursts.
	TTFCError vmetrics.Summary `json:"ttfc_error_ms"`
	// RecordedError is the TTFC the reader would record (first chunk −
	// its Sent stamp) − the engine's TTFT: it misses what happened
	// before the stamp.
	RecordedError vmetrics.Summary `json:"recorded_ttfc_error_ms"`
	// SendLag is Sent − release.
	SendLag vmetrics.Summary `json:"send_lag_ms"`
	// CPUPerRequestUs is the worker's CPU time over the measured bursts
	// (release to the last stream's end, building included) per request.
	CPUPerRequestUs float64 `json:"cpu_per_request_us"`
	Errors          int     `json:"errors"`
	FirstError      string  `json:"first_error,omitempty"`
}

// burstTimes is what one request of a burst recorded, as offsets from the
// burst's start.
type burstTimes struct {
	release, sent, first time.Duration
	err                  string
}

// burster runs one burst of n requests and returns each one's times.
type burster interface {
	burst(ctx context.Context, n int) []burstTimes
}

// runBurstWorker is "loadharness burst-worker": one reader, one burst
// size, result as JSON on stdout.
func runBurstWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg burstConfig
	fs := flag.NewFlagSet("loadharness burst-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "", "engine base URL")
	fs.StringVar(&cfg.Model, "model", engineModel, "model id")
	fs.StringVar(&cfg.Reader, "reader", "client", "client or bare")
	fs.IntVar(&cfg.Streams, "streams", 100, "requests per burst")
	fs.IntVar(&cfg.Tokens, "tokens", 2, "chunks per stream")
	fs.DurationVar(&cfg.TTFT, "ttft", 40*time.Millisecond, "the engine's time to first token")
	fs.DurationVar(&cfg.Gap, "gap", 10*time.Millisecond, "the engine's gap between tokens")
	fs.IntVar(&cfg.Bursts, "bursts", 5, "measured bursts, after one warm-up burst that opens the connections")
	fs.DurationVar(&cfg.Pause, "pause", 300*time.Millisecond, "pause between bursts")
	fs.IntVar(&cfg.PromptBytes, "prompt-bytes", 4096, "prompt length in bytes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured bursts to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("burst worker: %w", err)
	}
	res, err := measureBursts(ctx, cfg)
	if err != nil {
		return fmt.Errorf("burst worker: %w", err)
	}
	return json.NewEncoder(stdout).Encode(res)
}

// burstPrompt is a prompt of n bytes, words of the engine's tokenizer.
func burstPrompt(n int) string {
	return strings.Repeat("tok ", n/4+1)[:n]
}

func measureBursts(ctx context.Context, cfg burstConfig) (burstResult, error) {
	res := burstResult{Config: cfg, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var b burster
	if cfg.Reader == "bare" {
		b = newBareBurster(cfg)
	} else {
		c, err := newBurstClient(cfg)
		if err != nil {
			return res, err
		}
		defer c.c.Close()
		b = c
	}
	b.burst(ctx, cfg.Streams) // warm-up: opens the connections
	var ttfc, recorded, lag []time.Duration
	var cpu time.Duration
	for range cfg.Bursts {
		if !sleep(ctx, cfg.Pause) {
			return res, ctx.Err()
		}
		runtime.GC() // not during the burst
		cpu0 := fidelity.ProcessCPU()
		times := b.burst(ctx, cfg.Streams)
		cpu += fidelity.ProcessCPU() - cpu0
		for _, t := range times {
			if t.err != "" {
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = t.err
				}
				continue
			}
			ttfc = append(ttfc, t.first-t.release-cfg.TTFT)
			recorded = append(recorded, t.first-t.sent-cfg.TTFT)
			lag = append(lag, t.sent-t.release)
		}
	}
	res.TTFCError = durationsMs(ttfc)
	res.RecordedError = durationsMs(recorded)
	res.SendLag = durationsMs(lag)
	res.CPUPerRequestUs = float64(cpu.Microseconds()) / float64(cfg.Bursts*cfg.Streams)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// burstClient sends a burst through pkg/runner and pkg/client, as the
// stress benchmark's closed loop sends its first wave: every request is
// built and serialized before the burst's clock starts (Plan.Ahead).
type burstClient struct {
	c      *client.Client
	prompt string
	tokens int
}

func newBurstClient(cfg burstConfig) (*burstClient, error) {
	c, err := client.New(client.Config{
		BaseURL:        cfg.URL,
		Model:          cfg.Model,
		RequestTimeout: time.Minute,
		MaxConcurrency: cfg.Streams,
		NonStandard:    true,
		RunID:          "loadharness",
	})
	if err != nil {
		return nil, err
	}
	return &burstClient{c: c, prompt: burstPrompt(cfg.PromptBytes), tokens: cfg.Tokens}, nil
}

func (bc *burstClient) burst(ctx context.Context, n int) []burstTimes {
	b, err := runner.Run(ctx, runner.Plan{
		Point: "burst", Schedule: releaseTogether(n), Total: n, Ahead: n,
		Call: func(slot traffic.Slot) (client.Call, error) {
			return client.Call{Seq: slot.Index, Prompt: bc.prompt, TargetPromptTokens: 1, MaxTokens: bc.tokens}, nil
		},
	}, runner.Deps{Sender: bc.c})
	out := make([]burstTimes, 0, n)
	for _, r := range b.Requests {
		out = append(out, clientTimes(r))
	}
	if err != nil || len(out) != n {
		out = append(out, burstTimes{err: fmt.Sprintf("runner: %d of %d requests: %v", len(b.Requests), n, err)})
	}
	return out
}

func clientTimes(r result.Request) burstTimes {
	t := burstTimes{release: r.Intended, sent: r.Sent}
	switch {
	case !r.OK():
		t.err = r.ErrClass + ": " + r.Err
	case len(r.TokenTimes) == 0:
		t.err = "no token"
	default:
		t.first = r.TokenTimes[0]
	}
	return t
}

// releaseTogether is a schedule that releases n slots at one instant, each
// in its own goroutine, all with that instant as Intended.
func releaseTogether(n int) traffic.Schedule {
	return func(ctx context.Context, began time.Time, send traffic.SendFunc) int {
		var wg sync.WaitGroup
		at := time.Since(began)
		for i := range n {
			wg.Go(func() { send(ctx, traffic.Slot{Index: i, Intended: at}) })
		}
		wg.Wait()
		return n
	}
}

// bareBurster is the floor: net/http with pkg/client's transport settings,
// one request body serialized once and shared, and a bufio line reader
// that stamps the first content chunk.
type bareBurster struct {
	r *bareReader
}

func newBareBurster(cfg burstConfig) *bareBurster {
	body, _ := json.Marshal(map[string]any{ // the body pkg/client sends with NonStandard
		"model":          cfg.Model,
		"messages":       []map[string]string{{"role": "user", "content": burstPrompt(cfg.PromptBytes)}},
		"max_tokens":     cfg.Tokens,
		"min_tokens":     cfg.Tokens,
		"ignore_eos":     true,
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true, "continuous_usage_stats": true},
	})
	r, _ := newBareReader(workerConfig{URL: cfg.URL, Model: cfg.Model, Streams: cfg.Streams, Tokens: cfg.Tokens}, time.Now())
	r.body = body
	return &bareBurster{r: r}
}

func (bb *bareBurster) burst(ctx context.Context, n int) []burstTimes {
	out := make([]burstTimes, n)
	began := time.Now()
	var wg sync.WaitGroup
	at := time.Since(began)
	for i := range n {
		wg.Go(func() {
			out[i] = bb.one(ctx, began)
			out[i].release = at
		})
	}
	wg.Wait()
	return out
}

func (bb *bareBurster) one(ctx context.Context, began time.Time) (t burstTimes) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bb.r.url, bytes.NewReader(bb.r.body))
	if err != nil {
		return burstTimes{err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	t.sent = time.Since(began)
	res, err := bb.r.hc.Do(req)
	if err != nil {
		t.err = "connect: " + err.Error()
		return t
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.err = "HTTP " + strconv.Itoa(res.StatusCode)
		return t
	}
	br := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, dataPrefix) {
			at := time.Since(began)
			data := bytes.TrimSpace(line[len(dataPrefix):])
			if bytes.Equal(data, doneData) {
				_, _ = io.Copy(io.Discard, br)
				if t.first == 0 {
					t.err = "no content chunk"
				}
				return t
			}
			if t.first == 0 && isContent(data) {
				t.first = at
			}
		}
		if err != nil {
			t.err = fmt.Sprintf("stream: body ended before [DONE]: %v", err)
			return t
		}
	}
}

// burstRow is one burst measurement: a burst size read by one reader.
type burstRow struct {
	Round      int         `json:"round"` // 1 to -rounds
	Streams    int         `json:"streams"`
	Reader     string      `json:"reader"`
	Worker     burstResult `json:"worker"`
	LoadBefore float64     `json:"load1_before"`
	LoadAfter  float64     `json:"load1_after"`
	Err        string      `json:"error,omitempty"`
}

// measureBurst starts an engine, runs one burst worker with reader rd
// against it and stops the engine.
func measureBurst(ctx context.Context, o options, n int, rd, self string, wcpu, ecpu int, stderr io.Writer) burstRow {
	r := burstRow{Streams: n, Reader: rd, LoadBefore: loadAverage()}
	const gap = 10 * time.Millisecond
	fmt.Fprintf(stderr, "loadharness: burst of %d (TTFT %v, %d bursts), reader %s, load %.2f\n", n, o.burstTTFT, o.burstRepeat, rd, r.LoadBefore)
	eng, err := startEngine(ctx, o.engine, ecpu, o.burstTTFT, gap, stderr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := pinnedCommand(wctx, wcpu, self, "burst-worker", "-url", eng.url, "-reader", rd,
		"-streams", strconv.Itoa(n), "-ttft", o.burstTTFT.String(), "-gap", gap.String(),
		"-bursts", strconv.Itoa(o.burstRepeat), "-prompt-bytes", strconv.Itoa(o.burstPrompt))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	if err == nil {
		err = json.Unmarshal(out.Bytes(), &r.Worker)
	}
	if stopErr := eng.stop(); err == nil {
		err = stopErr
	}
	if err == nil && r.Worker.Errors > 0 {
		err = fmt.Errorf("%d failed requests, first: %s", r.Worker.Errors, r.Worker.FirstError)
	}
	if err != nil {
		r.Err = err.Error()
	}
	r.LoadAfter = loadAverage()
	return r
}

// printBursts writes the burst table: TTFC error (from the release
// instant, and as the reader records it), send lag and CPU per request,
// with the client's ratio to the bare reader of the same size.
func printBursts(w io.Writer, o options, rows []burstRow) {
	if len(rows) == 0 {
		return
	}
	pin := "unpinned"
	if o.pin {
		pin = fmt.Sprintf("engine on CPU %d, worker on CPU %d", engineCPU, workerCPU)
	}
	fmt.Fprintf(w, "\nbursts: N requests released together, engine TTFT %v, %d measured bursts each after a warm-up burst, %d-byte prompts; %d CPUs, %s, %s\n",
		o.burstTTFT, o.burstRepeat, o.burstPrompt, runtime.NumCPU(), runtime.Version(), pin)
	type key struct{ round, streams int }
	bare := map[key]burstResult{}
	for _, r := range rows {
		if r.Reader == "bare" && r.Err == "" {
			bare[key{r.Round, r.Streams}] = r.Worker
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ms\t\tTTFC error\t\trecorded TTFC error\t\tsend lag\tCPU\tP50\tP99\t\t\t")
	fmt.Fprintln(tw, "N\treader\tp50\tp99\tp50\tp99\tp99\tµs/req\t× bare\t× bare\terrors\tload\t")
	for _, r := range rows {
		x := r.Worker
		ratio := func(a, b float64) string {
			if b0, ok := bare[key{r.Round, r.Streams}]; !ok || r.Reader == "bare" || b <= 0 || b0.Config.Streams == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", a/b)
		}
		b := bare[key{r.Round, r.Streams}]
		errs := strconv.Itoa(x.Errors)
		if r.Err != "" {
			errs = "run failed"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%s\t%s\t%s\t%.1f–%.1f\t\n",
			r.Streams, r.Reader, x.TTFCError.Median, x.TTFCError.P99, x.RecordedError.Median, x.RecordedError.P99,
			x.SendLag.P99, x.CPUPerRequestUs, ratio(x.TTFCError.Median, b.TTFCError.Median),
			ratio(x.TTFCError.P99, b.TTFCError.P99), errs, r.LoadBefore, r.LoadAfter)
	}
	_ = tw.Flush()
}
