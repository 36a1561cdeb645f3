package stress

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
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
	Scheduled int              `json:"scheduled"`
	Requests  []result.Request `json:"-"`
	EndReason string           `json:"end_reason"`
	// Began is when the level's clock started (wall clock in JSON): the
	// records' times are offsets from it.
	Began  time.Time          `json:"began_at,omitzero"`
	Config LevelRunConditions `json:"conditions"`
	// Share is, in a sharded run, this shard's part of the level: its
	// clients, or its requests/s in fixed-rate mode.
	Share float64 `json:"share,omitempty"`
	// PlannedStart is, in a sharded run, the wall-clock instant the plan
	// set for the level's start, and LateS how many seconds after it the
	// level began (a shard that reached the level late started it at
	// once and stopped sending at the planned end, see Window).
	PlannedStart time.Time `json:"planned_start,omitzero"`
	LateS        float64   `json:"late_s,omitempty"`
	// Window, when set, is the measurement window on the level's clock in
	// place of [warmup, point duration]: a late shard's shortened level,
	// or a merged level's window common to all its shards.
	Window *Window `json:"window,omitempty"`
	// Shards describes, in a merged run, what each shard recorded at this
	// level (Merge).
	Shards []ShardLevel `json:"shards,omitempty"`
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

// Window is a measurement window, offsets in seconds from a level's start.
type Window struct {
	Start result.Seconds `json:"start_s"`
	End   result.Seconds `json:"end_s"`
}

// window is the level's measurement window: Window, or [warmup, point
// duration].
func (l LevelRun) window() metrics.Window {
	if l.Window != nil {
		return metrics.Window{Start: l.Window.Start.D(), End: l.Window.End.D()}
	}
	return metrics.Window{Start: l.Config.WarmupDuration.D(), End: l.Config.PointDuration.D()}
}

