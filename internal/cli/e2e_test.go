package cli

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/autoscan"
	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

func findCheck(r *validate.Report, title string) (validate.Check, bool) {
	for _, c := range r.Checks {
		if c.Title() == title {
			return c, true
		}
	}
	return validate.Check{}, false
}

// Decode against the simulated engine: TBT in the window equals the
// engine's own gap between decode steps for the batch (within 5 %), at each
// batch size.
// That the step rises with the batch is the cost model's (held to the GPU
// calibration by pkg/simengine's profile tests); here the steps of batches
// 1, 4 and 16 differ by 1-4 %, less than the engine's own timing jitter
// under the race detector, so their order is not asserted (batch 16 measured below batch 4, both
// matching the engine, in one of three CI runs on 2026-12-01).
func TestDecodeAgainstSim(t *testing.T) {
	// Not parallel: it measures time.
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.BaseURL(), "--batch-sizes", "1", "4", "16",
		"--input-lengths", "256", "--samples-per-length", "20", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := filepath.Join(out, "decode", "latest")
	requireFiles(t, run, "decode_results.json", "decode_results.csv", "index.html", "bs=4_il=256/requests.jsonl",
		"bs=4_il=256/decode_window.json", "plots/tbt_p50_vs_batch_size.png", "plots/tbt_p99_vs_batch_size.png")
	requireCharts(t, run, "tbt_p50_vs_batch_size", "tbt_p99_vs_batch_size")
	res := readResults[decode.Results](t, filepath.Join(run, "decode_results.json"))
	if len(res.Results) != 3 {
		t.Fatalf("%d rows, want 3", len(res.Results))
	}
	// The engine's own token cadence: the time between the releases of two
	// decode steps in a row of the same batch (no prefill work), each
	// release at the step's end plus how late the engine goroutine woke
	// for it, as TestPrefillAgainstSim takes the first token's. The steps'
	// nominal length was the truth before; a CI run under load measured
	// batch 4's TBT P50 at 7.8 ms against 6.6 ms steps, without a record
	// of when the engine really released its tokens. The client must
	// measure what the engine did, not what it meant to do.
	gaps := map[int][]float64{}
	var prev simengine.Iteration
	for i, it := range srv.Iterations() {
		pure := it.PrefillTokens == 0 && it.DecodeBatch > 0
		if i > 0 && pure && prev.PrefillTokens == 0 && prev.DecodeBatch == it.DecodeBatch {
			gaps[it.DecodeBatch] = append(gaps[it.DecodeBatch], (it.End + it.Late - prev.End - prev.Late).Seconds())
		}
		prev = it
	}
	for _, row := range res.Results {
		truth := metrics.Summarize(gaps[row.BatchSize]).Median
		if got := row.TBT.Median; got < truth*0.95 || got > truth*1.05 {
			t.Errorf("batch %d: TBT P50 %.3f ms, engine's gap between decode steps %.3f ms (±5%%)", row.BatchSize, 1000*got, 1000*truth)
		}
		if row.PeakConcurrency != row.BatchSize {
			t.Errorf("batch %d: peak %d", row.BatchSize, row.PeakConcurrency)
		}
	}
	// The server's own metrics, scraped during the run, confirm the batch.
	if c, ok := findCheck(res.Validation, "server_batch [bs=16,il=256]"); !ok || c.Status != validate.Pass {
		t.Errorf("server_batch [bs=16,il=256] = %+v (found %v), want PASS from the scraped /metrics", c, ok)
	}
	if c, ok := findCheck(res.Validation, "prefix_cache [bs=16,il=256]"); !ok || c.Status != validate.Pass {
		t.Errorf("prefix_cache [bs=16,il=256] = %+v (found %v), want PASS", c, ok)
	}
}

// A server that cannot run the whole batch at once: the batch check warns
// with the peak it reached.
func TestDecodeBatchLimitWarns(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{MaxRunning: 2})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.BaseURL(), "--batch-sizes", "4",
		"--input-lengths", "512", "--samples-per-length", "5", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[decode.Results](t, filepath.Join(out, "decode", "latest", "decode_results.json"))
	c, ok := findCheck(res.Validation, "batch_held [bs=4,il=512]")
	// The engine runs 2 at a time: the second pair's prefill starts as the
	// first pair ends. The second request's last chunk and the third's
	// first leave the engine together, so a loaded machine (the engine's
	// writers run in this process) can put them in either order and the
	// measured peak may reach 3. Reaching 4 takes the first request's last
	// chunk sent after the fourth's first, a prefill later: at 512 tokens
	// about 47 ms (16 ms at 128, which a CI run once exceeded).
	if !ok || c.Status != validate.Warn || !(strings.Contains(c.Detail, "at most 2 of the 4") || strings.Contains(c.Detail, "at most 3 of the 4")) {
		t.Errorf("batch_held = %+v, want a WARN naming the peak of 2", c)
	}
}

