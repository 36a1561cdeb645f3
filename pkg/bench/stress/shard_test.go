package stress

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

func TestParseShard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         string
		index, cnt int
		ok         bool
	}{
		{"0/4", 0, 4, true},   // the first of four
		{"3/4", 3, 4, true},   // the last of four
		{"0/1", 0, 1, true},   // one shard is a plain run with a planned start
		{"4/4", 0, 0, false},  // index out of range
		{"-1/4", 0, 0, false}, // negative index
		{"1/0", 0, 0, false},  // no shards
		{"1", 0, 0, false},    // no count
		{"a/b", 0, 0, false},  // not numbers
	} {
		i, n, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (i != tc.index || n != tc.cnt)) {
			t.Errorf("ParseShard(%q) = %d, %d, %v; want %d, %d, ok %v", tc.in, i, n, err, tc.index, tc.cnt, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--shard") {
			t.Errorf("ParseShard(%q) error %q does not name the flag", tc.in, err)
		}
	}
}

// The shares of every shard add up to the level, and differ by at most one.
func TestShareClientsAddUp(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 7; n++ {
		for c := 0; c <= 50; c++ {
			sum, lo, hi := 0, c, 0
			for i := range n {
				s := ShareClients(c, i, n)
				sum += s
				lo, hi = min(lo, s), max(hi, s)
			}
			if sum != c || hi-lo > 1 || lo != c/n {
				t.Fatalf("ShareClients(%d, ·, %d): sum %d, min %d, max %d", c, n, sum, lo, hi)
			}
		}
	}
}

func shardConfig(index, count int) Config {
	cfg := baseConfig()
	cfg.Levels = []float64{2, 8}
	cfg.Shard = &Shard{Index: index, Count: count, StartAt: time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC), Gap: sec(5)}
	return cfg
}

func TestShardPlan(t *testing.T) {
	t.Parallel()
	a, b := shardConfig(0, 3), shardConfig(1, 3)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	// 10 s point + 1 s grace + 5 s gap: a level every 16 s, from the plan alone.
	if got, want := a.PlannedStart(2), a.Shard.StartAt.Add(32*time.Second); !got.Equal(want) || !b.PlannedStart(2).Equal(want) {
		t.Errorf("PlannedStart(2) = %v and %v, want %v for both shards", got, b.PlannedStart(2), want)
	}
	if a.RunSeed() == b.RunSeed() || a.RunSeed() == a.Seed {
		t.Errorf("shard seeds %d, %d (plan seed %d): want each its own", a.RunSeed(), b.RunSeed(), a.Seed)
	}
	seen := map[int]bool{}
	for i := range 3 {
		c := shardConfig(i, 3)
		for seq := range 100 {
			p := c.PromptSeq(seq)
			if seen[p] {
				t.Fatalf("shard %d request %d salts its prompt like another shard's (%d)", i, seq, p)
			}
			seen[p] = true
		}
	}
	if got := a.Share(8); got != 3 {
		t.Errorf("shard 0/3 of c=8: %v clients, want 3", got)
	}
	if got := shardConfig(2, 3).Share(2); got != 0 {
		t.Errorf("shard 2/3 of c=2: %v clients, want 0", got)
	}
	r := shardConfig(1, 4)
	r.TrafficMode = FixedRate
	if got := r.Share(10); got != 2.5 {
		t.Errorf("shard 1/4 of 10 req/s: %v, want 2.5", got)
	}
}

func TestShardConfigRefused(t *testing.T) {
	t.Parallel()
	auto := shardConfig(0, 2)
	auto.Mode = Auto
	auto.Auto.Threshold, auto.Auto.MaxProbes, auto.Auto.FillPoints = 0.05, 4, 4
	noStart := shardConfig(0, 2)
	noStart.Shard.StartAt = time.Time{}
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"auto mode": {auto, "auto mode needs every level's result"},
		"no start":  {noStart, "--shard needs --start-at"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", name, err, tc.want)
		}
	}
}

