package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// PrefillCmd is veeksha.microbench.prefill's command line.
type PrefillCmd struct {
	Common           `embed:""`
	InputLengths     IntList          `name:"input-lengths" aliases:"input_lengths" placeholder:"N" help:"Prompt lengths in server tokens, space- or comma-separated (default: ${default_input_lengths})."`
	OutputTokens     int              `name:"output-tokens" aliases:"output_tokens" default:"${default_prefill_output_tokens}" help:"Tokens to generate per request."`
	SamplesPerLength int              `name:"samples-per-length" aliases:"samples_per_length" default:"${default_prefill_samples}" help:"Requests per prompt length."`
	WarmupRequests   int              `name:"warmup-requests" default:"${default_warmup_requests}" help:"Requests sent first and left out of the statistics (connection set-up, server warm-up)."`
	Version          kong.VersionFlag `help:"Print the version and exit."`
}

func (c *PrefillCmd) common() *Common { return &c.Common }

func (c *PrefillCmd) config() prefill.Config {
	lengths := []int(c.InputLengths)
	if len(lengths) == 0 {
		lengths = prefill.DefaultInputLengths()
	}
	return prefill.Config{InputLengths: lengths, OutputTokens: c.OutputTokens, SamplesPerLength: c.SamplesPerLength, WarmupRequests: c.WarmupRequests}
}

func (c *PrefillCmd) validate() error { return c.config().Validate() }

func (c *PrefillCmd) run(ctx context.Context, e *env, log *slog.Logger) error {
	cmp, err := c.resolveComparison(Prefill)
	if err != nil {
		return err
	}
	var other prefill.Results
	if cmp != nil {
		if err := cmp.load("prefill_results.json", &other); err != nil {
			return err
		}
	}
	if c.ValidateOnly {
		return c.validateOnly(e, cmp, other)
	}
	cfg := c.config()
	s, dir, err := beginRun(ctx, e, &c.Common, log, runStart{
		bench: Prefill, streams: 1, lengths: cfg.InputLengths, title: "Veeksha Microbenchmark — prefill",
		rows: [][2]string{
			{"Input lengths", fmt.Sprint(cfg.InputLengths)}, {"Output tokens", fmt.Sprint(cfg.OutputTokens)},
			{"Samples/length", fmt.Sprint(cfg.SamplesPerLength)}, {"Warm-up requests", fmt.Sprint(cfg.WarmupRequests)},
		},
	})
	if err != nil {
		return err
	}
	defer s.close()
	started := s.started

	ui := newProgress(e, &c.Common)
	scr := s.scrape(ctx)
	runCtx, cancel := context.WithTimeout(ctx, c.BenchmarkTimeout.D())
	out, runErr := prefill.Run(runCtx, cfg, prefill.Deps{
		Streamer: s.client, Prompts: s.sampler, Logger: log,
		Progress: ui.track("prefill", len(cfg.InputLengths)*cfg.SamplesPerLength, requestUnits),
	})
	cancel()
	ui.stop()
	if scr != nil {
		scr.Stop()
	}
	if ctx.Err() != nil {
		out.EndReason = result.EndInterrupted
	}

	res := prefill.Results{
		Meta:     newMeta(e, Prefill, "ttfc", started, s.settings),
		Config:   cfg,
		Results:  prefill.Analyze(out.Requests),
		Errors:   result.CountErrors(out.Requests),
		Fidelity: fidelity.Assess(out.Client, out.Requests),
		Server:   serverSummary(scr, out.Began, time.Now()),
	}
	res.EndReason = out.EndReason
	res.DurationS = time.Since(out.Began).Seconds()
	if !c.SkipValidation {
		rep := prefill.Check(cfg, out.Requests, res.Fidelity, c.bounds())
		if res.Server != nil {
			res.Server.Check(&rep, "", 0, !c.NoPromptSalt)
		}
		res.Validation = &rep
	}

	files := newRunFiles(dir, log)
	if err := files.requests("requests.jsonl", out.Requests); err != nil {
		return err
	}
	charts := prefill.Charts(res.Results)
	err = finishRun(ctx, e, dir, files, runOutput[prefill.Row]{
		title: "Prefill — " + s.settings.Model, facts: [][2]string{{"Model", s.settings.Model}, {"Server", serverLabel(s.settings)}},
		charts: append(charts, cmp.overlay(charts, prefill.Charts(other.Results))...), meta: &res.Meta,
		resultsFile: "prefill_results.json", results: res, csvFile: "prefill_results.csv", table: prefill.Table(res.Results),
		validation: res.Validation, cmp: cmp, this: prefill.CompareValues(res.Results), other: prefill.CompareValues(other.Results),
	})
	if err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if err := finishValidation(e, res.Validation); err != nil {
		return err
	}
	if out.EndReason == result.EndInterrupted {
		return exitError{code: ExitInterrupted}
	}
	return nil
}

// validateOnly re-runs the checks of an existing prefill run and creates nothing.
func (c *PrefillCmd) validateOnly(e *env, cmp *comparison, other prefill.Results) error {
	dir, err := report.Resolve(c.OutputDir, string(Prefill), c.RunDir)
	if err != nil {
		return usageError{err}
	}
	var res prefill.Results
	if err := readJSON(filepath.Join(dir, "prefill_results.json"), &res); err != nil {
		return usageError{err}
	}
	reqs, err := readRequests(filepath.Join(dir, "requests.jsonl"))
	if err != nil {
		return usageError{err}
	}
	rep := prefill.Check(res.Config, reqs, res.Fidelity, c.bounds())
	if res.Server != nil {
		res.Server.Check(&rep, "", 0, res.Settings.PromptSalt)
	}
	fmt.Fprintf(e.stdout, "Validating %s\n", dir)
	if cmp != nil {
		t, err := cmp.write(nil, prefill.CompareValues(res.Results), prefill.CompareValues(other.Results))
		if err != nil {
			return err
		}
		if err := printComparison(e, t); err != nil {
			return err
		}
	}
	return finishValidation(e, &rep)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func readRequests(path string) ([]result.Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	reqs, err := result.ReadJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(reqs) == 0 {
		return nil, errors.New(path + " holds no requests")
	}
	return reqs, nil
}
