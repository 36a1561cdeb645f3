package stress

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ShardLevel is what one shard recorded at a level of a merged run.
type ShardLevel struct {
	Shard int `json:"shard"`
	// Share is the shard's part of the level (clients, or requests/s).
	Share float64 `json:"share"`
	// Requests counts the shard's records at this level.
	Requests int `json:"requests"`
	// EndReason is the shard's level's; "absent" when its run has no
	// such level (it was interrupted before).
	EndReason string `json:"end_reason"`
	// Began is when the shard's level clock started, on the shard's wall
	// clock; LateS how long after the planned start that was.
	Began time.Time `json:"began_at,omitzero"`
	LateS float64   `json:"late_s"`
	// OffsetS is Began minus shard 0's Began at the same level, in
	// seconds: the offset between the two shards' level clocks, as their
	// wall clocks tell it. The merged records are placed on the planned
	// start's clock by adding LateS to the shard's times.
	OffsetS float64 `json:"offset_s"`
	// Client is what the shard's process did during the level.
	Client fidelity.Sample `json:"client"`
}

// endAbsent is a ShardLevel's end reason when the shard's run lacks the level.
const endAbsent = "absent"

// MergeInfo says which shard runs a merged run came from.
type MergeInfo struct {
	// Shards is the plan's sharding (its Index is meaningless here).
	Shards Shard `json:"plan"`
	// Sources are the shard run folders, by shard index.
	Sources []string `json:"sources"`
	// APIBases are the servers the shards measured, by shard index.
	APIBases []string `json:"api_bases"`
	// Offsets summarizes, for every shard, its level clock's offset from
	// shard 0's over the levels (median, min, max, in seconds).
	Offsets []ShardOffset `json:"offsets"`
}

// ShardOffset summarizes one shard's level start offsets from shard 0.
type ShardOffset struct {
	Shard   int     `json:"shard"`
	Levels  int     `json:"levels"`
	MedianS float64 `json:"median_s"`
	MinS    float64 `json:"min_s"`
	MaxS    float64 `json:"max_s"`
}

// shardRun is one shard's run read from disk.
type shardRun struct {
	dir string
	res Results
}

// MergeOptions are what Merge needs besides the shard runs.
type MergeOptions struct {
	// Meta is the merged results' header as far as the caller knows it
	// (tool version, start time); the settings are the shards'.
	Meta result.Meta
	// Thresholds, when set, replace the shards' --threshold gates.
	Thresholds []string
	// SkipValidation leaves the checks out; Bounds are the client
	// fidelity bounds of the checks (zero: fidelity.DefaultBounds).
	SkipValidation bool
	Bounds         fidelity.Bounds
}

// Merge reads the shard runs in dirs (finished stress runs made with
// --shard, one per shard 0..N-1 of one plan) and puts them together into
// one run: at each level, the records of every shard, each moved onto
// the level's planned start clock (by its shard's lateness, measured on
// its own wall clock) and keeping its shard and sequence number, analysed
// as one run's level is, over the measurement window common to all
// shards. It refuses (with an error naming the folder at fault) a folder
// that is not a shard run, runs of different plans, a shard given twice,
// and a missing shard. It writes nothing.
func Merge(dirs []string, o MergeOptions) (Results, error) {
	runs, err := readShards(dirs)
	if err != nil {
		return Results{}, err
	}
	first := runs[0].res
	cfg := first.Config
	plan := *cfg.Shard
	plan.Index = 0
	cfg.Shard = nil
	if len(o.Thresholds) > 0 {
		cfg.Thresholds = o.Thresholds
	}
	if err := cfg.Validate(); err != nil {
		return Results{}, fmt.Errorf("%s: %w", runs[0].dir, err)
	}
	res := Results{
		Meta: o.Meta.For("stress", "throughput_latency"), TrafficMode: cfg.TrafficMode,
		InputLength: cfg.InputLength, OutputLength: cfg.OutputLength, Config: cfg, Shards: plan.Count,
		Merge: &MergeInfo{Shards: plan},
	}
	res.Settings = first.Settings
	res.EndReason = result.EndCompleted
	for _, r := range runs {
		res.Merge.Sources = append(res.Merge.Sources, r.dir)
		res.Merge.APIBases = append(res.Merge.APIBases, r.res.Settings.APIBase)
		if r.res.EndReason != result.EndCompleted && res.EndReason == result.EndCompleted {
			res.EndReason = r.res.EndReason
		}
		res.DurationS = max(res.DurationS, r.res.DurationS)
		if st := r.res.StartedAt; !st.IsZero() && st.Before(res.StartedAt) {
			res.StartedAt = st.UTC() // the measurement's start, not the merge's
		}
	}
	shardCfg := first.Config
	var all []result.Request
	offsets := make([][]float64, len(runs))
	for k, level := range Levels(cfg) {
		lr, ok, err := mergeLevel(runs, shardCfg, k, level)
		if err != nil {
			return Results{}, err
		}
		if !ok {
			continue // no shard reached this level
		}
		for i, s := range lr.Shards {
			if !s.Began.IsZero() && !lr.Shards[0].Began.IsZero() {
				offsets[i] = append(offsets[i], s.OffsetS)
			}
		}
		res.Levels = append(res.Levels, lr)
		res.Results = append(res.Results, AnalyzeSLO(lr, cfg.SLO))
		all = append(all, lr.Requests...)
	}
	for i, o := range offsets {
		so := ShardOffset{Shard: i, Levels: len(o)}
		if len(o) > 0 {
			so.MedianS, so.MinS, so.MaxS = metrics.Summarize(o).Median, slices.Min(o), slices.Max(o)
		}
		res.Merge.Offsets = append(res.Merge.Offsets, so)
	}
	res.Errors = result.CountErrors(all)
	bounds := o.Bounds
	if bounds == (fidelity.Bounds{}) {
		bounds = fidelity.DefaultBounds()
	}
	if !o.SkipValidation {
		rep := res.check(bounds)
		res.Validation = &rep
	} else if len(cfg.Thresholds) > 0 {
		res.Validation = &validate.Report{}
		res.Validation.Thresholds, _ = Gate(cfg, res.Results) // cfg was validated above
	}
	return res, nil
}