// writeShard saves a finished shard run of cfg in dir: each level with
// the records given, begun late by late.
func writeShard(t *testing.T, dir string, cfg Config, late time.Duration, levels map[float64][]result.Request) {
	t.Helper()
	res := Results{Config: cfg, TrafficMode: cfg.TrafficMode, InputLength: cfg.InputLength, OutputLength: cfg.OutputLength}
	res.EndReason = result.EndCompleted
	res.Settings.Model, res.Settings.APIBase = "m", "http://server/v1"
	for k, level := range Levels(cfg) {
		reqs, ok := levels[level]
		if !ok {
			continue
		}
		planned := cfg.PlannedStart(k)
		lr := LevelRun{Level: level, Index: k, EndReason: result.EndCompleted, Began: planned.Add(late), PlannedStart: planned,
			LateS: late.Seconds(), Share: cfg.Share(level), Config: LevelRunConditions{TrafficMode: cfg.TrafficMode,
				PointDuration: cfg.PointDuration, WarmupDuration: cfg.WarmupDuration, GracePeriod: cfg.GracePeriod}}
		for i := range reqs {
			reqs[i].Shard, reqs[i].Shards = cfg.Shard.Index, cfg.Shard.Count
		}
		res.Levels = append(res.Levels, lr)
		path := filepath.Join(dir, cfg.LevelName(level), RecordsFile)
		if err := report.WriteFileAtomic(path, func(w io.Writer) error { return result.WriteJSONL(w, reqs) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := report.WriteFileAtomic(filepath.Join(dir, ResultsFile), func(w io.Writer) error { return report.WriteJSON(w, res) }); err != nil {
		t.Fatal(err)
	}
}

// every500ms is one client's requests, one sent every 500 ms over 10 s.
func every500ms() []result.Request {
	var reqs []result.Request
	for i := range 20 {
		reqs = append(reqs, req(i, time.Duration(i)*500*time.Millisecond))
	}
	return reqs
}

// Two shards, the second 200 ms late at level 2: the merged level holds
// every record of both, on the planned start's clock, and is analysed
// over the window common to both.
func TestMergeExact(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "s1"), filepath.Join(root, "s0")} // any order
	writeShard(t, dirs[1], shardConfig(0, 2), 0, map[float64][]result.Request{2: every500ms(), 8: every500ms()})
	writeShard(t, dirs[0], shardConfig(1, 2), 200*time.Millisecond, map[float64][]result.Request{2: every500ms(), 8: every500ms()})
	res, err := Merge(dirs, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Shards != 2 || len(res.Levels) != 2 || res.Config.Shard != nil {
		t.Fatalf("merged: %d shards, %d levels, shard %+v", res.Shards, len(res.Levels), res.Config.Shard)
	}
	lr := res.Levels[0]
	if len(lr.Requests) != 40 {
		t.Fatalf("merged level has %d records, want 40", len(lr.Requests))
	}
	type key struct{ shard, seq int }
	seen := map[key]bool{}
	var want []float64
	var tokens float64
	for _, r := range lr.Requests {
		k := key{r.Shard, r.Seq}
		if seen[k] || r.Shards != 2 {
			t.Fatalf("record %+v: repeated or without its shard count", k)
		}
		seen[k] = true
		// Shard 1's times move by its 200 ms lateness.
		if wantSent := time.Duration(r.Seq)*500*time.Millisecond + time.Duration(r.Shard)*200*time.Millisecond; r.Sent != wantSent {
			t.Fatalf("shard %d seq %d sent at %v on the merged clock, want %v", r.Shard, r.Seq, r.Sent, wantSent)
		}
		if r.Sent >= 2200*time.Millisecond && r.Sent <= 10*time.Second {
			d, _ := r.E2E()
			want = append(want, d.Seconds())
		}
		for _, tt := range r.TokenTimes {
			if tt >= 2200*time.Millisecond && tt <= 10*time.Second {
				tokens++
			}
		}
	}
	if lr.Window == nil || lr.Window.Start.D() != 2200*time.Millisecond || lr.Window.End.D() != 10*time.Second {
		t.Fatalf("common window %+v, want [2.2 s, 10 s]", lr.Window)
	}
	p := res.Results[0]
	if p.NumRequests != len(want) || !near(p.E2E.P99, metrics.Summarize(want).P99) {
		t.Errorf("merged point: %d requests, E2E P99 %v; want %d and %v from all raw records", p.NumRequests, p.E2E.P99, len(want), metrics.Summarize(want).P99)
	}
	if !near(p.OutputThroughput, tokens/7.8) {
		t.Errorf("output throughput %v, want %v (tokens in the common window / 7.8 s)", p.OutputThroughput, tokens/7.8)
	}
	off := res.Merge.Offsets[1]
	if !near(off.MedianS, 0.2) || off.Levels != 2 {
		t.Errorf("shard 1 offset %+v, want 0.2 s over 2 levels", off)
	}
	var shards *validate.Check
	for i, c := range res.Validation.Checks {
		if c.Name == "shards" && c.Label == "" {
			shards = &res.Validation.Checks[i]
		}
	}
	// 200 ms apart is past LateWarning: the check warns and shows it.
	if shards == nil || shards.Status != validate.Warn || !strings.Contains(shards.Detail, "shard 1 +200.0 ms") {
		t.Errorf("shards check = %+v, want a WARN showing shard 1's +200 ms offset", shards)
	}
}

func TestMergeRefuses(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	levels := func() map[float64][]result.Request {
		return map[float64][]result.Request{2: every500ms(), 8: every500ms()}
	}
	dir := func(name string) string { return filepath.Join(root, name) }
	writeShard(t, dir("a0"), shardConfig(0, 3), 0, levels())
	writeShard(t, dir("a1"), shardConfig(1, 3), 0, levels())
	writeShard(t, dir("a1bis"), shardConfig(1, 3), 0, levels())
	longer := shardConfig(2, 3)
	longer.PointDuration = sec(20)
	writeShard(t, dir("b2"), longer, 0, levels())
	plain := baseConfig()
	plain.Shard = &Shard{Index: 0, Count: 1, StartAt: time.Now()}
	writeShard(t, dir("plain"), plain, 0, map[float64][]result.Request{1: every500ms()})
	unsharded := Results{Config: baseConfig()}
	if err := report.WriteFileAtomic(filepath.Join(dir("none"), ResultsFile), func(w io.Writer) error { return report.WriteJSON(w, unsharded) }); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		dirs []string
		want string
	}{
		"a shard twice":     {[]string{dir("a0"), dir("a1"), dir("a1bis")}, "shard 1/3 is given twice"},
		"the same folder":   {[]string{dir("a0"), dir("a0")}, "shard 0/3 is given twice"},
		"a missing shard":   {[]string{dir("a0"), dir("a1")}, "shard 2 of 3 missing (given: 0, 1)"},
		"another plan":      {[]string{dir("a0"), dir("a1"), dir("b2")}, "config.point_duration_s is 10 in the first, 20 in the second"},
		"a non-shard run":   {[]string{dir("a0"), dir("none")}, "is not a shard run"},
		"not a run at all":  {[]string{dir("a0"), dir("nothing")}, "not a finished stress run"},
		"a different count": {[]string{dir("a0"), dir("plain")}, "not shards of one plan"},
	} {
		_, err := Merge(tc.dirs, MergeOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Merge = %v, want an error with %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(dir("nothing")); err == nil {
		t.Error("Merge created a folder")
	}
}

// quickSender answers every request after 10 ms with 4 tokens.
type quickSender struct{}

func (quickSender) Stream(ctx context.Context, began time.Time, call client.Call) result.Request {
	r := result.Request{Seq: call.Seq, Intended: call.Intended, Sent: time.Since(began), TargetPromptTokens: call.TargetPromptTokens,
		PromptTokens: call.TargetPromptTokens, UsageReported: true, OutputTokens: 4, TargetOutputTokens: call.MaxTokens}
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
		r.ErrClass, r.Err, r.End = result.ErrCanceled, "canceled", time.Since(began)
		return r
	}
	for range 4 {
		r.TokenTimes = append(r.TokenTimes, time.Since(began))
	}
	r.End = time.Since(began)
	return r
}

// prompts names each prompt by its point and salt number.
type prompts struct{}

func (prompts) Prompt(length, point, seq int) (string, error) {
	return fmt.Sprint(point, "/", seq), nil
}

// A shard that reaches its levels late: the first so late that nothing
// of its window is left (skipped, recorded, the run goes on), the second
// a little late (started at once, stopped at the planned end, its window
// shortened to match).
func TestShardLateLevels(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Levels = []float64{2, 4}
	cfg.PointDuration, cfg.WarmupDuration = result.Seconds(time.Second), result.Seconds(500*time.Millisecond)
	cfg.GracePeriod = result.Seconds(100 * time.Millisecond)
	// Level 0 was due 1.3 s ago, level 1 (1.2 s later) 0.1 s ago.
	cfg.Shard = &Shard{Index: 1, Count: 2, StartAt: time.Now().Add(-1300 * time.Millisecond), Gap: result.Seconds(100 * time.Millisecond)}
	res, err := Run(t.Context(), cfg, Deps{Deps: runner.Deps{Sender: quickSender{}, Prompts: prompts{}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Levels) != 2 {
		t.Fatalf("%d levels recorded, want both", len(res.Levels))
	}
	missed, late := res.Levels[0], res.Levels[1]
	if missed.EndReason != EndMissedStart || len(missed.Requests) != 0 || missed.LateS < 1.3 {
		t.Errorf("level 0: end %q, %d requests, late %.2f s; want missed_start, none, >= 1.3 s", missed.EndReason, len(missed.Requests), missed.LateS)
	}
	if late.EndReason != result.EndCompleted || late.LateS < 0.1 || late.Window == nil || late.Window.End.D() > 900*time.Millisecond || len(late.Requests) == 0 {
		t.Fatalf("level 1: end %q, late %.3f s, window %+v, %d requests; want completed, a window ending by 0.9 s", late.EndReason, late.LateS, late.Window, len(late.Requests))
	}
	planEnd := late.PlannedStart.Add(cfg.PointDuration.D())
	for _, r := range late.Requests {
		if sent := late.Began.Add(r.Sent); sent.After(planEnd) || r.Shard != 1 || r.Shards != 2 || late.Share != 2 {
			t.Fatalf("level 1 request %d sent %v after the planned end, or shard %d/%d, share %v", r.Seq, sent.Sub(planEnd), r.Shard, r.Shards, late.Share)
		}
	}
	var starts []string
	for _, c := range res.Validation.Checks {
		if c.Name == "level_start" {
			starts = append(starts, string(c.Status)+" "+c.Label)
		}
	}
	if want := []string{"FAIL c=2", "WARN c=4"}; !slices.Equal(starts, want) {
		t.Errorf("level_start checks %q, want %q", starts, want)
	}
}

// A shard's server counters grow with every shard's requests: the chat
// template's shared header of all N shards' salted prompts is no WARN
// (20 template tokens × 20 requests × 4 shards = 1,600 hits), more is;
// a merged run, which keeps no server metrics, SKIPs with that reason.
func TestShardPrefixCacheAllowance(t *testing.T) {
	t.Parallel()
	cond := LevelRunConditions{TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}
	run := LevelRun{Level: 8, EndReason: result.EndCompleted, Config: cond}
	for i := range 20 {
		run.Requests = append(run.Requests, req(i, 2*time.Second+time.Duration(i)*300*time.Millisecond))
	}
	verdict := func(hits float64, merged bool) validate.Check {
		p := Analyze(run)
		p.Server = &servermetrics.Summary{Scrapes: 3, Bracketed: true, PrefixHits: &hits}
		cfg := baseConfig()
		cfg.Shard = &Shard{Index: 1, Count: 4}
		res := Results{Config: cfg, Levels: []LevelRun{run}, Results: []Point{p}}
		res.Settings.PromptSalt, res.Settings.PromptOverheadTokens = true, 20
		if merged {
			res.Merge = &MergeInfo{}
		}
		rep := res.check(fidelity.DefaultBounds())
		for _, c := range rep.Checks {
			if c.Name == "prefix_cache" {
				return c
			}
		}
		t.Fatalf("no prefix_cache check in %+v", rep.Checks)
		return validate.Check{}
	}
	if c := verdict(1600, false); c.Status != validate.Pass {
		t.Errorf("1,600 hits over 4 shards: %+v, want PASS", c)
	}
	if c := verdict(1601, false); c.Status != validate.Warn {
		t.Errorf("1,601 hits over 4 shards: %+v, want WARN", c)
	}
	if c := verdict(1600, true); c.Status != validate.Skip || !strings.Contains(c.Detail, "merged run") {
		t.Errorf("merged run: %+v, want SKIP naming the merge", c)
	}
}

// A merged level's client sample breaks every bound any shard's breaks: a
// shard with a saturated CPU is not hidden behind one whose scheduler was
// slower.
func TestWorstOfShardSamples(t *testing.T) {
	t.Parallel()
	saturated := fidelity.Sample{WallS: 10, CPUCores: 1.9, Cores: 2, SchedP50S: 0.0001, SchedP99S: 0.001, SchedMaxS: 0.002, GCCycles: 3}
	slowSched := fidelity.Sample{WallS: 10, CPUCores: 2.4, Cores: 4, SchedP50S: 0.0002, SchedP99S: 0.002, SchedMaxS: 0.004, GCCycles: 1}
	for _, w := range []fidelity.Sample{worstOf(saturated, slowSched), worstOf(slowSched, saturated)} {
		if w.CPUCores != 1.9 || w.Cores != 2 || w.SchedP99S != 0.002 || w.SchedMaxS != 0.004 || w.GCCycles != 3 {
			t.Errorf("worst of the two: %+v, want the saturated CPU (1.9 of 2), the slower scheduler (2 ms P99) and 3 GCs", w)
		}
	}
}
