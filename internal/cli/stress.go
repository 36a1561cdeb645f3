package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
)

// StressCmd is veeksha.microbench.stress's command line.
type StressCmd struct {
	Common            `embed:""`
	InputLength       int              `name:"input-length" aliases:"input_length" default:"${default_stress_input_length}" help:"Prompt length in server tokens."`
	OutputLength      int              `name:"output-length" aliases:"output_length" default:"${default_stress_output_length}" help:"Output tokens per request."`
	TrafficMode       string           `name:"traffic-mode" aliases:"traffic_mode" enum:"fixed-clients,fixed-rate" default:"fixed-clients" help:"fixed-clients: closed loop, a level is a number of clients each sending when its last request ends; fixed-rate: open loop, a level is a Poisson arrival rate in requests/s. One of: ${enum}."`
	StressMode        string           `name:"stress-mode" aliases:"mode.type" enum:"manual,range,auto" default:"manual" help:"How levels are chosen: ${enum}."`
	PointDuration     Seconds          `name:"point-duration" aliases:"point_duration" default:"${default_point_duration}" help:"How long each level sends load (seconds or a duration)."`
	WarmupDuration    Seconds          `name:"warmup-duration" aliases:"warmup_duration" default:"${default_warmup_duration}" help:"Start of each level left out of the measurement window."`
	GracePeriod       Seconds          `name:"grace-period" default:"${default_grace_period}" help:"How long requests still running at the end of a level may finish before they are cut (and recorded as cut)."`
	ConcurrencyLevels FloatList        `name:"concurrency-levels" aliases:"mode.concurrency_levels" placeholder:"N" help:"manual mode: the levels (clients, or requests/s in fixed-rate mode, where fractions are allowed) (default: ${default_levels})."`
	ConcurrencyMin    float64          `name:"concurrency-min" aliases:"mode.concurrency_min" default:"${default_range_min}" help:"range mode: lowest level."`
	ConcurrencyMax    float64          `name:"concurrency-max" aliases:"mode.concurrency_max" default:"${default_range_max}" help:"range mode: highest level."`
	ConcurrencyPoints int              `name:"concurrency-points" aliases:"mode.concurrency_points" default:"${default_range_points}" help:"range mode: number of log-spaced levels."`
	AutoThreshold     float64          `name:"auto-throughput-threshold" aliases:"mode.auto_throughput_threshold" default:"${default_auto_threshold}" help:"auto mode: stop doubling when output throughput grows by less than this fraction; also the interactivity tolerance."`
	AutoMaxProbes     int              `name:"auto-max-probes" aliases:"mode.auto_max_probes" default:"${default_auto_max_probes}" help:"auto mode: most levels the doubling phase visits."`
	AutoFillPoints    int              `name:"auto-fill-points" aliases:"mode.auto_fill_points" default:"${default_auto_fill_points}" help:"auto mode: log-spaced levels filled between the bounds."`
	AutoMaxLevel      float64          `name:"auto-max-level" default:"${default_auto_max_level}" help:"auto mode: never probe a level above this."`
	ResumeDir         string           `name:"resume-dir" aliases:"mode.resume_dir" help:"Reuse the completed levels of an earlier stress run (a run folder, or latest); its input/output length and traffic mode must match."`
	Version           kong.VersionFlag `help:"Print the version and exit."`
}

func (c *StressCmd) common() *Common { return &c.Common }

func (c *StressCmd) config() stress.Config {
	levels := []float64(c.ConcurrencyLevels)
	if len(levels) == 0 {
		levels = stress.DefaultLevels()
	}
	cfg := stress.Config{
		InputLength: c.InputLength, OutputLength: c.OutputLength,
		TrafficMode: stress.TrafficMode(c.TrafficMode), Mode: stress.Mode(c.StressMode),
		PointDuration: c.PointDuration.D(), WarmupDuration: c.WarmupDuration.D(), GracePeriod: c.GracePeriod.D(),
		Seed: c.Seed,
	}
	switch cfg.Mode {
	case stress.Manual:
		cfg.Levels = levels
	case stress.Range:
		cfg.RangeMin, cfg.RangeMax, cfg.RangePoints = c.ConcurrencyMin, c.ConcurrencyMax, c.ConcurrencyPoints
	case stress.Auto:
		cfg.Auto = autoscan.AutoConfig{Threshold: c.AutoThreshold, MaxProbes: c.AutoMaxProbes, FillPoints: c.AutoFillPoints, MaxLevel: c.AutoMaxLevel, Reuse: autoscan.DefaultReuse}
	}
	return cfg.WithDurationsInSeconds()
}

func (c *StressCmd) validate() error { return c.config().Validate() }

