// Command simengine runs the simulated inference engine (pkg/simengine) as
// its own process, for trying the benchmarks or measuring a client's overhead
// from another process. It prints the base URL and serves until SIGINT.
//
//	go run ./tools/simengine --profile llama3-8b-h100 --addr 127.0.0.1:8000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/veeksha-go/veeksha/pkg/simengine"
)

func main() {
	var o simengine.Options
	profile := flag.String("profile", simengine.DefaultProfileName(), "embedded profile name or profile JSON file")
	logFile := flag.String("iteration-log", "", "write one JSON line per iteration to this file")
	verbose := flag.Bool("v", false, "debug logs on stderr")
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:8000", "listen address")
	flag.StringVar(&o.Model, "model", "", "served model id (default: the profile name)")
	flag.IntVar(&o.ChunkSize, "chunk-size", 0, "iteration token budget (default: the profile's)")
	flag.IntVar(&o.MaxRunning, "max-running", 0, "max admitted requests (default: the profile's)")
	flag.IntVar(&o.KVCacheTokens, "kv-cache-tokens", 0, "KV-cache capacity in tokens (default: the profile's)")
	flag.IntVar(&o.MaxModelLen, "max-model-len", 0, "context length in tokens (default: the profile's)")
	flag.BoolVar(&o.NoPrefixCache, "no-prefix-cache", false, "turn the prefix cache off (on by default, as vLLM's)")
	flag.IntVar(&o.BlockSize, "block-size", 0, "prefix-cache block size in tokens (default 16)")
	flag.IntVar(&o.PrefixCacheBlocks, "prefix-cache-blocks", 0, "prefix-cache capacity in blocks (default: the KV cache's tokens / block size)")
	flag.Uint64Var(&o.Seed, "seed", 42, "seed of jitter, early stops and faults")
	flag.Float64Var(&o.Jitter, "jitter", 0, "relative jitter of iteration durations, in [0, 1)")
	flag.IntVar(&o.TokensPerChunk, "tokens-per-chunk", 0, "tokens per SSE event (default 1)")
	flag.BoolVar(&o.RoleEvent, "role-event", false, "send a role-only first event, as vLLM does")
	flag.DurationVar(&o.KeepAlive, "keep-alive", 0, "interval of ': keep-alive' SSE comments (0 = off)")
	flag.BoolVar(&o.SentTimestamps, "sent-timestamps", false, "add sim_sent_unix_ns to every event")
	flag.Float64Var(&o.FailFraction, "fail-fraction", 0, "fraction of requests answered with --fail-status")
	flag.IntVar(&o.FailStatus, "fail-status", 500, "HTTP status of failed requests")
	flag.Float64Var(&o.StallFraction, "stall-fraction", 0, "fraction of streams that stall")
	flag.IntVar(&o.StallAfterTokens, "stall-after", 1, "tokens sent before a stall")
	flag.DurationVar(&o.StallDuration, "stall-duration", 0, "how long a stall lasts")
	flag.Float64Var(&o.MalformedFraction, "malformed-fraction", 0, "fraction of events preceded by an invalid-JSON event")
	flag.BoolVar(&o.ZeroCost, "zero-cost", false, "no engine: first token after --ttft, then one every --gap")
	flag.DurationVar(&o.FixedTTFT, "ttft", 0, "time to first token in zero-cost mode")
	flag.DurationVar(&o.FixedGap, "gap", 0, "time between tokens in zero-cost mode")
	flag.Parse()

	p, err := simengine.ResolveProfile(*profile)
	if err != nil {
		fail(err)
	}
	o.Profile = p
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		o.IterationLog = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := simengine.Start(o)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s (profile %s, model %s)\n", s.BaseURL(), p.Name, s.Model())
	<-ctx.Done()
	if err := s.Close(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simengine:", err)
	os.Exit(1)
}
