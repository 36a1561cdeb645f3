package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/validate"
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
	SLOAttainment     float64          `name:"slo-attainment" default:"${default_slo_attainment}" help:"auto mode with --slo: the goodput ratio at which a level meets the SLO. After the fill, the scan bisects between the highest level that met it and the lowest that missed, to within 10 %, and reports max_level_within_slo."`
	Shard             string           `name:"shard" placeholder:"I/N" help:"Run shard I (from 0) of N processes that together send the plan's load (manual and range modes): ⌊c/N⌋ or ⌈c/N⌉ of each level's clients, or rate/N requests/s, with a seed of its own. Needs --start-at. Merge the N runs with --merge."`
	StartAt           string           `name:"start-at" placeholder:"TIME" help:"With --shard: the RFC 3339 instant (e.g. 2026-12-01T18:00:00Z) at which every shard starts the first level; level k starts at TIME + k × (point duration + grace period + shard gap)."`
	ShardGap          Seconds          `name:"shard-gap" default:"${default_shard_gap}" help:"With --shard: the pause planned between a level's end (point duration + grace period) and the next level's start, for writing the level's results."`
	Merge             PathList         `name:"merge" placeholder:"DIR" help:"Merge the runs of every shard of one plan (run folders made with --shard, given after one --merge or repeated) into one new run under --output-dir, analysed as one run, and exit. Needs no server."`
	ResumeDir         string           `name:"resume-dir" aliases:"mode.resume_dir" help:"Reuse the completed levels of an earlier stress run: a run folder, latest, or an unfinished <ts>.partial folder left by a crash (its unfinished level is run again). Its input/output length and traffic mode are used unless given, and must then match."`
	Version           kong.VersionFlag `help:"Print the version and exit."`

	// resume is the --resume-dir run's levels, read by start.
	resume *stress.Resume
	// explicit names the flags the user gave (not defaults).
	explicit map[string]bool
}

func (c *StressCmd) setExplicit(set map[string]bool) { c.explicit = set }

func (c *StressCmd) common() *Common { return &c.Common }

func (c *StressCmd) config() stress.Config {
	levels := []float64(c.ConcurrencyLevels)
	if len(levels) == 0 {
		levels = stress.DefaultLevels()
	}
	cfg := stress.Config{
		InputLength: c.InputLength, OutputLength: c.OutputLength,
		TrafficMode: stress.TrafficMode(c.TrafficMode), Mode: stress.Mode(c.StressMode),
		PointDuration: result.Seconds(c.PointDuration.D()), WarmupDuration: result.Seconds(c.WarmupDuration.D()),
		GracePeriod: result.Seconds(c.GracePeriod.D()), Seed: c.Seed, SLO: c.slo(), Thresholds: c.Threshold,
		SLOAttainment: c.SLOAttainment,
	}
	cfg.Shard, _ = c.shard() // validate reports its error
	switch cfg.Mode {
	case stress.Manual:
		cfg.Levels = levels
	case stress.Range:
		cfg.RangeMin, cfg.RangeMax, cfg.RangePoints = c.ConcurrencyMin, c.ConcurrencyMax, c.ConcurrencyPoints
	case stress.Auto:
		cfg.Auto = stress.DefaultAuto()
		cfg.Auto.Threshold, cfg.Auto.MaxProbes, cfg.Auto.FillPoints, cfg.Auto.MaxLevel = c.AutoThreshold, c.AutoMaxProbes, c.AutoFillPoints, c.AutoMaxLevel
	}
	return cfg
}

func (c *StressCmd) validate() error {
	if len(c.Merge) > 0 {
		var errs []error
		for _, f := range []struct {
			set  bool
			name string
		}{{c.Shard != "", "--shard"}, {c.StartAt != "", "--start-at"}, {c.ResumeDir != "", "--resume-dir"},
			{c.ValidateOnly, "--validate-only"}, {c.CompareTo != "", "--compare-to"}, {c.SelfCheck, "--self-check"}} {
			if f.set {
				errs = append(errs, fmt.Errorf("--merge makes a run from shard runs: %s does not go with it", f.name))
			}
		}
		return errors.Join(errs...)
	}
	_, err := c.shard()
	if err == nil && c.Shard != "" && c.ResumeDir != "" {
		err = errors.New("--resume-dir does not go with --shard: resume each shard's levels by running the plan again")
	}
	return errors.Join(err, c.config().Validate())
}