// maxInFlight estimates the most concurrent streams a plan needs, to size
// the connection pool.
func (c *StressCmd) maxInFlight(cfg stress.Config) int {
	top := 0.0
	switch cfg.Mode {
	case stress.Manual:
		for _, l := range cfg.Levels {
			top = math.Max(top, l)
		}
	case stress.Range:
		top = cfg.RangeMax
	default:
		top = cfg.Auto.MaxLevel
		if top == 0 {
			top = stress.DefaultAutoMaxLevel
		}
	}
	if cfg.TrafficMode == stress.FixedRate {
		// Little's law with a generous latency bound.
		top *= 30
	}
	return int(math.Min(math.Max(top, 1), 20000))
}

func (c *StressCmd) run(ctx context.Context, e *env, log *slog.Logger) error {
	cfg := c.config()
	cmp, err := c.resolveComparison(Stress)
	if err != nil {
		return err
	}
	var other stress.Results
	if cmp != nil {
		if err := cmp.load("stress_results.json", &other); err != nil {
			return err
		}
		other.Config = other.Config.WithDurationsInSeconds()
	}
	if c.ValidateOnly {
		return c.validateOnly(e, cmp, other)
	}
	var resumed []stress.LevelRun
	resumedFrom := ""
	if c.ResumeDir != "" {
		dir, runs, err := loadResume(c.OutputDir, c.ResumeDir, cfg)
		if err != nil {
			return err
		}
		resumed, resumedFrom = runs, dir
		log.Info("resuming", "from", dir, "levels", len(runs))
	}
	title := "Veeksha Microbenchmark — stress"
	if cfg.Mode == stress.Auto {
		title += " (auto)"
	}
	rows := [][2]string{
		{"Input length", fmt.Sprint(cfg.InputLength)}, {"Output length", fmt.Sprint(cfg.OutputLength)},
		{"Traffic mode", string(cfg.TrafficMode)}, {"Stress mode", string(cfg.Mode)},
		{"Point duration", cfg.PointDuration.String()}, {"Warmup duration", cfg.WarmupDuration.String()},
		{"Grace period", cfg.GracePeriod.String()},
	}
	if cfg.Mode != stress.Auto {
		rows = append(rows, [2]string{"Levels", fmt.Sprint(stress.Levels(cfg))})
	}
	if resumedFrom != "" {
		rows = append(rows, [2]string{"Resumed from", fmt.Sprintf("%s (%d levels)", resumedFrom, len(resumed))})
	}
	s, dir, err := beginRun(ctx, e, &c.Common, log, runStart{
		bench: Stress, streams: c.maxInFlight(cfg), lengths: []int{cfg.InputLength}, title: title, rows: rows,
	})
	if err != nil {
		return err
	}
	defer s.close()
	started := s.started

	files := newRunFiles(dir, log)
	// Resumed levels are copied into the new run, so that it stands alone.
	for _, r := range resumed {
		if err := writeLevel(files, cfg, r); err != nil {
			return err
		}
	}
	ui := newProgress(e, &c.Common)
	var track func(done, failed, total int)
	var trackLevel float64 = -1
	deps := stress.Deps{Streamer: s.client, Prompts: s.sampler, Logger: log,
		Progress: func(level float64, elapsed time.Duration, done, failed int) {
			if level != trackLevel {
				trackLevel = level
				track = ui.track(cfg.LevelName(level), int(cfg.PointDuration.Seconds()), secondUnits)
			}
			if track != nil {
				track(int(min(elapsed, cfg.PointDuration).Seconds()), failed, int(cfg.PointDuration.Seconds()))
			}
		}}
	began := time.Now()
	scr := s.scrape(ctx)
	server := map[float64]*servermetrics.Summary{}
	sweep, sweepErr := stress.Sweep(ctx, cfg, deps, resumed, func(r stress.LevelRun) error {
		server[r.Level] = serverSummary(scr, r.Began, time.Now())
		p := stress.Analyze(r)
		log.Info("level done", "level", r.Level, "output_tps", p.OutputThroughput, "requests", p.NumRequests)
		return writeLevel(files, cfg, r)
	})
	ui.stop()
	if scr != nil {
		scr.Stop()
	}

	res := stress.Results{
		Meta: newMeta(e, Stress, "throughput_latency", started, s.settings), TrafficMode: cfg.TrafficMode,
		InputLength: cfg.InputLength, OutputLength: cfg.OutputLength, Config: cfg,
		AutoPlan: sweep.Plan, ResumedFrom: resumedFrom, Levels: sweep.Runs,
	}
	res.EndReason = result.EndCompleted
	if ctx.Err() != nil {
		res.EndReason = result.EndInterrupted
	}
	res.DurationS = time.Since(began).Seconds()
	var all []result.Request
	for _, r := range sweep.Runs {
		p := stress.Analyze(r)
		p.Server = server[r.Level]
		res.Results = append(res.Results, p)
		all = append(all, r.Requests...)
	}
	res.Errors = result.CountErrors(all)
	if !c.SkipValidation {
		rep := stress.Check(cfg, sweep.Runs, res.Results, c.bounds())
		for _, p := range res.Results {
			if p.Server != nil {
				p.Server.Check(&rep, cfg.LevelName(p.Level), 0, !c.NoPromptSalt)
			}
		}
		res.Validation = &rep
	}
	charts := stress.Charts(cfg, res.Results)
	err = finishRun(ctx, e, dir, files, runOutput[stress.Point]{
		title:  "Stress — " + s.settings.Model,
		facts:  [][2]string{{"Model", s.settings.Model}, {"Server", serverLabel(s.settings)}, {"Traffic mode", string(cfg.TrafficMode)}},
		charts: append(charts, cmp.overlay(charts, stress.Charts(other.Config, other.Results))...), meta: &res.Meta,
		resultsFile: "stress_results.json", results: res, csvFile: "stress_results.csv", table: stress.Table(cfg, res.Results),
		validation: res.Validation, cmp: cmp, this: stress.CompareValues(cfg, res.Results), other: stress.CompareValues(other.Config, other.Results),
	})
	if err != nil {
		return err
	}
	if sweepErr != nil && !errors.Is(sweepErr, autoscan.ErrNoValidPoint) {
		return sweepErr
	}
	if err := finishValidation(e, res.Validation); err != nil {
		return err
	}
	if sweepErr != nil {
		return sweepErr
	}
	if res.EndReason == result.EndInterrupted {
		return exitError{code: ExitInterrupted}
	}
	return nil
}

