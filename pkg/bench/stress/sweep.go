package stress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Levels returns the levels of the manual and range modes, in run order
// (ascending). Auto mode finds its levels as it goes.
func Levels(cfg Config) []float64 {
	switch cfg.Mode {
	case Range:
		return autoscan.LogSpaced(cfg.RangeMin, cfg.RangeMax, cfg.RangePoints)
	default:
		return autoscan.Manual(cfg.Levels)
	}
}

// Resume is the complete levels of an earlier run (LoadResume), reused by
// a new run instead of measured again.
type Resume struct {
	// Dir is the earlier run's folder.
	Dir    string
	Levels []LevelRun
	// Shape is the workload the earlier run measured.
	Shape Shape
	// Unfinished says the earlier run never finished (a .partial folder).
	Unfinished bool
}

// Deps are what a stress run needs besides its Config.
type Deps struct {
	runner.Deps
	// Resume, when set, holds levels of an earlier run to reuse: they are
	// copied into this run (records and summaries) and never run again.
	Resume *Resume
	// OnLevel, when set, is called after each level (resumed ones first)
	// with what it recorded and its summary, before the next level starts.
	// An error ends the run.
	OnLevel func(LevelRun, Point) error
}

// Run runs the levels of cfg's mode (auto mode decides them as it goes),
// reusing d.Resume's, and returns everything stress_results.json holds.
// Each level's records stream to d.Records as its requests end. When ctx
// ends the run stops after recording the level in progress (marked
// interrupted) and returns what it measured, with no error. When auto
// mode finds no valid level the results come with autoscan.ErrNoValidPoint.
func Run(ctx context.Context, cfg Config, d Deps) (Results, error) {
	if err := cfg.Validate(); err != nil {
		return Results{}, err
	}
	began := time.Now()
	s := sweep{cfg: cfg, d: d, runs: map[float64]LevelRun{}, points: map[float64]Point{}}
	err := s.reuse()
	var plan *autoscan.Plan
	if err == nil {
		plan, err = s.run(ctx)
	}
	res := Results{
		Meta: d.Meta.For("stress", "throughput_latency"), TrafficMode: cfg.TrafficMode,
		InputLength: cfg.InputLength, OutputLength: cfg.OutputLength, Config: cfg, AutoPlan: plan,
	}
	if d.Resume != nil {
		res.ResumedFrom = d.Resume.Dir
	}
	if s.search != nil {
		res.SLOSearch, res.MaxLevelWithinSLO = s.search, &s.search.MaxLevel
	}
	res.EndReason = runner.EndReason(ctx)
	if errors.Is(err, runner.ErrServerFailing) && ctx.Err() == nil {
		// Recorded, and failed by the server_healthy check: not a run error.
		res.EndReason, res.StopReason, err = result.EndServerFailing, err.Error(), nil
	}
	res.DurationS = time.Since(began).Seconds()
	var all []result.Request
	for _, level := range slices.Sorted(maps.Keys(s.runs)) {
		res.Levels = append(res.Levels, s.runs[level])
		res.Results = append(res.Results, s.points[level])
		all = append(all, s.runs[level].Requests...)
	}
	res.Errors = result.CountErrors(all)
	if !d.SkipValidation {
		rep := res.check(d.CheckBounds())
		res.Validation = &rep
	} else if len(cfg.Thresholds) > 0 {
		res.Validation = &validate.Report{}
		res.Validation.Thresholds, _ = Gate(cfg, res.Results) // cfg was validated above
	}
	if ctx.Err() != nil {
		// An interrupted run is not a failure: what ran is kept.
		return res, nil
	}
	return res, err
}

// check runs the validity checks of res, whose Levels hold their records,
// and its thresholds.
func (res Results) check(bounds fidelity.Bounds) validate.Report {
	rep := Check(res.Config, res.Levels, res.Results, bounds)
	res.checkShards(&rep)
	sent := make(map[float64]int, len(res.Levels))
	for _, l := range res.Levels {
		sent[l.Level] = len(l.Requests)
	}
	// A shard's server also served the other shards: its counters grow
	// with all N shards' requests (about N times this shard's).
	shards := 1
	if res.Config.Shard != nil {
		shards = res.Config.Shard.Count
	}
	for _, p := range res.Results {
		label := res.Config.LevelName(p.Level)
		if res.Merge != nil {
			rep.Add("prefix_cache", label, validate.Skip, "a merged run keeps no server metrics: each shard's run has its own prefix_cache check")
			continue
		}
		servermetrics.Check(&rep, p.Server, label, 0, servermetrics.Prompts{
			Salted: res.Settings.PromptSalt, Requests: shards * sent[p.Level], OverheadTokens: res.Settings.PromptOverheadTokens,
		})
	}
	var err error
	if rep.Thresholds, err = Gate(res.Config, res.Results); err != nil {
		rep.Add("thresholds", "", validate.Fail, "%v", err)
	}
	return rep
}

