package cli

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// Self-check settings: the zero-cost engine answers every request after
// selfCheckTTFT and then every selfCheckGap, whatever the load, so any
// excess the client measures is the client's own error.
const (
	selfCheckTTFT     = 20 * time.Millisecond
	selfCheckGap      = 20 * time.Millisecond
	selfCheckTokens   = 32
	selfCheckDuration = 3 * time.Second
)

// selfCheckResult is the client's error envelope at one concurrency.
type selfCheckResult struct {
	Streams   int
	Requests  int
	Failed    int
	TTFCError metrics.Summary // measured TTFC minus the engine's fixed TTFT, seconds
	GapError  metrics.Summary // |measured gap - fixed gap|, seconds
	Client    fidelity.Report
}

// selfCheck drives the planned number of concurrent streams against an
// in-process zero-cost simulated engine for a few seconds and measures how
// far the client's timestamps stray from the engine's fixed timing. It
// refuses (a usage error) a plan the client cannot drive faithfully: the
// engine shares the process, so the envelope is an upper bound.
func selfCheck(ctx context.Context, e *env, c *Common, log *slog.Logger, streams int) error {
	res, err := runSelfCheck(ctx, streams, log)
	if err != nil {
		return err
	}
	if !c.Quiet {
		rows := [][2]string{
			{"Streams", fmt.Sprintf("%d concurrent, %d requests in %v (zero-cost engine: TTFT %v, a token every %v)", res.Streams, res.Requests, selfCheckDuration, selfCheckTTFT, selfCheckGap)},
			{"TTFC error", fmt.Sprintf("P50 %.2f ms, P99 %.2f ms, max %.2f ms", 1000*res.TTFCError.Median, 1000*res.TTFCError.P99, 1000*res.TTFCError.Max)},
			{"TBT error", fmt.Sprintf("P50 %.2f ms, P99 %.2f ms, max %.2f ms", 1000*res.GapError.Median, 1000*res.GapError.P99, 1000*res.GapError.Max)},
			{"Send lag", fmt.Sprintf("P99 %.2f ms", 1000*res.Client.SendLag.P99)},
			{"Client", fmt.Sprintf("CPU %.2f of %d cores, scheduler latency P99 %.2f ms", res.Client.CPUCores, res.Client.Cores, 1000*res.Client.SchedP99S)},
		}
		if err := console.Banner(e.stdout, "Client self-check", rows, consoleOptions(e)); err != nil {
			return fmt.Errorf("print self-check: %w", err)
		}
	}
	bound := c.bounds().Fail
	worst := max(res.TTFCError.P99, res.GapError.P99)
	switch {
	case res.Failed > 0:
		return usagef("--self-check: %d of %d requests failed at %d concurrent streams on this machine: the client cannot drive this plan (lower the concurrency)", res.Failed, res.Requests, streams)
	case bound > 0 && worst > bound.Seconds():
		return usagef("--self-check: at %d concurrent streams the client's own timing error reaches %.1f ms (P99), above --max-client-lag %v: its numbers would mix the client's delay with the server's; lower the concurrency or use a bigger machine", streams, 1000*worst, bound)
	}
	log.Info("self-check passed", "streams", streams, "ttfc_error_p99_ms", 1000*res.TTFCError.P99, "tbt_error_p99_ms", 1000*res.GapError.P99)
	return nil
}

func runSelfCheck(ctx context.Context, streams int, log *slog.Logger) (selfCheckResult, error) {
	srv, err := simengine.Start(simengine.Options{ZeroCost: true, FixedTTFT: selfCheckTTFT, FixedGap: selfCheckGap, Logger: log})
	if err != nil {
		return selfCheckResult{}, fmt.Errorf("self-check: start the zero-cost engine: %w", err)
	}
	defer srv.Close()
	cl, err := client.New(client.Config{BaseURL: srv.BaseURL(), Model: srv.Model(), Endpoint: client.Completions,
		RequestTimeout: 30 * time.Second, MaxConcurrency: streams, RunID: "self-check", Logger: log})
	if err != nil {
		return selfCheckResult{}, fmt.Errorf("self-check: %w", err)
	}
	defer cl.Close()
	began := time.Now()
	var mu sync.Mutex
	var reqs []result.Request
	probe := fidelity.Start()
	cctx, cancel := context.WithTimeout(ctx, selfCheckDuration+10*time.Second)
	defer cancel()
	traffic.Closed(cctx, began, streams, selfCheckDuration, func(ctx context.Context, slot traffic.Slot) {
		r := cl.Stream(ctx, began, client.Call{Seq: slot.Index, Prompt: " self check", MaxTokens: selfCheckTokens, Intended: slot.Intended})
		mu.Lock()
		reqs = append(reqs, r)
		mu.Unlock()
	})
	sample := probe.Stop()
	if ctx.Err() != nil {
		return selfCheckResult{}, exitError{ExitInterrupted, fmt.Errorf("interrupted during the self-check")}
	}
	res := selfCheckResult{Streams: streams, Requests: len(reqs), Client: fidelity.Assess(sample, reqs)}
	var ttfcErr, gapErr []float64
	for i := range reqs {
		r := &reqs[i]
		if !r.OK() {
			res.Failed++
			continue
		}
		if ttfc, ok := r.TTFC(); ok {
			ttfcErr = append(ttfcErr, (ttfc - selfCheckTTFT).Seconds())
		}
		for _, g := range r.ChunkGaps() {
			d := g - selfCheckGap
			gapErr = append(gapErr, max(d, -d).Seconds())
		}
	}
	res.TTFCError, res.GapError = metrics.Summarize(ttfcErr), metrics.Summarize(gapErr)
	return res, nil
}
