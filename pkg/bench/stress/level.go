package stress

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// Files of a stress run, in its folder: the results, and each level's
// records and summary in its folder (Config.LevelName).
const (
	ResultsFile = "stress_results.json"
	RecordsFile = "requests.jsonl"
	LevelFile   = "level.json"
)

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
	// ResumedFrom is the earlier run the level was measured in, when a
	// resumed run reused it; empty for a level measured by this run.
	ResumedFrom string `json:"resumed_from,omitempty"`
	// StopReason says why the level ended early because the server kept
	// failing (EndReason server_failing); empty otherwise.
	StopReason string `json:"stop_reason,omitempty"`
	// Backoffs counts the waits the clients took after failures or for a
	// Retry-After; BackoffS is their total length in seconds.
	Backoffs int     `json:"backoffs"`
	BackoffS float64 `json:"backoff_s"`
	// Server is what the server's own metrics said during the level (nil
	// when it was not scraped); kept so that a resumed level keeps it.
	Server *servermetrics.Summary `json:"server_metrics,omitempty"`
}

// LevelRunConditions are the settings a level was measured under; a
// resumed level is analysed with its own.
type LevelRunConditions struct {
	// InputLength and OutputLength are the workload's shape (absent in
	// runs made before they were recorded per level).
	InputLength    int            `json:"input_length,omitempty"`
	OutputLength   int            `json:"output_length,omitempty"`
	TrafficMode    TrafficMode    `json:"traffic_mode"`
	PointDuration  result.Seconds `json:"point_duration_s"`
	WarmupDuration result.Seconds `json:"warmup_duration_s"`
	GracePeriod    result.Seconds `json:"grace_period_s"`
}

// CutError is the error text of a request still running at the end of
// the grace period.
const CutError = runner.CutError

// Complete reports whether the level ran to its end (it was not
// interrupted): only complete levels are reused by a resumed run.
func (l LevelRun) Complete() bool { return l.EndReason == result.EndCompleted }

// runLevel runs one level for cfg.PointDuration, then lets requests in
// flight finish for up to cfg.GracePeriod; those still running are cut
// and recorded with error class canceled. When ctx ends early the level
// stops at once and is marked interrupted.
//
// Health (runner.DefaultHealth) makes each closed-loop client back off
// after a failure, holds every send for a server's Retry-After, and ends
// the level early when the server keeps failing; after a level the
// server failed (afterFailing), the level also ends as soon as its first
// requests all fail.
func runLevel(ctx context.Context, cfg Config, level float64, index int, afterFailing bool, d runner.Deps) (LevelRun, error) {
	run := LevelRun{Level: level, Index: index, Config: LevelRunConditions{
		InputLength: cfg.InputLength, OutputLength: cfg.OutputLength, TrafficMode: cfg.TrafficMode, PointDuration: cfg.PointDuration,
		WarmupDuration: cfg.WarmupDuration, GracePeriod: cfg.GracePeriod,
	}}
	var schedule traffic.Schedule
	// Requests are serialized before their send instants: a closed loop's
	// first wave before the clock starts, an open loop's arrivals about a
	// second of arrivals ahead (at least 8, at most 1024).
	ahead, lookahead := 0, 0
	switch cfg.TrafficMode {
	case FixedRate:
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(index)+1))
		arrivals := traffic.PoissonArrivals(level, rng, cfg.PointDuration.D())
		run.Scheduled = len(arrivals)
		schedule = traffic.OpenLoop(arrivals)
		lookahead = min(max(int(math.Ceil(level)), 8), 1024)
	default:
		ahead = int(math.Round(level))
		schedule = traffic.ClosedLoop(ahead, cfg.PointDuration.D())
	}
	health := runner.DefaultHealth()
	if cfg.TrafficMode == FixedRate {
		health.BackoffMin = 0 // arrivals keep their schedule; Retry-After still holds them
	}
	if afterFailing {
		health.FirstFailures = runner.DefaultMinRequests
	}
	name := cfg.LevelName(level)
	b, err := runner.Run(ctx, runner.Plan{
		Point: name, Schedule: schedule, Duration: cfg.PointDuration.D(), Ahead: ahead, Lookahead: lookahead, Health: &health,
		Cutoff: cfg.PointDuration.D() + cfg.GracePeriod.D(), Records: name + "/" + RecordsFile,
		Call: func(slot traffic.Slot) (client.Call, error) {
			prompt, err := d.Prompts.Prompt(cfg.InputLength, index, slot.Index)
			return client.Call{Seq: slot.Index, Prompt: prompt, TargetPromptTokens: cfg.InputLength, MaxTokens: cfg.OutputLength}, err
		},
	}, d)
	run.Began, run.Requests, run.EndReason, run.Client = b.Began, b.Requests, b.EndReason, b.Client
	run.StopReason, run.Backoffs, run.BackoffS = b.StopReason, b.Backoffs, b.BackoffTime.Seconds()
	run.Server = b.Server
	return run, err
}