// writeLevel writes one level's requests and summary into its folder.
func writeLevel(files *runFiles, cfg stress.Config, r stress.LevelRun) error {
	name := cfg.LevelName(r.Level)
	if err := files.requests(filepath.Join(name, "requests.jsonl"), r.Requests); err != nil {
		return err
	}
	return files.json(filepath.Join(name, "level.json"), struct {
		stress.LevelRun
		Point stress.Point `json:"point"`
	}{r, stress.Analyze(r)})
}

// loadResume reads the complete levels of an earlier run, refusing one
// whose workload differs from cfg's.
func loadResume(base, arg string, cfg stress.Config) (string, []stress.LevelRun, error) {
	dir, err := report.Resolve(base, string(Stress), arg)
	if err != nil {
		return "", nil, usagef("--resume-dir: %v", err)
	}
	var old stress.Results
	if err := readJSON(filepath.Join(dir, "stress_results.json"), &old); err != nil {
		return "", nil, usagef("--resume-dir %s: %v", arg, err)
	}
	switch {
	case old.InputLength != cfg.InputLength:
		return "", nil, usagef("--resume-dir %s used --input-length %d, this run asks for %d: refusing to mix workloads", arg, old.InputLength, cfg.InputLength)
	case old.OutputLength != cfg.OutputLength:
		return "", nil, usagef("--resume-dir %s used --output-length %d, this run asks for %d: refusing to mix workloads", arg, old.OutputLength, cfg.OutputLength)
	case old.TrafficMode != cfg.TrafficMode:
		return "", nil, usagef("--resume-dir %s used --traffic-mode %s, this run asks for %s: refusing to mix workloads", arg, old.TrafficMode, cfg.TrafficMode)
	}
	var runs []stress.LevelRun
	for _, lr := range old.Levels {
		if !lr.Complete() {
			continue
		}
		reqs, err := readRequests(filepath.Join(dir, cfg.LevelName(lr.Level), "requests.jsonl"))
		if err != nil {
			return "", nil, usagef("--resume-dir %s: level %s: %v", arg, cfg.LevelName(lr.Level), err)
		}
		lr.Requests = reqs
		runs = append(runs, lr)
	}
	return dir, runs, nil
}

// validateOnly re-runs the checks of an existing stress run and creates nothing.
func (c *StressCmd) validateOnly(e *env, cmp *comparison, other stress.Results) error {
	dir, err := report.Resolve(c.OutputDir, string(Stress), c.RunDir)
	if err != nil {
		return usageError{err}
	}
	var res stress.Results
	if err := readJSON(filepath.Join(dir, "stress_results.json"), &res); err != nil {
		return usageError{err}
	}
	cfg := res.Config.WithDurationsInSeconds()
	var points []stress.Point
	var runs []stress.LevelRun
	for _, lr := range res.Levels {
		reqs, err := readRequests(filepath.Join(dir, cfg.LevelName(lr.Level), "requests.jsonl"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return usageError{fmt.Errorf("level %s: %w", cfg.LevelName(lr.Level), err)}
			}
			return usageError{err}
		}
		lr.Requests = reqs
		runs = append(runs, lr)
		points = append(points, stress.Analyze(lr))
	}
	rep := stress.Check(cfg, runs, points, c.bounds())
	for _, p := range res.Results {
		if p.Server != nil {
			p.Server.Check(&rep, cfg.LevelName(p.Level), 0, res.Settings.PromptSalt)
		}
	}
	fmt.Fprintf(e.stdout, "Validating %s\n", dir)
	if cmp != nil {
		t, err := cmp.write(nil, stress.CompareValues(cfg, points), stress.CompareValues(other.Config, other.Results))
		if err != nil {
			return err
		}
		if err := printComparison(e, t); err != nil {
			return err
		}
	}
	return finishValidation(e, &rep)
}