// readShards reads the shard runs and checks that they are the shards
// 0..N-1 of one plan, each once; it returns them by shard index.
func readShards(dirs []string) ([]shardRun, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no shard run folders given")
	}
	var byIndex map[int]shardRun
	var first shardRun
	var firstPlan map[string]any
	for _, dir := range dirs {
		var res Results
		if err := report.ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
			return nil, fmt.Errorf("%s: not a finished stress run: %w", dir, err)
		}
		if res.Shards > 0 {
			return nil, fmt.Errorf("%s is a merged run, not a shard run: merge the shard runs themselves", dir)
		}
		if res.Config.Shard == nil {
			return nil, fmt.Errorf("%s is not a shard run (it was not run with --shard)", dir)
		}
		plan, err := planOf(res)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		r := shardRun{dir: dir, res: res}
		if byIndex == nil {
			byIndex, first, firstPlan = map[int]shardRun{}, r, plan
		} else if key, a, b, differ := firstDifference(firstPlan, plan); differ {
			return nil, fmt.Errorf("%s and %s are not shards of one plan: %s is %s in the first, %s in the second", first.dir, dir, key, a, b)
		}
		i := res.Config.Shard.Index
		if prev, ok := byIndex[i]; ok {
			return nil, fmt.Errorf("shard %s is given twice: %s and %s", res.Config.Shard, prev.dir, dir)
		}
		byIndex[i] = r
	}
	n := first.res.Config.Shard.Count
	var missing []string
	runs := make([]shardRun, 0, n)
	for i := range n {
		r, ok := byIndex[i]
		if !ok {
			missing = append(missing, fmt.Sprint(i))
			continue
		}
		runs = append(runs, r)
	}
	if len(missing) > 0 {
		given := slices.Sorted(maps.Keys(byIndex))
		return nil, fmt.Errorf("shard %s of %d missing (given: %s): a merge needs every shard 0..%d", strings.Join(missing, ", "), n, joinInts(given), n-1)
	}
	return runs, nil
}

// planOf is what must be equal in every shard of one plan, as a JSON
// tree: the config (levels, durations, workload, seed, SLO, sharding)
// but the shard's index and thresholds, and the settings that shape the
// requests.
func planOf(res Results) (map[string]any, error) {
	cfg := res.Config
	sh := *cfg.Shard
	sh.Index = 0
	cfg.Shard, cfg.Thresholds = &sh, nil
	st := res.Settings
	plan := struct {
		Config      Config  `json:"config"`
		Model       string  `json:"model"`
		Endpoint    string  `json:"endpoint"`
		PromptSalt  bool    `json:"prompt_salt"`
		NonStandard bool    `json:"non_standard_fields"`
		Timeout     float64 `json:"request_timeout_s"`
	}{cfg, st.Model, st.Endpoint, st.PromptSalt, st.NonStandard, st.RequestTimeoutS}
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	err = json.Unmarshal(b, &tree)
	return tree, err
}

