package stress

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/slo"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Results is stress_results.json: the reference layout (type, traffic
// mode, lengths, "results" with one point per level, times in seconds)
// plus metadata, configuration, the auto scan's decisions, errors and
// validation.
type Results struct {
	result.Meta
	TrafficMode  TrafficMode        `json:"traffic_mode"`
	InputLength  int                `json:"input_length"`
	OutputLength int                `json:"output_length"`
	Config       Config             `json:"config"`
	Results      []Point            `json:"results"`
	Levels       []LevelRun         `json:"levels"`
	AutoPlan     *autoscan.Plan     `json:"auto_plan,omitempty"`
	Errors       result.ErrorCounts `json:"errors"`
	Validation   *validate.Report   `json:"validation,omitempty"`
	// StopReason says why the run ended early when the server kept
	// failing (EndReason server_failing).
	StopReason string `json:"stop_reason,omitempty"`
	// ResumedFrom is the earlier run whose levels were reused.
	ResumedFrom string `json:"resumed_from,omitempty"`
	// MaxLevelWithinSLO is, in auto mode with an SLO, the highest level
	// whose goodput ratio reached the attainment (0: none did); SLOSearch
	// says how the search found it.
	MaxLevelWithinSLO *float64            `json:"max_level_within_slo,omitempty"`
	SLOSearch         *autoscan.SLOSearch `json:"slo_search,omitempty"`
	// Shards is, in a run merged from shard runs (Merge), their number;
	// Merge says where they came from and how their clocks lined up.
	Shards int        `json:"shards,omitempty"`
	Merge  *MergeInfo `json:"merge,omitempty"`
}

func ms(s float64) float64 { return s * 1000 }

// Table is the results table, shared by the console and the CSV file.
func Table(cfg Config, points []Point) report.Table[Point] {
	num := func(header, key string, dec int, get func(Point) float64) report.Column[Point] {
		return report.Column[Point]{Header: header, Key: key, Decimals: dec, Value: func(p Point) (float64, bool) { return get(p), true }}
	}
	lat := func(header, key string, get func(Point) float64) report.Column[Point] {
		return report.Column[Point]{Header: header, Key: key, Decimals: 2, Value: func(p Point) (float64, bool) {
			return ms(get(p)), p.NumRequests > 0
		}}
	}
	inter := func(header, key string, get func(Point) float64) report.Column[Point] {
		return report.Column[Point]{Header: header, Key: key, Decimals: 1, Value: func(p Point) (float64, bool) { return get(p), get(p) > 0 }}
	}
	levelKey := "concurrency"
	if cfg.TrafficMode == FixedRate {
		levelKey = "qps"
	}
	cols := []report.Column[Point]{
		{Header: cfg.LevelHeader(), Key: levelKey, Text: func(p Point) string { return strconv.FormatFloat(p.Level, 'f', -1, 64) }},
		num("In Tput (tok/s)", "input_throughput_tok_s", 1, func(p Point) float64 { return p.InputThroughput }),
		num("Out Tput (tok/s)", "output_throughput_tok_s", 1, func(p Point) float64 { return p.OutputThroughput }),
		lat("E2E P50 (ms)", "e2e_p50_ms", func(p Point) float64 { return p.E2EP50 }),
		lat("E2E P99 (ms)", "e2e_p99_ms", func(p Point) float64 { return p.E2EP99 }),
		lat("TTFC P50 (ms)", "ttfc_p50_ms", func(p Point) float64 { return p.TTFCP50 }),
		lat("TTFC P99 (ms)", "ttfc_p99_ms", func(p Point) float64 { return p.TTFCP99 }),
		inter("Intrctvty P50 (t/s)", "interactivity_p50_tok_s", func(p Point) float64 { return p.InteractivityP50 }),
		inter("Intrctvty slowest 1% (t/s)", "interactivity_slowest1pct_tok_s", func(p Point) float64 { return p.InteractivityP99 }),
		num("Reqs", "requests", 0, func(p Point) float64 { return float64(p.NumRequests) }),
		num("Errors", "errors", 0, func(p Point) float64 { return float64(p.Failed()) }),
	}
	if !cfg.SLO.IsZero() {
		good := func(header, key string, dec int, get func(slo.Goodput) float64) report.Column[Point] {
			return report.Column[Point]{Header: header, Key: key, Decimals: dec, Value: func(p Point) (float64, bool) {
				if p.Goodput == nil {
					return 0, false
				}
				return get(*p.Goodput), true
			}}
		}
		cols = append(cols,
			good("Goodput", "goodput_ratio", 2, func(g slo.Goodput) float64 { return g.Ratio }),
			good("Good (req/s)", "goodput_rps", 2, func(g slo.Goodput) float64 { return g.RPS }),
			good("Good Out Tput (tok/s)", "goodput_output_throughput_tok_s", 1, func(g slo.Goodput) float64 { return g.OutputThroughput }),
		)
	}
	if cfg.TrafficMode == FixedRate {
		cols = append(cols,
			num("Sent (req/s)", "achieved_rate_req_s", 2, func(p Point) float64 { return p.AchievedRate }),
			report.Column[Point]{Header: "Send lag P99 (ms)", Key: "send_lag_p99_ms", Decimals: 2, Value: func(p Point) (float64, bool) {
				return ms(p.SendLag.P99), p.SendLag.Count > 0
			}},
		)
	}
	notes := []string{
		"throughput = tokens that arrived in [warmup, point duration] / window length; latencies from requests sent in that window",
		"interactivity = 1 / TPOT per user; 'slowest 1%' = 1 / TPOT P99, the speed of the slowest 1% of users",
	}
	for _, p := range points {
		if p.Cut > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d cut (still receiving tokens at the end of the grace period), latencies exclude them", cfg.LevelName(p.Level), p.Cut))
		}
	}
	var thin []string
	for _, p := range points {
		if p.NumRequests > 0 && !p.E2E.CI95.P99.Supported {
			thin = append(thin, cfg.LevelName(p.Level))
		}
	}
	if note := report.ThinP99Note(thin); note != "" {
		notes = append(notes, note)
	}
	if !cfg.SLO.IsZero() {
		notes = append(notes, "goodput = requests sent in the window that succeeded and met the SLO "+cfg.SLO.String()+", as a share of all sent (failures included), per second, and their output tokens per second")
	}
	if sh := cfg.Shard; sh != nil {
		notes = append(notes, fmt.Sprintf("shard %s: each row is this process's share of its level (%s); merge the %d shard runs with --merge for the levels' numbers", sh, shareNote(cfg, points), sh.Count))
	}
	if cfg.TrafficMode == FixedClients {
		notes = append(notes, "closed loop: latency is service time with N clients, each sending when its last request ends")
	}
	return report.Table[Point]{Title: "Stress Results (Throughput vs Latency)", Columns: cols, Rows: points, Notes: notes}
}

