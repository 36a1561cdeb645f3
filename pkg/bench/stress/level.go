package stress

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

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
	// Progress, when set, is called about every 200 ms during a level with
	// the seconds elapsed, the requests done and failed.
	Progress func(level float64, elapsed time.Duration, done, failed int)
}

// LevelRun is what one level recorded.
type LevelRun struct {
	Level float64 `json:"level"`
	// Index numbers levels in run order; it salts the prompts and seeds
	// the arrivals, so no level reuses another's prompts.
	Index int `json:"index"`
	// Scheduled is the number of arrivals the open-loop schedule planned
	// before the point's end (0 in closed loop).
	Scheduled int                `json:"scheduled"`
	Requests  []result.Request   `json:"-"`
	EndReason string             `json:"end_reason"`
	Began     time.Time          `json:"-"`
	Config    LevelRunConditions `json:"conditions"`
	// Client is what the client process did during the level.
	Client fidelity.Sample `json:"client"`
}

// LevelRunConditions are the settings a level was measured under; a
// resumed level is analysed with its own.
type LevelRunConditions struct {
	TrafficMode     TrafficMode `json:"traffic_mode"`
	PointDurationS  float64     `json:"point_duration_s"`
	WarmupDurationS float64     `json:"warmup_duration_s"`
	GracePeriodS    float64     `json:"grace_period_s"`
}

// CutError is the error text of a request still running at the end of
// the grace period.
const CutError = "cut: still running at the end of the grace period"

// Complete reports whether the level ran to its end (it was not
// interrupted): only complete levels are reused by a resumed run.
func (l LevelRun) Complete() bool { return l.EndReason == result.EndCompleted }

// RunLevel runs one level for cfg.PointDuration, then lets requests in
// flight finish for up to cfg.GracePeriod; those still running are cut
// and recorded with error class canceled. When ctx ends early the level
// stops at once and is marked interrupted.
func RunLevel(ctx context.Context, cfg Config, level float64, index int, d Deps) (LevelRun, error) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	run := LevelRun{Level: level, Index: index, Began: time.Now(), Config: LevelRunConditions{
		TrafficMode: cfg.TrafficMode, PointDurationS: cfg.PointDuration.Seconds(),
		WarmupDurationS: cfg.WarmupDuration.Seconds(), GracePeriodS: cfg.GracePeriod.Seconds(),
	}}
	// The grace deadline cancels requests still running; the parent ctx
	// (Ctrl-C) cancels everything at once.
	graceCtx, cancel := context.WithDeadline(ctx, run.Began.Add(cfg.PointDuration+cfg.GracePeriod))
	defer cancel()

	var (
		mu          sync.Mutex
		recs        []result.Request
		done, fails atomic.Int64
		promptErr   error
	)
	send := func(ctx context.Context, slot traffic.Slot) {
		prompt, err := d.Prompts.Prompt(cfg.InputLength, index, slot.Index)
		if err != nil {
			mu.Lock()
			promptErr = err
			mu.Unlock()
			return
		}
		r := d.Streamer.Stream(ctx, run.Began, client.Call{
			Seq: slot.Index, Prompt: prompt, TargetPromptTokens: cfg.InputLength,
			MaxTokens: cfg.OutputLength, Intended: slot.Intended,
		})
		done.Add(1)
		if !r.OK() {
			fails.Add(1)
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if d.Progress != nil {
		progressDone.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-tick.C:
					d.Progress(level, time.Since(run.Began), int(done.Load()), int(fails.Load()))
				}
			}
		})
	}

	probe := fidelity.Start()
	switch cfg.TrafficMode {
	case FixedRate:
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(index)+1))
		arrivals := traffic.PoissonArrivals(level, rng, cfg.PointDuration)
		run.Scheduled = len(arrivals)
		traffic.Open(graceCtx, run.Began, arrivals, send)
	default:
		traffic.Closed(graceCtx, run.Began, int(math.Round(level)), cfg.PointDuration, send)
	}
	run.Client = probe.Stop()
	close(stopProgress)
	progressDone.Wait()
	if promptErr != nil {
		return run, fmt.Errorf("build prompt: %w", promptErr)
	}
	slices.SortFunc(recs, func(a, b result.Request) int { return cmp.Compare(a.Seq, b.Seq) })
	run.Requests = recs
	run.EndReason = result.EndCompleted
	if ctx.Err() != nil {
		run.EndReason = result.EndInterrupted
	} else {
		// The parent is still live, so a cancelled request was cut by the
		// grace deadline: say so in its record.
		for i := range recs {
			if recs[i].ErrClass == result.ErrCanceled {
				recs[i].Err = CutError
			}
		}
	}
	log.Debug("level recorded", "level", level, "requests", len(recs), "failed", fails.Load())
	return run, nil
}