// firstDifference finds the first key path (in sorted order) whose
// values differ between a and b, with both values as JSON.
func firstDifference(a, b map[string]any) (key, va, vb string, differ bool) {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		x, y := a[k], b[k]
		if xm, ok := x.(map[string]any); ok {
			if ym, ok := y.(map[string]any); ok {
				if sub, sa, sb, d := firstDifference(xm, ym); d {
					return k + "." + sub, sa, sb, true
				}
				continue
			}
		}
		jx, _ := json.Marshal(x)
		jy, _ := json.Marshal(y)
		if !bytes.Equal(jx, jy) {
			return k, string(jx), string(jy), true
		}
	}
	return "", "", "", false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// mergeLevel puts the shards' records of level number k together; ok is
// false when no shard has the level.
func mergeLevel(runs []shardRun, cfg Config, k int, level float64) (LevelRun, bool, error) {
	name := cfg.LevelName(level)
	planned := cfg.PlannedStart(k)
	merged := LevelRun{Level: level, Index: k, Began: planned.UTC(), EndReason: result.EndCompleted}
	records, err := readLevelRecords(runs, name)
	if err != nil {
		return LevelRun{}, false, err
	}
	var win *metrics.Window
	found := false
	var worst *fidelity.Sample
	for i, r := range runs {
		sl := ShardLevel{Shard: i, Share: cfg.shardShare(level, i), EndReason: endAbsent}
		idx := slices.IndexFunc(r.res.Levels, func(l LevelRun) bool { return l.Level == level })
		if idx < 0 {
			merged.EndReason = EndMissedStart
			merged.Shards = append(merged.Shards, sl)
			continue
		}
		lr := r.res.Levels[idx]
		if !found {
			merged.Config = lr.Config
			found = true
		}
		reqs := records[i]
		sl.Requests, sl.EndReason, sl.Began, sl.LateS, sl.Client = len(reqs), lr.EndReason, lr.Began, lr.LateS, lr.Client
		if lr.EndReason != result.EndCompleted && merged.EndReason == result.EndCompleted {
			merged.EndReason = lr.EndReason
		}
		if lr.StopReason != "" {
			merged.StopReason = strings.TrimPrefix(merged.StopReason+"; ", "; ") + fmt.Sprintf("shard %d: %s", i, lr.StopReason)
		}
		merged.Scheduled += lr.Scheduled
		merged.Backoffs += lr.Backoffs
		merged.BackoffS += lr.BackoffS
		if lr.EndReason == EndMissedStart {
			merged.Shards = append(merged.Shards, sl)
			continue
		}
		// The shard's clock began LateS after the planned start: its
		// times move by that much onto the planned start's clock.
		shift := time.Duration(lr.LateS * float64(time.Second))
		for j := range reqs {
			reqs[j].Shard, reqs[j].Shards = i, len(runs)
			reqs[j].Shift(shift)
		}
		merged.Requests = append(merged.Requests, reqs...)
		w := lr.window()
		w.Start, w.End = w.Start+shift, w.End+shift
		if win == nil {
			win = &w
		} else {
			win.Start, win.End = max(win.Start, w.Start), min(win.End, w.End)
		}
		if worst == nil {
			c := lr.Client
			worst = &c
		} else {
			*worst = worstOf(*worst, lr.Client)
		}
		merged.Shards = append(merged.Shards, sl)
	}
	if !found {
		return LevelRun{}, false, nil
	}
	if b0 := merged.Shards[0].Began; !b0.IsZero() {
		for i := range merged.Shards {
			if b := merged.Shards[i].Began; !b.IsZero() {
				merged.Shards[i].OffsetS = b.Sub(b0).Seconds()
			}
		}
	}
	if win != nil {
		if win.End < win.Start {
			win.End = win.Start // no common window: nothing is measured
		}
		merged.Window = &Window{Start: result.Seconds(win.Start), End: result.Seconds(win.End)}
	}
	if worst != nil {
		merged.Client = *worst
	}
	slices.SortFunc(merged.Requests, func(a, b result.Request) int {
		return cmp.Or(cmp.Compare(a.Sent, b.Sent), cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Seq, b.Seq))
	})
	return merged, true, nil
}

// readLevelRecords reads each shard's records of the level named name,
// the shards in parallel (decoding is most of a merge's time); nil for a
// shard whose run has no such level.
func readLevelRecords(runs []shardRun, name string) ([][]result.Request, error) {
	records := make([][]result.Request, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		if !slices.ContainsFunc(r.res.Levels, func(l LevelRun) bool { return r.res.Config.LevelName(l.Level) == name }) {
			continue
		}
		wg.Go(func() {
			records[i], errs[i] = report.ReadRecords(filepath.Join(r.dir, name, RecordsFile))
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: level %s: %w", r.dir, name, errs[i])
			}
		})
	}
	wg.Wait()
	return records, errors.Join(errs...)
}

