package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
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
		EngineChunkSize: c.EngineChunkSize, TicketTimeout: result.Seconds(c.TicketTimeout.D()), WarmupRequests: c.WarmupRequests, SLO: c.slo(), Thresholds: c.Threshold,
	}
}

func (c *DecodeCmd) validate() error { return c.config().Validate() }

func (c *DecodeCmd) bench() Bench { return Decode }

func (c *DecodeCmd) start() (runStart, error) {
	cfg := c.config()
	return runStart{
		fits:      cfg.CheckContext,
		connsFrom: fmt.Sprintf("--batch-sizes %d", slices.Max(cfg.BatchSizes)),
		bench:     Decode, streams: slices.Max(cfg.BatchSizes), lengths: cfg.InputLengths, title: "Veeksha Microbenchmark — decode",
		rows: [][2]string{
			{"Batch sizes", fmt.Sprint(cfg.BatchSizes)}, {"Input lengths", fmt.Sprint(cfg.InputLengths)},
			{"Samples/length", fmt.Sprint(cfg.SamplesPerLength)}, {"Chunk size", fmt.Sprint(cfg.EngineChunkSize)},
		},
	}, nil
}

func (c *DecodeCmd) measure(ctx context.Context, d runner.Deps, files *runFiles) (view, error) {
	cfg := c.config()
	cfg.Timeout = c.BenchmarkTimeout.D()
	res, err := decode.Run(ctx, cfg, decode.Deps{Deps: d, OnCombination: func(p decode.CombinationRun, a decode.Analysis) error {
		return files.json(filepath.Join(p.Label(), decode.WindowFile), a.Window)
	}})
	if res.Type == "" {
		return view{}, err
	}
	return decodeView(&res), err
}

func (c *DecodeCmd) recheck(dir string, bounds fidelity.Bounds) (view, validate.Report, error) {
	res, rep, err := decode.Recheck(dir, bounds)
	return decodeView(&res), rep, err
}

func (c *DecodeCmd) load(dir string) (view, error) {
	var res decode.Results
	err := report.ReadJSON(filepath.Join(dir, decode.ResultsFile), &res)
	return decodeView(&res), err
}

func decodeView(res *decode.Results) view {
	var points []report.Point
	for _, r := range res.Results {
		points = append(points, report.Point{Label: fmt.Sprintf("bs=%d,il=%d", r.BatchSize, r.InputLength), Fidelity: r.Fidelity, Server: r.Server})
	}
	return view{
		points: points,
		meta:   &res.Meta, results: res, resultsFile: decode.ResultsFile, csvFile: "decode_results.csv",
		table: newTableView(decode.Table(res.Results)), charts: decode.Charts(res.Results, res.Config.InputLengths),
		values: decode.CompareValues(res.Results), validation: res.Validation,
		workload: decodeWorkload(res.Config, res.Settings.Endpoint),
		gate: func(exprs []string) ([]validate.Check, error) {
			cfg := res.Config
			cfg.Thresholds = exprs
			return decode.Gate(cfg, res.Results)
		},
	}
}

// decodeWorkload is what a decode run measures, besides its points (matched by
// label): compared runs must agree on it.
func decodeWorkload(cfg decode.Config, endpoint string) workload {
	return workload{{"samples_per_length", fmt.Sprint(cfg.SamplesPerLength)}, {"engine_chunk_size", fmt.Sprint(cfg.EngineChunkSize)}, {"endpoint", endpoint}}
}

func (c *DecodeCmd) workload() workload { return decodeWorkload(c.config(), c.Endpoint) }
