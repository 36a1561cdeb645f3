package decode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/decodewindow"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// Defaults for the decode benchmark's settings.
const (
	DefaultSamplesPerLength = 10
	DefaultEngineChunkSize  = 512
	// OutputTokenMultiplier is the safety margin on the output length the
	// formula of RequiredTokens asks for.
	OutputTokenMultiplier = 2
	// DefaultTicketTimeout releases the next request of a batch even if
	// the previous one has not been accepted by then.
	DefaultTicketTimeout = 30 * time.Second
)

// DefaultBatchSizes and DefaultInputLengths are measured when none are given.
func DefaultBatchSizes() []int { return []int{1, 2, 4, 8} }

// DefaultInputLengths are the prompt lengths measured when none are given.
func DefaultInputLengths() []int { return []int{128, 256, 512, 1024} }

// Config is the decode benchmark's own settings.
type Config struct {
	BatchSizes   []int `json:"batch_sizes"`
	InputLengths []int `json:"input_lengths"`
	// SamplesPerLength is the number of steady-state decode steps each
	// request should make while the whole batch decodes.
	SamplesPerLength int `json:"samples_per_length"`
	// EngineChunkSize is the server's per-iteration token budget (chunked
	// prefill), used to size the output so the window is long enough.
	EngineChunkSize int `json:"engine_chunk_size"`
	// TicketTimeout releases the next request of a batch when the previous
	// one has not been accepted within it.
	TicketTimeout time.Duration `json:"-"`
	// TicketTimeoutS is TicketTimeout in seconds, for the results file.
	TicketTimeoutS float64 `json:"ticket_timeout_s"`
	// WarmupRequests are sent once before the first combination and left
	// out of every statistic.
	WarmupRequests int `json:"warmup_requests"`
}

// Validate reports every problem with c, naming the flag at fault.
func (c Config) Validate() error {
	var errs []error
	if len(c.BatchSizes) == 0 {
		errs = append(errs, errors.New("--batch-sizes must list at least one batch size"))
	}
	if c.EngineChunkSize <= 0 {
		errs = append(errs, fmt.Errorf("--engine-chunk-size %d: must be positive", c.EngineChunkSize))
	}
	for _, b := range c.BatchSizes {
		switch {
		case b < 1:
			errs = append(errs, fmt.Errorf("--batch-sizes %d: batch sizes must be at least 1", b))
		case c.EngineChunkSize > 0 && b >= c.EngineChunkSize:
			errs = append(errs, fmt.Errorf("--batch-sizes %d must be less than --engine-chunk-size %d (each decoding request takes one token of the chunk budget)", b, c.EngineChunkSize))
		}
	}
	errs = append(errs, sampler.CheckLengths("--input-lengths", c.InputLengths)...)
	if c.SamplesPerLength <= 0 {
		errs = append(errs, fmt.Errorf("--samples-per-length %d: must be positive", c.SamplesPerLength))
	}
	if c.TicketTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ticket timeout %v: must be positive", c.TicketTimeout))
	}
	if c.WarmupRequests < 0 {
		errs = append(errs, fmt.Errorf("--warmup-requests %d: must not be negative", c.WarmupRequests))
	}
	return errors.Join(errs...)
}

// PrefillIterations is the number of engine iterations one request of
// length l needs to prefill when every iteration has a budget of chunk
// tokens and batch decoding requests each take one: ceil(l / (chunk - batch)).
func PrefillIterations(l, chunk, batch int) int {
	budget := chunk - batch
	return (l + budget - 1) / budget
}

// RequiredTokens is the number of output tokens the first request of a
// batch needs so that it is still decoding when the last one has finished
// its prefill, and then makes samples more steps with the whole batch:
// samples for a batch of one, else samples + (batch-1) * PrefillIterations.
func RequiredTokens(samples, batch, l, chunk int) int {
	if batch == 1 {
		return samples
	}
	return samples + (batch-1)*PrefillIterations(l, chunk, batch)
}

// OutputTokens is the output length requested: OutputTokenMultiplier times
// RequiredTokens.
func OutputTokens(samples, batch, l, chunk int) int {
	return OutputTokenMultiplier * RequiredTokens(samples, batch, l, chunk)
}

// Combination is one (batch size, input length) point.
type Combination struct {
	BatchSize   int `json:"batch_size"`
	InputLength int `json:"input_length"`
	// Index numbers the combinations in run order; it salts the prompts.
	Index int `json:"index"`
}

// Label is the combination's folder name: "bs=4_il=512".
func (c Combination) Label() string { return fmt.Sprintf("bs=%d_il=%d", c.BatchSize, c.InputLength) }

