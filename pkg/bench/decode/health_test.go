package decode

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
)

// failFirst answers its first fail requests with a connection failure
// and the others with a short successful stream.
type failFirst struct {
	fail int64
	n    atomic.Int64
}

func (f *failFirst) Stream(_ context.Context, began time.Time, call client.Call) result.Request {
	sent := time.Since(began)
	if f.n.Add(1) <= f.fail {
		return result.Request{Seq: call.Seq, Sent: sent, End: sent, ErrClass: result.ErrConnect, Err: "connection refused"}
	}
	r := stream(call.Seq, sent+time.Millisecond, time.Millisecond, call.MaxTokens)
	r.Sent, r.TargetPromptTokens, r.PromptTokens, r.TargetOutputTokens = sent, call.TargetPromptTokens, call.TargetPromptTokens, call.MaxTokens
	r.End = r.TokenTimes[len(r.TokenTimes)-1]
	return r
}

type words struct{}

func (words) Prompt(length, _, _ int) (string, error) { return "hello", nil }

// The server failed every request of two combinations in a row: the run
// stops there, the rest is not sent, and a run-level server_healthy
// check fails. One failed combination followed by a good one is not
// enough: the run goes on to its end.
func TestRunStopsAfterTwoFailedCombinations(t *testing.T) {
	t.Parallel()
	cfg := Config{BatchSizes: []int{1, 2, 4}, InputLengths: []int{64}, SamplesPerLength: 2, EngineChunkSize: 512, TicketTimeout: result.Seconds(time.Second)}
	tests := []struct {
		name      string
		fail      int64
		sent      int64
		stopped   bool
		endReason string
	}{
		{"dead server", 1 << 30, 3, true, result.EndServerFailing},
		{"one failed combination", 1, 7, false, result.EndCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &failFirst{fail: tt.fail}
			res, err := Run(t.Context(), cfg, Deps{Deps: runner.Deps{Sender: s, Prompts: words{}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.n.Load(); got != tt.sent {
				t.Errorf("%d requests sent, want %d", got, tt.sent)
			}
			if (res.StopReason != "") != tt.stopped || res.EndReason != tt.endReason {
				t.Errorf("end %q, stop reason %q; want end %q, stopped %v", res.EndReason, res.StopReason, tt.endReason, tt.stopped)
			}
			healthy := true
			for _, c := range res.Validation.Checks {
				if c.Name == "server_healthy" && c.Label == "" {
					healthy = false
				}
			}
			if healthy == tt.stopped {
				t.Errorf("run-level server_healthy FAIL present = %v, want %v", !healthy, tt.stopped)
			}
		})
	}
}
