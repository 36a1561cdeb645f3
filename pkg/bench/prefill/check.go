package prefill

import (
	"fmt"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Check validates a prefill run from its recorded requests: the request
// count, failures, output lengths, one-at-a-time execution, the stair
// order, and the server-reported prompt lengths.
//
// client is the run's fidelity report; its check is added when it holds a
// sample (a run read back from disk before fidelity was recorded has none).
func Check(cfg Config, reqs []result.Request, client fidelity.Assessment, bounds fidelity.Bounds) validate.Report {
	var rep validate.Report
	measured := validate.Measured(reqs)

	want := len(cfg.InputLengths) * cfg.SamplesPerLength
	if len(measured) == want {
		rep.Add("session_count", "", validate.Pass, "%d requests", want)
	} else {
		rep.Add("session_count", "", validate.Fail, "expected %d requests, got %d", want, len(measured))
	}

	rep.NoErrors("", reqs)
	rep.OutputTokens("", measured, cfg.OutputTokens)

	overlaps := 0
	for i := 1; i < len(reqs); i++ {
		if reqs[i].Sent < reqs[i-1].End {
			overlaps++
		}
	}
	if overlaps == 0 {
		rep.Add("sequential_execution", "", validate.Pass, "requests executed one at a time")
	} else {
		rep.Add("sequential_execution", "", validate.Warn, "%d requests were sent before the previous one ended", overlaps)
	}

	stair := validate.Pass
	detail := "prompt lengths follow the stair in the order given"
	for i, r := range measured {
		if i/cfg.SamplesPerLength >= len(cfg.InputLengths) {
			break
		}
		if wantLen := cfg.InputLengths[i/cfg.SamplesPerLength]; r.TargetPromptTokens != wantLen {
			stair, detail = validate.Warn, fmt.Sprintf("request %d: expected %d tokens, got %d", r.Seq, wantLen, r.TargetPromptTokens)
			break
		}
	}
	rep.Add("prompt_tokens_stair", "", stair, "%s", detail)

	rep.PromptTokensExact("", measured)
	if client.WallS > 0 {
		client.Check(&rep, "", bounds)
	}
	return rep
}
