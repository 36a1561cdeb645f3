package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/validate"
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
	return prefill.Config{InputLengths: lengths, OutputTokens: c.OutputTokens, SamplesPerLength: c.SamplesPerLength, WarmupRequests: c.WarmupRequests, SLO: c.slo(), Thresholds: c.Threshold}
}

func (c *PrefillCmd) validate() error { return c.config().Validate() }

func (c *PrefillCmd) bench() Bench { return Prefill }

func (c *PrefillCmd) start() (runStart, error) {
	cfg := c.config()
	return runStart{
		fits:      cfg.CheckContext,
		connsFrom: "prefill",
		bench:     Prefill, streams: 1, lengths: cfg.InputLengths, title: "Veeksha Microbenchmark — prefill",
		rows: [][2]string{
			{"Input lengths", fmt.Sprint(cfg.InputLengths)}, {"Output tokens", fmt.Sprint(cfg.OutputTokens)},
			{"Samples/length", fmt.Sprint(cfg.SamplesPerLength)}, {"Warm-up requests", fmt.Sprint(cfg.WarmupRequests)},
		},
	}, nil
}

func (c *PrefillCmd) measure(ctx context.Context, d runner.Deps, _ *runFiles) (view, error) {
	cfg := c.config()
	cfg.Timeout = c.BenchmarkTimeout.D()
	res, err := prefill.Run(ctx, cfg, d)
	if res.Type == "" {
		return view{}, err
	}
	return prefillView(&res), err
}

func (c *PrefillCmd) recheck(dir string, bounds fidelity.Bounds) (view, validate.Report, error) {
	res, rep, err := prefill.Recheck(dir, bounds)
	return prefillView(&res), rep, err
}

func (c *PrefillCmd) load(dir string) (view, error) {
	var res prefill.Results
	err := report.ReadJSON(filepath.Join(dir, prefill.ResultsFile), &res)
	return prefillView(&res), err
}

func prefillView(res *prefill.Results) view {
	return view{
		meta: &res.Meta, results: res, resultsFile: prefill.ResultsFile, csvFile: "prefill_results.csv",
		table: newTableView(prefill.Table(res.Results)), charts: prefill.Charts(res.Results),
		points: []report.Point{{Label: "run", Fidelity: res.Fidelity, Server: res.Server}},
		values: prefill.CompareValues(res.Results), validation: res.Validation,
		workload: prefillWorkload(res.Config, res.Settings.Endpoint),
		gate: func(exprs []string) ([]validate.Check, error) {
			cfg := res.Config
			cfg.Thresholds = exprs
			return prefill.Gate(cfg, res.Results)
		},
	}
}

// prefillWorkload is what a prefill run measures, besides its points (matched by
// label): compared runs must agree on it.
func prefillWorkload(cfg prefill.Config, endpoint string) workload {
	return workload{{"output_tokens", fmt.Sprint(cfg.OutputTokens)}, {"endpoint", endpoint}}
}

func (c *PrefillCmd) workload() workload { return prefillWorkload(c.config(), c.Endpoint) }
