package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// benchRequest reports whether the server got one of the benchmark's own
// requests (X-Request-Id "<run>-<seq>"), not a setup probe (negative seq).
func benchRequest(r openaitest.Received) bool {
	id := r.Header.Get("X-Request-Id")
	return id != "" && !strings.Contains(id, "--")
}

// A server that dies once the benchmark starts (every connection closed
// without an answer) and one that answers every request with 429 and
// Retry-After: the first level ends early with the reason recorded, the
// next level's first requests fail the same way and end the run, the
// clients never hammer the server, and the exit code is 3.
func TestStressFailingServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script openaitest.Script
		reason string
		// most is the most benchmark requests the server may see.
		most int
	}{
		{"dead", openaitest.Script{Hangup: true}, "connection failures in a row", 60},
		{"throttling", openaitest.Script{Status: 429, Header: http.Header{"Retry-After": {"1"}}}, "in the last 5s failed", 80},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
				if benchRequest(r) {
					return tc.script
				}
				return openaitest.Script{TTFT: 2 * time.Millisecond, Gap: time.Millisecond}
			})
			out := t.TempDir()
			code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.URL, out,
				"--concurrency-levels", "4", "8", "16", "--point-duration", "30", "--warmup-duration", "1")...)
			if code != ExitValidation {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
			}
			n := 0
			for _, r := range srv.Completions() {
				if benchRequest(r) {
					n++
				}
			}
			if n > tc.most {
				t.Errorf("the server got %d benchmark requests, want at most %d", n, tc.most)
			}
			res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
			// Three 30 s levels ran for seconds at most (the wall time of the
			// whole process, setup and plots included, depends on the machine).
			if res.DurationS > 20 {
				t.Errorf("the levels ran for %.1f s: they did not end early", res.DurationS)
			}
			if res.EndReason != result.EndServerFailing || len(res.Levels) != 2 {
				t.Fatalf("end %q with %d levels, want server_failing after 2", res.EndReason, len(res.Levels))
			}
			for _, l := range res.Levels {
				if l.EndReason != result.EndServerFailing || l.StopReason == "" || l.Backoffs == 0 {
					t.Errorf("level %v: end %q, reason %q, %d backoffs", l.Level, l.EndReason, l.StopReason, l.Backoffs)
				}
			}
			if !strings.Contains(res.Levels[0].StopReason, tc.reason) {
				t.Errorf("first level's reason %q lacks %q", res.Levels[0].StopReason, tc.reason)
			}
			if !strings.Contains(res.Levels[1].StopReason, "first 10 requests all failed") && !strings.Contains(res.Levels[1].StopReason, tc.reason) {
				t.Errorf("second level's reason %q", res.Levels[1].StopReason)
			}
			if c, ok := findCheck(res.Validation, "server_healthy [c=4]"); !ok || c.Status != validate.Fail {
				t.Errorf("server_healthy [c=4] = %+v, want FAIL", c)
			}
		})
	}
}

// An --output-dir that cannot be written is found before the server is
// contacted: exit 2, one line naming the flag, no request sent.
func TestUnwritableOutputDir(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond})
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{file, filepath.Join(file, "below")} {
		code, _, stderr := runCLI(t, t.Context(), Prefill, "--api-base", srv.URL, "--input-lengths", "64", "--output-dir", out)
		if code != ExitUsage || !strings.Contains(stderr, "--output-dir") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("--output-dir %s: exit %d, stderr %q; want %d naming --output-dir in one line", out, code, stderr, ExitUsage)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("the server got %d requests before the output dir was checked", n)
	}
}

// The results are written before the plots and their assets, and what
// comes after them cannot lose them: when the plots and the index page
// cannot be written (here their names are taken, as a full disk would
// refuse them), the results JSON and CSV are saved, the table printed
// and the run folder finished.
func TestResultsBeforePlots(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	dir, err := report.Create(out, string(Prefill), time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir.Path(), "plots"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir.Path(), "index.html", "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := &prefill.Results{Meta: result.Meta{Type: "prefill", EndReason: result.EndCompleted},
		Results: []prefill.Row{{InputLength: 64, TTFC: metrics.Summarize([]float64{0.01, 0.012}), PrefillTPS: 6000, Requests: 2}}}
	var stdout, stderr strings.Builder
	e := &env{stdout: &stdout, stderr: &stderr, now: time.Now}
	log := newLogger(&stderr, &Common{LogLevel: "warn"})
	if err := finishRun(t.Context(), e, dir, newRunFiles(dir, log, ""), "Prefill", prefillView(res), nil, view{}); err != nil {
		t.Fatalf("finishRun with unwritable plots: %v\n%s", err, stderr.String())
	}
	requireFiles(t, dir.FinalPath(), prefill.ResultsFile, "prefill_results.csv")
	if !strings.Contains(stderr.String(), "plots") || !strings.Contains(stderr.String(), "report page") {
		t.Errorf("the plot and report page failures are not logged: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "64") {
		t.Errorf("the results table was not printed: %q", stdout.String())
	}
}

// Auto mode cannot find a knee on a dead server: the scan stops at the
// first failing level, recorded, with exit 3. (Its one client backs off
// up to 5 s, so the 10 failures in a row take about 16 s.)
func TestStressAutoDeadServer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
		if benchRequest(r) {
			return openaitest.Script{Hangup: true}
		}
		return openaitest.Script{TTFT: 2 * time.Millisecond, Gap: time.Millisecond}
	})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.URL, out, "--stress-mode", "auto", "--point-duration", "30")...)
	if code != ExitValidation {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", "stress_results.json"))
	if res.EndReason != result.EndServerFailing || !strings.Contains(res.StopReason, "connection failures in a row") || len(res.Levels) != 1 {
		t.Errorf("end %q (%s) with %d levels, want server_failing after 1", res.EndReason, res.StopReason, len(res.Levels))
	}
}