// shard is the --shard plan, nil without --shard.
func (c *StressCmd) shard() (*stress.Shard, error) {
	if c.Shard == "" {
		if c.StartAt != "" {
			return nil, errors.New("--start-at goes with --shard: it plans when every shard starts")
		}
		return nil, nil
	}
	i, n, err := stress.ParseShard(c.Shard)
	if err != nil {
		return nil, err
	}
	if c.StartAt == "" {
		return nil, errors.New("--shard needs --start-at: the RFC 3339 instant at which every shard starts the first level (e.g. 2026-12-01T18:00:00Z)")
	}
	at, err := time.Parse(time.RFC3339Nano, c.StartAt)
	if err != nil {
		return nil, fmt.Errorf("--start-at %q: want an RFC 3339 instant such as 2026-12-01T18:00:00Z", c.StartAt)
	}
	return &stress.Shard{Index: i, Count: n, StartAt: at.UTC(), Gap: result.Seconds(c.ShardGap.D())}, nil
}

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
	top = cfg.Share(top) // a shard's part of it
	if cfg.TrafficMode == stress.FixedRate {
		// Little's law with a generous latency bound.
		top *= 30
	}
	return int(math.Min(math.Max(top, 1), 20000))
}

// openLoopSeconds is how long an open-loop request is assumed to last when
// the open-file limit is checked: a level of R requests/s then holds about
// R × openLoopSeconds connections (Little's law). Longer requests at that
// rate would need more; their connections would then fail, recorded.
const openLoopSeconds = 10

// connections is the most connections the plan may hold open at once, and
// the flag it comes from, for the open-file check: the top level's
// clients in closed loop, its rate × openLoopSeconds in open loop.
func (c *StressCmd) connections(cfg stress.Config) (int, string) {
	top, flag := 0.0, "--concurrency-levels"
	switch cfg.Mode {
	case stress.Manual:
		top = slices.Max(cfg.Levels)
	case stress.Range:
		top, flag = cfg.RangeMax, "--concurrency-max"
	default:
		top, flag = cfg.Auto.MaxLevel, "--auto-max-level"
		if top == 0 {
			top = stress.DefaultAutoMaxLevel
		}
	}
	from := fmt.Sprintf("%s %s", flag, strconv.FormatFloat(top, 'f', -1, 64))
	if cfg.Shard != nil {
		// A shard opens only its share of the top level (shares grow with
		// the level).
		top = cfg.Share(top)
		from += fmt.Sprintf(" (shard %s: its share %s)", cfg.Shard, strconv.FormatFloat(top, 'g', 6, 64))
	}
	if cfg.TrafficMode == stress.FixedRate {
		return int(math.Ceil(top * openLoopSeconds)), fmt.Sprintf("%s (req/s, each request assumed to last %d s)", from, openLoopSeconds)
	}
	return int(math.Ceil(top)), from
}

func (c *StressCmd) bench() Bench { return Stress }

func (c *StressCmd) start() (runStart, error) {
	resumed, warnings, err := c.adoptResume()
	if err != nil {
		return runStart{}, err
	}
	cfg := c.config()
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
	if resumed != "" {
		rows = append(rows, [2]string{"Resumed from", resumed})
	}
	var seed *uint64
	if sh := cfg.Shard; sh != nil {
		var shares []string
		for _, l := range stress.Levels(cfg) {
			shares = append(shares, fmt.Sprintf("%s: %s", cfg.LevelName(l), strconv.FormatFloat(cfg.Share(l), 'g', 6, 64)))
		}
		rows = append(rows, [2]string{"Shard", fmt.Sprintf("%s, this process's share: %s", sh, strings.Join(shares, ", "))},
			[2]string{"Planned start", fmt.Sprintf("%s, a level every %v", sh.StartAt.Format(time.RFC3339Nano), cfg.LevelSlot())})
		s := cfg.RunSeed()
		seed = &s
		if wait := time.Until(sh.StartAt); wait > 0 {
			rows = append(rows, [2]string{"Starts in", wait.Round(time.Second).String()})
		}
	}
	if c.explicit["benchmark-timeout"] {
		warnings = append(warnings, "--benchmark-timeout bounds a prefill run or a decode (batch, length) run; stress ignores it: each level lasts --point-duration plus at most --grace-period")
	}
	conns, connsFrom := c.connections(cfg)
	return runStart{bench: Stress, streams: c.maxInFlight(cfg), lengths: []int{cfg.InputLength}, title: title, rows: rows, warnings: warnings,
		fits: cfg.CheckContext, conns: conns, connsFrom: connsFrom, seed: seed}, nil
}

// adoptResume loads the run --resume-dir names, if any, and takes its
// workload unless a flag sets it; it returns the banner's "Resumed from"
// and the warnings about flags that differ from the resumed run.
func (c *StressCmd) adoptResume() (resumed string, warnings []string, err error) {
	if c.ResumeDir == "" {
		return "", nil, nil
	}
	dir, err := report.Resolve(c.OutputDir, string(Stress), c.ResumeDir)
	if err != nil {
		return "", nil, usagef("--resume-dir: %v", err)
	}
	if c.resume, err = stress.LoadResume(dir); err != nil {
		return "", nil, usagef("--resume-dir %s: %v", c.ResumeDir, err)
	}
	// The workload is the resumed run's unless given explicitly.
	cfg := c.config()
	if warnings, err = c.resume.Adopt(&cfg, func(flag string) bool { return c.explicit[flag] }); err != nil {
		return "", nil, usagef("--resume-dir %s: %v", c.ResumeDir, err)
	}
	c.InputLength, c.OutputLength, c.TrafficMode = cfg.InputLength, cfg.OutputLength, string(cfg.TrafficMode)
	if err := c.config().Validate(); err != nil {
		return "", nil, usagef("--resume-dir %s: %v", c.ResumeDir, err)
	}
	resumed = fmt.Sprintf("%s (%d complete levels)", dir, len(c.resume.Levels))
	if c.resume.Unfinished {
		resumed += ", an unfinished run"
	}
	return resumed, warnings, nil
}

