package cli

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/fdlimit"
	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
)

// runLimited runs the stress binary (this test binary, see TestMain) under
// bash with the open-file limit set by ulimitArgs, and returns its exit
// code and stderr.
func runLimited(t *testing.T, ulimitArgs string, args ...string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := "ulimit " + ulimitArgs + ` || exit 99; exec "$0" "$@"`
	cmd := exec.Command("bash", append([]string{"-c", script, os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Stress))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code == 99 {
		t.Skipf("cannot set ulimit %s", ulimitArgs)
	}
	return code, stderr.String()
}

// With an open-file limit below what the plan needs (300 clients, a hard
// limit of 200) the run is refused before any work, exit 2, with the
// command that fixes it; with only the soft limit low it is raised and the
// run goes on, its results written; and a run whose limit just fits
// writes its results (idle connections are closed first).
func TestOpenFileLimit(t *testing.T) {
	t.Parallel()
	if l, err := fdlimit.Get(); err != nil || l.Hard < 1024 {
		t.Skipf("open-file limit %+v, %v", l, err)
	}
	srv := openaitest.New(t, openaitest.Script{TTFT: 5 * time.Millisecond, Gap: time.Millisecond})
	args := func(out, clients string) []string {
		return []string{"--api-base", srv.URL, "--input-length", "64", "--output-length", "4", "--concurrency-levels", clients,
			"--point-duration", "2", "--warmup-duration", "0", "--output-dir", out, "--quiet", "--skip-validation"}
	}

	out := t.TempDir()
	code, stderr := runLimited(t, "-n 200", args(out, "300")...)
	if code != ExitUsage || !strings.Contains(stderr, "--concurrency-levels 300 needs about 439 open files, but the open-file limit is 200 (hard limit 200): run `ulimit -n 439`") {
		t.Errorf("hard limit 200, 300 clients: exit %d, stderr %q; want %d naming ulimit -n 439", code, stderr, ExitUsage)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("the refusal is %d lines, want one", n+1)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 || len(srv.Requests()) != 0 {
		t.Errorf("a refused run created %d entries and sent %d requests", len(entries), len(srv.Requests()))
	}

	for _, limit := range []string{"-Sn 100", "-n 439"} {
		out := t.TempDir()
		code, stderr := runLimited(t, limit, args(out, "300")...)
		if code != ExitOK {
			t.Errorf("ulimit %s, 300 clients: exit %d, want 0\n%s", limit, code, stderr)
			continue
		}
		res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", stress.ResultsFile))
		if len(res.Levels) != 1 || res.Results[0].NumRequests == 0 || res.Errors.Total != 0 {
			t.Errorf("ulimit %s: %d levels, %+v; want one level of successful requests", limit, len(res.Levels), res.Errors)
		}
		requireFiles(t, filepath.Join(out, "stress", "latest"), "stress_results.csv", "c=300/requests.jsonl")
	}
}

// A shard holds only its share of the top level's connections: shard 0 of
// 4 of 10,000 clients needs 2,500, and 250 req/s in fixed-rate mode is
// 62.5 req/s for each shard.
func TestShardConnections(t *testing.T) {
	t.Parallel()
	c := &StressCmd{}
	cfg := stress.Config{Mode: stress.Manual, TrafficMode: stress.FixedClients, Levels: []float64{100, 10000},
		Shard: &stress.Shard{Index: 0, Count: 4}}
	if n, from := c.connections(cfg); n != 2500 || !strings.Contains(from, "shard 0/4") {
		t.Errorf("closed loop: %d connections (%s), want 2500 for shard 0/4", n, from)
	}
	if n := c.maxInFlight(cfg); n != 2500 {
		t.Errorf("closed loop: %d streams in flight, want 2500", n)
	}
	cfg.TrafficMode, cfg.Levels = stress.FixedRate, []float64{250}
	if n, _ := c.connections(cfg); n != int(math.Ceil(62.5*openLoopSeconds)) {
		t.Errorf("fixed rate: %d connections, want %v", n, math.Ceil(62.5*openLoopSeconds))
	}
	cfg.Shard = nil
	if n, _ := c.connections(cfg); n != 250*openLoopSeconds {
		t.Errorf("unsharded fixed rate: %d connections, want %d", n, 250*openLoopSeconds)
	}
}
