package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/slo"
)

// Defaults shared by the three binaries.
const (
	DefaultAPIBase          = "http://localhost:8000/v1"
	DefaultOutputDir        = "microbench_output"
	DefaultSeed             = 42
	DefaultRequestTimeout   = 120 * time.Second
	DefaultBenchmarkTimeout = 600 * time.Second
)

// Common holds the flags every binary has.
type Common struct {
	APIBase string `name:"api-base" aliases:"api_base" default:"${default_api_base}" help:"Base URL of the OpenAI-compatible server, usually ending in /v1. 'sim' or 'sim:<profile|file.json>' starts the built-in simulated engine (profiles: ${sim_profiles})."`
	Model   string `help:"Model name. Default: the first model the server lists at GET /v1/models."`
	APIKey  string `name:"api-key" aliases:"api_key" env:"VEEKSHA_API_KEY,OPENAI_API_KEY" help:"API key, sent as a bearer token (also read from VEEKSHA_API_KEY or OPENAI_API_KEY)."`
	// Endpoint chooses chat completions (chat template applied by the server) or raw completions.
	Endpoint         string         `enum:"chat,completions" default:"chat" help:"API to call: chat (/chat/completions, the server applies its chat template) or completions (/completions, raw prompt). One of: ${enum}."`
	OutputDir        string         `name:"output-dir" aliases:"output_dir" type:"path" predictor:"dir" default:"${default_output_dir}" help:"Base folder for results: <output-dir>/<benchmark>/<UTC timestamp>/."`
	Seed             uint64         `default:"${default_seed}" help:"Seed for prompt content and arrival times."`
	RequestTimeout   Seconds        `name:"request-timeout" aliases:"request_timeout" default:"${default_request_timeout}" help:"Inactivity timeout of one request, in seconds or as a duration (2m): a request that receives nothing for this long (no response headers, no byte of its stream) fails as a timeout. A long stream that keeps sending is never cut by it (see --request-deadline)."`
	RequestDeadline  Seconds        `name:"request-deadline" default:"0" help:"Optional total deadline of one request, from its send to the end of its stream, in seconds or as a duration; past it the request fails with class deadline. Default 0: none."`
	BenchmarkTimeout Seconds        `name:"benchmark-timeout" aliases:"benchmark_timeout" default:"${default_benchmark_timeout}" help:"Deadline for a prefill run or one decode (batch, length) run; in-flight requests are cancelled and recorded when it passes."`
	NoPromptSalt     bool           `name:"no-prompt-salt" help:"Do not start every prompt with a unique salt. Prompts of one length are then identical, so a server's prefix cache can serve them: use only to measure the cache on purpose."`
	NoExtraFields    bool           `name:"no-extra-fields" help:"Send only standard OpenAI fields: no ignore_eos, min_tokens or stream_options.continuous_usage_stats (for servers that reject them). Output lengths may then be shorter than asked; the output_tokens check reports it."`
	ValidateOnly     bool           `name:"validate-only" aliases:"validate_only" help:"Validate an existing run (the RUN_DIR argument, default: latest) and create nothing."`
	SkipValidation   bool           `name:"skip-validation" aliases:"skip_validation" help:"Skip the post-run validity checks."`
	Quiet            bool           `short:"q" help:"Print only the results tables and errors; no banner or progress."`
	NoProgress       bool           `name:"no-progress" help:"No progress display (it is shown only when stderr is a terminal anyway)."`
	LogLevel         string         `name:"log-level" enum:"debug,info,warn,error" default:"warn" help:"Log level on stderr: ${enum}."`
	CompareTo        string         `name:"compare-to" help:"Set this run against an earlier run of the same benchmark (a run folder, or latest): print the change of every headline number, write comparison.json/.csv and overlay plots. With --validate-only, compare the validated run and write nothing."`
	CompareAnyway    bool           `name:"compare-anyway" help:"With --compare-to: compare a run that measured a different workload (lengths, traffic mode, endpoint), under a banner naming every difference, instead of refusing it."`
	SelfCheck        bool           `name:"self-check" help:"Before the run, drive the planned concurrency against a built-in zero-cost engine for a few seconds, print the client's own timing error, and refuse a plan this machine cannot drive faithfully."`
	MaxClientLag     Seconds        `name:"max-client-lag" default:"${default_max_client_lag}" help:"Fail a point whose client fell behind by more than this (send lag or Go scheduler latency, 99th percentile): the client, not the server, limited it. Above 5 ms the point is flagged."`
	Completion       CompletionFlag `name:"completion" placeholder:"SHELL" predictor:"shell" help:"Print a shell completion script (bash, zsh or fish) and exit."`
	PlotRenderer     string         `name:"plot-renderer" enum:"auto,chromium,builtin" default:"auto" help:"How PNG charts are drawn: chromium (a snapshot of the HTML chart in a headless Chromium or Chrome), builtin (pure Go, no browser), or auto (chromium when one is found and works, else builtin). One of: ${enum}."`
	LogFormat        string         `name:"log-format" enum:"text,json" default:"text" help:"Log format on stderr: ${enum}."`
	SLO              []string       `name:"slo" sep:"none" placeholder:"ttfc=500ms,tpot=50ms,e2e=20s" help:"Service-level objective: latency targets (ttfc, tpot, e2e; any subset, comma-separated or repeated) a request must meet to count as good. Each point then reports its goodput: the share of its requests that succeeded and met every target, good requests/s and their output tok/s."`
	Threshold        []string       `name:"threshold" sep:"none" placeholder:"EXPR" help:"A gate checked at every point, repeatable: METRIC OP VALUE, OP one of < <= > >=, VALUE with its unit (ms or s for latencies; tok/s, req/s and % optional), e.g. 'ttfc_p99<500ms'. A crossed threshold exits 4 (the measurement is valid, the server too slow). Metrics: ${threshold_metrics}. With --validate-only, these replace the saved run's thresholds."`
	RunDir           string         `arg:"" optional:"" name:"run-dir" help:"With --validate-only: the run folder to validate (default: the latest run)."`
}