// One request of the batch fails with HTTP 500: the run still ends within
// its timeout, records the failure and fails validation.
func TestDecodeFailedRequestDoesNotHang(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
		if id := r.Header.Get("X-Request-Id"); strings.HasSuffix(id, "-1") && !strings.HasSuffix(id, "--1") {
			return openaitest.Script{Status: 500, HeaderDelay: 20 * time.Millisecond}
		}
		return openaitest.Script{TTFT: 5 * time.Millisecond, Gap: 2 * time.Millisecond}
	})
	out := t.TempDir()
	began := time.Now()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.URL, "--batch-sizes", "3",
		"--input-lengths", "64", "--samples-per-length", "5", "--warmup-requests", "0", "--benchmark-timeout", "20", "--output-dir", out, "--quiet")
	if code != ExitValidation {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("the run took %v", took)
	}
	reqs, err := report.ReadRecords(filepath.Join(out, "decode", "latest", "bs=3_il=64", "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 || reqs[1].HTTPStatus != 500 || reqs[1].ErrClass == "" || !reqs[0].OK() || !reqs[2].OK() {
		t.Errorf("requests = %+v, want 3 with the second failed by HTTP 500", reqs)
	}
	if !strings.Contains(stdout, "no_errors [bs=3,il=64]") {
		t.Errorf("validation table lacks the failed check:\n%s", stdout)
	}
}

// stressArgs are the flags of a short stress run. The client-fidelity
// bound is generous: these tests are about the server's numbers, and a
// loaded test machine makes the client lag (TestStressFidelityFlagsLag
// covers the check itself).
func stressArgs(base, out string, extra ...string) []string {
	return append([]string{"--api-base", base, "--input-length", "128", "--output-length", "32", "--max-client-lag", "10s",
		"--point-duration", "3", "--warmup-duration", "1", "--grace-period", "5", "--output-dir", out, "--quiet"}, extra...)
}

// Closed loop against the engine: throughput rises with load while
// interactivity falls; the seven plots are drawn.
func TestStressManualAgainstSim(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1", "4", "16")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := filepath.Join(out, "stress", "latest")
	requireFiles(t, run, "stress_results.json", "stress_results.csv", "index.html", "c=4/requests.jsonl", "c=16/level.json")
	for _, stem := range []string{"throughput_vs_load", "output_throughput_vs_latency", "e2e_latency_vs_load", "interactivity_vs_load",
		"ttfc_vs_load", "input_throughput_vs_interactivity", "output_throughput_vs_interactivity"} {
		requireFiles(t, run, "plots/"+stem+".png")
		requireCharts(t, run, stem)
	}
	res := readResults[stress.Results](t, filepath.Join(run, "stress_results.json"))
	if len(res.Results) != 3 {
		t.Fatalf("%d points, want 3", len(res.Results))
	}
	for i := 1; i < 3; i++ {
		a, b := res.Results[i-1], res.Results[i]
		if b.OutputThroughput <= a.OutputThroughput {
			t.Errorf("output throughput %0.f at c=%v is not above %0.f at c=%v", b.OutputThroughput, b.Level, a.OutputThroughput, a.Level)
		}
		if b.InteractivityP50 >= a.InteractivityP50 {
			t.Errorf("interactivity %0.1f at c=%v is not below %0.1f at c=%v", b.InteractivityP50, b.Level, a.InteractivityP50, a.Level)
		}
	}
	for _, want := range []string{"Concurrency", "In Tput", "Out Tput", "E2E P50", "TTFC P99", "Intrctvty slowest 1%", "Reqs"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("results table lacks column %q", want)
		}
	}
}

// Open loop: the client sends at the scheduled rate.
func TestStressOpenLoopKeepsRate(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out,
		"--traffic-mode", "fixed-rate", "--concurrency-levels", "1", "10", "50", "--point-duration", "4")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	for _, p := range res.Results {
		if p.ScheduledRate == 0 || p.AchievedRate < p.ScheduledRate*0.95 || p.AchievedRate > p.ScheduledRate*1.05 {
			t.Errorf("level %v: sent %.2f req/s, scheduled %.2f", p.Level, p.AchievedRate, p.ScheduledRate)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "stress", "latest", "qps=10", "requests.jsonl")); err != nil {
		t.Errorf("open-loop level folder: %v", err)
	}
}

