package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/veeksha-go/veeksha/pkg/fidelity/selfcheck"
	"github.com/veeksha-go/veeksha/pkg/report/console"
)

// selfCheck measures the client's own timing error at the planned number
// of concurrent streams (pkg/fidelity/selfcheck), prints it, and refuses
// (a usage error) a plan this machine cannot drive faithfully.
func selfCheck(ctx context.Context, e *env, c *Common, log *slog.Logger, streams int) error {
	res, err := selfcheck.Run(ctx, streams, log)
	if ctx.Err() != nil {
		return exitError{ExitInterrupted, errors.New("interrupted during the self-check")}
	}
	if err != nil {
		return err
	}
	if !c.Quiet {
		rows := [][2]string{
			{"Streams", fmt.Sprintf("%d concurrent, %d requests in %v (zero-cost engine: TTFT %v, a token every %v)", res.Streams, res.Requests, selfcheck.Duration, selfcheck.TTFT, selfcheck.Gap)},
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
	switch {
	case res.Failed > 0:
		return usagef("--self-check: %d of %d requests failed at %d concurrent streams on this machine: the client cannot drive this plan (lower the concurrency)", res.Failed, res.Requests, streams)
	case bound > 0 && res.Worst() > bound:
		return usagef("--self-check: at %d concurrent streams the client's own timing error reaches %.1f ms (P99), above --max-client-lag %v: its numbers would mix the client's delay with the server's; lower the concurrency or use a bigger machine", streams, float64(res.Worst().Microseconds())/1000, bound)
	}
	log.Info("self-check passed", "streams", streams, "ttfc_error_p99_ms", 1000*res.TTFCError.P99, "tbt_error_p99_ms", 1000*res.GapError.P99)
	return nil
}
