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
	ourGap     float64 // ourTTFC - serverTTFC, per pair
	nativeGap  float64 // nativeTTFC - serverTTFC, same request
	outside    float64 // server total - load - prompt_eval - eval: time outside the reported spans

	ourTPOT     float64 // (last chunk - first chunk) / (output tokens - 1), OpenAI path
	evalPerTok  float64 // eval_duration / eval_count, as Ollama's docs compute tokens/s
	evalPerStep float64 // eval_duration / (eval_count - 1): eval spans n-1 decode steps
	tpotGap     float64 // ourTPOT - evalPerStep, per pair

	evalCount int // median server eval_count
}

// summarize groups pairs by length, in the order of lengths.
func summarize(lengths []int, pairs []pair) []row {
	rows := make([]row, 0, len(lengths))
	for _, l := range lengths {
		var ourTTFC, natTTFC, load, pe, srv, ourGap, natGap, outside, tpot, perTok, perStep, tpotGap, evalCount []float64
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
			if t, ok := p.ours.TPOT(); ok && s.EvalCount > 1 {
				step := s.Eval / time.Duration(s.EvalCount-1)
				tpot = append(tpot, t.Seconds())
				perTok = append(perTok, (s.Eval / time.Duration(s.EvalCount)).Seconds())
				perStep = append(perStep, step.Seconds())
				tpotGap = append(tpotGap, (t - step).Seconds())
			}
		}
		med := func(v []float64) float64 { return metrics.Summarize(v).Median }
		rows = append(rows, row{
			length: l, pairs: len(ourTTFC),
			ourTTFC: med(ourTTFC), nativeTTFC: med(natTTFC), load: med(load), promptEval: med(pe),
			serverTTFC: med(srv), ourGap: med(ourGap), nativeGap: med(natGap), outside: med(outside),
			ourTPOT: med(tpot), evalPerTok: med(perTok), evalPerStep: med(perStep), tpotGap: med(tpotGap),
			evalCount: int(med(evalCount)),
		})
	}
	return rows
}

// printReport writes the cross-check table and what the gaps are made of.
func printReport(w io.Writer, o options, rows []row) {
	ms := func(s float64) string { return fmt.Sprintf("%.1f", s*1e3) }
	ms2 := func(s float64) string { return fmt.Sprintf("%.2f", s*1e3) }
	fmt.Fprintf(w, "\nCross-check against Ollama's own clock: medians over %d pairs per length, times in ms\n", o.reps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "prompt\tour\tollama\tollama\tollama\tours -\tnative\tnative -\t|\tour\tollama\tollama\tours -\t")
	fmt.Fprintln(tw, "tokens\tTTFC\tload\tprompt_eval\tload+prompt\tollama\tTTFC\tollama\t|\tTPOT\teval/count\teval/(count-1)\tollama\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t|\t%s\t%s\t%s\t%s\t\n", r.length,
			ms(r.ourTTFC), ms(r.load), ms(r.promptEval), ms(r.serverTTFC), ms(r.ourGap), ms(r.nativeTTFC), ms(r.nativeGap),
			ms2(r.ourTPOT), ms2(r.evalPerTok), ms2(r.evalPerStep), ms2(r.tpotGap))
	}
	tw.Flush()

	fmt.Fprintln(w, `our TTFC, TPOT: the benchmark's client (pkg/client) on /v1/chat/completions; TPOT = (last chunk - first
  chunk) / (output tokens - 1). "ours - ollama" pairs it with the native request of the same length sent
  next to it (another salt, so no shared KV cache).
native TTFC: the same client clock on the native /api/chat request whose ollama figures are shown.
ollama (server clock): load = handler start to a runner assigned; prompt_eval = the runner's prefill up to
  the logits of the first output token (that forward pass is inside it); eval = first to last token's
  logits minus sampling, which is eval_count - 1 decode steps.`)

	fmt.Fprintln(w, "\nWhere the gaps go (ms, medians):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "prompt\tnative TTFC -\tserver total - load\tour TTFC -\teval/count\tour TPOT -\t")
	fmt.Fprintln(tw, "tokens\t(load+prompt_eval)\t- prompt_eval - eval\tnative TTFC\treads low by\teval/(count-1)\t")
	for _, r := range rows {
		low := "-"
		if r.evalCount > 1 {
			low = fmt.Sprintf("%.1f %%", 100/float64(r.evalCount))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", r.length, ms(r.nativeGap), ms(r.outside), ms(r.ourTTFC-r.nativeTTFC), low, ms2(r.tpotGap))
	}
	tw.Flush()
	fmt.Fprintln(w, `  native TTFC - (load + prompt_eval), on one request: what the client sees and the server's spans do not
    cover before the first token: chat template, tokenization, the parallel-slot wait, the HTTP hop to the
    runner, the first token's sampling and detokenization, the writes back, loopback HTTP and JSON.
  server total - load - prompt_eval - eval: the server's own unreported time over the whole request (the
    same items, with the sampling of every token; it excludes the client's side of HTTP and JSON.
  our TTFC - native TTFC: Ollama's OpenAI layer plus request-to-request noise (two prompts of equal length).
  eval/count reads low by 1/count: eval spans count - 1 decode steps, the first token came from prefill.
  our TPOT - eval/(count-1): per token, sampling (left out of eval), detokenization and the two HTTP hops.`)
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
