// Package predict fits a simulated-engine profile to a server's own prefill
// and decode runs, so that the throughput-vs-latency curve those speeds
// allow can be predicted by running the stress benchmark on the simulated
// engine (--api-base sim:<dir>) and set against the curve measured on the
// server. Where the measured curve falls short of the prediction, something
// the microbenchmarks do not see (the scheduler, batching limits, mixing of
// prefill and decode) is losing throughput.
//
// What the two runs tell: the cost of a lone prefill against prompt length
// (the fastest TTFC of each length, less the time to response headers), the cost of a decode
// step against batch size and context (TBT inside the decode window), the
// batch limit (when the server could not hold a batch), the chunk budget
// (--engine-chunk-size), tokens per streamed chunk. What they cannot tell,
// and is assumed (listed in Fit.Assumed): how a prefill chunk and decode
// steps cost when fused in one iteration (the cost model adds their terms
// and pays the iteration base once), attention to cached prompt tokens when
// no prompt was longer than a chunk, the KV-cache size and the context
// length (taken from the assumed profile).
package predict

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/decodewindow"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// minBaseMS is the per-iteration base given to a fit that found none (a
// profile's base must be positive).
const minBaseMS = 0.001

// Source is the two runs a profile is fitted from.
type Source struct {
	Prefill string `json:"prefill_run"`
	Decode  string `json:"decode_run"`
}

// Resolve finds the runs spec names: an output folder (its prefill and
// decode runs' latest), or "<prefill-run>+<decode-run>".
func Resolve(spec string) (Source, error) {
	if a, b, ok := strings.Cut(spec, "+"); ok {
		return Source{Prefill: a, Decode: b}, checkRuns(Source{Prefill: a, Decode: b})
	}
	var src Source
	var err error
	if src.Prefill, err = report.Resolve(spec, "prefill", ""); err != nil {
		return src, err
	}
	if src.Decode, err = report.Resolve(spec, "decode", ""); err != nil {
		return src, err
	}
	return src, checkRuns(src)
}

func checkRuns(src Source) error {
	for _, f := range []string{filepath.Join(src.Prefill, prefill.ResultsFile), filepath.Join(src.Decode, decode.ResultsFile)} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("fit a profile: %w", err)
		}
	}
	return nil
}

// Residual is how well the fitted model reproduces one measured point.
type Residual struct {
	Point      string  `json:"point"`
	MeasuredMS float64 `json:"measured_ms"`
	ModelMS    float64 `json:"model_ms"`
	ErrorPct   float64 `json:"error_pct"`
}

// Fit is a fitted profile and how it was made.
type Fit struct {
	Source Source `json:"source"`
	// OverheadMS is the shortest time from send to response headers in the
	// prefill run, taken off each TTFC as network and server overhead.
	OverheadMS float64 `json:"overhead_ms"`
	// Prefill and Decode compare the model with each measured point.
	Prefill []Residual `json:"prefill"`
	Decode  []Residual `json:"decode"`
	// Assumed lists what the runs could not tell and what was assumed.
	Assumed []string `json:"assumed"`
}

