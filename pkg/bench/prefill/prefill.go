package prefill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/slo"
	"github.com/veeksha-go/veeksha/pkg/traffic"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Defaults for the prefill benchmark's settings.
const (
	DefaultOutputTokens     = 1
	DefaultSamplesPerLength = 10
	DefaultWarmupRequests   = 1
)

// DefaultInputLengths are the prompt lengths measured when none are given.
func DefaultInputLengths() []int { return []int{128, 256, 512, 1024} }

// Config is the prefill benchmark's own settings.
type Config struct {
	InputLengths     []int `json:"input_lengths"`
	OutputTokens     int   `json:"output_tokens"`
	SamplesPerLength int   `json:"samples_per_length"`
	// WarmupRequests are sent first, at the first length, recorded with
	// warmup true and left out of every statistic.
	WarmupRequests int `json:"warmup_requests"`
	// SLO, when set, judges every measured request: each length reports
	// its goodput.
	SLO slo.SLO `json:"slo,omitzero"`
	// Thresholds are gates checked at every length (ThresholdMetrics):
	// "ttfc_p99<200ms".
	Thresholds []string `json:"thresholds,omitempty"`
	// Timeout bounds the whole run (--benchmark-timeout; 0 for none). The
	// results echo it as settings.benchmark_timeout_s.
	Timeout time.Duration `json:"-"`
}

// Validate reports every problem with c, naming the flag at fault.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, sampler.CheckLengths("--input-lengths", c.InputLengths)...)
	if c.OutputTokens <= 0 {
		errs = append(errs, fmt.Errorf("--output-tokens %d: must be positive", c.OutputTokens))
	}
	if c.SamplesPerLength <= 0 {
		errs = append(errs, fmt.Errorf("--samples-per-length %d: must be positive", c.SamplesPerLength))
	}
	if c.WarmupRequests < 0 {
		errs = append(errs, fmt.Errorf("--warmup-requests %d: must not be negative", c.WarmupRequests))
	}
	if _, err := c.thresholds(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ResultsFile and RecordsFile are the run's results and records, in its folder.
const (
	ResultsFile = "prefill_results.json"
	RecordsFile = "requests.jsonl"
)

// Run sends the warm-up requests and then the stair, one request at a
// time, until done, cfg.Timeout passes or ctx ends, and returns
// everything prefill_results.json holds. Requests are recorded whatever
// their outcome, and stream to d.Records as they end. When the run stops
// early the requests so far are analysed, with EndReason saying why. An
// error (a prompt that could not be built, records that could not be
// written) comes with the results of what ran.
func Run(ctx context.Context, cfg Config, d runner.Deps) (Results, error) {
	if err := cfg.Validate(); err != nil {
		return Results{}, err
	}
	plan := cfg.plan()
	health := Health()
	b, err := runner.Run(ctx, runner.Plan{
		Point: "prefill", Schedule: traffic.InOrder(len(plan)), Total: len(plan) - cfg.WarmupRequests,
		Timeout: cfg.Timeout, Records: RecordsFile, Health: &health,
		Call: func(slot traffic.Slot) (client.Call, error) {
			length := plan[slot.Index]
			prompt, err := d.Prompts.Prompt(length, 0, slot.Index)
			return client.Call{Seq: slot.Index, Warmup: slot.Index < cfg.WarmupRequests, Prompt: prompt,
				TargetPromptTokens: length, MaxTokens: cfg.OutputTokens}, err
		},
	}, d)
	res := Results{
		Meta: d.Meta.For("prefill", "ttfc"), Config: cfg,
		Results: AnalyzeSLO(b.Requests, cfg.SLO), Errors: result.CountErrors(b.Requests),
		Fidelity: fidelity.Assess(b.Client, b.Requests), Server: b.Server,
	}
	res.EndReason, res.StopReason, res.DurationS = b.EndReason, b.StopReason, time.Since(b.Began).Seconds()
	if !d.SkipValidation {
		rep := res.check(b.Requests, d.CheckBounds())
		res.Validation = &rep
	} else if len(cfg.Thresholds) > 0 {
		res.Validation = &validate.Report{}
		res.Validation.Thresholds, _ = Gate(cfg, res.Results) // cfg was validated above
	}
	return res, err
}

// Health is how prefill treats a failing server. Its requests go one at
// a time, so the server is never flooded, but a dead or refusing one must
// not be sent the whole stair: after a failure the next request waits
// (50 ms, doubling up to 1 s: the measured requests are timed from their
// own send, so the wait costs nothing but time), a Retry-After is
// honoured (up to a minute), and runner.DefaultFailuresInRow failures in
// a row end the run early (end reason server_failing, and the
// server_healthy check fails). There is no error-rate rule: one request at
// a time puts too few in a few seconds to judge by.
func Health() runner.Health {
	return runner.Health{
		FailuresInRow: runner.DefaultFailuresInRow,
		BackoffMin:    runner.DefaultBackoffMin, BackoffMax: time.Second,
		RetryAfterMax: runner.DefaultRetryAfterMax,
	}
}

// plan is the target length of every request in send order: the
// warm-ups at the first length, then the stair.
func (c Config) plan() []int {
	plan := make([]int, 0, c.WarmupRequests+len(c.InputLengths)*c.SamplesPerLength)
	for range c.WarmupRequests {
		plan = append(plan, c.InputLengths[0])
	}
	for _, l := range c.InputLengths {
		for range c.SamplesPerLength {
			plan = append(plan, l)
		}
	}
	return plan
}

// check runs the validity checks of the run whose records are reqs, and
// its thresholds.
func (res Results) check(reqs []result.Request, bounds fidelity.Bounds) validate.Report {
	rep := Check(res.Config, reqs, res.Fidelity, bounds)
	if res.EndReason == result.EndServerFailing {
		rep.Add("server_healthy", "", validate.Fail, "the run was ended early because the server kept failing: %s", res.StopReason)
	}
	servermetrics.Check(&rep, res.Server, "", 0, servermetrics.Prompts{
		Salted: res.Settings.PromptSalt, Requests: len(reqs), OverheadTokens: res.Settings.PromptOverheadTokens,
	})
	var err error
	if rep.Thresholds, err = Gate(res.Config, res.Results); err != nil {
		rep.Add("thresholds", "", validate.Fail, "%v", err)
	}
	return rep
}

// Recheck reads the prefill run saved in dir and runs its validity checks
// again (--validate-only). It writes nothing.
func Recheck(dir string, bounds fidelity.Bounds) (Results, validate.Report, error) {
	var res Results
	if err := report.ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		return res, validate.Report{}, err
	}
	reqs, err := report.ReadRecords(filepath.Join(dir, RecordsFile))
	if err != nil {
		return res, validate.Report{}, err
	}
	return res, res.check(reqs, bounds), nil
}

