package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// An interrupt is always 130, with what was measured kept: in prefill and
// decode too, although the interrupted request fails a check.
func TestInterruptExits130(t *testing.T) {
	t.Parallel()
	cases := []struct {
		bench Bench
		args  []string
		// started is a file that exists once measuring has begun.
		started string
	}{
		{Prefill, []string{"--input-lengths", "64", "128", "--samples-per-length", "200", "--output-tokens", "16"}, "requests.jsonl"},
		{Decode, []string{"--batch-sizes", "1", "2", "4", "--input-lengths", "64", "--samples-per-length", "50"}, "bs=1_il=64/requests.jsonl"},
	}
	for _, tc := range cases {
		t.Run(string(tc.bench), func(t *testing.T) {
			t.Parallel()
			srv := startTestSim(t, simengine.Options{})
			out := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				for ctx.Err() == nil {
					if m, _ := filepath.Glob(filepath.Join(out, string(tc.bench), "*", tc.started)); len(m) > 0 {
						time.Sleep(300 * time.Millisecond)
						cancel()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			args := append([]string{"--api-base", srv.BaseURL(), "--output-dir", out, "--quiet", "--max-client-lag", "10s"}, tc.args...)
			code, stdout, stderr := runCLI(t, ctx, tc.bench, args...)
			if code != ExitInterrupted {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInterrupted, stdout, stderr)
			}
			run := filepath.Join(out, string(tc.bench), "latest")
			requireFiles(t, run, string(tc.bench)+"_results.json")
			meta := readResults[result.Meta](t, filepath.Join(run, string(tc.bench)+"_results.json"))
			if meta.EndReason != result.EndInterrupted {
				t.Errorf("end reason %q, want interrupted", meta.EndReason)
			}
		})
	}
}

// An interrupt during setup (before any point: here the preflight request
// waits on a slow server) is 130 too, never "is --api-base right?" with
// exit 2; so is one before the setup began.
func TestInterruptDuringSetup(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{HeaderDelay: 30 * time.Second})
	for _, b := range []Bench{Prefill, Decode, Stress} {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(300*time.Millisecond, cancel)
		began := time.Now()
		code, _, stderr := runCLI(t, ctx, b, "--api-base", srv.URL, "--output-dir", t.TempDir(), "--quiet")
		if code != ExitInterrupted || !strings.Contains(stderr, "interrupted during setup") || strings.Contains(stderr, "--api-base") {
			t.Errorf("%s interrupted in setup: exit %d, stderr %q; want %d and no hint about --api-base", b, code, stderr, ExitInterrupted)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("%s: the interrupt took %v to end the setup", b, took)
		}
		cancel()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code, _, stderr := runCLI(t, ctx, Prefill, "--api-base", "sim", "--output-dir", t.TempDir(), "--quiet"); code != ExitInterrupted {
		t.Errorf("interrupted before setup: exit %d, stderr %q", code, stderr)
	}
}

// SIGHUP (a dropped SSH session) is handled like Ctrl-C: the run stops,
// its results are written, exit 130.
func TestSIGHUPKeepsResults(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "--api-base", "sim", "--input-lengths", "64", "--samples-per-length", "500",
		"--output-tokens", "8", "--output-dir", out, "--quiet")
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Prefill))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(out, "prefill", "*.partial", "requests.jsonl")); len(m) > 0 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted {
		t.Fatalf("after SIGHUP: exit %d (%v), want %d\nstderr:\n%s", code, err, ExitInterrupted, stderr.String())
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
	if res.EndReason != result.EndInterrupted {
		t.Errorf("end reason %q, want interrupted", res.EndReason)
	}
}
