package decode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/decodewindow"
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

// Defaults for the decode benchmark's settings.
const (
	DefaultSamplesPerLength = 10
	DefaultEngineChunkSize  = 512
	// OutputTokenMultiplier is the safety margin on the output length the
	// formula of RequiredTokens asks for.
	OutputTokenMultiplier = 2
	// DefaultTicketTimeout releases the next request of a batch even if
	// the previous one has not been accepted by then.
	DefaultTicketTimeout = 30 * time.Second
)

// DefaultBatchSizes and DefaultInputLengths are measured when none are given.
func DefaultBatchSizes() []int { return []int{1, 2, 4, 8} }

// DefaultInputLengths are the prompt lengths measured when none are given.
func DefaultInputLengths() []int { return []int{128, 256, 512, 1024} }

// Config is the decode benchmark's own settings.
type Config struct {
	BatchSizes   []int `json:"batch_sizes"`
	InputLengths []int `json:"input_lengths"`
	// SamplesPerLength is the number of steady-state decode steps each
	// request should make while the whole batch decodes.
	SamplesPerLength int `json:"samples_per_length"`
	// EngineChunkSize is the server's per-iteration token budget (chunked
	// prefill), used to size the output so the window is long enough.
	EngineChunkSize int `json:"engine_chunk_size"`
	// TicketTimeout releases the next request of a batch when the previous
	// one has not been accepted within it.
	TicketTimeout result.Seconds `json:"ticket_timeout_s"`
	// WarmupRequests are sent once before the first combination and left
	// out of every statistic.
	WarmupRequests int `json:"warmup_requests"`
	// SLO, when set, judges every request: each combination reports its
	// goodput.
	SLO slo.SLO `json:"slo,omitzero"`
	// Thresholds are gates checked at every combination
	// (ThresholdMetrics): "tbt_p99<20ms".
	Thresholds []string `json:"thresholds,omitempty"`
	// Timeout bounds each combination (--benchmark-timeout; 0 for none).
	// The results echo it as settings.benchmark_timeout_s.
	Timeout time.Duration `json:"-"`
}