// shardShare is shard i's part of level in this sharded plan.
func (c Config) shardShare(level float64, i int) float64 {
	sh := *c.Shard
	sh.Index = i
	c.Shard = &sh
	return c.Share(level)
}

// worstOf combines two shards' client samples into one that breaks every
// fidelity bound either breaks: the longer scheduler latencies, the busier
// process (the larger share of its own cores), the more garbage
// collection. Picking one whole sample instead could hide a shard whose
// CPU was saturated behind one whose scheduler was slower.
func worstOf(a, b fidelity.Sample) fidelity.Sample {
	w := a
	w.WallS = max(a.WallS, b.WallS)
	w.SchedP50S, w.SchedP99S, w.SchedMaxS = max(a.SchedP50S, b.SchedP50S), max(a.SchedP99S, b.SchedP99S), max(a.SchedMaxS, b.SchedMaxS)
	if busyShare(b) > busyShare(a) {
		w.CPUCores, w.Cores = b.CPUCores, b.Cores
	}
	w.GCCycles, w.GCCPUS = max(a.GCCycles, b.GCCycles), max(a.GCCPUS, b.GCCPUS)
	return w
}

// busyShare is the share of its cores a process kept busy.
func busyShare(s fidelity.Sample) float64 {
	if s.Cores <= 0 {
		return 0
	}
	return s.CPUCores / float64(s.Cores)
}

// checkShards adds the shards checks of a merged run: every shard of
// one plan was there (Merge refuses anything else), every shard ran
// every level from its planned start, and the level clocks' offsets.
func (res Results) checkShards(rep *validate.Report) {
	m := res.Merge
	if m == nil {
		return
	}
	var offs []string
	worstOff := 0.0
	for _, o := range m.Offsets[min(1, len(m.Offsets)):] {
		worstOff = max(worstOff, -o.MinS, o.MaxS)
		if o.Levels == 1 {
			offs = append(offs, fmt.Sprintf("shard %d %+.1f ms (one level)", o.Shard, 1000*o.MedianS))
			continue
		}
		offs = append(offs, fmt.Sprintf("shard %d %+.1f ms (median of %d levels, %+.1f to %+.1f)", o.Shard, 1000*o.MedianS, o.Levels, 1000*o.MinS, 1000*o.MaxS))
	}
	servers := slices.Compact(slices.Sorted(slices.Values(m.APIBases)))
	detail := fmt.Sprintf("%d shards of one plan (same workload, levels, durations, seed, start %s), each present once; level start offsets from shard 0 on the shards' wall clocks: %s",
		m.Shards.Count, m.Shards.StartAt.UTC().Format(time.RFC3339), strings.Join(offs, ", "))
	if len(offs) == 0 {
		detail = fmt.Sprintf("1 shard (start %s)", m.Shards.StartAt.UTC().Format(time.RFC3339))
	}
	switch {
	case len(servers) > 1:
		rep.Add("shards", "", validate.Warn, "%s; but the shards measured different servers: %s", detail, strings.Join(m.APIBases, ", "))
	case worstOff > LateWarning.Seconds():
		rep.Add("shards", "", validate.Warn, "%s: some shard started %.0f ms apart from shard 0, which shortens the common window", detail, 1000*worstOff)
	default:
		rep.Add("shards", "", validate.Pass, "%s", detail)
	}
	for _, lr := range res.Levels {
		label := res.Config.LevelName(lr.Level)
		var bad []string
		for _, s := range lr.Shards {
			switch s.EndReason {
			case result.EndCompleted:
			case EndMissedStart:
				bad = append(bad, fmt.Sprintf("shard %d missed the level's start (by %.1f s) and sent nothing", s.Shard, s.LateS))
			case endAbsent:
				bad = append(bad, fmt.Sprintf("shard %d's run has no such level", s.Shard))
			default:
				bad = append(bad, fmt.Sprintf("shard %d's level ended %s", s.Shard, s.EndReason))
			}
		}
		planned := lr.Config.PointDuration.D() - lr.Config.WarmupDuration.D()
		got := lr.window().Len()
		switch {
		case len(bad) > 0:
			rep.Add("shards", label, validate.Fail, "the merged level lacks part of the planned load: %s", strings.Join(bad, "; "))
		case got <= 0:
			rep.Add("shards", label, validate.Fail, "the shards' measurement windows do not overlap: nothing was measured together")
		case got < planned*9/10:
			rep.Add("shards", label, validate.Warn, "the window common to all shards is %.2f s of the planned %.2f s: shards started late", got.Seconds(), planned.Seconds())
		}
	}
}
