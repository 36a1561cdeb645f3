// Package selfcheck measures the client's own timing error on this
// machine before a run: it drives a planned number of concurrent streams,
// through the same load engine as the benchmarks, against an in-process
// zero-cost simulated engine whose timing is fixed (first token after TTFT,
// then one token every Gap, whatever the load). Any excess the client
// measures is its own error. The engine shares the process, so the error
// found is an upper bound of the client's.
package selfcheck

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// The zero-cost engine's fixed timing and the check's load.
const (
	TTFT     = 20 * time.Millisecond
	Gap      = 20 * time.Millisecond
	Tokens   = 32
	Duration = 3 * time.Second
)

// Result is the client's error envelope at one concurrency.
type Result struct {
	Streams  int
	Requests int
	Failed   int
	// TTFCError is the measured TTFC minus the engine's fixed TTFT, and
	// GapError |measured gap - Gap|, in seconds.
	TTFCError metrics.Summary
	GapError  metrics.Summary
	Client    fidelity.Assessment
}

// Worst is the larger of the TTFC and gap errors' 99th percentiles.
func (r Result) Worst() time.Duration {
	return time.Duration(max(r.TTFCError.P99, r.GapError.P99) * float64(time.Second))
}

// Run drives streams concurrent streams (a closed loop) for Duration
// against a zero-cost engine and measures the client's timing error. It
// returns ctx's error when ctx ends first.
func Run(ctx context.Context, streams int, log *slog.Logger) (Result, error) {
	srv, err := simengine.Start(simengine.Options{ZeroCost: true, FixedTTFT: TTFT, FixedGap: Gap, Logger: log})
	if err != nil {
		return Result{}, fmt.Errorf("self-check: start the zero-cost engine: %w", err)
	}
	defer srv.Close()
	cl, err := client.New(client.Config{BaseURL: srv.BaseURL(), Model: srv.Model(), Endpoint: client.Completions,
		RequestTimeout: 30 * time.Second, MaxConcurrency: streams, RunID: "self-check", Logger: log})
	if err != nil {
		return Result{}, fmt.Errorf("self-check: %w", err)
	}
	defer cl.Close()
	b, err := runner.Run(ctx, runner.Plan{
		Point: "self-check", Schedule: traffic.ClosedLoop(streams, Duration), Duration: Duration, Cutoff: Duration + 10*time.Second,
		Call: func(slot traffic.Slot) (client.Call, error) {
			return client.Call{Seq: slot.Index, Prompt: " self check", MaxTokens: Tokens}, nil
		},
	}, runner.Deps{Sender: cl, Logger: log})
	if err != nil {
		return Result{}, fmt.Errorf("self-check: %w", err)
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("self-check: %w", context.Cause(ctx))
	}
	res := Result{Streams: streams, Requests: len(b.Requests), Client: fidelity.Assess(b.Client, b.Requests)}
	var ttfcErr, gapErr []float64
	for i := range b.Requests {
		r := &b.Requests[i]
		if !r.OK() {
			res.Failed++
			continue
		}
		if ttfc, ok := r.TTFC(); ok {
			ttfcErr = append(ttfcErr, (ttfc - TTFT).Seconds())
		}
		for _, g := range r.ChunkGaps() {
			d := g - Gap
			gapErr = append(gapErr, max(d, -d).Seconds())
		}
	}
	res.TTFCError, res.GapError = metrics.Summarize(ttfcErr), metrics.Summarize(gapErr)
	return res, nil
}