// sweep is one run's levels as they are measured.
type sweep struct {
	cfg    Config
	d      Deps
	runs   map[float64]LevelRun
	points map[float64]Point
	next   int // the index of the next level measured
	// failing counts the levels in a row that ended early because the
	// server kept failing; the run stops at the second.
	failing int
	// search is the auto mode's SLO search, when it ran.
	search *autoscan.SLOSearch
}

// errServerFailing ends a sweep whose server failed two levels in a row.
var errServerFailing = fmt.Errorf("two levels in a row: %w", runner.ErrServerFailing)

// reuse records the resumed levels as this run's own.
func (s *sweep) reuse() error {
	if s.d.Resume == nil {
		return nil
	}
	for _, r := range s.d.Resume.Levels {
		if r.ResumedFrom == "" {
			r.ResumedFrom = s.d.Resume.Dir
		}
		p := AnalyzeSLO(r, s.cfg.SLO)
		p.Server = r.Server
		s.runs[r.Level], s.points[r.Level] = r, p
		s.next = max(s.next, r.Index+1)
		if err := s.d.Save(s.cfg.LevelName(r.Level)+"/"+RecordsFile, r.Requests); err != nil {
			return err
		}
		if s.d.OnLevel != nil {
			if err := s.d.OnLevel(r, p); err != nil {
				return fmt.Errorf("record level %s: %w", s.cfg.LevelName(r.Level), err)
			}
		}
	}
	return nil
}

// measure returns the level's summary, measuring it unless it is known.
func (s *sweep) measure(ctx context.Context, level float64) (LevelRun, Point, error) {
	if r, ok := s.runs[level]; ok {
		return r, s.points[level], nil
	}
	run, err := runLevel(ctx, s.cfg, level, s.next, s.failing > 0, s.d.Deps)
	if run.EndReason == result.EndServerFailing {
		s.failing++
	} else {
		s.failing = 0
	}
	s.next++
	p := AnalyzeSLO(run, s.cfg.SLO)
	p.Server = run.Server
	s.runs[level], s.points[level] = run, p
	if err != nil {
		return run, p, err
	}
	s.d.Log().Info("level done", "level", level, "output_tps", p.OutputThroughput, "requests", p.NumRequests)
	if s.d.OnLevel != nil {
		if err := s.d.OnLevel(run, p); err != nil {
			return run, p, fmt.Errorf("record level %s: %w", s.cfg.LevelName(level), err)
		}
	}
	return run, p, nil
}

// run measures the levels of the mode, and returns the auto scan's
// decisions in auto mode.
func (s *sweep) run(ctx context.Context) (*autoscan.Plan, error) {
	if s.cfg.Mode == Auto {
		measured := map[float64]autoscan.Measurement{}
		for level, p := range s.points {
			measured[level] = scanPoint(p)
		}
		probe := func(ctx context.Context, level float64) (autoscan.Measurement, error) {
			run, p, err := s.measure(ctx, level)
			if err != nil {
				return autoscan.Measurement{}, err
			}
			if run.EndReason == result.EndServerFailing {
				// Auto mode cannot find a knee on a failing server.
				return autoscan.Measurement{}, fmt.Errorf("level %s: %s: %w", s.cfg.LevelName(level), run.StopReason, runner.ErrServerFailing)
			}
			if !run.Complete() {
				return autoscan.Measurement{}, fmt.Errorf("level %s: %w", s.cfg.LevelName(level), context.Cause(ctx))
			}
			return scanPoint(p), nil
		}
		plan, err := autoscan.Auto(ctx, s.cfg.Auto, measured, probe)
		if err == nil && !s.cfg.SLO.IsZero() && ctx.Err() == nil {
			err = s.searchSLO(ctx)
		}
		return &plan, err
	}
	for _, level := range Levels(s.cfg) {
		if ctx.Err() != nil {
			return nil, nil
		}
		run, _, err := s.measure(ctx, level)
		if s.failing >= 2 {
			s.d.Log().Warn("ending the run: the server failed two levels in a row", "level", level, "reason", run.StopReason)
			return nil, errServerFailing
		}
		// A shard that missed a level's start goes on to the next level,
		// which has its own planned start.
		if err != nil || (!run.Complete() && run.EndReason != result.EndServerFailing && run.EndReason != EndMissedStart) {
			return nil, err
		}
	}
	return nil, nil
}

