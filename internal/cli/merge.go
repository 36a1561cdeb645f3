package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/session"
)

// merging says whether this run is a --merge of shard runs.
func (c *StressCmd) merging() bool { return len(c.Merge) > 0 }

// merge makes one run from the shard runs given to --merge (see
// stress.Merge): a new run folder under --output-dir with the records of
// every shard per level, the results, CSV, plots, report page and
// validation, as a run writes them. It needs no server.
func (c *StressCmd) merge(ctx context.Context, e *env, log *slog.Logger) error {
	dirs := make([]string, 0, len(c.Merge))
	for _, d := range c.Merge {
		dir, err := report.Resolve(c.OutputDir, string(Stress), d)
		if err != nil {
			return usagef("--merge: %v", err)
		}
		dirs = append(dirs, filepath.Clean(dir))
	}
	started := e.now()
	res, err := stress.Merge(dirs, stress.MergeOptions{
		Meta:       result.Meta{ToolVersion: e.build.String(), StartedAt: started},
		Thresholds: c.Threshold, SkipValidation: c.SkipValidation, Bounds: c.bounds(),
	})
	if err != nil {
		return usagef("--merge: %v", err)
	}
	if err := checkOutputDir(c.OutputDir, Stress); err != nil {
		return err
	}
	dir, err := report.Create(c.OutputDir, string(Stress), started)
	if err != nil {
		return fmt.Errorf("create the run folder: %w", err)
	}
	files := newRunFiles(dir, log, c.PlotRenderer)
	for i, lr := range res.Levels {
		name := res.Config.LevelName(lr.Level)
		rf, err := files.records(name + "/" + stress.RecordsFile)
		if err != nil {
			return err
		}
		if err := rf.Close(lr.Requests); err != nil {
			return err
		}
		if err := files.json(filepath.Join(name, stress.LevelFile), struct {
			stress.LevelRun
			Point stress.Point `json:"point"`
		}{lr, res.Results[i]}); err != nil {
			return err
		}
	}
	if !c.Quiet {
		fmt.Fprintf(e.stdout, "Merging %d shards of one plan: %s\n", res.Shards, strings.Join(dirs, " "))
	}
	v := stressView(&res)
	v.facts = append([][2]string{{"Model", res.Settings.Model}, {"Server", session.ServerLabel(res.Settings)},
		{"Shards", fmt.Sprintf("%d, merged from %s", res.Shards, strings.Join(dirs, ", "))}}, v.facts...)
	title := fmt.Sprintf("%s — %s (%d shards merged)", titleCase(Stress), res.Settings.Model, res.Shards)
	if err := finishRun(ctx, e, dir, files, title, v, nil, view{}); err != nil {
		return err
	}
	return verdict(e, v, nil)
}
