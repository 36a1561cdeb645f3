package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/veeksha-go/veeksha/pkg/metrics"
)

// row holds one prompt length's medians, in seconds, over its pairs.
// Differences are medians of per-pair differences.
type row struct {
	length int
	pairs  int

	ourTTFC    float64 // OpenAI path, pkg/client: first content chunk - sent
	nativeTTFC float64 // native path, same clock, same request as the server figures
	load       float64 // server load_duration
	promptEval float64 // server prompt_eval_duration
	serverTTFC float64 // load + prompt_eval
	ourGap     float64 // ourTTFC - serverTTFC, per pair (two requests)
	nativeGap  float64 // nativeTTFC - serverTTFC, one request
	outside    float64 // server total - load - prompt_eval - eval: time outside the reported spans

	ourTPOT       float64 // (last chunk - first chunk) / (output tokens - 1), OpenAI path
	nativeTPOT    float64 // the same on the native request, over eval_count - 1 steps
	evalPerTok    float64 // eval_duration / eval_count, as Ollama's docs compute tokens/s
	evalPerStep   float64 // eval_duration / (eval_count - 1): eval spans n-1 decode steps
	ourTPOTGap    float64 // ourTPOT - evalPerStep, per pair (two requests)
	nativeTPOTGap float64 // nativeTPOT - evalPerStep, one request

	evalCount int // median server eval_count
}

// summarize groups pairs by length, in the order of lengths.
func summarize(lengths []int, pairs []pair) []row {
	rows := make([]row, 0, len(lengths))
	for _, l := range lengths {
		var ourTTFC, natTTFC, load, pe, srv, ourGap, natGap, outside []float64
		var ourTPOT, natTPOT, perTok, perStep, ourTPOTGap, natTPOTGap, evalCount []float64
		for _, p := range pairs {
			if p.length != l {
				continue
			}
			s := p.native.Server
			ttfc, _ := p.ours.TTFC()
			server := s.Load + s.PromptEval
			ourTTFC = append(ourTTFC, ttfc.Seconds())
			natTTFC = append(natTTFC, p.native.TTFC().Seconds())
			load = append(load, s.Load.Seconds())
			pe = append(pe, s.PromptEval.Seconds())
			srv = append(srv, server.Seconds())
			ourGap = append(ourGap, (ttfc - server).Seconds())
			natGap = append(natGap, (p.native.TTFC() - server).Seconds())
			outside = append(outside, (s.Total - s.Load - s.PromptEval - s.Eval).Seconds())
			evalCount = append(evalCount, float64(s.EvalCount))
			if s.EvalCount < 2 {
				continue
			}
			step := s.Eval / time.Duration(s.EvalCount-1)
			perTok = append(perTok, (s.Eval / time.Duration(s.EvalCount)).Seconds())
			perStep = append(perStep, step.Seconds())
			if t, ok := p.ours.TPOT(); ok {
				ourTPOT = append(ourTPOT, t.Seconds())
				ourTPOTGap = append(ourTPOTGap, (t - step).Seconds())
			}
			// An end-of-sequence token counts in eval_count but sends no
			// text, so only a request cut by num_predict has its last
			// chunk at its last step.
			if p.native.DoneReason == "length" {
				t := (p.native.LastChunk - p.native.FirstChunk) / time.Duration(s.EvalCount-1)
				natTPOT = append(natTPOT, t.Seconds())
				natTPOTGap = append(natTPOTGap, (t - step).Seconds())
			}
		}
		med := func(v []float64) float64 { return metrics.Summarize(v).Median }
		rows = append(rows, row{
			length: l, pairs: len(ourTTFC),
			ourTTFC: med(ourTTFC), nativeTTFC: med(natTTFC), load: med(load), promptEval: med(pe),
			serverTTFC: med(srv), ourGap: med(ourGap), nativeGap: med(natGap), outside: med(outside),
			ourTPOT: med(ourTPOT), nativeTPOT: med(natTPOT), evalPerTok: med(perTok), evalPerStep: med(perStep),
			ourTPOTGap: med(ourTPOTGap), nativeTPOTGap: med(natTPOTGap),
			evalCount: int(med(evalCount)),
		})
	}
	return rows
}