// searchSLO bisects between the highest level that met the SLO and the
// lowest above it that missed, to within autoscan.DefaultBisectTolerance.
func (s *sweep) searchSLO(ctx context.Context) error {
	attain := s.cfg.Attainment()
	met := func(p Point) bool { return p.Goodput != nil && p.Goodput.Ratio >= attain }
	measured := map[float64]bool{}
	for level, p := range s.points {
		if p.Complete {
			measured[level] = met(p)
		}
	}
	search, err := autoscan.Bisect(ctx, measured, autoscan.DefaultBisectTolerance, s.cfg.TrafficMode == FixedClients,
		func(ctx context.Context, level float64) (bool, error) {
			run, p, err := s.measure(ctx, level)
			if err == nil && !run.Complete() {
				err = fmt.Errorf("level %s: %w", s.cfg.LevelName(level), context.Cause(ctx))
			}
			return met(p), err
		})
	s.search = &search
	s.d.Log().Info("slo search done", "max_level_within_slo", search.MaxLevel, "reason", search.Reason)
	return err
}

// scanPoint is what the auto scan needs of a point.
func scanPoint(p Point) autoscan.Measurement {
	return autoscan.Measurement{Level: p.Level, OutputThroughput: p.OutputThroughput, InteractivityP50: p.InteractivityP50, Valid: p.Valid() && p.Complete}
}

// Shape is the workload a stress run measured; a resumed run must keep it.
type Shape struct {
	InputLength  int         `json:"input_length"`
	OutputLength int         `json:"output_length"`
	TrafficMode  TrafficMode `json:"traffic_mode"`
}

// LoadResume reads the complete levels of the stress run saved in dir: a
// finished run (its results file), or an unfinished one — a
// "<ts>.partial" folder left by a crash or a kill, whose levels each
// wrote their records and level.json when they ended. A level without
// its level.json was still running: it is left out, to be run again.
func LoadResume(dir string) (*Resume, error) {
	var old Results
	err := report.ReadJSON(filepath.Join(dir, ResultsFile), &old)
	switch {
	case err == nil:
		return loadFinished(dir, old)
	case errors.Is(err, fs.ErrNotExist):
		return loadUnfinished(dir)
	default:
		return nil, err
	}
}

func loadFinished(dir string, old Results) (*Resume, error) {
	res := &Resume{Dir: dir, Shape: Shape{InputLength: old.InputLength, OutputLength: old.OutputLength, TrafficMode: old.TrafficMode}}
	for _, lr := range old.Levels {
		if !lr.Complete() {
			continue
		}
		reqs, err := report.ReadRecords(filepath.Join(dir, old.Config.LevelName(lr.Level), RecordsFile))
		if err != nil {
			return nil, fmt.Errorf("level %s: %w", old.Config.LevelName(lr.Level), err)
		}
		lr.Requests = reqs
		res.Levels = append(res.Levels, lr)
	}
	return res, nil
}

func loadUnfinished(dir string) (*Resume, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", LevelFile))
	if err != nil {
		return nil, err
	}
	res := &Resume{Dir: dir, Unfinished: true}
	for _, f := range files {
		var lr LevelRun
		if err := report.ReadJSON(f, &lr); err != nil {
			return nil, err
		}
		if !lr.Complete() {
			continue
		}
		name := filepath.Base(filepath.Dir(f))
		reqs, err := report.ReadRecords(filepath.Join(filepath.Dir(f), RecordsFile))
		if err != nil {
			return nil, fmt.Errorf("level %s: %w", name, err)
		}
		lr.Requests = reqs
		shape := Shape{InputLength: lr.Config.InputLength, OutputLength: lr.Config.OutputLength, TrafficMode: lr.Config.TrafficMode}
		if shape.InputLength == 0 && len(reqs) > 0 {
			// Levels written before the shape was recorded: the records
			// name their target lengths.
			shape.InputLength, shape.OutputLength = reqs[0].TargetPromptTokens, reqs[0].TargetOutputTokens
		}
		if len(res.Levels) > 0 && shape != res.Shape {
			return nil, fmt.Errorf("level %s measured %+v but level %s %+v: not one run", name, shape, Config{TrafficMode: res.Shape.TrafficMode}.LevelName(res.Levels[0].Level), res.Shape)
		}
		res.Shape = shape
		res.Levels = append(res.Levels, lr)
	}
	if len(res.Levels) == 0 {
		return nil, fmt.Errorf("no %s nor any complete level (<level>/%s) in %s: nothing to resume", ResultsFile, LevelFile, dir)
	}
	slices.SortFunc(res.Levels, func(a, b LevelRun) int { return cmp.Compare(a.Level, b.Level) })
	return res, nil
}