// CheckLabel is the combination's label in validation checks: "bs=4,il=512".
func (c Combination) CheckLabel() string {
	return fmt.Sprintf("bs=%d,il=%d", c.BatchSize, c.InputLength)
}

// Combinations lists the points in run order: batch sizes in the user's
// order, and for each, the input lengths in the user's order.
func Combinations(cfg Config) []Combination {
	var out []Combination
	for _, b := range cfg.BatchSizes {
		for _, l := range cfg.InputLengths {
			out = append(out, Combination{BatchSize: b, InputLength: l, Index: len(out)})
		}
	}
	return out
}

// Streamer sends one streamed request; *client.Client implements it.
type Streamer interface {
	Stream(ctx context.Context, began time.Time, call client.Call) result.Request
}

var _ Streamer = (*client.Client)(nil)

// Prompter makes the prompt of one request; *sampler.Sampler implements it.
type Prompter interface {
	Prompt(length, point, seq int) (string, error)
}

// Deps are what a run needs besides its Config.
type Deps struct {
	Streamer Streamer
	Prompts  Prompter
	Logger   *slog.Logger
	// Progress, when set, is called as requests of a combination end.
	Progress func(c Combination, done, failed, total int)
}

// Point is what one combination recorded.
type Point struct {
	Combination
	Began     time.Time
	Requests  []result.Request
	EndReason string
	// Client is what the client process did during the combination.
	Client fidelity.Sample
}

// warmupPoint is the combination index of warm-up requests, outside the
// range of real combinations so their salts never repeat.
const warmupPoint = 1 << 20

// Warmup sends cfg.WarmupRequests short requests one at a time and returns
// their records, flagged as warm-ups.
func Warmup(ctx context.Context, cfg Config, d Deps) ([]result.Request, error) {
	began := time.Now()
	var out []result.Request
	for i := range cfg.WarmupRequests {
		if ctx.Err() != nil {
			break
		}
		l := cfg.InputLengths[0]
		prompt, err := d.Prompts.Prompt(l, warmupPoint, i)
		if err != nil {
			return out, fmt.Errorf("build warm-up prompt: %w", err)
		}
		out = append(out, d.Streamer.Stream(ctx, began, client.Call{Seq: i, Warmup: true, Prompt: prompt, TargetPromptTokens: l, MaxTokens: 8}))
	}
	return out, nil
}

// RunCombination launches one batch and waits for all of it. ctx bounds the
// run (--benchmark-timeout): when it ends, requests still in flight are
// cancelled and recorded as such.
func RunCombination(ctx context.Context, cfg Config, c Combination, d Deps) (Point, error) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxTokens := OutputTokens(cfg.SamplesPerLength, c.BatchSize, c.InputLength, cfg.EngineChunkSize)
	prompts := make([]string, c.BatchSize)
	for i := range prompts {
		p, err := d.Prompts.Prompt(c.InputLength, c.Index, i)
		if err != nil {
			return Point{}, fmt.Errorf("build prompt: %w", err)
		}
		prompts[i] = p
	}
	pt := Point{Combination: c, Began: time.Now(), Requests: make([]result.Request, c.BatchSize)}
	var done, failed atomic.Int64
	ran := make([]bool, c.BatchSize)
	probe := fidelity.Start()
	traffic.SequentialLaunch(ctx, pt.Began, c.BatchSize, cfg.TicketTimeout, func(ctx context.Context, slot traffic.Slot, accepted func()) {
		r := d.Streamer.Stream(ctx, pt.Began, client.Call{
			Seq: slot.Index, Prompt: prompts[slot.Index], TargetPromptTokens: c.InputLength,
			MaxTokens: maxTokens, Intended: slot.Intended, OnAccepted: accepted,
		})
		pt.Requests[slot.Index] = r
		ran[slot.Index] = true
		n := done.Add(1)
		f := failed.Load()
		if !r.OK() {
			f = failed.Add(1)
			log.Warn("request failed", "point", c.Label(), "req_seq", r.Seq, "error_class", r.ErrClass, "err", r.Err)
		}
		if d.Progress != nil {
			d.Progress(c, int(n), int(f), c.BatchSize)
		}
	})
	pt.Client = probe.Stop()
	// Slots never admitted (the run ended before their release) are
	// recorded as cancelled, so nothing is silently missing.
	for i := range pt.Requests {
		if !ran[i] {
			pt.Requests[i] = result.Request{Seq: i, TargetPromptTokens: c.InputLength, TargetOutputTokens: maxTokens,
				ErrClass: result.ErrCanceled, Err: "not sent: the run ended first"}
		}
	}
	pt.EndReason = endReason(ctx)
	return pt, nil
}

