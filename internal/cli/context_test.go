package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// A decode plan longer than the model's context (B=256, L=4096 on the
// simulated engine's 8k model) is refused before the run, in one line
// naming the combination and the context length, instead of being
// discovered as 256 HTTP 400s.
func TestDecodeBeyondContextRefused(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.BaseURL(), "--batch-sizes", "1", "256",
		"--input-lengths", "4096", "--output-dir", out)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
	}
	for _, want := range []string{"--batch-sizes 256 --input-lengths 4096", "beyond the model's 8192-token context"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("the error is %d lines, want one:\n%s", n+1, stderr)
	}
	if n := len(engineRecords(srv)); n != 0 {
		t.Errorf("the engine served %d benchmark requests, want none", n)
	}
}

// Prefill lengths beyond the context listed by a vLLM-style server are
// refused before any is sent; a server that lists no context length is
// benchmarked as before, and one that lists it has it recorded.
func TestPrefillBeyondContext(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		maxLen  int
		lengths []string
		code    int
	}{
		{"beyond the listed context", 1000, []string{"64", "2000"}, ExitUsage},
		{"within it", 1000, []string{"64"}, ExitOK},
		{"no context listed", 0, []string{"64", "2000"}, ExitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond, MaxModelLen: tc.maxLen})
			out := t.TempDir()
			args := append([]string{"--api-base", srv.URL, "--samples-per-length", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s", "--input-lengths"}, tc.lengths...)
			code, stdout, stderr := runCLI(t, t.Context(), Prefill, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			if code == ExitUsage {
				if want := "--input-lengths 2000: a 2000-token prompt plus --output-tokens 1 is 2001 tokens, beyond the model's 1000-token context"; !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
				for _, r := range srv.Completions() {
					if benchRequest(r) || promptWords(r) > 1000 {
						t.Errorf("a request was sent for a plan that was refused: %s", r.Header.Get("X-Request-Id"))
					}
				}
				return
			}
			res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
			if res.Settings.ContextLength != tc.maxLen {
				t.Errorf("settings.context_length = %d, want %d", res.Settings.ContextLength, tc.maxLen)
			}
		})
	}
}