// Validate reports every problem with c, naming the flag at fault.
func (c Config) Validate() error {
	var errs []error
	if len(c.BatchSizes) == 0 {
		errs = append(errs, errors.New("--batch-sizes must list at least one batch size"))
	}
	if c.EngineChunkSize <= 0 {
		errs = append(errs, fmt.Errorf("--engine-chunk-size %d: must be positive", c.EngineChunkSize))
	}
	for _, b := range c.BatchSizes {
		switch {
		case b < 1:
			errs = append(errs, fmt.Errorf("--batch-sizes %d: batch sizes must be at least 1", b))
		case c.EngineChunkSize > 0 && b >= c.EngineChunkSize:
			errs = append(errs, fmt.Errorf("--batch-sizes %d must be less than --engine-chunk-size %d (each decoding request takes one token of the chunk budget)", b, c.EngineChunkSize))
		}
	}
	errs = append(errs, sampler.CheckLengths("--input-lengths", c.InputLengths)...)
	if c.SamplesPerLength <= 0 {
		errs = append(errs, fmt.Errorf("--samples-per-length %d: must be positive", c.SamplesPerLength))
	}
	if c.TicketTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ticket timeout %v: must be positive", c.TicketTimeout))
	}
	if c.WarmupRequests < 0 {
		errs = append(errs, fmt.Errorf("--warmup-requests %d: must not be negative", c.WarmupRequests))
	}
	if _, err := c.thresholds(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PrefillIterations is the number of engine iterations one request of
// length l needs to prefill when every iteration has a budget of chunk
// tokens and batch decoding requests each take one: ceil(l / (chunk - batch)).
func PrefillIterations(l, chunk, batch int) int {
	budget := chunk - batch
	return (l + budget - 1) / budget
}

// RequiredTokens is the number of output tokens the first request of a
// batch needs so that it is still decoding when the last one has finished
// its prefill, and then makes samples more steps with the whole batch:
// samples for a batch of one, else samples + (batch-1) * PrefillIterations.
func RequiredTokens(samples, batch, l, chunk int) int {
	if batch == 1 {
		return samples
	}
	return samples + (batch-1)*PrefillIterations(l, chunk, batch)
}

// OutputTokens is the output length requested: OutputTokenMultiplier times
// RequiredTokens.
func OutputTokens(samples, batch, l, chunk int) int {
	return OutputTokenMultiplier * RequiredTokens(samples, batch, l, chunk)
}

// Combination is one (batch size, input length) point.
type Combination struct {
	BatchSize   int `json:"batch_size"`
	InputLength int `json:"input_length"`
	// Index numbers the combinations in run order; it salts the prompts.
	Index int `json:"index"`
}

// Label is the combination's folder name: "bs=4_il=512".
func (c Combination) Label() string { return fmt.Sprintf("bs=%d_il=%d", c.BatchSize, c.InputLength) }

// CheckLabel is the combination's label in validation checks: "bs=4,il=512".
func (c Combination) CheckLabel() string {
	return fmt.Sprintf("bs=%d,il=%d", c.BatchSize, c.InputLength)
}

// Combinations lists the points in run order: batch sizes in the user's
// order, and for each, the input lengths in the user's order.
func Combinations(cfg Config) []Combination {
	var out []Combination
	for _, b := range cfg.BatchSizes {
		for _, l := range cfg.InputLengths {
			out = append(out, Combination{BatchSize: b, InputLength: l, Index: len(out)})
		}
	}
	return out
}

// Files of a decode run, in its folder: the results, the warm-up
// records, and each combination's records and decode window in its
// folder (Combination.Label).
const (
	ResultsFile = "decode_results.json"
	WarmupFile  = "warmup.jsonl"
	RecordsFile = "requests.jsonl"
	WindowFile  = "decode_window.json"
)

// Deps are what a decode run needs besides its Config.
type Deps struct {
	runner.Deps
	// OnCombination, when set, is called after each combination with what it
	// recorded and its analysis, before the next combination starts. An
	// error ends the run.
	OnCombination func(CombinationRun, Analysis) error
}

// CombinationRun is what one combination recorded.
type CombinationRun struct {
	Combination
	Began     time.Time
	Requests  []result.Request
	EndReason string
	// StopReason says why the combination ended early when the server
	// kept failing (EndReason server_failing).
	StopReason string
	// Client is what the client process did during the combination.
	Client fidelity.Sample
}

// Health is how one combination treats a failing server. Each request of
// a batch is sent once, launched in order: there is no loop to back off
// from, so there is no backoff. A Retry-After holds the batch's next
// launches (up to a minute), and runner.DefaultFailuresInRow failures in
// a row end the combination early. After a combination the server failed
// (afterFailing), the next one ends as soon as its first min(batch, 10)
// requests all fail; Run ends the whole run after two failed combinations
// in a row (see failedCombination).
func Health(batch int, afterFailing bool) runner.Health {
	h := runner.Health{FailuresInRow: runner.DefaultFailuresInRow, RetryAfterMax: runner.DefaultRetryAfterMax}
	if afterFailing {
		h.FirstFailures = min(batch, runner.DefaultMinRequests)
	}
	return h
}

// failedCombination reports whether the server failed a combination: it
// ended it early, or failed every request it sent.
func failedCombination(p CombinationRun) bool {
	if p.EndReason == result.EndServerFailing {
		return true
	}
	failed := 0
	for i := range p.Requests {
		if r := &p.Requests[i]; !r.OK() && r.ErrClass != result.ErrCanceled {
			failed++
		}
	}
	return len(p.Requests) > 0 && failed == len(p.Requests)
}

// lastError is the error of the last failed request of reqs.
func lastError(reqs []result.Request) string {
	for i := len(reqs) - 1; i >= 0; i-- {
		if !reqs[i].OK() {
			return reqs[i].Err
		}
	}
	return ""
}

// warmupPoint is the combination index of warm-up requests, outside the
// range of real combinations so their salts never repeat.
const warmupPoint = 1 << 20

// warmupTokens is the output length of a warm-up request.
const warmupTokens = 8

// Run sends the warm-up requests, then runs every combination in order
// (Combinations), each bounded by cfg.Timeout, until done or ctx ends, and
// returns everything decode_results.json holds. An error (a prompt, a
// record file, an analysis or d.OnCombination) ends the run and comes with the
// results of the combinations that ran.
func Run(ctx context.Context, cfg Config, d Deps) (Results, error) {
	if err := cfg.Validate(); err != nil {
		return Results{}, err
	}
	began := time.Now()
	res := Results{Meta: d.Meta.For("decode", "tbt"), Config: cfg}
	res.EndReason = result.EndCompleted
	var rep validate.Report
	var all []result.Request
	warm, err := warmup(ctx, cfg, d.Deps)
	res.WarmupErrors = result.CountAllErrors(warm)
	failing := 0 // combinations in a row the server failed
	for _, comb := range Combinations(cfg) {
		if err != nil || ctx.Err() != nil {
			break
		}
		if failing >= 2 {
			// A dead or refusing server is not sent the rest of the plan.
			res.EndReason = result.EndServerFailing
			res.StopReason = fmt.Sprintf("the server failed %d combinations in a row; %s and the rest were not run (last error: %s)",
				failing, comb.Label(), lastError(all))
			d.Log().Warn("ending the run early: the server keeps failing", "reason", res.StopReason)
			break
		}
		var p CombinationRun
		var a Analysis
		if p, a, err = runCombination(ctx, cfg, comb, failing > 0, d.Deps); err != nil {
			break
		}
		if failedCombination(p) {
			failing++
		} else {
			failing = 0
		}
		if !d.SkipValidation {
			a.check(&rep, cfg, p, d.CheckBounds(), res.Settings)
		}
		res.Results = append(res.Results, a.Row)
		all = append(all, p.Requests...)
		if p.EndReason != result.EndCompleted && res.EndReason == result.EndCompleted {
			res.EndReason = p.EndReason // the combination says why in its row
		}
		if d.OnCombination != nil {
			err = d.OnCombination(p, a)
		}
		d.Log().Info("point done", "point", comb.Label(), "tbt_p50_ms", 1000*a.Row.TBT.Median, "peak", a.Row.PeakConcurrency)
	}
	if ctx.Err() != nil {
		res.EndReason = result.EndInterrupted
	}
	SortRows(res.Results)
	res.Errors = result.CountErrors(all)
	res.DurationS = time.Since(began).Seconds()
	if !d.SkipValidation {
		res.runChecks(&rep, true)
	}
	if !d.SkipValidation || len(cfg.Thresholds) > 0 {
		rep.Thresholds, _ = Gate(cfg, res.Results) // cfg was validated above
		res.Validation = &rep
	}
	return res, err
}

// warmup sends cfg.WarmupRequests short requests one at a time, recorded
// in WarmupFile and flagged as warm-ups, and returns their records.
func warmup(ctx context.Context, cfg Config, d runner.Deps) ([]result.Request, error) {
	if cfg.WarmupRequests == 0 {
		return nil, nil
	}
	l := cfg.InputLengths[0]
	b, err := runner.Run(ctx, runner.Plan{
		Point: "warm-up", Schedule: traffic.InOrder(cfg.WarmupRequests), Records: WarmupFile,
		Call: func(slot traffic.Slot) (client.Call, error) {
			prompt, err := d.Prompts.Prompt(l, warmupPoint, slot.Index)
			return client.Call{Seq: slot.Index, Warmup: true, Prompt: prompt, TargetPromptTokens: l, MaxTokens: warmupTokens}, err
		},
	}, d)
	return b.Requests, err
}

// runChecks adds the checks of the run as a whole: its warm-up requests
// (a server that fails them is not healthy, though they are not measured)
// when their records are known, and an early end because the server kept
// failing.
func (res Results) runChecks(rep *validate.Report, warmupKnown bool) {
	if n := res.Config.WarmupRequests; n > 0 && warmupKnown {
		if w := res.WarmupErrors; w.Total > 0 {
			rep.Add("no_errors", "warm-up", validate.Fail, "%d of %d warm-up requests failed: %s", w.Total, n, w.Classes())
		} else {
			rep.Add("no_errors", "warm-up", validate.Pass, "all %d warm-up requests succeeded", n)
		}
	}
	if res.StopReason != "" {
		rep.Add("server_healthy", "", validate.Fail, "the run was ended early because the server kept failing: %s", res.StopReason)
	}
}

// runCombination launches one batch, waits for all of it, and analyses
// it. cfg.Timeout bounds it (--benchmark-timeout): when it passes, or ctx
// ends, requests still in flight are cancelled and recorded as such, and
// requests never sent are recorded as not sent.
func runCombination(ctx context.Context, cfg Config, c Combination, afterFailing bool, d runner.Deps) (CombinationRun, Analysis, error) {
	maxTokens := OutputTokens(cfg.SamplesPerLength, c.BatchSize, c.InputLength, cfg.EngineChunkSize)
	// Prompts are built, and the requests serialized (Plan.Ahead), before
	// the launch, so that none delays it.
	prompts := make([]string, c.BatchSize)
	for i := range prompts {
		p, err := d.Prompts.Prompt(c.InputLength, c.Index, i)
		if err != nil {
			return CombinationRun{}, Analysis{}, fmt.Errorf("build prompt: %w", err)
		}
		prompts[i] = p
	}
	health := Health(c.BatchSize, afterFailing)
	b, err := runner.Run(ctx, runner.Plan{
		Point: c.Label(), Schedule: traffic.LaunchInOrder(c.BatchSize, cfg.TicketTimeout.D()), Total: c.BatchSize, Timeout: cfg.Timeout, Ahead: c.BatchSize,
		Health:  &health,
		Records: c.Label() + "/" + RecordsFile,
		Call: func(slot traffic.Slot) (client.Call, error) {
			return client.Call{Seq: slot.Index, Prompt: prompts[slot.Index], TargetPromptTokens: c.InputLength, MaxTokens: maxTokens}, nil
		},
		Unsent: func(seq int) result.Request {
			return result.Request{Seq: seq, TargetPromptTokens: c.InputLength, TargetOutputTokens: maxTokens,
				ErrClass: result.ErrCanceled, Err: "not sent: the run ended first"}
		},
	}, d)
	p := CombinationRun{Combination: c, Began: b.Began, Requests: b.Requests, EndReason: b.EndReason, StopReason: b.StopReason, Client: b.Client}
	if err != nil {
		return p, Analysis{}, err
	}
	if ctx.Err() != nil {
		p.EndReason = result.EndInterrupted
	}
	a, err := Analyze(p)
	a.Row.Server = b.Server
	a.Row.Goodput = goodput(cfg.SLO, p.Requests)
	return p, a, err
}

// check adds the validity checks of one combination to rep.
func (a Analysis) check(rep *validate.Report, cfg Config, p CombinationRun, bounds fidelity.Bounds, st result.Settings) {
	Check(rep, cfg, p, a, bounds)
	servermetrics.Check(rep, a.Row.Server, p.CheckLabel(), p.BatchSize, servermetrics.Prompts{
		Salted: st.PromptSalt, Requests: len(p.Requests), OverheadTokens: st.PromptOverheadTokens,
	})
}

// Recheck reads the decode run saved in dir and runs its validity checks
// again (--validate-only). A combination whose records are missing fails
// its metrics_found check. It writes nothing.
func Recheck(dir string, bounds fidelity.Bounds) (Results, validate.Report, error) {
	var res Results
	var rep validate.Report
	if err := report.ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		return res, rep, err
	}
	for _, comb := range Combinations(res.Config) {
		reqs, err := report.ReadRecords(filepath.Join(dir, comb.Label(), RecordsFile))
		if err != nil {
			rep.Add("metrics_found", comb.Label(), validate.Fail, "%v", err)
			continue
		}
		p := CombinationRun{Combination: comb, Requests: reqs}
		var saved Row
		for _, row := range res.Results {
			if row.BatchSize == comb.BatchSize && row.InputLength == comb.InputLength {
				saved = row
			}
		}
		p.Client = saved.Fidelity.Sample
		p.EndReason, p.StopReason = saved.EndReason, saved.StopReason
		a, err := Analyze(p)
		if err != nil {
			return res, rep, err
		}
		a.Row.Server = saved.Server
		a.check(&rep, res.Config, p, bounds, res.Settings)
	}
	// The warm-up is judged from its records, as it was measured; a run
	// saved before warmup_errors existed has them too.
	warmupKnown := true
	if res.Config.WarmupRequests > 0 {
		warm, err := report.ReadRecords(filepath.Join(dir, WarmupFile))
		if err != nil {
			rep.Add("metrics_found", "warm-up", validate.Fail, "%v", err)
			warmupKnown = false
		}
		res.WarmupErrors = result.CountAllErrors(warm)
	}
	res.runChecks(&rep, warmupKnown)
	var err error
	if rep.Thresholds, err = Gate(res.Config, res.Results); err != nil {
		rep.Add("thresholds", "", validate.Fail, "%v", err)
	}
	return res, rep, nil
}

