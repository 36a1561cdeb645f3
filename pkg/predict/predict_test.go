package predict

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// engine is a simulated engine with a client and calibrated prompts.
type engine struct {
	srv     *simengine.Server
	client  *client.Client
	prompts *sampler.Sampler
}

func startEngine(t *testing.T, p simengine.Profile, lengths []int) engine {
	t.Helper()
	srv, err := simengine.Start(simengine.Options{Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := client.New(client.Config{BaseURL: srv.BaseURL(), Model: srv.Model(), RequestTimeout: time.Minute, MaxConcurrency: 64, NonStandard: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prompts := sampler.New(sampler.Config{Seed: 1}, func(ctx context.Context, text string) (int, error) {
		n, _, err := c.Tokenize(ctx, text)
		return n, err
	})
	if err := prompts.Calibrate(t.Context(), lengths); err != nil {
		t.Fatal(err)
	}
	return engine{srv: srv, client: c, prompts: prompts}
}

// save runs a benchmark into a run folder under base and writes its
// results file, as the CLI does.
func save(t *testing.T, base, bench, file string, run func(runner.Deps) (any, error)) {
	t.Helper()
	dir, err := report.Create(base, bench, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(runner.Deps{Records: func(path string) (runner.Sink, error) { return dir.Records(path) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.WriteFile(file, func(w io.Writer) error { return report.WriteJSON(w, res) }); err != nil {
		t.Fatal(err)
	}
	if err := dir.Finish(); err != nil {
		t.Fatal(err)
	}
}

// Round trip: prefill and decode runs against the default engine, a
// profile fitted to them, then the stress curve on the fitted engine
// against the curve on the engine itself. The bounds are wider than the
// README's round trip (within 5 % on every figure, measured by the
// binaries): here the engines, the client and the race detector share two
// cores with the rest of the test suite, and a closed loop's TTFC P50
// depends on where arrivals fall in the engine's iterations. What the fit
// must recover tightly is asserted on the fitted terms themselves.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	truth, err := simengine.LookupProfile(simengine.DefaultProfileName())
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	e := startEngine(t, truth, []int{64, 128, 256, 512, 1024, 2048})
	save(t, base, "prefill", prefill.ResultsFile, func(d runner.Deps) (any, error) {
		d.Sender, d.Prompts = e.client, e.prompts
		cfg := prefill.Config{InputLengths: []int{64, 128, 256, 512, 1024, 2048}, OutputTokens: 1, SamplesPerLength: 20, WarmupRequests: 1}
		res, err := prefill.Run(t.Context(), cfg, d)
		return res, err
	})
	save(t, base, "decode", decode.ResultsFile, func(d runner.Deps) (any, error) {
		d.Sender, d.Prompts = e.client, e.prompts
		cfg := decode.Config{BatchSizes: []int{1, 4, 16}, InputLengths: []int{128, 2048}, SamplesPerLength: 30,
			EngineChunkSize: 512, TicketTimeout: result.Seconds(10 * time.Second)}
		res, err := decode.Run(t.Context(), cfg, decode.Deps{Deps: d})
		return res, err
	})
	src, err := Resolve(base)
	if err != nil {
		t.Fatal(err)
	}
	fitted, fit, err := FromRuns(src, truth)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fitted.Cost.BaseMS, truth.Cost.BaseMS; math.Abs(got-want) > 0.03*want {
		t.Errorf("fitted iteration base %.3f ms, the engine's is %.3f ms", got, want)
	}
	if got, want := fitted.Cost.DecodeContextNS, truth.Cost.DecodeContextNS; math.Abs(got-want) > 0.15*want {
		t.Errorf("fitted decode context cost %.1f ns/token, the engine's is %.1f", got, want)
	}
	for _, r := range fit.Decode {
		if math.Abs(r.ErrorPct) > 5 {
			t.Errorf("fit residual %s: %.1f %% (model %.2f ms, measured %.2f ms)", r.Point, r.ErrorPct, r.ModelMS, r.MeasuredMS)
		}
	}

	t.Logf("fitted: %+v, chunk %d, running %d", fitted.Cost, fitted.ChunkSize, fitted.MaxRunning)
	cfg := stress.Config{InputLength: 512, OutputLength: 64, TrafficMode: stress.FixedClients, Mode: stress.Manual,
		Levels: []float64{2, 16}, PointDuration: result.Seconds(8 * time.Second), WarmupDuration: result.Seconds(2 * time.Second),
		GracePeriod: result.Seconds(5 * time.Second), Seed: 1}
	curve := func(p simengine.Profile) []stress.Point {
		e := startEngine(t, p, []int{512})
		res, err := stress.Run(t.Context(), cfg, stress.Deps{Deps: runner.Deps{Sender: e.client, Prompts: e.prompts, SkipValidation: true}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Results
	}
	measured, predicted := curve(truth), curve(fitted)
	for i := range measured {
		m, p := measured[i], predicted[i]
		for _, f := range []struct {
			name       string
			pred, meas float64
			tolPct     float64
		}{
			{"output throughput", p.OutputThroughput, m.OutputThroughput, 10},
			{"TTFC P50", p.TTFCP50, m.TTFCP50, 25},
			{"interactivity P50", p.InteractivityP50, m.InteractivityP50, 10},
			{"E2E P50", p.E2EP50, m.E2EP50, 10},
		} {
			if errPct := 100 * (f.pred - f.meas) / f.meas; math.Abs(errPct) > f.tolPct || math.IsNaN(errPct) {
				t.Errorf("level %v: predicted %s %.4g, measured %.4g: error %.1f %%, want within %v %%", m.Level, f.name, f.pred, f.meas, errPct, f.tolPct)
			}
		}
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
