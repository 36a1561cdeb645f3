package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// testSimEnv makes the test binary serve the simulated engine (default
// profile) as a process of its own: it prints the base URL on stdout and
// serves until its stdin closes.
const testSimEnv = "VEEKSHA_CLI_TEST_SIM"

func serveTestSim() int {
	srv, err := simengine.Start(simengine.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.BaseURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startSimProcess starts the simulated engine in another process and
// returns its base URL; the engine stops with the test.
func startSimProcess(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), testSimEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the engine process printed no URL: %v (stderr: %s)", err, stderr.String())
	}
	return strings.TrimSpace(line)
}

// stressProcess runs the stress binary (this test binary) as a process.
func stressProcess(args ...string) (code int, out string) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Stress))
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), buf.String()
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, buf.String()
}

// Two shard processes and one single process against the simulated
// engine in a process of its own: the merged run holds every record of
// both shards, and its throughput and latencies agree with the single
// process sending the same total load.
//
// The bounds come from the run-to-run noise of the single process on
// this plan, measured on the shared 2-core machine (three runs, no race
// detector): output throughput 990–1100 tok/s at c=8 and 280–291 at
// c=2, E2E P50 220–237 ms, TTFC P50 14–22 ms. The bounds below are wider
// (the race detector and a loaded machine add their own), but far
// tighter than the 2x a lost shard or a doubled window would give.
func TestShardedRunMergesLikeOneProcess(t *testing.T) {
	// Not parallel: it measures time.
	base := startSimProcess(t)
	out := t.TempDir()
	plan := []string{"--api-base", base, "--input-length", "128", "--output-length", "32", "--concurrency-levels", "2", "8",
		"--point-duration", "3", "--warmup-duration", "1", "--grace-period", "2", "--max-client-lag", "10s", "--quiet"}
	start := time.Now().Add(6 * time.Second).UTC().Format(time.RFC3339Nano)
	const shards = 2
	var wg sync.WaitGroup
	codes, logs := make([]int, shards), make([]string, shards)
	for i := range shards {
		wg.Go(func() {
			codes[i], logs[i] = stressProcess(append(plan, "--shard", fmt.Sprintf("%d/%d", i, shards), "--start-at", start,
				"--shard-gap", "1", "--output-dir", filepath.Join(out, fmt.Sprint("shard", i)))...)
		})
	}
	wg.Wait()
	var dirs []string
	for i := range shards {
		if codes[i] != ExitOK {
			t.Fatalf("shard %d: exit %d\n%s", i, codes[i], logs[i])
		}
		dirs = append(dirs, filepath.Join(out, fmt.Sprint("shard", i), "stress", "latest"))
	}
	code, stdout, stderr := runCLI(t, t.Context(), Stress, append([]string{"--merge"}, append(dirs, "--output-dir", filepath.Join(out, "merged"), "--quiet")...)...)
	if code != ExitOK {
		t.Fatalf("merge: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	merged := filepath.Join(out, "merged", "stress", "latest")
	requireFiles(t, merged, "stress_results.json", "stress_results.csv", "index.html", "validation.json", "c=8/requests.jsonl", "c=2/level.json")
	res := readResults[stress.Results](t, filepath.Join(merged, stress.ResultsFile))
	if res.Shards != shards || len(res.Results) != 2 {
		t.Fatalf("merged: shards %d, %d points; want %d and 2", res.Shards, len(res.Results), shards)
	}
	if c, ok := findCheck(res.Validation, "shards"); !ok || c.Status == validate.Fail {
		t.Errorf("shards check = %+v (found %v), want PASS or WARN", c, ok)
	}

	// --validate-only analyses the merged records afresh: the same numbers.
	again, _, err := stress.Recheck(merged, fidelity.DefaultBounds())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range again.Results {
		if m := res.Results[i]; p.OutputThroughput != m.OutputThroughput || p.E2E.P99 != m.E2E.P99 || p.NumRequests != m.NumRequests {
			t.Errorf("c=%v re-analysed from the merged folder: %.1f tok/s, E2E P99 %v, %d requests; merge said %.1f, %v, %d",
				p.Level, p.OutputThroughput, p.E2E.P99, p.NumRequests, m.OutputThroughput, m.E2E.P99, m.NumRequests)
		}
	}

	// Every record of every shard, once.
	for _, level := range []string{"c=2", "c=8"} {
		got, err := report.ReadRecords(filepath.Join(merged, level, stress.RecordsFile))
		if err != nil {
			t.Fatal(err)
		}
		type key struct{ shard, seq int }
		inMerged := map[key]int{}
		for _, r := range got {
			inMerged[key{r.Shard, r.Seq}]++
		}
		total := 0
		for i, dir := range dirs {
			own, err := report.ReadRecords(filepath.Join(dir, level, stress.RecordsFile))
			if err != nil {
				t.Fatal(err)
			}
			total += len(own)
			for _, r := range own {
				if r.Shard != i || r.Shards != shards || inMerged[key{i, r.Seq}] != 1 {
					t.Errorf("%s: shard %d's record %d (shard %d of %d) is in the merged run %d times", level, i, r.Seq, r.Shard, r.Shards, inMerged[key{i, r.Seq}])
				}
			}
		}
		if len(got) != total || len(inMerged) != total || total == 0 {
			t.Errorf("%s: %d merged records (%d distinct), the shards recorded %d", level, len(got), len(inMerged), total)
		}
	}

	// The same total load from one process.
	code, log := stressProcess(append(plan, "--output-dir", filepath.Join(out, "single"))...)
	if code != ExitOK {
		t.Fatalf("single process: exit %d\n%s", code, log)
	}
	single := readResults[stress.Results](t, filepath.Join(out, "single", "stress", "latest", stress.ResultsFile))
	within := func(what string, level float64, got, want, rel, abs float64) {
		if math.Abs(got-want) > math.Max(rel*want, abs) {
			t.Errorf("c=%v %s: merged %.4g, one process %.4g (bound ±%.0f%% or %.3g)", level, what, got, want, 100*rel, abs)
		}
	}
	for i, m := range res.Results {
		s := single.Results[i]
		if m.Level != s.Level || m.NumRequests < 10 || s.NumRequests < 10 {
			t.Fatalf("level %v: merged %d requests, one process %d at level %v", m.Level, m.NumRequests, s.NumRequests, s.Level)
		}
		t.Logf("c=%v: output throughput %.1f vs %.1f tok/s, E2E P50 %.1f vs %.1f ms, TTFC P50 %.1f vs %.1f ms (merged vs one process)",
			m.Level, m.OutputThroughput, s.OutputThroughput, 1000*m.E2EP50, 1000*s.E2EP50, 1000*m.TTFCP50, 1000*s.TTFCP50)
		within("output throughput", m.Level, m.OutputThroughput, s.OutputThroughput, 0.25, 0)
		within("E2E P50 (s)", m.Level, m.E2EP50, s.E2EP50, 0.2, 0)
		within("TTFC P50 (s)", m.Level, m.TTFCP50, s.TTFCP50, 0.5, 0.015)
	}
}