// A password in --api-base is never printed nor saved: the banner, the
// results and the records carry the URL with the password redacted.
func TestAPIBasePasswordRedacted(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond})
	base := strings.Replace(srv.URL, "http://", "http://user:s3cr3t-pw@", 1)
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--api-base", base, "--input-lengths", "64",
		"--samples-per-length", "2", "--output-dir", out, "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "s3cr3t-pw") {
		t.Errorf("the password was printed:\n%s\n%s", stdout, stderr)
	}
	err := filepath.Walk(filepath.Join(out, "prefill"), func(path string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err // folders, and the latest link
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), "s3cr3t-pw") {
			t.Errorf("%s holds the password", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
	if !strings.Contains(res.Settings.APIBase, "user:xxxxx@") {
		t.Errorf("settings.api_base = %q, want the URL with the password redacted", res.Settings.APIBase)
	}
}

// Stress ignores --benchmark-timeout, as the original did, and says so
// once when it is given.
func TestStressSaysItIgnoresBenchmarkTimeout(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, "--api-base", srv.URL, "--input-length", "64", "--output-length", "4",
		"--concurrency-levels", "1", "--point-duration", "1", "--warmup-duration", "0", "--benchmark-timeout", "5",
		"--output-dir", out, "--quiet", "--skip-validation")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stderr, "stress ignores it"); n != 1 {
		t.Errorf("stderr says %d times that --benchmark-timeout is ignored, want once:\n%s", n, stderr)
	}
	_, _, stderr = runCLI(t, t.Context(), Stress, "--api-base", srv.URL, "--input-length", "64", "--output-length", "4",
		"--concurrency-levels", "1", "--point-duration", "1", "--warmup-duration", "0", "--output-dir", out, "--quiet", "--skip-validation")
	if strings.Contains(stderr, "stress ignores it") {
		t.Errorf("warned about --benchmark-timeout without it:\n%s", stderr)
	}
}

// A --model the server does not list but accepts (an alias, as hosted
// APIs have) is benchmarked, with a warning.
func TestUnlistedModelAccepted(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond, Aliases: []string{"an-alias"}})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--api-base", srv.URL, "--model", "an-alias", "--input-lengths", "64",
		"--samples-per-length", "2", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "not in the server's model list, but the server accepts it") {
		t.Errorf("no warning about the unlisted model:\n%s", stderr)
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
	if res.Settings.Model != "an-alias" {
		t.Errorf("settings.model = %q, want an-alias", res.Settings.Model)
	}
}

