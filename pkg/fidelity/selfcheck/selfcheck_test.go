package selfcheck

import (
	"testing"
	"time"
)

// At a low concurrency on loopback, the client's error is small and
// every request succeeds.
func TestRunFewStreams(t *testing.T) {
	t.Parallel()
	res, err := Run(t.Context(), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Requests < 4 {
		t.Fatalf("%d of %d requests failed, want none of at least 4", res.Failed, res.Requests)
	}
	// 3 s of 4 streams of 32 tokens 20 ms apart: ~0.66 s per request.
	if res.TTFCError.Count < 4 || res.GapError.Count < 4*(Tokens-1) {
		t.Errorf("samples: %d TTFC, %d gaps, too few", res.TTFCError.Count, res.GapError.Count)
	}
	if res.TTFCError.Min < -0.001 {
		t.Errorf("TTFC error min %v s: the client saw a first token before the engine sent it", res.TTFCError.Min)
	}
	if w := res.Worst(); w > 200*time.Millisecond {
		t.Errorf("worst P99 error %v at 4 streams: the client is far off", w)
	}
}
