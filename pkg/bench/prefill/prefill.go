package prefill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// Defaults for the prefill benchmark's settings.
const (
	DefaultOutputTokens     = 1
	DefaultSamplesPerLength = 10
	DefaultWarmupRequests   = 1
)

// DefaultInputLengths are the prompt lengths measured when none are given.
func DefaultInputLengths() []int { return []int{128, 256, 512, 1024} }

// Config is the prefill benchmark's own settings.
type Config struct {
	InputLengths     []int `json:"input_lengths"`
	OutputTokens     int   `json:"output_tokens"`
	SamplesPerLength int   `json:"samples_per_length"`
	// WarmupRequests are sent first, at the first length, recorded with
	// warmup true and left out of every statistic.
	WarmupRequests int `json:"warmup_requests"`
}

// Validate reports every problem with c, naming the flag at fault.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, sampler.CheckLengths("--input-lengths", c.InputLengths)...)
	if c.OutputTokens <= 0 {
		errs = append(errs, fmt.Errorf("--output-tokens %d: must be positive", c.OutputTokens))
	}
	if c.SamplesPerLength <= 0 {
		errs = append(errs, fmt.Errorf("--samples-per-length %d: must be positive", c.SamplesPerLength))
	}
	if c.WarmupRequests < 0 {
		errs = append(errs, fmt.Errorf("--warmup-requests %d: must not be negative", c.WarmupRequests))
	}
	return errors.Join(errs...)
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

// Deps are what Run needs besides its Config.
type Deps struct {
	Streamer Streamer
	Prompts  Prompter
	Logger   *slog.Logger
	// Progress, when set, is called after each request with the number
	// of measured requests done (warm-ups excluded), failed, and the total.
	Progress func(done, failed, total int)
}

// Outcome is what a run recorded.
type Outcome struct {
	Began     time.Time
	Requests  []result.Request
	EndReason string
	// Client is what the client process did during the run.
	Client fidelity.Sample
}

// Run sends the warm-up requests and then the stair, one request at a
// time, until done or ctx ends. Requests are recorded whatever their
// outcome. When ctx ends early the requests so far are returned with
// EndReason set from the context's cause (interrupted or timed out).
func Run(ctx context.Context, cfg Config, d Deps) (Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return Outcome{}, err
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan := make([]int, 0, cfg.WarmupRequests+len(cfg.InputLengths)*cfg.SamplesPerLength)
	for range cfg.WarmupRequests {
		plan = append(plan, cfg.InputLengths[0])
	}
	for _, l := range cfg.InputLengths {
		for range cfg.SamplesPerLength {
			plan = append(plan, l)
		}
	}
	total := len(plan) - cfg.WarmupRequests
	out := Outcome{Began: time.Now(), Requests: make([]result.Request, 0, len(plan))}
	done, failed := 0, 0
	var promptErr error
	probe := fidelity.Start()
	traffic.Sequential(ctx, out.Began, len(plan), func(ctx context.Context, slot traffic.Slot) {
		if promptErr != nil {
			return
		}
		length := plan[slot.Index]
		prompt, err := d.Prompts.Prompt(length, 0, slot.Index)
		if err != nil {
			promptErr = err
			return
		}
		warm := slot.Index < cfg.WarmupRequests
		r := d.Streamer.Stream(ctx, out.Began, client.Call{
			Seq: slot.Index, Warmup: warm, Prompt: prompt, TargetPromptTokens: length,
			MaxTokens: cfg.OutputTokens, Intended: slot.Intended,
		})
		out.Requests = append(out.Requests, r)
		if warm {
			log.Debug("warm-up request", "req_seq", r.Seq, "err", r.Err)
			return
		}
		done++
		if !r.OK() {
			failed++
			log.Warn("request failed", "req_seq", r.Seq, "input_tokens", length, "error_class", r.ErrClass, "err", r.Err)
		}
		if d.Progress != nil {
			d.Progress(done, failed, total)
		}
	})
	out.Client = probe.Stop()
	if promptErr != nil {
		return out, fmt.Errorf("build prompt: %w", promptErr)
	}
	out.EndReason = endReason(ctx)
	return out, nil
}

// endReason names why a run that used ctx stopped.
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

// Row is the summary of one input length.
type Row struct {
	InputLength int `json:"input_length"`
	// TTFC summarizes the successful requests' TTFC, in seconds.
	TTFC metrics.Summary `json:"ttfc"`
	// PrefillTPS is InputLength divided by the median TTFC: prompt tokens
	// per second, upper-bounded by the server's true prefill speed since
	// TTFC also holds the network, queueing and the first decode step.
	PrefillTPS float64 `json:"prefill_tokens_per_s"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
}

// Analyze groups the measured requests by target length and summarizes
// TTFC. Warm-ups and failures are left out of the statistics; failures are
// counted. Rows are sorted by length.
func Analyze(reqs []result.Request) []Row {
	byLen := map[int]*Row{}
	ttfcs := map[int][]float64{}
	for i := range reqs {
		r := &reqs[i]
		if r.Warmup {
			continue
		}
		row := byLen[r.TargetPromptTokens]
		if row == nil {
			row = &Row{InputLength: r.TargetPromptTokens}
			byLen[r.TargetPromptTokens] = row
		}
		row.Requests++
		ttfc, ok := r.TTFC()
		if !r.OK() || !ok {
			row.Errors++
			continue
		}
		ttfcs[r.TargetPromptTokens] = append(ttfcs[r.TargetPromptTokens], ttfc.Seconds())
	}
	rows := make([]Row, 0, len(byLen))
	for l, row := range byLen {
		row.TTFC = metrics.Summarize(ttfcs[l])
		if row.TTFC.Count > 0 && row.TTFC.Median > 0 {
			row.PrefillTPS = float64(l) / row.TTFC.Median
		}
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(a, b Row) int { return cmp.Compare(a.InputLength, b.InputLength) })
	return rows
}