func endReason(ctx context.Context) string {
	switch {
	case ctx.Err() == nil:
		return result.EndCompleted
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return result.EndTimeout
	default:
		return result.EndInterrupted
	}
}

// Row is the summary of one combination.
type Row struct {
	BatchSize   int `json:"batch_size"`
	InputLength int `json:"input_length"`
	// TBT summarizes the chunk gaps inside the decode window, in seconds.
	TBT metrics.Summary `json:"tbt"`
	// TBTPerToken summarizes the per-token gaps (each chunk gap divided by
	// the tokens the chunk carried). It is empty when chunks carried several
	// tokens but the server did not say how many each (no per-chunk usage):
	// a per-token figure would then be a guess.
	TBTPerToken metrics.Summary `json:"tbt_per_token"`
	// TokensPerChunk summarizes the tokens each in-window chunk carried,
	// when the server reported it.
	TokensPerChunk *metrics.Summary `json:"tokens_per_chunk,omitempty"`
	// TokensPerChunkMean is the mean number of tokens per content chunk:
	// from TokensPerChunk when known, else the server's output token count
	// over the chunks received (so coalescing shows even without per-chunk
	// usage); 0 when the server reported no usage.
	TokensPerChunkMean float64 `json:"tokens_per_chunk_mean"`
	// DecodeTPS is BatchSize × TokensPerChunkMean / mean TBT (per chunk):
	// tokens per second the whole batch generated in the window.
	DecodeTPS float64 `json:"decode_tokens_per_s"`
	// PeakConcurrency is the most requests that decoded at once.
	PeakConcurrency int `json:"peak_concurrency"`
	// WindowS is the total length of the decode window in seconds.
	WindowS   float64 `json:"window_s"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	EndReason string  `json:"end_reason"`
	// Fidelity says whether the client kept up during the combination.
	Fidelity fidelity.Report `json:"client_fidelity"`
	// Server is what the server's own metrics reported meanwhile.
	Server *servermetrics.Summary `json:"server_metrics,omitempty"`
}

// Analysis is one combination's decode window and summary row.
type Analysis struct {
	Row    Row
	Window decodewindow.Result
}

// Analyze finds the decode window of a combination's successful requests
// and summarizes the TBT inside it.
func Analyze(p Point) (Analysis, error) {
	var streams []decodewindow.Stream
	errs, tokens, chunks, allUsage := 0, 0, 0, true
	for i := range p.Requests {
		r := &p.Requests[i]
		if !r.OK() {
			errs++
			continue
		}
		streams = append(streams, decodewindow.FromRequest(r))
		tokens += r.OutputTokens
		chunks += r.Chunks()
		allUsage = allUsage && r.UsageReported
	}
	w, err := decodewindow.Analyze(streams, decodewindow.Config{Strategy: decodewindow.All})
	if err != nil {
		return Analysis{}, fmt.Errorf("decode window of %s: %w", p.Label(), err)
	}
	row := Row{
		BatchSize: p.BatchSize, InputLength: p.InputLength,
		TBT: w.ChunkGapStats, TBTPerToken: w.TokenGapStats,
		PeakConcurrency: w.Peak, Requests: len(p.Requests), Errors: errs, EndReason: p.EndReason,
		Fidelity: fidelity.Assess(p.Client, p.Requests),
	}
	for _, win := range w.Windows {
		row.WindowS += win.Duration().Seconds()
	}
	switch {
	case len(w.TokensPerChunk) > 0:
		tpc := make([]float64, len(w.TokensPerChunk))
		for i, n := range w.TokensPerChunk {
			tpc[i] = float64(n)
		}
		s := metrics.Summarize(tpc)
		row.TokensPerChunk = &s
		row.TokensPerChunkMean = s.Mean
	case allUsage && chunks > 0:
		row.TokensPerChunkMean = float64(tokens) / float64(chunks)
		if row.TokensPerChunkMean > 1.005 {
			// Several tokens per chunk, split unknown: no per-token figure.
			row.TBTPerToken = metrics.Summary{}
		}
	}
	if row.TBT.Count > 0 && row.TBT.Mean > 0 {
		perChunk := row.TokensPerChunkMean
		if perChunk == 0 {
			perChunk = 1
		}
		row.DecodeTPS = float64(p.BatchSize) * perChunk / row.TBT.Mean
	}
	return Analysis{Row: row, Window: w}, nil
}

// SortRows orders rows by batch size, then input length.
func SortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.BatchSize, b.BatchSize), cmp.Compare(a.InputLength, b.InputLength))
	})
}
