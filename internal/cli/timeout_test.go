package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// --request-timeout is an inactivity timeout, as in the original tool: a
// healthy 3 s stream succeeds with --request-timeout 1; a stream that goes
// quiet for a second fails as "timeout (no data for 1s)"; the optional
// --request-deadline ends the long stream (class deadline). Both limits
// are recorded in the results.
func TestRequestTimeoutIsInactivity(t *testing.T) {
	t.Parallel()
	steady := openaitest.Script{TTFT: 500 * time.Millisecond, Gap: 500 * time.Millisecond, Tokens: 6}
	stalled := openaitest.Script{TTFT: 100 * time.Millisecond, Gap: 100 * time.Millisecond, Tokens: 6,
		Fault: openaitest.Fault{Kind: openaitest.Stall, After: 2, Duration: 30 * time.Second}}
	cases := []struct {
		name     string
		script   openaitest.Script
		args     []string
		code     int
		class    string
		err      string
		deadline float64
	}{
		{"steady 3s stream", steady, nil, ExitOK, "", "", 0},
		{"stalled stream", stalled, nil, ExitValidation, result.ErrTimeout, "timeout (no data for 1s) mid-stream", 0},
		{"total deadline", steady, []string{"--request-deadline", "2"}, ExitValidation, result.ErrDeadline, "deadline (2s after the send) passed mid-stream", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
				if benchRequest(r) {
					return tc.script
				}
				return openaitest.Script{TTFT: time.Millisecond}
			})
			out := t.TempDir()
			args := append([]string{"--api-base", srv.URL, "--input-lengths", "64", "--samples-per-length", "1", "--warmup-requests", "0",
				"--output-tokens", "6", "--request-timeout", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s"}, tc.args...)
			code, stdout, stderr := runCLI(t, t.Context(), Prefill, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			dir := filepath.Join(out, "prefill", "latest")
			res := readResults[prefill.Results](t, filepath.Join(dir, prefill.ResultsFile))
			if res.Settings.RequestTimeoutS != 1 || res.Settings.RequestDeadlineS != tc.deadline {
				t.Errorf("settings: request_timeout_s %v, request_deadline_s %v; want 1 and %v", res.Settings.RequestTimeoutS, res.Settings.RequestDeadlineS, tc.deadline)
			}
			reqs, err := report.ReadRecords(filepath.Join(dir, prefill.RecordsFile))
			if err != nil || len(reqs) != 1 {
				t.Fatalf("records: %d, %v", len(reqs), err)
			}
			r := reqs[0]
			if r.ErrClass != tc.class || !strings.Contains(r.Err, tc.err) {
				t.Errorf("record: class %q, err %q; want class %q with %q", r.ErrClass, r.Err, tc.class, tc.err)
			}
			if tc.class == "" && r.End-r.Sent < 2500*time.Millisecond {
				t.Errorf("the stream took %v: not longer than the timeout, the test proves nothing", r.End-r.Sent)
			}
		})
	}
}