// Prefill and decode back off from a dead or throttling server too: the
// benchmark requests stay few, the run ends early with the reason
// recorded (server_failing), the results are written, and the exit code
// is 3.
func TestPrefillDecodeFailingServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		b      Bench
		script openaitest.Script
		args   []string
		// most is the most benchmark requests the server may see; the plan
		// has planned of them.
		most, planned int
	}{
		{"prefill dead", Prefill, openaitest.Script{Hangup: true}, []string{"--input-lengths", "64", "128", "256", "--samples-per-length", "10"}, 10, 31},
		{"prefill throttling", Prefill, openaitest.Script{Status: 429, Header: http.Header{"Retry-After": {"1"}}}, []string{"--input-lengths", "64", "128", "256", "--samples-per-length", "10"}, 10, 31},
		{"decode dead", Decode, openaitest.Script{Hangup: true}, []string{"--batch-sizes", "1", "2", "4", "8", "16", "32", "--input-lengths", "64", "128"}, 8, 127},
		{"decode throttling", Decode, openaitest.Script{Status: 429, Header: http.Header{"Retry-After": {"1"}}}, []string{"--batch-sizes", "1", "2", "4", "8", "16", "32", "--input-lengths", "64", "128"}, 8, 127},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
				if benchRequest(r) {
					return tc.script
				}
				return openaitest.Script{TTFT: 2 * time.Millisecond, Gap: time.Millisecond}
			})
			out := t.TempDir()
			args := append([]string{"--api-base", srv.URL, "--output-dir", out, "--quiet", "--max-client-lag", "10s"}, tc.args...)
			code, stdout, stderr := runCLI(t, t.Context(), tc.b, args...)
			if code != ExitValidation {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
			}
			n := 0
			for _, r := range srv.Completions() {
				if benchRequest(r) {
					n++
				}
			}
			if n > tc.most || n == 0 {
				t.Errorf("the server got %d of the %d planned benchmark requests, want 1 to %d", n, tc.planned, tc.most)
			}
			var meta result.Meta
			var stop string
			var rep *validate.Report
			switch tc.b {
			case Prefill:
				res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
				meta, stop, rep = res.Meta, res.StopReason, res.Validation
			case Decode:
				res := readResults[decode.Results](t, filepath.Join(out, "decode", "latest", decode.ResultsFile))
				meta, stop, rep = res.Meta, res.StopReason, res.Validation
			}
			t.Logf("%d of %d planned benchmark requests sent; stop reason: %s", n, tc.planned, stop)
			if meta.EndReason != result.EndServerFailing || stop == "" {
				t.Errorf("end %q, stop reason %q; want server_failing with a reason", meta.EndReason, stop)
			}
			if c, ok := findCheck(rep, "server_healthy"); !ok || c.Status != validate.Fail {
				t.Errorf("server_healthy = %+v, want FAIL", c)
			}
			if strings.Contains(tc.name, "throttling") && tc.b == Prefill {
				// Retry-After 1 between sequential requests: no two
				// benchmark requests within 0.9 s of each other.
				reqs, err := report.ReadRecords(filepath.Join(out, "prefill", "latest", prefill.RecordsFile))
				if err != nil {
					t.Fatal(err)
				}
				for i := 1; i < len(reqs); i++ {
					if gap := reqs[i].Sent - reqs[i-1].End; gap < 900*time.Millisecond {
						t.Errorf("request %d sent %v after the previous 429 with Retry-After 1", reqs[i].Seq, gap)
					}
				}
			}
		})
	}
}

// A warm-up request that fails is not measured, but it is a failed
// request all the same: prefill and decode FAIL no_errors (exit 3), and
// say it was a warm-up.
func TestWarmupFailureFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bench Bench
		args  []string
		check string
		read  func(t *testing.T, out string) *validate.Report
	}{
		{Prefill, []string{"--input-lengths", "64", "--samples-per-length", "2", "--warmup-requests", "1"}, "no_errors",
			func(t *testing.T, out string) *validate.Report {
				return readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", "prefill_results.json")).Validation
			}},
		{Decode, []string{"--batch-sizes", "2", "--input-lengths", "64", "--samples-per-length", "4", "--warmup-requests", "1"}, "no_errors [warm-up]",
			func(t *testing.T, out string) *validate.Report {
				return readResults[decode.Results](t, filepath.Join(out, "decode", "latest", "decode_results.json")).Validation
			}},
	} {
		t.Run(string(tc.bench), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := 0
			srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
				ok := openaitest.Script{TTFT: 2 * time.Millisecond, Gap: time.Millisecond}
				if !benchRequest(r) {
					return ok
				}
				mu.Lock()
				defer mu.Unlock()
				if seen++; seen == 1 { // the first benchmark request is the warm-up
					return openaitest.Script{Status: 500}
				}
				return ok
			})
			out := t.TempDir()
			args := append([]string{"--api-base", srv.URL, "--output-dir", out, "--quiet"}, tc.args...)
			code, stdout, stderr := runCLI(t, t.Context(), tc.bench, args...)
			if code != ExitValidation {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitValidation, stdout, stderr)
			}
			c, ok := findCheck(tc.read(t, out), tc.check)
			if !ok || c.Status != validate.Fail || !strings.Contains(c.Detail, "warm-up") {
				t.Errorf("%s = %+v (found %v), want FAIL naming the warm-up", tc.check, c, ok)
			}
			if tc.bench == Decode {
				// --validate-only judges the warm-up from its records, not
				// from the saved tally (absent in older runs).
				file := filepath.Join(out, "decode", "latest", "decode_results.json")
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				delete(m, "warmup_errors")
				if b, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b, 0o644); err != nil {
					t.Fatal(err)
				}
				code, stdout, _ := runCLI(t, t.Context(), Decode, "--output-dir", out, "--validate-only")
				if code != ExitValidation || !strings.Contains(stdout, "warm-up requests failed") {
					t.Errorf("--validate-only without warmup_errors: exit %d, want %d with the warm-up FAIL\n%s", code, ExitValidation, stdout)
				}
			}
		})
	}
}