func (c *StressCmd) measure(ctx context.Context, d runner.Deps, files *runFiles) (view, error) {
	cfg := c.config()
	res, err := stress.Run(ctx, cfg, stress.Deps{Deps: d, Resume: c.resume, OnLevel: func(r stress.LevelRun, p stress.Point) error {
		return files.json(filepath.Join(cfg.LevelName(r.Level), stress.LevelFile), struct {
			stress.LevelRun
			Point stress.Point `json:"point"`
		}{r, p})
	}})
	if res.Type == "" {
		return view{}, err
	}
	return stressView(&res), err
}

func (c *StressCmd) recheck(dir string, bounds fidelity.Bounds) (view, validate.Report, error) {
	res, rep, err := stress.Recheck(dir, bounds)
	return stressView(&res), rep, err
}

func (c *StressCmd) load(dir string) (view, error) {
	var res stress.Results
	err := report.ReadJSON(filepath.Join(dir, stress.ResultsFile), &res)
	return stressView(&res), err
}

func stressView(res *stress.Results) view {
	table := newTableView(stress.Table(res.Config, res.Results))
	if m := res.MaxLevelWithinSLO; m != nil {
		print, grid := table.print, table.grid
		table.print = func(w io.Writer, o console.Options) error {
			if err := print(w, o); err != nil {
				return err
			}
			_, err := fmt.Fprintln(w, sloSearchLine(res))
			return err
		}
		table.grid = func() (report.Grid, error) {
			g, err := grid()
			g.Notes = append(slices.Clip(g.Notes), sloSearchLine(res))
			return g, err
		}
	}
	var points []report.Point
	for _, p := range res.Results {
		points = append(points, report.Point{Label: res.Config.LevelName(p.Level), Fidelity: p.Fidelity, Server: p.Server})
	}
	return view{
		meta: &res.Meta, results: res, resultsFile: stress.ResultsFile, csvFile: "stress_results.csv",
		table: table, charts: stress.Charts(res.Config, res.Results),
		values: stress.CompareValues(res.Config, res.Results), validation: res.Validation,
		workload: stressWorkload(res.Config, res.Settings.Endpoint),
		gate: func(exprs []string) ([]validate.Check, error) {
			cfg := res.Config
			cfg.Thresholds = exprs
			return stress.Gate(cfg, res.Results)
		},
		facts:  append([][2]string{{"Traffic mode", string(res.Config.TrafficMode)}}, resumedFacts(res)...),
		points: points,
	}
}

// resumedFacts says which levels of a resumed run came from which earlier
// run, and which this run measured.
func resumedFacts(res *stress.Results) [][2]string {
	from := map[string][]string{}
	var measured []string
	for _, lr := range res.Levels {
		name := res.Config.LevelName(lr.Level)
		if lr.ResumedFrom == "" {
			measured = append(measured, name)
			continue
		}
		from[lr.ResumedFrom] = append(from[lr.ResumedFrom], name)
	}
	if len(from) == 0 {
		return nil
	}
	var facts [][2]string
	for _, dir := range slices.Sorted(maps.Keys(from)) {
		facts = append(facts, [2]string{"Levels from " + dir, strings.Join(from[dir], ", ")})
	}
	return append(facts, [2]string{"Levels measured by this run", strings.Join(measured, ", ")})
}

// sloSearchLine is the auto mode's SLO verdict in one line.
func sloSearchLine(res *stress.Results) string {
	cfg := res.Config
	head := fmt.Sprintf("Highest level within the SLO %s (goodput >= %.0f%%): ", cfg.SLO, 100*cfg.Attainment())
	s := res.SLOSearch
	switch {
	case s == nil || s.MaxLevel == 0:
		return head + "none (no level met it)"
	case s.Missed == 0:
		return head + cfg.LevelName(s.MaxLevel) + " or more (every level measured met it)"
	default:
		return head + cfg.LevelName(s.MaxLevel) + " (" + cfg.LevelName(s.Missed) + " missed it)"
	}
}

// stressWorkload is what a stress run measures, besides its points (matched by
// label): compared runs must agree on it.
func stressWorkload(cfg stress.Config, endpoint string) workload {
	return workload{{"input_length", fmt.Sprint(cfg.InputLength)}, {"output_length", fmt.Sprint(cfg.OutputLength)}, {"traffic_mode", string(cfg.TrafficMode)}, {"endpoint", endpoint}}
}

func (c *StressCmd) workload() workload { return stressWorkload(c.config(), c.Endpoint) }
