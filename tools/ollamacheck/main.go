// Command ollamacheck cross-checks the benchmark's client-side timings
// against the timings a running Ollama server reports on its own clock.
//
// For each prompt length it sends, one request at a time, pairs of
// requests of exactly that many tokens: one through the OpenAI-compatible
// endpoint with pkg/client (as the benchmarks send them), one through
// Ollama's native /api/chat, whose final message carries the server's
// load_duration, prompt_eval_duration, eval_duration and eval_count. Every
// prompt has its own salt (pkg/sampler), so no request can reuse another's
// KV cache; the order within a pair alternates to spread drift evenly.
// It prints, per length, the medians of our TTFC and TPOT next to the
// server's figures and the differences, then where the gaps go.
//
//	go run ./tools/ollamacheck -api-base http://127.0.0.1:11434/v1
//
// Exit status: 0 when every request succeeded and every check held, 1
// otherwise, 2 for bad flags. The checks: both paths saw exactly the
// requested prompt length (the server's usage.prompt_tokens and
// prompt_eval_count), and on each native request the client's TTFC is at
// least load_duration + prompt_eval_duration, since those server spans lie
// inside the client's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/sampler"
)

// options are the command-line settings.
type options struct {
	apiBase      string
	model        string
	lengths      []int
	reps         int
	outputTokens int
	timeout      time.Duration
	seed         uint64
	verbose      bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, measures and prints; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "ollamacheck:", err)
		return 2
	}
	pairs, err := measure(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "ollamacheck:", err)
		return 1
	}
	if o.verbose {
		printPairs(stdout, pairs)
	}
	printReport(stdout, o, summarize(o.lengths, pairs))
	if problems := check(pairs); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "ollamacheck: FAIL:", p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "checks: PASS (%d pairs: exact prompt lengths on both paths; client TTFC >= load + prompt_eval on every native request)\n", len(pairs))
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("ollamacheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lengths := fs.String("lengths", "64,256,1024", "prompt lengths in server tokens, comma-separated")
	fs.StringVar(&o.apiBase, "api-base", "http://127.0.0.1:11434/v1", "Ollama's OpenAI base URL; the native API is at its root")
	fs.StringVar(&o.model, "model", "", "model name (default: the first of GET /v1/models)")
	fs.IntVar(&o.reps, "reps", 3, "request pairs per length")
	fs.IntVar(&o.outputTokens, "output-tokens", 32, "tokens to generate per request (max_tokens, num_predict)")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "deadline of one request")
	fs.Uint64Var(&o.seed, "seed", 42, "seed of the prompt text")
	fs.BoolVar(&o.verbose, "v", false, "also print every pair")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	for f := range strings.SplitSeq(*lengths, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("-lengths: %q is not a positive integer", f))
			continue
		}
		o.lengths = append(o.lengths, n)
	}
	if o.reps < 1 {
		errs = append(errs, fmt.Errorf("-reps %d: want at least 1", o.reps))
	}
	if o.outputTokens < 2 {
		errs = append(errs, fmt.Errorf("-output-tokens %d: want at least 2 (a time per token needs two tokens)", o.outputTokens))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want a positive duration", o.timeout))
	}
	return o, errors.Join(errs...)
}

// pair is one length's OpenAI-path request and its native counterpart.
type pair struct {
	length int
	ours   result.Request
	native nativeResult
}

// measure calibrates prompt lengths, warms both paths up and sends the
// pairs, one request at a time.
func measure(ctx context.Context, o options, log io.Writer) ([]pair, error) {
	root, err := nativeRoot(o.apiBase)
	if err != nil {
		return nil, err
	}
	cfg := client.Config{
		BaseURL:        o.apiBase,
		Model:          o.model,
		RequestTimeout: o.timeout,
		MaxConcurrency: 1,
		NonStandard:    true, // as the benchmarks send by default; Ollama ignores the fields
		RunID:          "ollamacheck",
	}
	if cfg.Model == "" {
		if cfg.Model, err = firstModel(ctx, cfg); err != nil {
			return nil, err
		}
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for -api-base %s: %w", o.apiBase, err)
	}
	defer cl.Close()
	nc := &nativeClient{root: root, model: cfg.Model, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
	defer nc.hc.CloseIdleConnections()

	// A fresh nonce per run: prompts never repeat one sent by an earlier
	// run against the same server, whose prefix cache may still hold it.
	smp := sampler.New(sampler.Config{Seed: o.seed, Nonce: uint64(time.Now().UnixNano())}, cl.PromptTokens)
	if err := smp.Calibrate(ctx, o.lengths); err != nil {
		return nil, fmt.Errorf("calibrate prompt lengths: %w", err)
	}
	fmt.Fprintf(log, "ollamacheck: model %s at %s, chat template adds %d tokens, %d pairs per length, %d output tokens\n",
		cfg.Model, o.apiBase, smp.Overhead(), o.reps, o.outputTokens)

	began := time.Now()
	// Every request gets its own salt (point, seq): the same text twice
	// would find the first request's prefix in the runner's KV cache.
	ours := func(length, seq int) (result.Request, error) {
		prompt, err := smp.Prompt(length, 0, seq)
		if err != nil {
			return result.Request{}, err
		}
		r := cl.Stream(ctx, began, client.Call{Seq: seq, Prompt: prompt, TargetPromptTokens: length, MaxTokens: o.outputTokens})
		if !r.OK() {
			return r, fmt.Errorf("OpenAI-path request %d (%d tokens) failed: %s: %s", seq, length, r.ErrClass, r.Err)
		}
		return r, nil
	}
	native := func(length, seq int) (nativeResult, error) {
		prompt, err := smp.Prompt(length, 1, seq)
		if err != nil {
			return nativeResult{}, err
		}
		rctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		r, err := nc.chat(rctx, began, prompt, o.outputTokens)
		if err != nil {
			return r, fmt.Errorf("native request %d (%d tokens): %w", seq, length, err)
		}
		return r, nil
	}

	// Warm-up, one request on each path: the first request after a
	// (re)load is seconds slower.
	if _, err := ours(o.lengths[0], 0); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := native(o.lengths[0], 0); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var pairs []pair
	seq := 1
	for _, length := range o.lengths {
		for rep := range o.reps {
			p := pair{length: length}
			if rep%2 == 0 {
				if p.ours, err = ours(length, seq); err == nil {
					p.native, err = native(length, seq)
				}
			} else {
				if p.native, err = native(length, seq); err == nil {
					p.ours, err = ours(length, seq)
				}
			}
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, p)
			seq++
		}
	}
	return pairs, nil
}

// firstModel asks the server for its models and returns the first.
func firstModel(ctx context.Context, cfg client.Config) (string, error) {
	cl, err := client.New(cfg)
	if err != nil {
		return "", fmt.Errorf("client for -api-base %s: %w", cfg.BaseURL, err)
	}
	defer cl.Close()
	models, err := cl.Models(ctx)
	if err != nil {
		return "", fmt.Errorf("discover the model: %w", err)
	}
	if len(models) == 0 {
		return "", fmt.Errorf("discover the model: %s/models lists none", cfg.BaseURL)
	}
	return models[0], nil
}