// Adopt makes cfg measure the resumed run's workload: each of the input
// length, output length and traffic mode is taken from the resumed run
// unless explicit(flag) says the user gave it, and an explicit value
// that differs is refused. It returns a warning for each reused level
// whose point or warm-up duration differs from cfg's (each level keeps,
// and is analysed with, its own).
func (r *Resume) Adopt(cfg *Config, explicit func(flag string) bool) (warnings []string, err error) {
	conflict := func(flag string, old, asked any) error {
		return fmt.Errorf("%s used %s %v, this run asks for %v: refusing to mix workloads", r.Dir, flag, old, asked)
	}
	if r.Shape.InputLength > 0 {
		if !explicit("input-length") {
			cfg.InputLength = r.Shape.InputLength
		} else if cfg.InputLength != r.Shape.InputLength {
			return nil, conflict("--input-length", r.Shape.InputLength, cfg.InputLength)
		}
	}
	if r.Shape.OutputLength > 0 {
		if !explicit("output-length") {
			cfg.OutputLength = r.Shape.OutputLength
		} else if cfg.OutputLength != r.Shape.OutputLength {
			return nil, conflict("--output-length", r.Shape.OutputLength, cfg.OutputLength)
		}
	}
	if r.Shape.TrafficMode != "" {
		if !explicit("traffic-mode") {
			cfg.TrafficMode = r.Shape.TrafficMode
		} else if cfg.TrafficMode != r.Shape.TrafficMode {
			return nil, conflict("--traffic-mode", r.Shape.TrafficMode, cfg.TrafficMode)
		}
	}
	for _, lr := range r.Levels {
		c := lr.Config
		if c.PointDuration != cfg.PointDuration || c.WarmupDuration != cfg.WarmupDuration {
			warnings = append(warnings, fmt.Sprintf("level %s was measured with --point-duration %s and --warmup-duration %s, this run uses %s and %s: each level keeps its own",
				cfg.LevelName(lr.Level), c.PointDuration, c.WarmupDuration, cfg.PointDuration, cfg.WarmupDuration))
		}
	}
	return warnings, nil
}

// Recheck reads the stress run saved in dir and runs its validity checks
// again on its records (--validate-only). The returned results hold the
// points analysed afresh from the records. It writes nothing.
func Recheck(dir string, bounds fidelity.Bounds) (Results, validate.Report, error) {
	var res Results
	if err := report.ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		return res, validate.Report{}, err
	}
	saved := map[float64]Point{}
	for _, p := range res.Results {
		saved[p.Level] = p
	}
	res.Results = res.Results[:0]
	for i, lr := range res.Levels {
		reqs, err := report.ReadRecords(filepath.Join(dir, res.Config.LevelName(lr.Level), RecordsFile))
		if err != nil {
			return res, validate.Report{}, fmt.Errorf("level %s: %w", res.Config.LevelName(lr.Level), err)
		}
		res.Levels[i].Requests = reqs
		p := AnalyzeSLO(res.Levels[i], res.Config.SLO)
		p.Server = saved[lr.Level].Server
		res.Results = append(res.Results, p)
	}
	slices.SortFunc(res.Levels, func(a, b LevelRun) int { return cmp.Compare(a.Level, b.Level) })
	slices.SortFunc(res.Results, func(a, b Point) int { return cmp.Compare(a.Level, b.Level) })
	return res, res.check(bounds), nil
}

// ErrNoValidPoint is autoscan.ErrNoValidPoint: auto mode found no level
// with enough samples.
var ErrNoValidPoint = autoscan.ErrNoValidPoint
