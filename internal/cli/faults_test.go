package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
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
