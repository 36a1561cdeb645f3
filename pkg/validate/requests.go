package validate

import (
	"fmt"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// The checks below apply to the requests of any benchmark point: NoErrors
// to every request the point sent, warm-ups included; the others to the
// measured requests (Measured), whose warm-ups the caller filtered out.

// NoErrors adds no_errors: FAIL when any request the point sent failed,
// warm-up requests included (a server that fails them is not healthy),
// with counts by error class and HTTP status.
func (r *Report) NoErrors(label string, sent []result.Request) {
	// One count, stated once: the total and its breakdown come from the
	// same tally.
	errs := result.CountAllErrors(sent)
	warmups, warmFailed := 0, 0
	for _, q := range sent {
		if q.Warmup {
			warmups++
			if !q.OK() {
				warmFailed++
			}
		}
	}
	if errs.Total == 0 {
		split := ""
		if warmups > 0 {
			split = fmt.Sprintf(" (%d warm-up, %d measured)", warmups, len(sent)-warmups)
		}
		r.Add("no_errors", label, Pass, "all %d requests succeeded%s", len(sent), split)
		return
	}
	note := ""
	if warmFailed > 0 {
		note = fmt.Sprintf(" (%d of them warm-up)", warmFailed)
	}
	r.Add("no_errors", label, Fail, "%d of %d requests failed%s: %s", errs.Total, len(sent), note, errs.Classes())
}

// OutputTokens adds output_tokens: WARN when a successful request produced
// another number of tokens than want (an early stop, a server that ignores
// ignore_eos).
func (r *Report) OutputTokens(label string, measured []result.Request, want int) {
	off, early, example := 0, 0, ""
	for _, q := range measured {
		if q.OK() && q.OutputTokens != want {
			if off == 0 {
				example = fmt.Sprintf(" (request %d: %d, finish reason %q)", q.Seq, q.OutputTokens, q.FinishReason)
			}
			off++
			if q.FinishReason == "stop" && q.OutputTokens < want {
				early++
			}
		}
	}
	switch {
	case off == 0:
		r.Add("output_tokens", label, Pass, "all successful requests produced %d output tokens", want)
	case early > 0:
		r.Add("output_tokens", label, Warn, "%d requests produced another output length than %d%s; %d stopped early on their own (finish reason \"stop\"): the server does not honour ignore_eos/min_tokens (Ollama ignores both), or --no-extra-fields was set", off, want, example, early)
	default:
		r.Add("output_tokens", label, Warn, "%d requests produced another output length than %d%s", off, want, example)
	}
}

// PromptTokensExact adds prompt_tokens_exact: the server's own prompt-token
// count must equal the target for every successful request, since a prompt
// of the wrong length puts a measurement under the wrong label (FAIL). A
// server that reports no usage leaves the lengths unverified (WARN).
func (r *Report) PromptTokensExact(label string, measured []result.Request) {
	verified, off, unknown := 0, 0, 0
	example := ""
	for _, q := range measured {
		switch {
		case !q.OK():
		case !q.UsageReported:
			unknown++
		case q.PromptTokens != q.TargetPromptTokens:
			if off == 0 {
				example = fmt.Sprintf("request %d: server counted %d for a target of %d", q.Seq, q.PromptTokens, q.TargetPromptTokens)
			}
			off++
		default:
			verified++
		}
	}
	switch {
	case off > 0:
		r.Add("prompt_tokens_exact", label, Fail, "%d requests had another prompt length than asked (%s)", off, example)
	case unknown > 0:
		r.Add("prompt_tokens_exact", label, Warn, "the server reported no usage for %d requests: their prompt lengths are unverified", unknown)
	default:
		r.Add("prompt_tokens_exact", label, Pass, "the server counted exactly the requested prompt tokens in all %d successful requests", verified)
	}
}

// Measured returns the requests that are not warm-ups.
func Measured(reqs []result.Request) []result.Request {
	out := make([]result.Request, 0, len(reqs))
	for _, q := range reqs {
		if !q.Warmup {
			out = append(out, q)
		}
	}
	return out
}