// FromRuns fits a profile to the runs of src. assumed gives the terms and
// limits the runs cannot tell (see the package comment); the default
// profile is a fair choice. The profile's Fit field holds the Fit.
func FromRuns(src Source, assumed simengine.Profile) (simengine.Profile, Fit, error) {
	var pre prefill.Results
	var dec decode.Results
	if err := report.ReadJSON(filepath.Join(src.Prefill, prefill.ResultsFile), &pre); err != nil {
		return simengine.Profile{}, Fit{}, err
	}
	if err := report.ReadJSON(filepath.Join(src.Decode, decode.ResultsFile), &dec); err != nil {
		return simengine.Profile{}, Fit{}, err
	}
	fit := Fit{Source: src}
	p := assumed
	p.Name = "fitted:" + pre.Settings.Model
	p.Description = fmt.Sprintf("Fitted by veeksha-go to the prefill run %s and the decode run %s of %s at %s.",
		src.Prefill, src.Decode, pre.Settings.Model, pre.Settings.APIBase)
	p.ChunkSize = dec.Config.EngineChunkSize
	p.Jitter = 0

	overhead, err := headersOverhead(src.Prefill)
	if err != nil {
		return p, fit, err
	}
	fit.OverheadMS = overhead
	obs, labels := prefillObservations(pre, p.ChunkSize, overhead)
	decObs, decLabels, limits, err := decodeObservations(src.Decode, dec)
	if err != nil {
		return p, fit, err
	}
	if len(obs) == 0 || len(decObs) == 0 {
		return p, fit, errors.New("fit a profile: the runs hold no successful prefill or decode point")
	}
	fit.Assumed = append(fit.Assumed, "a prefill chunk fused with decode steps costs the sum of their terms, the iteration base paid once")
	if !slices.ContainsFunc(pre.Results, func(r prefill.Row) bool { return r.InputLength > p.ChunkSize }) {
		fit.Assumed = append(fit.Assumed, fmt.Sprintf("attention to cached prompt tokens (no prompt was longer than the %d-token chunk): prefill_past_* from %s", p.ChunkSize, assumed.Name))
	}
	p.MaxRunning = limits.maxRunning(assumed.MaxRunning, &fit)
	if limits.tokensPerChunk > 1 {
		p.TokensPerChunk = limits.tokensPerChunk
	}
	fit.Assumed = append(fit.Assumed, fmt.Sprintf("KV cache %d tokens and context %d tokens, from %s", p.KVCacheTokens, p.MaxModelLen, assumed.Name))

	all := append(obs, decObs...)
	// Attention within a chunk and the per-chunk cost of reading cached
	// tokens are second-order: fitted from a few TTFCs they trade against
	// the per-token cost and the knee. They are kept as assumed.
	fit.Assumed = append(fit.Assumed, fmt.Sprintf("attention within a chunk (%s) and the per-chunk cost of cached tokens (%s), from %s",
		simengine.TermPrefillSquare, simengine.TermPrefillPastChunk, assumed.Name))
	if p.Cost, err = simengine.FitObserved(all, assumed.Cost, simengine.TermPrefillSquare, simengine.TermPrefillPastChunk); err != nil {
		return p, fit, fmt.Errorf("fit a profile: %w", err)
	}
	if p.Cost.BaseMS <= 0 {
		// The non-negative fit found no per-iteration base: the decode
		// steps grow faster than linearly with the batch, which the cost
		// model cannot describe. The residuals show how far off it is.
		p.Cost.BaseMS = minBaseMS
		fit.Assumed = append(fit.Assumed, fmt.Sprintf("the fit found no per-iteration base (decode steps grow faster than linearly with the batch: the model does not describe this server well); base set to %g ms", minBaseMS))
	}
	fit.Prefill = residuals(p, obs, labels)
	fit.Decode = residuals(p, decObs, decLabels)
	raw, err := json.Marshal(fit)
	if err != nil {
		return p, fit, err
	}
	p.Fit = raw
	return p, fit, p.Validate()
}

// headersOverhead is the shortest time from send to response headers of
// the prefill run's successful requests, in ms: the network and the
// server's handling before the engine. A server that sends its headers
// only with the first token (Ollama does) tells nothing of it: then 0.
func headersOverhead(run string) (float64, error) {
	reqs, err := report.ReadRecords(filepath.Join(run, prefill.RecordsFile))
	if err != nil {
		return 0, err
	}
	var d []float64
	for i := range reqs {
		r := &reqs[i]
		if !r.OK() || r.Headers <= r.Sent || len(r.TokenTimes) == 0 {
			continue
		}
		if r.TokenTimes[0]-r.Headers < time.Millisecond {
			return 0, nil // headers come with the first token
		}
		d = append(d, (r.Headers-r.Sent).Seconds()*1000)
	}
	if len(d) == 0 {
		return 0, nil
	}
	return metrics.Summarize(d).Min, nil
}

// prefillObservations are the lone prefills of the run: the chunks of each
// prompt length against its fastest TTFC, less the overhead. The fastest,
// not the median: one request at a time, the engine's cost is the same
// for every sample and what varies is delay added on the way (a busy
// client, the network), which only ever adds.
func prefillObservations(pre prefill.Results, chunk int, overheadMS float64) ([]simengine.Observation, []string) {
	var obs []simengine.Observation
	var labels []string
	for _, r := range pre.Results {
		if r.TTFC.Count == 0 {
			continue
		}
		var shapes []simengine.Shape
		for done := 0; done < r.InputLength; done += chunk {
			n := min(chunk, r.InputLength-done)
			shapes = append(shapes, simengine.Shape{Prefill: []simengine.Chunk{{Tokens: n, Past: done}}})
		}
		ms := r.TTFC.Min*1000 - overheadMS
		if ms <= 0 {
			continue
		}
		obs = append(obs, simengine.Observation{Group: "prefill", Shapes: shapes, MS: ms})
		labels = append(labels, fmt.Sprintf("il=%d", r.InputLength))
	}
	return obs, labels
}