// Row is the summary of one combination.
type Row struct {
	BatchSize   int `json:"batch_size"`
	InputLength int `json:"input_length"`
	// TBT summarizes the chunk gaps inside the decode window, in seconds.
	TBT metrics.Summary `json:"tbt"`
	// TBTPerToken summarizes the per-token gaps (each chunk gap divided by
	// the tokens the chunk carried). It is empty when chunks carried several
	// tokens but the server did not say how many each (no per-chunk usage):
	// a per-token figure would then be a guess.
	TBTPerToken metrics.Summary `json:"tbt_per_token"`
	// TokensPerChunk summarizes the tokens each in-window chunk carried,
	// when the server reported it.
	TokensPerChunk *metrics.Summary `json:"tokens_per_chunk,omitempty"`
	// TokensPerChunkMean is the mean number of tokens per content chunk:
	// from TokensPerChunk when known, else the server's output token count
	// over the chunks received (so coalescing shows even without per-chunk
	// usage); 0 when the server reported no usage.
	TokensPerChunkMean float64 `json:"tokens_per_chunk_mean"`
	// DecodeTPS is BatchSize × TokensPerChunkMean / mean TBT (per chunk):
	// tokens per second the whole batch generated in the window.
	DecodeTPS float64 `json:"decode_tokens_per_s"`
	// PeakConcurrency is the most requests that decoded at once.
	PeakConcurrency int `json:"peak_concurrency"`
	// WindowS is the total length of the decode window in seconds.
	WindowS   float64 `json:"window_s"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	EndReason string  `json:"end_reason"`
	// StopReason says why the combination ended early when the server
	// kept failing (EndReason server_failing).
	StopReason string `json:"stop_reason,omitempty"`
	// Fidelity says whether the client kept up during the combination.
	Fidelity fidelity.Assessment `json:"client_fidelity"`
	// Server is what the server's own metrics reported meanwhile.
	Server *servermetrics.Summary `json:"server_metrics,omitempty"`
	// Goodput, with an SLO, counts the batch's requests that met it
	// (failures count against the ratio); rates divide by the time from
	// the first send to the last end.
	*slo.Goodput
}

// goodput judges a combination's requests against s; nil for a zero s.
func goodput(s slo.SLO, reqs []result.Request) *slo.Goodput {
	if s.IsZero() {
		return nil
	}
	g := s.Judge(reqs, slo.Span(reqs))
	return &g
}

// Analysis is one combination's decode window and summary row.
type Analysis struct {
	Row    Row
	Window decodewindow.Result
}

// Analyze finds the decode window of a combination's successful requests
// and summarizes the TBT inside it.
func Analyze(p CombinationRun) (Analysis, error) {
	var streams []decodewindow.Stream
	errs, tokens, chunks, allUsage := 0, 0, 0, true
	for i := range p.Requests {
		r := &p.Requests[i]
		if !r.OK() {
			errs++
			continue
		}
		streams = append(streams, decodewindow.FromRequest(r))
		tokens += r.OutputTokens
		chunks += r.Chunks()
		allUsage = allUsage && r.UsageReported
	}
	w, err := decodewindow.Analyze(streams, decodewindow.Config{Strategy: decodewindow.All})
	if err != nil {
		return Analysis{}, fmt.Errorf("decode window of %s: %w", p.Label(), err)
	}
	row := Row{
		BatchSize: p.BatchSize, InputLength: p.InputLength,
		TBT: w.ChunkGapStats, TBTPerToken: w.TokenGapStats,
		PeakConcurrency: w.Peak, Requests: len(p.Requests), Errors: errs, EndReason: p.EndReason, StopReason: p.StopReason,
		Fidelity: fidelity.Assess(p.Client, p.Requests),
	}
	for _, win := range w.Windows {
		row.WindowS += win.Duration().Seconds()
	}
	switch {
	case len(w.TokensPerChunk) > 0:
		tpc := make([]float64, len(w.TokensPerChunk))
		for i, n := range w.TokensPerChunk {
			tpc[i] = float64(n)
		}
		s := metrics.Summarize(tpc)
		row.TokensPerChunk = &s
		row.TokensPerChunkMean = s.Mean
	case allUsage && chunks > 0:
		row.TokensPerChunkMean = float64(tokens) / float64(chunks)
		if row.TokensPerChunkMean > 1.005 {
			// Several tokens per chunk, split unknown: no per-token figure.
			row.TBTPerToken = metrics.Summary{}
		}
	}
	if row.TBT.Count > 0 && row.TBT.Mean > 0 {
		perChunk := row.TokensPerChunkMean
		if perChunk == 0 {
			perChunk = 1
		}
		row.DecodeTPS = float64(p.BatchSize) * perChunk / row.TBT.Mean
	}
	return Analysis{Row: row, Window: w}, nil
}

// SortRows orders rows by batch size, then input length.
func SortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.BatchSize, b.BatchSize), cmp.Compare(a.InputLength, b.InputLength))
	})
}

// CheckContext refuses a run with a combination whose requests cannot fit
// the model's context of contextLen tokens: the prompt plus the output
// length the combination asks for (OutputTokens), as the server counts
// them. Such a batch would only come back as HTTP 400s. contextLen 0
// means unknown, and nothing is checked. The error names the first
// combination that does not fit and how many do not.
func (c Config) CheckContext(contextLen int) error {
	if contextLen <= 0 {
		return nil
	}
	var over []Combination
	for _, comb := range Combinations(c) {
		if comb.InputLength+OutputTokens(c.SamplesPerLength, comb.BatchSize, comb.InputLength, c.EngineChunkSize) > contextLen {
			over = append(over, comb)
		}
	}
	if len(over) == 0 {
		return nil
	}
	f := over[0]
	out := OutputTokens(c.SamplesPerLength, f.BatchSize, f.InputLength, c.EngineChunkSize)
	more := ""
	if len(over) > 1 {
		more = fmt.Sprintf(" (%d of the %d combinations do not fit)", len(over), len(Combinations(c)))
	}
	return fmt.Errorf("--batch-sizes %d --input-lengths %d: each request needs a %d-token prompt plus %d output tokens = %d, beyond the model's %d-token context%s: use shorter --input-lengths, smaller --batch-sizes or fewer --samples-per-length",
		f.BatchSize, f.InputLength, f.InputLength, out, f.InputLength+out, contextLen, more)
}