// printReport writes the two cross-check tables and what their columns
// mean.
func printReport(w io.Writer, o options, rows []row) {
	ms := func(s float64) string { return fmt.Sprintf("%.1f", s*1e3) }
	ms2 := func(s float64) string { return fmt.Sprintf("%.2f", s*1e3) }

	fmt.Fprintf(w, "\nTTFC against Ollama's own clock: medians over %d pairs per length, ms\n", o.reps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "prompt\tour\tollama\tollama\tollama\tours -\tnative\tnative -\tollama\t")
	fmt.Fprintln(tw, "tokens\tTTFC\tload\tprompt_eval\tload+prompt\tollama\tTTFC\tollama\tunreported\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.length, ms(r.ourTTFC), ms(r.load), ms(r.promptEval),
			ms(r.serverTTFC), ms(r.ourGap), ms(r.nativeTTFC), ms(r.nativeGap), ms(r.outside))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nTBT against Ollama's own clock: medians, ms per token (count = eval_count, %d asked)\n", o.outputTokens)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "prompt\tour\tollama\tollama\tours -\tnative\tnative -\t")
	fmt.Fprintln(tw, "tokens\tTPOT\teval/count\teval/(count-1)\tollama\tTPOT\tollama\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.length, ms2(r.ourTPOT), ms2(r.evalPerTok), ms2(r.evalPerStep),
			ms2(r.ourTPOTGap), ms2(r.nativeTPOT), ms2(r.nativeTPOTGap))
	}
	tw.Flush()

	fmt.Fprintln(w, `
our TTFC, TPOT: the benchmark's client (pkg/client) on /v1/chat/completions; TPOT = (last chunk - first chunk)
  / (output tokens - 1). "ours - ollama" compares it with the native request of the same length sent next to
  it (another salt, so no shared KV cache): two requests, so machine noise shows there.
native TTFC, TPOT: the same client clock on the native /api/chat request whose ollama figures are shown;
  "native - ollama" is one request seen from both ends, the figure to trust on a busy machine.
ollama (server clock, v0.17.4): load = HTTP handler start to a runner assigned (with the model loaded, mostly
  the capability check that reads the model's GGUF metadata on every request); prompt_eval = the runner's prefill up to the logits
  of the first output token (that forward pass is in it, its sampling is not); eval = first to last token's
  logits minus sampling, i.e. count - 1 decode steps, so eval/count reads low by 1/count.
native TTFC - (load + prompt_eval) = what no server span covers before the first token: chat template,
  tokenization, the wait for a parallel slot, the HTTP hop to the runner, the first token's sampling and
  detokenization, the writes back through two HTTP servers, and the loopback HTTP and JSON on our side.
ollama unreported = total - load - prompt_eval - eval: the server's own uncovered time over the whole request
  (the same items, with every token's sampling, without our side).
native TPOT - eval/(count-1) = per token: sampling (left out of eval), detokenization and the two HTTP hops.`)
}

// printPairs writes one line per pair, in send order.
func printPairs(w io.Writer, pairs []pair) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()*1e3) }
	fmt.Fprintln(w, "\nEvery pair (ms; first = the path sent first):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seq\ttokens\tfirst\tour TTFC\tnative TTFC\tload\tprompt_eval\tour TPOT\teval\teval_count\tour tokens/chunks\tfinish (ours/native)\t")
	for _, p := range pairs {
		first := "ours"
		if p.native.Sent < p.ours.Sent {
			first = "native"
		}
		ttfc, _ := p.ours.TTFC()
		tpot, _ := p.ours.TPOT()
		s := p.native.Server
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%d\t%d/%d\t%s/%s\t\n", p.ours.Seq, p.length, first,
			ms(ttfc), ms(p.native.TTFC()), ms(s.Load), ms(s.PromptEval), tpot.Seconds()*1e3, ms(s.Eval), s.EvalCount,
			p.ours.OutputTokens, p.ours.Chunks(), p.ours.FinishReason, p.native.DoneReason)
	}
	tw.Flush()
}

// check returns what does not hold in pairs: prompt lengths other than
// requested on either path, and native requests whose client-side TTFC is
// shorter than the server spans it contains.
func check(pairs []pair) []string {
	var problems []string
	for _, p := range pairs {
		if !p.ours.UsageReported || p.ours.PromptTokens != p.length {
			problems = append(problems, fmt.Sprintf("OpenAI-path request %d: usage.prompt_tokens = %d (reported %t), want %d",
				p.ours.Seq, p.ours.PromptTokens, p.ours.UsageReported, p.length))
		}
		s := p.native.Server
		if s.PromptEvalCount != p.length {
			problems = append(problems, fmt.Sprintf("native request %d: prompt_eval_count = %d, want %d", p.ours.Seq, s.PromptEvalCount, p.length))
		}
		if ttfc := p.native.TTFC(); ttfc < s.Load+s.PromptEval {
			problems = append(problems, fmt.Sprintf("native request %d: client TTFC %v < load %v + prompt_eval %v: the client clock misses time the server measured",
				p.ours.Seq, ttfc, s.Load, s.PromptEval))
		}
	}
	return problems
}