// Charts are the seven plots of the stress benchmark.
func Charts(cfg Config, points []Point) []report.Chart {
	level := cfg.LevelHeader()
	type xy struct{ x, y func(Point) float64 }
	series := func(name string, dashed bool, f xy) report.Series {
		s := report.Series{Name: name, Dashed: dashed}
		for _, p := range points {
			if p.NumRequests == 0 {
				continue
			}
			s.X, s.Y = append(s.X, f.x(p)), append(s.Y, f.y(p))
		}
		return s
	}
	// labelled names each point by its level, where the x axis does not.
	labelled := func(ss ...report.Series) []report.Series {
		for i := range ss {
			ss[i].Labels = nil
			for _, p := range points {
				if p.NumRequests > 0 {
					ss[i].Labels = append(ss[i].Labels, cfg.LevelName(p.Level))
				}
			}
		}
		return ss
	}
	lvl := func(p Point) float64 { return p.Level }
	in := func(p Point) float64 { return p.InputThroughput }
	out := func(p Point) float64 { return p.OutputThroughput }
	e50, e99 := func(p Point) float64 { return ms(p.E2EP50) }, func(p Point) float64 { return ms(p.E2EP99) }
	t50, t99 := func(p Point) float64 { return ms(p.TTFCP50) }, func(p Point) float64 { return ms(p.TTFCP99) }
	i50, i99 := func(p Point) float64 { return p.InteractivityP50 }, func(p Point) float64 { return p.InteractivityP99 }
	const slowest = "slowest 1%"
	charts := []report.Chart{
		{Name: "throughput_vs_load", Title: "Throughput vs Load", XLabel: level, YLabel: "Throughput (tok/s)", LogX: true,
			Series: []report.Series{series("Input", false, xy{lvl, in}), series("Output", true, xy{lvl, out})}},
		{Name: "output_throughput_vs_latency", Title: "Output Throughput vs Latency", XLabel: "E2E Latency (ms)", YLabel: "Output Throughput (tok/s)",
			Series: labelled(series("P50", false, xy{e50, out}), series("P99", true, xy{e99, out}))},
		{Name: "e2e_latency_vs_load", Title: "E2E Latency vs Load", XLabel: level, YLabel: "E2E Latency (ms)", LogX: true,
			Series: []report.Series{series("P50", false, xy{lvl, e50}), series("P99", true, xy{lvl, e99})}},
		{Name: "interactivity_vs_load", Title: "Interactivity vs Load", XLabel: level, YLabel: "Interactivity (tok/s/user)", LogX: true,
			Series: []report.Series{series("P50", false, xy{lvl, i50}), series(slowest, true, xy{lvl, i99})}},
		{Name: "ttfc_vs_load", Title: "Time to First Token vs Load", XLabel: level, YLabel: "TTFC (ms)", LogX: true,
			Series: []report.Series{series("P50", false, xy{lvl, t50}), series("P99", true, xy{lvl, t99})}},
		{Name: "input_throughput_vs_interactivity", Title: "Input Throughput vs Interactivity", XLabel: "Interactivity (tok/s/user)", YLabel: "Input Throughput (tok/s)",
			Series: labelled(series("P50", false, xy{i50, in}), series(slowest, true, xy{i99, in}))},
		{Name: "output_throughput_vs_interactivity", Title: "Output Throughput vs Interactivity", XLabel: "Interactivity (tok/s/user)", YLabel: "Output Throughput (tok/s)",
			Series: labelled(series("P50", false, xy{i50, out}), series(slowest, true, xy{i99, out}))},
	}
	if !cfg.SLO.IsZero() {
		var good, sent report.Series
		good.Name, sent.Name, sent.Dashed = "Good (met the SLO)", "Sent", true
		for _, p := range points {
			if p.Goodput == nil || p.WindowEndS <= p.WindowStartS {
				continue
			}
			good.X, good.Y = append(good.X, p.Level), append(good.Y, p.Goodput.RPS)
			sent.X, sent.Y = append(sent.X, p.Level), append(sent.Y, float64(p.Sent)/(p.WindowEndS-p.WindowStartS))
		}
		charts = append(charts, report.Chart{Name: "goodput_vs_load", Title: "Goodput vs Load (SLO " + cfg.SLO.String() + ")",
			XLabel: level, YLabel: "Requests/s", LogX: true, Series: []report.Series{good, sent}})
	}
	return charts
}