// limits are what the decode run says of the engine's limits.
type limits struct {
	// maxBatch is the largest batch sent, maxPeak the most requests that
	// ever decoded together.
	maxBatch, maxPeak int
	tokensPerChunk    int
}

// maxRunning is the engine's batch limit. When a batch larger than any
// peak was sent, the most requests ever decoded together is the limit;
// otherwise every batch size was held by some combination, and the limit
// is at least the largest (a smaller peak of one combination alone is not
// taken for a limit: a late launch can cause it, and the run's batch_held
// check says so).
func (l limits) maxRunning(assumed int, fit *Fit) int {
	if l.maxBatch > l.maxPeak && l.maxPeak > 0 {
		return l.maxPeak
	}
	fit.Assumed = append(fit.Assumed, fmt.Sprintf("batch limit: batches up to %d decoded whole; assumed %d", l.maxBatch, max(assumed, l.maxBatch)))
	return max(assumed, l.maxBatch)
}

// decodeObservations are the decode steps of each combination: the batch
// that decoded together and its context at the decode window's middle,
// against the per-token TBT.
func decodeObservations(run string, dec decode.Results) ([]simengine.Observation, []string, limits, error) {
	var l limits
	var obs []simengine.Observation
	var labels []string
	for _, row := range dec.Results {
		l.maxBatch = max(l.maxBatch, row.BatchSize)
		l.maxPeak = max(l.maxPeak, row.PeakConcurrency)
		if row.TokensPerChunkMean > 1.05 {
			l.tokensPerChunk = max(l.tokensPerChunk, int(math.Round(row.TokensPerChunkMean)))
		}
		step := stepMS(row)
		if step <= 0 {
			continue
		}
		comb := decode.Combination{BatchSize: row.BatchSize, InputLength: row.InputLength}
		reqs, err := report.ReadRecords(filepath.Join(run, comb.Label(), decode.RecordsFile))
		if err != nil {
			return nil, nil, l, err
		}
		a, err := decode.Analyze(decode.CombinationRun{Combination: comb, Requests: reqs})
		if err != nil || len(a.Window.Windows) == 0 {
			continue
		}
		w := slices.MaxFunc(a.Window.Windows, func(x, y decodewindow.Window) int { return cmp.Compare(x.End-x.Start, y.End-y.Start) })
		mid := w.Start + (w.End-w.Start)/2
		batch, context := 0, 0
		for i := range reqs {
			r := &reqs[i]
			if !r.OK() || len(r.TokenTimes) == 0 || r.TokenTimes[0] > mid || r.TokenTimes[len(r.TokenTimes)-1] < mid {
				continue
			}
			batch++
			context += promptTokens(r) + tokensBefore(r, mid)
		}
		if batch == 0 {
			continue
		}
		obs = append(obs, simengine.Observation{Group: "decode", Shapes: []simengine.Shape{{DecodeBatch: batch, DecodeContextTokens: context}}, MS: step})
		labels = append(labels, comb.CheckLabel())
	}
	return obs, labels, l, nil
}

// stepMS is a row's decode step in ms: the median per-token TBT, or the
// median chunk TBT over the tokens per chunk. The median, not the mean:
// one stall of the client or the server moves the mean of a short window
// but not the step the engine repeats.
func stepMS(row decode.Row) float64 {
	if row.TBTPerToken.Count > 0 {
		return row.TBTPerToken.Median * 1000
	}
	if row.TBT.Count == 0 {
		return 0
	}
	return row.TBT.Median * 1000 / max(1, row.TokensPerChunkMean)
}

func promptTokens(r *result.Request) int {
	if r.UsageReported {
		return r.PromptTokens
	}
	return r.TargetPromptTokens
}

// tokensBefore counts the tokens r received before t.
func tokensBefore(r *result.Request, t time.Duration) int {
	n := 0
	for i, at := range r.TokenTimes {
		if at >= t {
			break
		}
		if len(r.TokensPerChunk) == len(r.TokenTimes) {
			n += r.TokensPerChunk[i]
		} else {
			n++
		}
	}
	return n
}

// residuals compares the model with each observation.
func residuals(p simengine.Profile, obs []simengine.Observation, labels []string) []Residual {
	out := make([]Residual, len(obs))
	for i, o := range obs {
		model := 0.0
		for _, s := range o.Shapes {
			model += p.Duration(s).Seconds() * 1000
		}
		out[i] = Residual{Point: labels[i], MeasuredMS: o.MS, ModelMS: model, ErrorPct: 100 * (model - o.MS) / o.MS}
	}
	return out
}
