package decode

import (
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// The reference's output-length test vectors (§6.1).
func TestOutputTokens(t *testing.T) {
	t.Parallel()
	tests := []struct{ s, b, l, c, required, sent int }{
		{100, 1, 1024, 512, 100, 200},
		{100, 4, 1024, 512, 109, 218},
		{50, 10, 500, 510, 59, 118},
		{10, 8, 1024, 512, 31, 62},
	}
	for _, tt := range tests {
		if got := RequiredTokens(tt.s, tt.b, tt.l, tt.c); got != tt.required {
			t.Errorf("RequiredTokens(%d, %d, %d, %d) = %d, want %d", tt.s, tt.b, tt.l, tt.c, got, tt.required)
		}
		if got := OutputTokens(tt.s, tt.b, tt.l, tt.c); got != tt.sent {
			t.Errorf("OutputTokens(%d, %d, %d, %d) = %d, want %d", tt.s, tt.b, tt.l, tt.c, got, tt.sent)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := Config{BatchSizes: []int{1, 4}, InputLengths: []int{128}, SamplesPerLength: 10, EngineChunkSize: 512, TicketTimeout: result.Seconds(time.Second)}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	bad := good
	bad.BatchSizes = []int{0, 512}
	bad.InputLengths = nil
	err := bad.Validate()
	for _, want := range []string{"--batch-sizes 0", "--batch-sizes 512 must be less than --engine-chunk-size 512", "--input-lengths must list"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) = %v, want it to mention %q", err, want)
		}
	}
}

func TestCombinationsOrder(t *testing.T) {
	t.Parallel()
	got := Combinations(Config{BatchSizes: []int{4, 1}, InputLengths: []int{512, 128}})
	want := []string{"bs=4_il=512", "bs=4_il=128", "bs=1_il=512", "bs=1_il=128"}
	for i, c := range got {
		if c.Label() != want[i] || c.Index != i {
			t.Errorf("combination %d = %s (index %d), want %s", i, c.Label(), c.Index, want[i])
		}
	}
}

// stream makes a successful request whose chunks arrive every gap from first.
func stream(seq int, first, gap time.Duration, n int) result.Request {
	r := result.Request{Seq: seq, TargetPromptTokens: 128, PromptTokens: 128, UsageReported: true, OutputTokens: n}
	for i := range n {
		r.TokenTimes = append(r.TokenTimes, first+time.Duration(i)*gap)
	}
	return r
}

func TestAnalyzeAndCheck(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cfg := Config{BatchSizes: []int{2}, InputLengths: []int{128}, SamplesPerLength: 5, EngineChunkSize: 512, TicketTimeout: result.Seconds(time.Second)}
	out := OutputTokens(5, 2, 128, 512)
	a0, a1 := stream(0, 10*ms, 10*ms, out), stream(1, 25*ms, 10*ms, out)
	p := CombinationRun{Combination: Combination{BatchSize: 2, InputLength: 128}, Requests: []result.Request{a0, a1}, EndReason: result.EndCompleted}
	a, err := Analyze(p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Row.PeakConcurrency != 2 {
		t.Errorf("peak = %d, want 2", a.Row.PeakConcurrency)
	}
	if got := a.Row.TBT.Median; got < 0.0099 || got > 0.0101 {
		t.Errorf("TBT P50 = %v s, want 0.010", got)
	}
	if got := a.Row.DecodeTPS; got < 199 || got > 201 {
		t.Errorf("decode tok/s = %v, want 200 (2 requests every 10 ms)", got)
	}
	var rep validate.Report
	Check(&rep, cfg, p, a, fidelity.DefaultBounds())
	if rep.Failed() || rep.Count(validate.Warn) > 0 {
		t.Errorf("checks of a clean batch: %+v", rep.Checks)
	}

	// One request failed: the batch never ran together, validation fails.
	failed := result.Request{Seq: 1, TargetPromptTokens: 128, ErrClass: result.ErrHTTPStatus, HTTPStatus: 500, Err: "boom"}
	p.Requests = []result.Request{a0, failed}
	a, _ = Analyze(p)
	rep = validate.Report{}
	Check(&rep, cfg, p, a, fidelity.DefaultBounds())
	if !rep.Failed() {
		t.Errorf("a failed request did not fail validation: %+v", rep.Checks)
	}
	var batch validate.Check
	for _, c := range rep.Checks {
		if c.Name == "batch_held" {
			batch = c
		}
	}
	if batch.Status != validate.Warn || !strings.Contains(batch.Detail, "at most 1 of the 2") {
		t.Errorf("batch_held = %+v, want a WARN naming the peak", batch)
	}
}

// Chunks of two tokens without per-chunk usage: the ratio from usage shows
// the coalescing, no per-token figure is invented, and decode throughput
// counts tokens, not chunks.
func TestAnalyzeCoalescedWithoutPerChunkUsage(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	a0, a1 := stream(0, 10*ms, 10*ms, 30), stream(1, 15*ms, 10*ms, 30)
	a0.OutputTokens, a1.OutputTokens = 60, 60
	a, err := Analyze(CombinationRun{Combination: Combination{BatchSize: 2, InputLength: 128}, Requests: []result.Request{a0, a1}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Row.TokensPerChunkMean != 2 || a.Row.TBTPerToken.Count != 0 {
		t.Errorf("tokens/chunk %v, per-token samples %d; want 2 and none", a.Row.TokensPerChunkMean, a.Row.TBTPerToken.Count)
	}
	if got := a.Row.DecodeTPS; got < 399 || got > 401 {
		t.Errorf("decode tok/s = %v, want 400 (2 requests x 2 tokens every 10 ms)", got)
	}
}

func TestCheckContext(t *testing.T) {
	t.Parallel()
	cfg := Config{BatchSizes: []int{1, 256}, InputLengths: []int{1024, 4096}, SamplesPerLength: 10, EngineChunkSize: 512}
	// bs=256, il=4096: 4096 + 2*(10 + 255*16) = 12276 tokens; bs=256,
	// il=1024: 1024 + 2*(10 + 255*4) = 3084; bs=1: 1024 or 4096 + 20.
	tests := []struct {
		ctx  int
		want string // "" for no error
	}{
		{0, ""},
		{12276, ""},
		{12275, "--batch-sizes 256 --input-lengths 4096: each request needs a 4096-token prompt plus 8180 output tokens = 12276, beyond the model's 12275-token context"},
		{4000, "--batch-sizes 1 --input-lengths 4096: each request needs a 4096-token prompt plus 20 output tokens = 4116, beyond the model's 4000-token context (2 of the 4 combinations do not fit)"},
	}
	for _, tt := range tests {
		err := cfg.CheckContext(tt.ctx)
		if (tt.want == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("CheckContext(%d) = %v, want %q", tt.ctx, err, tt.want)
		}
	}
}