// A server failing a tenth of the requests: the sweep completes, counts
// the errors per level and fails validation.
func TestStressCountsFailures(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{FailFraction: 0.1, FailStatus: 500})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "4", "8")...)
	if code != ExitValidation {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	for _, p := range res.Results {
		if p.Errors == 0 || p.ErrorsBy.ByStatus[500] != p.Failed() {
			t.Errorf("level %v: %d errors in the window, %d in all (%v), want some, all HTTP 500", p.Level, p.Errors, p.Failed(), p.ErrorsBy)
		}
	}
}

// Ctrl-C after two levels, then --resume-dir latest: the resumed run holds
// every level and did not run the first two again.
func TestStressInterruptAndResume(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// Interrupt once the third level has started: its folder's
		// requests come after the second level's files are written.
		for ctx.Err() == nil {
			matches, _ := filepath.Glob(filepath.Join(out, "stress", "*", "c=2", "level.json"))
			if len(matches) > 0 {
				time.Sleep(500 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	code, stdout, stderr := runCLI(t, ctx, Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1", "2", "4")...)
	if code != ExitInterrupted {
		t.Fatalf("interrupted run: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInterrupted, stdout, stderr)
	}
	first := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	if first.EndReason != "interrupted" || len(first.Levels) != 3 || first.Levels[2].Complete() {
		t.Fatalf("interrupted run: end %q, levels %+v", first.EndReason, first.Levels)
	}
	c1, err := os.ReadFile(filepath.Join(out, "stress", "latest", "c=1", "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr = runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1", "2", "4", "--resume-dir", "latest")...)
	if code != ExitOK {
		t.Fatalf("resumed run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	second := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	var levels []float64
	for _, p := range second.Results {
		levels = append(levels, p.Level)
	}
	if !slices.Equal(levels, []float64{1, 2, 4}) || second.ResumedFrom == "" {
		t.Errorf("resumed run has levels %v (resumed from %q), want [1 2 4]", levels, second.ResumedFrom)
	}
	for _, lr := range second.Levels {
		if reused := lr.ResumedFrom != ""; reused != (lr.Level < 4) {
			t.Errorf("level %v: resumed_from %q, want it set for the complete levels 1 and 2 only", lr.Level, lr.ResumedFrom)
		}
	}
	if page, err := os.ReadFile(filepath.Join(out, "stress", "latest", "index.html")); err != nil || !strings.Contains(string(page), "Levels measured by this run") {
		t.Errorf("index.html does not say which levels were resumed (%v)", err)
	}
	again, err := os.ReadFile(filepath.Join(out, "stress", "latest", "c=1", "requests.jsonl"))
	if err != nil || string(again) != string(c1) {
		t.Errorf("level 1 was run again instead of reused (%v)", err)
	}
	if !strings.Contains(stdout, "Stress Results") {
		t.Errorf("no results table:\n%s", stdout)
	}

	// A resume with another workload is refused.
	code, _, stderr = runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--output-length", "64", "--resume-dir", "latest")...)
	if code != ExitUsage || !strings.Contains(stderr, "--output-length 32") {
		t.Errorf("mismatched resume: exit %d, %s", code, stderr)
	}
}

// Auto mode finds where the engine saturates: with at most 8 requests
// running, throughput stops growing past 8 clients.
func TestStressAutoFindsTheKnee(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{MaxRunning: 8})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--stress-mode", "auto",
		"--point-duration", "3", "--warmup-duration", "1", "--auto-fill-points", "4", "--auto-max-level", "64")...)
	if code != ExitOK && code != ExitValidation {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	if res.AutoPlan == nil {
		t.Fatal("no auto plan in the results")
	}
	// Throughput stops growing by 5% at 8 clients; the upper bound must lie
	// within one doubling of it.
	if res.AutoPlan.Upper < 8 || res.AutoPlan.Upper > 32 {
		t.Errorf("upper bound %v, want within one doubling of 8..16 (decisions: %+v)", res.AutoPlan.Upper, res.AutoPlan.Decisions)
	}
}

// A point deliberately driven past the client's capacity: busy goroutines
// take the CPUs away from the client during the level, and the fidelity
// check flags the point.
func TestStressFidelityFlagsLag(t *testing.T) {
	// Not parallel: it starves its own process of CPU on purpose.
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	ctx, stop := context.WithCancel(t.Context())
	var hogs sync.WaitGroup
	for range 8 * runtime.GOMAXPROCS(0) {
		hogs.Go(func() {
			x := 0
			for ctx.Err() == nil {
				x++
			}
			_ = x
		})
	}
	// Give the CPUs back once the level is written: only the level matters.
	go func() {
		for ctx.Err() == nil {
			if m, _ := filepath.Glob(filepath.Join(out, "stress", "*", "qps=100", "level.json")); len(m) > 0 {
				stop()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, "--api-base", srv.BaseURL(), "--traffic-mode", "fixed-rate",
		"--concurrency-levels", "100", "--input-length", "64", "--output-length", "8", "--point-duration", "2",
		"--warmup-duration", "0.5", "--grace-period", "5", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	stop()
	hogs.Wait()
	if code != ExitOK && code != ExitValidation {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	c, ok := findCheck(res.Validation, "client_fidelity [qps=100]")
	if !ok || c.Status == validate.Pass {
		t.Errorf("client_fidelity = %+v, want WARN or FAIL with the CPUs taken away", c)
	}
}

// A server where a tenth of the streams hang after their first token:
// the hung requests did not complete, so they are failed requests of
// class timeout (not cut), no_errors fails and the exit code is 3.
func TestStressHungStreamsFail(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{StallFraction: 0.1, StallAfterTokens: 1, StallDuration: time.Hour})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "4", "--grace-period", "1")...)
	if code != ExitValidation {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	p := res.Results[0]
	if p.ErrorsBy.ByClass[result.ErrTimeout] == 0 || p.Cut != 0 {
		t.Errorf("hung streams: errors %v, cut %d; want timeouts and none cut", p.ErrorsBy, p.Cut)
	}
	if c, ok := findCheck(res.Validation, "no_errors [c=4]"); !ok || c.Status != validate.Fail {
		t.Errorf("no_errors = %+v, want FAIL", c)
	}
}

// An SLO just above the engine's decode step passes (almost) every
// request, one just below passes (almost) none; the goodput keys, the CSV
// columns, the console column and the goodput chart appear.
func TestStressGoodputAgainstSim(t *testing.T) {
	t.Parallel()
	// One client: each decode step of the engine's default profile takes
	// 6.55 ms + 8.55 µs + 42.1 ns per context token (~6.6 ms here), and a
	// request's TPOT is the mean of its steps.
	tests := []struct {
		slo      string
		min, max float64
	}{
		{"tpot=9ms", 0.9, 1},
		{"tpot=5ms", 0, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.slo, func(t *testing.T) {
			t.Parallel()
			srv := startTestSim(t, simengine.Options{})
			out := t.TempDir()
			code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1", "--slo", tt.slo)...)
			if code != ExitOK {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			run := filepath.Join(out, "stress", "latest")
			requireFiles(t, run, "plots/goodput_vs_load.png")
			requireCharts(t, run, "goodput_vs_load")
			res := readResults[stress.Results](t, filepath.Join(run, "stress_results.json"))
			if res.Config.SLO.String() != tt.slo {
				t.Errorf("results record the SLO %q, want %q", res.Config.SLO, tt.slo)
			}
			p := res.Results[0]
			if p.Goodput == nil || p.Goodput.Judged != p.Sent || p.Goodput.Ratio < tt.min || p.Goodput.Ratio > tt.max {
				t.Fatalf("goodput %+v of %d sent (TPOT P50 %.2f ms), want a ratio in [%v, %v]", p.Goodput, p.Sent, 1000*p.TPOTP50, tt.min, tt.max)
			}
			if want := float64(p.Goodput.Good) / (p.WindowEndS - p.WindowStartS); !near(p.Goodput.RPS, want) {
				t.Errorf("goodput_rps %v, want %v", p.Goodput.RPS, want)
			}
			csv, err := os.ReadFile(filepath.Join(run, "stress_results.csv"))
			if err != nil || !strings.Contains(string(csv), "goodput_ratio,goodput_rps,goodput_output_throughput_tok_s") {
				t.Errorf("CSV lacks the goodput columns (%v):\n%s", err, csv)
			}
			if !strings.Contains(stdout, "Goodput") {
				t.Errorf("console table lacks the Goodput column:\n%s", stdout)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// A threshold just above the engine's decode step holds (exit 0), one
// just below is crossed (exit 4, the measurement still valid);
// --validate-only re-checks the saved run's thresholds, or those given.
func TestStressThresholdsAgainstSim(t *testing.T) {
	t.Parallel()
	// One client: a decode step of the default profile is ~6.6 ms, so
	// TPOT P50 lies between 5 and 9 ms (see TestStressGoodputAgainstSim).
	tests := []struct {
		threshold string
		want      int
	}{
		{"tpot_p50<9ms", ExitOK},
		{"tpot_p50<5ms", ExitThreshold},
	}
	for _, tt := range tests {
		t.Run(tt.threshold, func(t *testing.T) {
			t.Parallel()
			srv := startTestSim(t, simengine.Options{})
			out := t.TempDir()
			code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1",
				"--threshold", tt.threshold, "--threshold", "error_rate<=0%")...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, stdout, stderr)
			}
			if strings.Contains(stderr, "error:") {
				t.Errorf("a crossed threshold printed an error line:\n%s", stderr)
			}
			res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
			if res.Validation.Failed() || len(res.Validation.Thresholds) != 2 {
				t.Fatalf("validation %+v, want passing checks and 2 thresholds", res.Validation)
			}
			if !strings.Contains(stdout, "Thresholds") || !strings.Contains(stdout, tt.threshold) {
				t.Errorf("console lacks the Thresholds table:\n%s", stdout)
			}
			// --validate-only gives the same verdict from the saved run...
			if code, stdout, _ := runCLI(t, t.Context(), Stress, "--validate-only", "--output-dir", out, "--max-client-lag", "10s"); code != tt.want {
				t.Errorf("--validate-only: exit %d, want %d\n%s", code, tt.want, stdout)
			}
			// ...and judges the thresholds it is given instead.
			if code, stdout, _ := runCLI(t, t.Context(), Stress, "--validate-only", "--output-dir", out, "--max-client-lag", "10s",
				"--threshold", "tpot_p50<1ms"); code != ExitThreshold {
				t.Errorf("--validate-only --threshold tpot_p50<1ms: exit %d, want %d\n%s", code, ExitThreshold, stdout)
			}
		})
	}
}

// Auto mode with an SLO bisects to the highest level that meets it. The
// engine runs at most 8 requests at once; beyond 8 clients a request
// waits in the queue for a slot. Requests admitted together finish
// together, so at 9 clients one request in 9 waits a whole request's
// time (~128 decode steps of ~6.7 ms: ~850 ms), far past the TTFC
// objective of 300 ms (10-25 ms without queueing, leaving room for a
// loaded machine): 8 of 9 good is below the 95 % attainment, and the cost
// model puts the limit at 8 clients.
func TestStressAutoFindsMaxLevelWithinSLO(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{MaxRunning: 8})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--stress-mode", "auto",
		"--output-length", "128", "--auto-fill-points", "2", "--auto-max-level", "16", "--slo", "ttfc=300ms", "--slo-attainment", "0.95")...)
	if code != ExitOK && code != ExitValidation {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	if res.MaxLevelWithinSLO == nil || res.SLOSearch == nil {
		t.Fatalf("no max_level_within_slo in the results:\n%s", stdout)
	}
	ratios := map[float64]float64{}
	throughput := map[float64]float64{} // what the scan's first phase compares
	for _, p := range res.Results {
		if p.Goodput != nil {
			ratios[p.Level] = p.Goodput.Ratio
		}
		throughput[p.Level] = p.OutputThroughput
	}
	stop := autoscan.StopReason("")
	if res.AutoPlan != nil {
		stop = res.AutoPlan.Phase1Stop
	}
	t.Logf("max_level_within_slo %v, search %+v, goodput by level %v; first phase stopped: %s, output tok/s by level %v",
		*res.MaxLevelWithinSLO, *res.SLOSearch, ratios, stop, throughput)
	if m := *res.MaxLevelWithinSLO; m < 7 || m > 9 {
		t.Errorf("max_level_within_slo %v, want 8 (±1 on a loaded machine); search %+v, goodput by level %v", m, res.SLOSearch, ratios)
	}
	if res.SLOSearch.Missed == 0 || res.SLOSearch.Missed > 1.2*res.SLOSearch.MaxLevel+1 {
		t.Errorf("search ended at %v..%v, want bounds within 10 %% or adjacent", res.SLOSearch.MaxLevel, res.SLOSearch.Missed)
	}
	if res.OutputLength != 128 {
		t.Fatalf("output length %d, want 128", res.OutputLength)
	}
	if !strings.Contains(stdout, "Highest level within the SLO ttfc=300ms") {
		t.Errorf("console lacks the SLO verdict:\n%s", stdout)
	}
}
