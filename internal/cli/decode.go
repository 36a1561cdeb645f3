package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// DecodeCmd is veeksha.microbench.decode's command line.
type DecodeCmd struct {
	Common           `embed:""`
	BatchSizes       IntList          `name:"batch-sizes" aliases:"batch_sizes" placeholder:"B" help:"Batch sizes, space- or comma-separated (default: ${default_batch_sizes})."`
	InputLengths     IntList          `name:"input-lengths" aliases:"input_lengths" placeholder:"N" help:"Prompt lengths in server tokens (default: ${default_input_lengths})."`
	SamplesPerLength int              `name:"samples-per-length" aliases:"samples_per_length" default:"${default_decode_samples}" help:"Decode steps each request should make while the whole batch decodes; sizes the output length."`
	EngineChunkSize  int              `name:"engine-chunk-size" aliases:"engine_chunk_size" default:"${default_engine_chunk_size}" help:"The server's chunked-prefill token budget per iteration (vLLM --max-num-batched-tokens); sizes the output length."`
	WarmupRequests   int              `name:"warmup-requests" default:"${default_warmup_requests}" help:"Requests sent before the first batch and left out of the statistics."`
	TicketTimeout    Seconds          `name:"ticket-timeout" default:"${default_ticket_timeout}" help:"Release the next request of a batch if the previous one has not been accepted within this time."`
	Version          kong.VersionFlag `help:"Print the version and exit."`
}

func (c *DecodeCmd) common() *Common { return &c.Common }

func (c *DecodeCmd) config() decode.Config {
	batches, lengths := []int(c.BatchSizes), []int(c.InputLengths)
	if len(batches) == 0 {
		batches = decode.DefaultBatchSizes()
	}
	if len(lengths) == 0 {
		lengths = decode.DefaultInputLengths()
	}
	return decode.Config{
		BatchSizes: batches, InputLengths: lengths, SamplesPerLength: c.SamplesPerLength,
		EngineChunkSize: c.EngineChunkSize, TicketTimeout: c.TicketTimeout.D(),
		TicketTimeoutS: c.TicketTimeout.D().Seconds(), WarmupRequests: c.WarmupRequests,
	}
}

func (c *DecodeCmd) validate() error { return c.config().Validate() }