// CompareValues are the headline numbers of each point, for comparing runs.
func CompareValues(cfg Config, points []Point) []compare.Value {
	var out []compare.Value
	for _, p := range points {
		if p.NumRequests == 0 {
			continue
		}
		name := cfg.LevelName(p.Level)
		v := func(metric string, x float64, higher bool) compare.Value {
			return compare.Value{Point: name, Order: p.Level, Metric: metric, Value: x, HigherIsBetter: higher}
		}
		bounded := func(metric string, x float64, iv metrics.Interval) compare.Value {
			c := v(metric, ms(x), false)
			c.Low, c.High, c.Bounded = ms(iv.Low), ms(iv.High), true
			return c
		}
		out = append(out,
			v("output_tok_s", p.OutputThroughput, true),
			v("input_tok_s", p.InputThroughput, true),
			bounded("e2e_p50_ms", p.E2EP50, p.E2E.CI95.Median),
			bounded("e2e_p99_ms", p.E2EP99, p.E2E.CI95.P99),
			bounded("ttfc_p50_ms", p.TTFCP50, p.TTFC.CI95.Median),
			bounded("ttfc_p99_ms", p.TTFCP99, p.TTFC.CI95.P99),
			v("interactivity_p50_tok_s", p.InteractivityP50, true),
		)
		if p.Goodput != nil {
			out = append(out, v("goodput_ratio", p.Goodput.Ratio, true))
		}
	}
	return out
}

// shareNote lists this shard's share of each level: "c=8: 4, c=16: 8".
func shareNote(cfg Config, points []Point) string {
	var parts []string
	for _, p := range points {
		parts = append(parts, cfg.LevelName(p.Level)+": "+strconv.FormatFloat(cfg.Share(p.Level), 'g', 6, 64))
	}
	return strings.Join(parts, ", ")
}