// slo is the --slo objective; validateCommon has reported any error.
func (c *Common) slo() slo.SLO {
	s, _ := slo.Parse(c.SLO...)
	return s
}

// bounds are the client-fidelity bounds of the checks.
func (c *Common) bounds() fidelity.Bounds {
	b := fidelity.DefaultBounds()
	b.Fail = c.MaxClientLag.D()
	return b
}

// validateCommon checks the common flags; it reports every problem.
func (c *Common) validateCommon() error {
	var errs []error
	if !strings.HasPrefix(c.APIBase, "sim") {
		u, err := url.Parse(c.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--api-base %q: want an http(s) URL such as http://localhost:8000/v1, or sim", c.APIBase))
		}
	} else if c.APIBase != "sim" && !strings.HasPrefix(c.APIBase, "sim:") {
		errs = append(errs, fmt.Errorf("--api-base %q: the simulated engine is spelled sim or sim:<profile>", c.APIBase))
	}
	if c.RequestTimeout.D() <= 0 {
		errs = append(errs, fmt.Errorf("--request-timeout %v: must be positive", c.RequestTimeout.D()))
	}
	if c.RequestDeadline.D() < 0 {
		errs = append(errs, fmt.Errorf("--request-deadline %v: must not be negative (0 for none)", c.RequestDeadline.D()))
	}
	if c.BenchmarkTimeout.D() <= 0 {
		errs = append(errs, fmt.Errorf("--benchmark-timeout %v: must be positive", c.BenchmarkTimeout.D()))
	}
	if c.MaxClientLag.D() < 0 {
		errs = append(errs, fmt.Errorf("--max-client-lag %v: must not be negative", c.MaxClientLag.D()))
	}
	if c.RunDir != "" && !c.ValidateOnly {
		errs = append(errs, fmt.Errorf("unexpected argument %q (a run folder is only taken with --validate-only)", c.RunDir))
	}
	if _, err := slo.Parse(c.SLO...); err != nil {
		errs = append(errs, err)
	}
	if c.ValidateOnly && c.SkipValidation {
		errs = append(errs, errors.New("--validate-only and --skip-validation contradict each other"))
	}
	return errors.Join(errs...)
}