// Row is the summary of one input length.
type Row struct {
	InputLength int `json:"input_length"`
	// TTFC summarizes the successful requests' TTFC, in seconds.
	TTFC metrics.Summary `json:"ttfc"`
	// PrefillTPS is InputLength divided by the median TTFC: prompt tokens
	// per second, upper-bounded by the server's true prefill speed since
	// TTFC also holds the network, queueing and the first decode step.
	PrefillTPS float64 `json:"prefill_tokens_per_s"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	// Goodput, with an SLO, counts the length's requests that met it
	// (failures count against the ratio); rates divide by the time from
	// the length's first send to its last end.
	*slo.Goodput
}

// Analyze groups the measured requests by target length and summarizes
// TTFC. Warm-ups and failures are left out of the statistics; failures are
// counted. Rows are sorted by length.
func Analyze(reqs []result.Request) []Row {
	byLen := map[int]*Row{}
	ttfcs := map[int][]float64{}
	for i := range reqs {
		r := &reqs[i]
		if r.Warmup {
			continue
		}
		row := byLen[r.TargetPromptTokens]
		if row == nil {
			row = &Row{InputLength: r.TargetPromptTokens}
			byLen[r.TargetPromptTokens] = row
		}
		row.Requests++
		ttfc, ok := r.TTFC()
		if !r.OK() || !ok {
			row.Errors++
			continue
		}
		ttfcs[r.TargetPromptTokens] = append(ttfcs[r.TargetPromptTokens], ttfc.Seconds())
	}
	rows := make([]Row, 0, len(byLen))
	for l, row := range byLen {
		row.TTFC = metrics.Summarize(ttfcs[l])
		if row.TTFC.Count > 0 && row.TTFC.Median > 0 {
			row.PrefillTPS = float64(l) / row.TTFC.Median
		}
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(a, b Row) int { return cmp.Compare(a.InputLength, b.InputLength) })
	return rows
}

// AnalyzeSLO is Analyze plus each length's goodput against s; a zero s
// leaves Goodput nil.
func AnalyzeSLO(reqs []result.Request, s slo.SLO) []Row {
	rows := Analyze(reqs)
	if s.IsZero() {
		return rows
	}
	for i := range rows {
		var mine []result.Request
		for _, r := range reqs {
			if !r.Warmup && r.TargetPromptTokens == rows[i].InputLength {
				mine = append(mine, r)
			}
		}
		g := s.Judge(mine, slo.Span(mine))
		rows[i].Goodput = &g
	}
	return rows
}

// CheckContext refuses a run whose requests cannot fit the model's
// context of contextLen tokens (prompt plus output, as the server counts
// them): such a request would only come back as an HTTP 400. contextLen
// 0 means unknown, and nothing is checked.
func (c Config) CheckContext(contextLen int) error {
	if contextLen <= 0 {
		return nil
	}
	var over []string
	first := 0
	for _, l := range c.InputLengths {
		if l+c.OutputTokens > contextLen {
			if first == 0 {
				first = l
			}
			over = append(over, strconv.Itoa(l))
		}
	}
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("--input-lengths %s: a %d-token prompt plus --output-tokens %d is %d tokens, beyond the model's %d-token context",
		strings.Join(over, ","), first, c.OutputTokens, first+c.OutputTokens, contextLen)
}
