package predict

import (
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// overhead is the synthetic runs' network and server time before the
// engine: headers after it, first token after it plus the prefill.
const overhead = 300 * time.Microsecond

// writeRun writes a run folder under base/bench: its results file and,
// per records path, its records.
func writeRun(t *testing.T, base, bench, file string, results any, records map[string][]result.Request) {
	t.Helper()
	dir, err := report.Create(base, bench, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for path, reqs := range records {
		rf, err := dir.Records(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := rf.Close(reqs); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.WriteFile(file, func(w io.Writer) error { return report.WriteJSON(w, results) }); err != nil {
		t.Fatal(err)
	}
	if err := dir.Finish(); err != nil {
		t.Fatal(err)
	}
}

// prefillRun is what the prefill benchmark would record against an engine
// timed exactly by p: each prompt's TTFC is its lone prefill plus overhead.
func prefillRun(p simengine.Profile, lengths []int) (prefill.Results, []result.Request) {
	var reqs []result.Request
	at := time.Duration(0)
	for _, l := range lengths {
		for range 3 {
			ttfc := overhead + p.LonePrefillTime(l, 0)
			reqs = append(reqs, result.Request{Seq: len(reqs), TargetPromptTokens: l, PromptTokens: l, UsageReported: true,
				OutputTokens: 1, Sent: at, Headers: at + overhead, TokenTimes: []time.Duration{at + ttfc}, End: at + ttfc})
			at += ttfc + time.Millisecond
		}
	}
	return prefill.Results{Results: prefill.Analyze(reqs)}, reqs
}

// decodeCombination is what one decode combination would record: a batch
// decoding together, one token per step, each step timed by p at the
// batch's context in the middle of the window.
func decodeCombination(p simengine.Profile, c decode.Combination) (decode.Row, []result.Request, error) {
	const tokens = 41 // the window's middle falls after token 20 of each request
	step := p.DecodeStepTime(c.BatchSize, c.BatchSize*(c.InputLength+tokens/2))
	reqs := make([]result.Request, c.BatchSize)
	for i := range reqs {
		r := result.Request{Seq: i, TargetPromptTokens: c.InputLength, PromptTokens: c.InputLength, UsageReported: true, OutputTokens: tokens}
		for k := range tokens {
			r.TokenTimes = append(r.TokenTimes, time.Second+time.Duration(k)*step)
		}
		r.End = r.TokenTimes[tokens-1]
		reqs[i] = r
	}
	a, err := decode.Analyze(decode.CombinationRun{Combination: c, Requests: reqs})
	return a.Row, reqs, err
}

// Round trip: runs recorded against an engine timed exactly by the default
// profile; the profile fitted to them must time the iterations a stress
// run is made of as the engine does, including a prefill chunk fused with
// decode steps, which the runs never measured. Timing is synthetic, so the
// test is exact and load-free; README's round trip runs the binaries
// against the real-time engine and compares the stress curves.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	truth, err := simengine.LookupProfile(simengine.DefaultProfileName())
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	pre, preReqs := prefillRun(truth, []int{64, 128, 256, 512, 1024, 2048})
	writeRun(t, base, "prefill", prefill.ResultsFile, pre, map[string][]result.Request{prefill.RecordsFile: preReqs})
	dec := decode.Results{Config: decode.Config{BatchSizes: []int{1, 4, 16, 32}, InputLengths: []int{128, 1024}, EngineChunkSize: 512}}
	records := map[string][]result.Request{}
	for _, c := range decode.Combinations(dec.Config) {
		row, reqs, err := decodeCombination(truth, c)
		if err != nil {
			t.Fatal(err)
		}
		dec.Results = append(dec.Results, row)
		records[filepath.Join(c.Label(), decode.RecordsFile)] = reqs
	}
	writeRun(t, base, "decode", decode.ResultsFile, dec, records)

	src, err := Resolve(base)
	if err != nil {
		t.Fatal(err)
	}
	fitted, fit, err := FromRuns(src, truth)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fit.OverheadMS-overhead.Seconds()*1000) > 1e-6 {
		t.Errorf("overhead %v ms, want %v", fit.OverheadMS, overhead.Seconds()*1000)
	}
	for _, r := range append(fit.Prefill, fit.Decode...) {
		if math.Abs(r.ErrorPct) > 2 {
			t.Errorf("fit residual %s: %.2f %% (model %.3f ms, measured %.3f ms)", r.Point, r.ErrorPct, r.ModelMS, r.MeasuredMS)
		}
	}
	if fitted.ChunkSize != 512 || fitted.MaxRunning != truth.MaxRunning {
		t.Errorf("limits: chunk %d, running %d; want 512 and %d", fitted.ChunkSize, fitted.MaxRunning, truth.MaxRunning)
	}
	// The iterations of a stress run at 512 prompt tokens: prefill chunks
	// alone and fused with decode steps, and decode steps, at the batch
	// sizes and contexts of 1 to 32 clients.
	for _, it := range []struct {
		prefill, past, batch, context int
	}{
		{128, 0, 0, 0}, {512, 0, 0, 0}, {512, 512, 0, 0},
		{0, 0, 1, 600}, {0, 0, 8, 8 * 600}, {0, 0, 32, 32 * 600},
		{512, 0, 2, 2 * 600}, {512, 0, 8, 8 * 600}, {512, 0, 16, 16 * 600}, {256, 0, 30, 30 * 600},
	} {
		want := truth.IterationTime(it.prefill, it.past, it.batch, it.context)
		got := fitted.IterationTime(it.prefill, it.past, it.batch, it.context)
		if errPct := 100 * float64(got-want) / float64(want); math.Abs(errPct) > 3 {
			t.Errorf("iteration %+v: fitted %v, engine %v: error %.1f %%, want within 3 %%", it, got, want, errPct)
		}
	}
}

// A batch the server could not hold sets the engine's batch limit.
func TestBatchLimitFromPeaks(t *testing.T) {
	t.Parallel()
	var fit Fit
	if got := (limits{maxBatch: 32, maxPeak: 12}).maxRunning(256, &fit); got != 12 {
		t.Errorf("maxRunning with a 32-batch peaking at 12 = %d, want 12", got)
	}
	if got := (limits{maxBatch: 32, maxPeak: 32}).maxRunning(256, &fit); got != 256 || len(fit.Assumed) != 1 {
		t.Errorf("maxRunning with every batch held = %d (assumed %v), want the assumed 256, said", got, fit.Assumed)
	}
}

func TestResolveRefusesMissingRuns(t *testing.T) {
	t.Parallel()
	if _, err := Resolve(t.TempDir()); err == nil {
		t.Error("Resolve(empty folder) = nil error, want one naming the missing prefill run")
	}
	if _, err := Resolve(filepath.Join(t.TempDir(), "a") + "+" + filepath.Join(t.TempDir(), "b")); err == nil {
		t.Error("Resolve(a+b) of missing runs = nil error")
	}
}
