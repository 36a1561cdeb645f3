package stress

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
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

// SweepResult is every level of a run, resumed ones included.
type SweepResult struct {
	// Runs are sorted by level.
	Runs []LevelRun
	// Plan is the auto scan's record of decisions (auto mode only).
	Plan *autoscan.Plan
}

// Sweep runs the levels of cfg's mode. resumed holds complete levels of an
// earlier run: they are reused, never run again. onLevel is called after
// each level this sweep runs, before the next starts, so that a level's
// requests are on disk before more load is sent. When ctx ends the sweep
// stops after recording the level in progress (marked interrupted).
func Sweep(ctx context.Context, cfg Config, d Deps, resumed []LevelRun, onLevel func(LevelRun) error) (SweepResult, error) {
	var res SweepResult
	byLevel := map[float64]LevelRun{}
	next := 0
	for _, r := range resumed {
		byLevel[r.Level] = r
		next = max(next, r.Index+1)
	}
	runOne := func(ctx context.Context, level float64) (LevelRun, error) {
		if r, ok := byLevel[level]; ok {
			return r, nil
		}
		run, err := RunLevel(ctx, cfg, level, next, d)
		next++
		if err != nil {
			return run, err
		}
		byLevel[level] = run
		if onLevel != nil {
			if err := onLevel(run); err != nil {
				return run, fmt.Errorf("record level %s: %w", cfg.LevelName(level), err)
			}
		}
		return run, nil
	}

	var err error
	if cfg.Mode == Auto {
		measured := map[float64]autoscan.Point{}
		for _, r := range resumed {
			measured[r.Level] = scanPoint(Analyze(r))
		}
		probe := func(ctx context.Context, level float64) (autoscan.Point, error) {
			run, err := runOne(ctx, level)
			if err != nil {
				return autoscan.Point{}, err
			}
			if !run.Complete() {
				return autoscan.Point{}, fmt.Errorf("level %s: %w", cfg.LevelName(level), context.Cause(ctx))
			}
			return scanPoint(Analyze(run)), nil
		}
		var plan autoscan.Plan
		plan, err = autoscan.Auto(ctx, cfg.Auto, measured, probe)
		res.Plan = &plan
	} else {
		for _, level := range Levels(cfg) {
			if ctx.Err() != nil {
				break
			}
			var run LevelRun
			if run, err = runOne(ctx, level); err != nil || !run.Complete() {
				break
			}
		}
	}
	for _, r := range byLevel {
		res.Runs = append(res.Runs, r)
	}
	slices.SortFunc(res.Runs, func(a, b LevelRun) int { return cmp.Compare(a.Level, b.Level) })
	if ctx.Err() != nil {
		// An interrupted sweep is not a failure: what ran is kept.
		return res, nil
	}
	return res, err
}

// scanPoint is what the auto scan needs of a point.
func scanPoint(p Point) autoscan.Point {
	return autoscan.Point{Level: p.Level, OutputThroughput: p.OutputThroughput, InteractivityP50: p.InteractivityP50, Valid: p.Valid() && p.Complete}
}