func (c *DecodeCmd) run(ctx context.Context, e *env, log *slog.Logger) error {
	cmp, err := c.resolveComparison(Decode)
	if err != nil {
		return err
	}
	var other decode.Results
	if cmp != nil {
		if err := cmp.load("decode_results.json", &other); err != nil {
			return err
		}
	}
	if c.ValidateOnly {
		return c.validateOnly(e, cmp, other)
	}
	cfg := c.config()
	s, dir, err := beginRun(ctx, e, &c.Common, log, runStart{
		bench: Decode, streams: slices.Max(cfg.BatchSizes), lengths: cfg.InputLengths, title: "Veeksha Microbenchmark — decode",
		rows: [][2]string{
			{"Batch sizes", fmt.Sprint(cfg.BatchSizes)}, {"Input lengths", fmt.Sprint(cfg.InputLengths)},
			{"Samples/length", fmt.Sprint(cfg.SamplesPerLength)}, {"Chunk size", fmt.Sprint(cfg.EngineChunkSize)},
		},
	})
	if err != nil {
		return err
	}
	defer s.close()
	started := s.started

	files := newRunFiles(dir, log)
	ui := newProgress(e, &c.Common)
	scr := s.scrape(ctx)
	if scr != nil {
		defer scr.Stop()
	}
	deps := decode.Deps{Streamer: s.client, Prompts: s.sampler, Logger: log}
	began := time.Now()
	warm, err := decode.Warmup(ctx, cfg, deps)
	if err != nil {
		ui.stop()
		return err
	}
	if len(warm) > 0 {
		if err := files.requests("warmup.jsonl", warm); err != nil {
			ui.stop()
			return err
		}
	}

	var rep validate.Report
	res := decode.Results{Meta: newMeta(e, Decode, "tbt", started, s.settings), Config: cfg}
	res.EndReason = result.EndCompleted
	var all []result.Request
	for _, comb := range decode.Combinations(cfg) {
		if ctx.Err() != nil {
			break
		}
		track := ui.track(comb.Label(), comb.BatchSize, requestUnits)
		deps.Progress = func(_ decode.Combination, done, failed, total int) {
			if track != nil {
				track(done, failed, total)
			}
		}
		runCtx, cancel := context.WithTimeout(ctx, c.BenchmarkTimeout.D())
		pt, err := decode.RunCombination(runCtx, cfg, comb, deps)
		cancel()
		if err != nil {
			ui.stop()
			return err
		}
		if ctx.Err() != nil {
			pt.EndReason = result.EndInterrupted
		}
		a, err := decode.Analyze(pt)
		if err != nil {
			ui.stop()
			return err
		}
		a.Row.Server = serverSummary(scr, pt.Began, time.Now())
		if err := files.requests(filepath.Join(comb.Label(), "requests.jsonl"), pt.Requests); err != nil {
			ui.stop()
			return err
		}
		if err := files.json(filepath.Join(comb.Label(), "decode_window.json"), a.Window); err != nil {
			ui.stop()
			return err
		}
		decode.Check(&rep, cfg, pt, a, c.bounds())
		if a.Row.Server != nil {
			a.Row.Server.Check(&rep, comb.CheckLabel(), comb.BatchSize, !c.NoPromptSalt)
		}
		res.Results = append(res.Results, a.Row)
		all = append(all, pt.Requests...)
		if pt.EndReason != result.EndCompleted {
			res.EndReason = pt.EndReason
		}
		log.Info("point done", "point", comb.Label(), "tbt_p50_ms", 1000*a.Row.TBT.Median, "peak", a.Row.PeakConcurrency)
	}
	ui.stop()
	if ctx.Err() != nil {
		res.EndReason = result.EndInterrupted
	}
	decode.SortRows(res.Results)
	res.Errors = result.CountErrors(all)
	res.DurationS = time.Since(began).Seconds()
	if !c.SkipValidation {
		res.Validation = &rep
	}
	charts := decode.Charts(res.Results, cfg.InputLengths)
	err = finishRun(ctx, e, dir, files, runOutput[decode.Row]{
		title: "Decode — " + s.settings.Model, facts: [][2]string{{"Model", s.settings.Model}, {"Server", serverLabel(s.settings)}},
		charts: append(charts, cmp.overlay(charts, decode.Charts(other.Results, other.Config.InputLengths))...), meta: &res.Meta,
		resultsFile: "decode_results.json", results: res, csvFile: "decode_results.csv", table: decode.Table(res.Results),
		validation: res.Validation, cmp: cmp, this: decode.CompareValues(res.Results), other: decode.CompareValues(other.Results),
	})
	if err != nil {
		return err
	}
	if err := finishValidation(e, res.Validation); err != nil {
		return err
	}
	if res.EndReason == result.EndInterrupted {
		return exitError{code: ExitInterrupted}
	}
	return nil
}

// validateOnly re-runs the checks of an existing decode run and creates nothing.
func (c *DecodeCmd) validateOnly(e *env, cmp *comparison, other decode.Results) error {
	dir, err := report.Resolve(c.OutputDir, string(Decode), c.RunDir)
	if err != nil {
		return usageError{err}
	}
	var res decode.Results
	if err := readJSON(filepath.Join(dir, "decode_results.json"), &res); err != nil {
		return usageError{err}
	}
	cfg := res.Config
	var rep validate.Report
	for _, comb := range decode.Combinations(cfg) {
		reqs, err := readRequests(filepath.Join(dir, comb.Label(), "requests.jsonl"))
		if err != nil {
			rep.Add("metrics_found", comb.Label(), validate.Fail, "%v", err)
			continue
		}
		pt := decode.Point{Combination: comb, Requests: reqs}
		var saved decode.Row
		for _, row := range res.Results {
			if row.BatchSize == comb.BatchSize && row.InputLength == comb.InputLength {
				saved = row
			}
		}
		pt.Client = saved.Fidelity.Sample
		a, err := decode.Analyze(pt)
		if err != nil {
			return err
		}
		decode.Check(&rep, cfg, pt, a, c.bounds())
		if saved.Server != nil {
			saved.Server.Check(&rep, comb.CheckLabel(), comb.BatchSize, res.Settings.PromptSalt)
		}
	}
	fmt.Fprintf(e.stdout, "Validating %s\n", dir)
	if cmp != nil {
		t, err := cmp.write(nil, decode.CompareValues(res.Results), decode.CompareValues(other.Results))
		if err != nil {
			return err
		}
		if err := printComparison(e, t); err != nil {
			return err
		}
	}
	return finishValidation(e, &rep)
}