// load is what the level offered: its share in a shard's run, else the
// level.
func (l LevelRun) load() float64 {
	if !l.PlannedStart.IsZero() {
		return l.Share
	}
	return l.Level
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
// interrupted, nor missed by a late shard): only complete levels are
// reused by a resumed run.
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
	name := cfg.LevelName(level)
	load, duration := level, cfg.PointDuration.D()
	var startAt time.Time
	if cfg.Shard != nil {
		load = cfg.Share(level)
		run.Share = load
		startAt = cfg.PlannedStart(index)
		run.PlannedStart = startAt.UTC()
		d.Records = stampShard(d.Records, *cfg.Shard)
		if late := -time.Until(startAt); late > 0 {
			// Never send a level's load outside its planned slot: a late
			// shard starts at once and stops at the planned end, or skips
			// the level when no measurement window would be left.
			if duration-late <= cfg.WarmupDuration.D() {
				run.Began, run.LateS, run.EndReason = time.Now(), late.Seconds(), EndMissedStart
				d.Log().Warn("shard missed a level's start: skipping the level", "shard", cfg.Shard.String(), "level", name,
					"planned_start", startAt.UTC().Format(time.RFC3339Nano), "late", late)
				return run, d.Save(name+"/"+RecordsFile, nil)
			}
			duration -= late
			run.Window = &Window{Start: cfg.WarmupDuration, End: result.Seconds(duration)}
		}
	}
	var schedule traffic.Schedule
	// Requests are serialized before their send instants: a closed loop's
	// first wave before the clock starts, an open loop's arrivals about a
	// second of arrivals ahead (at least 8, at most 1024).
	ahead, lookahead := 0, 0
	switch cfg.TrafficMode {
	case FixedRate:
		rng := rand.New(rand.NewPCG(cfg.RunSeed(), uint64(index)+1))
		arrivals := traffic.PoissonArrivals(load, rng, duration)
		run.Scheduled = len(arrivals)
		schedule = func(ctx context.Context, began time.Time, send traffic.SendFunc) int {
			until := admitUntil(cfg, startAt, began, duration)
			n, _ := slices.BinarySearch(arrivals, until)
			return traffic.Open(ctx, began, arrivals[:n], send)
		}
		lookahead = min(max(int(math.Ceil(load)), 8), 1024)
	default:
		ahead = int(math.Round(load))
		schedule = func(ctx context.Context, began time.Time, send traffic.SendFunc) int {
			return traffic.Closed(ctx, began, ahead, admitUntil(cfg, startAt, began, duration), send)
		}
	}
	health := runner.DefaultHealth()
	if cfg.TrafficMode == FixedRate {
		health.BackoffMin = 0 // arrivals keep their schedule; Retry-After still holds them
	}
	if afterFailing {
		health.FirstFailures = runner.DefaultMinRequests
	}
	b, err := runner.Run(ctx, runner.Plan{
		Point: name, Schedule: schedule, Duration: duration, Ahead: ahead, Lookahead: lookahead, Health: &health,
		Cutoff: duration + cfg.GracePeriod.D(), Records: name + "/" + RecordsFile, StartAt: startAt,
		Call: func(slot traffic.Slot) (client.Call, error) {
			prompt, err := d.Prompts.Prompt(cfg.InputLength, index, cfg.PromptSeq(slot.Index))
			return client.Call{Seq: slot.Index, Prompt: prompt, TargetPromptTokens: cfg.InputLength, MaxTokens: cfg.OutputLength}, err
		},
	}, d)
	run.Began, run.Requests, run.EndReason, run.Client = b.Began, b.Requests, b.EndReason, b.Client
	run.StopReason, run.Backoffs, run.BackoffS = b.StopReason, b.Backoffs, b.BackoffTime.Seconds()
	run.Server = b.Server
	if cfg.Shard != nil {
		for i := range run.Requests {
			run.Requests[i].Shard, run.Requests[i].Shards = cfg.Shard.Index, cfg.Shard.Count
		}
		// Wall clock against wall clock: the shard's own clock.
		late := b.Began.Round(0).Sub(startAt)
		run.LateS = late.Seconds()
		if end := admitUntil(cfg, startAt, b.Began, duration); end < cfg.PointDuration.D() {
			// The level began later than planned (also after the check
			// above: building the first wave, the server scrape), so it
			// stopped sending at the planned end: its window is shorter.
			run.Window = &Window{Start: cfg.WarmupDuration, End: result.Seconds(max(end, cfg.WarmupDuration.D()))}
		}
		if late > LateWarning {
			d.Log().Warn("shard started a level late", "shard", cfg.Shard.String(), "level", name,
				"planned_start", startAt.UTC().Format(time.RFC3339Nano), "late", late)
		}
	}
	return run, err
}

// admitUntil is how long after began a level may send: its duration, and
// for a shard never past the level's planned end (startAt + the point
// duration, on the wall clock), however late the level began.
func admitUntil(cfg Config, startAt, began time.Time, duration time.Duration) time.Duration {
	if cfg.Shard == nil {
		return duration
	}
	return min(duration, startAt.Add(cfg.PointDuration.D()).Sub(began.Round(0)))
}

// LateWarning is how late a shard may start a level before it warns; the
// lateness is recorded (late_s) whatever it is.
const LateWarning = 100 * time.Millisecond

// stampShard wraps a record-file opener so that every record written
// names its shard.
func stampShard(open func(string) (runner.Sink, error), s Shard) func(string) (runner.Sink, error) {
	if open == nil {
		return nil
	}
	return func(path string) (runner.Sink, error) {
		sink, err := open(path)
		if err != nil {
			return nil, err
		}
		return shardSink{sink, s}, nil
	}
}

// shardSink stamps the shard on each record it passes on.
type shardSink struct {
	runner.Sink
	shard Shard
}

func (s shardSink) Record(r result.Request) {
	r.Shard, r.Shards = s.shard.Index, s.shard.Count
	s.Sink.Record(r)
}

func (s shardSink) Close(all []result.Request) error {
	for i := range all {
		all[i].Shard, all[i].Shards = s.shard.Index, s.shard.Count
	}
	return s.Sink.Close(all)
}
