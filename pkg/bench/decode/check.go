package decode

import (
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// fcfsTolerance is how far a later request's first token may precede an
// earlier one's before the order counts as broken (clock and network noise).
const fcfsTolerance = 5 * time.Millisecond

// Check validates one combination: the request count, failures, FCFS order
// of first tokens, the decode window, whether the window held the whole
// batch, and the server-reported prompt and output lengths.
func Check(rep *validate.Report, cfg Config, p CombinationRun, a Analysis, bounds fidelity.Bounds) {
	label := p.CheckLabel()
	measured := validate.Measured(p.Requests)

	matching := 0
	for _, r := range measured {
		if r.TargetPromptTokens == p.InputLength {
			matching++
		}
	}
	if matching == p.BatchSize {
		rep.Add("matching_requests", label, validate.Pass, "%d requests", matching)
	} else {
		rep.Add("matching_requests", label, validate.Fail, "expected %d requests with a %d-token prompt, got %d", p.BatchSize, p.InputLength, matching)
	}
	rep.NoErrors(label, measured)
	if p.EndReason == result.EndServerFailing {
		rep.Add("server_healthy", label, validate.Fail, "the combination was ended early because the server kept failing: %s", p.StopReason)
	}

	outOfOrder := 0
	var prev time.Duration
	first := true
	for _, r := range measured {
		if !r.OK() || len(r.TokenTimes) == 0 {
			continue
		}
		t := r.TokenTimes[0]
		if !first && t < prev-fcfsTolerance {
			outOfOrder++
		}
		if first || t > prev {
			prev = t
		}
		first = false
	}
	if outOfOrder == 0 {
		rep.Add("fcfs_order", label, validate.Pass, "first tokens arrived in launch order")
	} else {
		rep.Add("fcfs_order", label, validate.Warn, "%d first tokens arrived out of launch order (the server may batch prefills)", outOfOrder)
	}

	w := a.Window
	minPerRequest := -1
	for _, s := range w.Streams {
		if s.Skipped == "" && (minPerRequest < 0 || s.Samples < minPerRequest) {
			minPerRequest = s.Samples
		}
	}
	switch {
	case len(w.Windows) == 0 || len(w.ChunkGaps) == 0:
		rep.Add("decode_window_overlap", label, validate.Fail, "no window in which all %d requests decoded together: raise --samples-per-length or check --engine-chunk-size", p.BatchSize)
	case minPerRequest < cfg.SamplesPerLength:
		rep.Add("decode_window_overlap", label, validate.Warn, "low sample count in the decode window: %d per request at least, want %d (%d in all, window %.3f s)", minPerRequest, cfg.SamplesPerLength, len(w.ChunkGaps), a.Row.WindowS)
	default:
		rep.Add("decode_window_overlap", label, validate.Pass, "%d samples in a %.3f s window, at least %d per request", len(w.ChunkGaps), a.Row.WindowS, minPerRequest)
	}

	if w.Peak == p.BatchSize {
		rep.Add("batch_held", label, validate.Pass, "all %d requests decoded together", p.BatchSize)
	} else {
		rep.Add("batch_held", label, validate.Warn, "the server decoded at most %d of the %d requests at once: this row's TBT is for a batch of %d", w.Peak, p.BatchSize, w.Peak)
	}

	rep.PromptTokensExact(label, measured)
	rep.OutputTokens(label, measured, OutputTokens(cfg.SamplesPerLength, p.BatchSize, p.InputLength, cfg.EngineChunkSize))
	if a.Row.Fidelity.WallS > 0 {
		a.Row.Fidelity.Check(rep, label, bounds)
	}
}
