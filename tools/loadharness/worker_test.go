package main

import (
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// TestMeasure runs both readers end to end against an in-process zero-cost
// engine: every chunk must be recorded and paired with its own stamp.
func TestMeasure(t *testing.T) {
	t.Parallel()
	const streams, tokens, gap = 8, 40, 5 * time.Millisecond
	srv, err := simengine.Start(simengine.Options{Model: "sim", ZeroCost: true, FixedTTFT: gap, FixedGap: gap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, reader := range []string{"bare", "client"} {
		t.Run(reader, func(t *testing.T) {
			t.Parallel()
			cfg := workerConfig{URL: srv.BaseURL(), Model: "sim", Reader: reader, Streams: streams, Tokens: tokens,
				TTFT: gap, Gap: gap, Ramp: 20 * time.Millisecond, Settle: 20 * time.Millisecond}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			res, err := measure(t.Context(), cfg)
			if err != nil {
				t.Fatalf("measure(%+v) = %v", cfg, err)
			}
			if res.Errors != 0 || res.Chunks != streams*tokens || res.NoStamp != 0 || res.Overflow != 0 {
				t.Fatalf("measure: errors %d (%s), chunks %d, without stamp %d, not kept %d; want 0, %d, 0, 0",
					res.Errors, res.FirstError, res.Chunks, res.NoStamp, res.Overflow, streams*tokens)
			}
			if res.SteadyChunks == 0 || res.SteadyChunks >= res.Chunks {
				t.Errorf("steady chunks = %d, want some but not all of %d", res.SteadyChunks, res.Chunks)
			}
			if res.NewConns != streams {
				t.Errorf("new connections = %d, want %d", res.NewConns, streams)
			}
			// A chunk paired with the next chunk's stamp would arrive a gap
			// "before" it was sent; with its own stamp the lag is positive
			// (the wall clock may slew a little between the two readings).
			all := min(res.Lag.Min, res.BurstLag.Min)
			if all < -0.5 || res.Lag.Median > 1000 {
				t.Errorf("receive lag min %.3f ms, steady median %.3f ms, want >= -0.5 and <= 1000", all, res.Lag.Median)
			}
			if res.AllLate.Count != streams*tokens || res.AllLate.Min < 0 {
				t.Errorf("lateness count %d, min %.3f ms, want %d values >= 0", res.AllLate.Count, res.AllLate.Min, streams*tokens)
			}
			if res.ClockSkewUs < -1000 || res.ClockSkewUs > 1000 {
				t.Errorf("clock skew = %.0f µs, want within ±1000", res.ClockSkewUs)
			}
		})
	}
}

// TestMeasureBursts runs both readers' bursts against an in-process
// zero-cost engine: every request is measured, none sees its first token
// before the engine's TTFT after its release, and the error measured from
// the release is never less than the one measured from the Sent stamp.
func TestMeasureBursts(t *testing.T) {
	t.Parallel()
	const ttft = 20 * time.Millisecond
	srv, err := simengine.Start(simengine.Options{Model: "sim", ZeroCost: true, FixedTTFT: ttft, FixedGap: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, reader := range []string{"bare", "client"} {
		t.Run(reader, func(t *testing.T) {
			t.Parallel()
			cfg := burstConfig{URL: srv.BaseURL(), Model: "sim", Reader: reader, Streams: 16, Tokens: 2,
				TTFT: ttft, Gap: 5 * time.Millisecond, Bursts: 2, Pause: 10 * time.Millisecond, PromptBytes: 1000}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			res, err := measureBursts(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.TTFCError.Count != 32 || res.SendLag.Count != 32 {
				t.Fatalf("errors %d (%s), %d TTFC errors, %d send lags; want 0 and 32 each", res.Errors, res.FirstError, res.TTFCError.Count, res.SendLag.Count)
			}
			// The engine answers TTFT after it read the request: no first
			// token comes earlier than that after the release.
			if res.TTFCError.Min < 0 || res.RecordedError.Min < 0 || res.SendLag.Min < 0 {
				t.Errorf("TTFC error min %.3f ms, recorded %.3f ms, send lag min %.3f ms: want >= 0", res.TTFCError.Min, res.RecordedError.Min, res.SendLag.Min)
			}
			if res.TTFCError.Median < res.RecordedError.Median {
				t.Errorf("TTFC error from the release %.3f ms < from the Sent stamp %.3f ms", res.TTFCError.Median, res.RecordedError.Median)
			}
			if res.CPUPerRequestUs <= 0 {
				t.Errorf("CPU per request = %.1f µs, want > 0", res.CPUPerRequestUs)
			}
		})
	}
}
