package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// A stress run killed with SIGKILL in the middle of a level leaves the
// requests that had ended in the level's requests.jsonl.
func TestStressKilledKeepsRecords(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "--api-base", "sim", "--input-length", "64", "--output-length", "16",
		"--concurrency-levels", "4", "--point-duration", "60", "--warmup-duration", "1", "--output-dir", out, "--quiet")
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Stress))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	var records []byte
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(out, "stress", "*.partial", "c=4", "requests.jsonl"))
		if len(files) == 1 {
			records, _ = os.ReadFile(files[0])
			if bytes.Count(records, []byte("\n")) >= 8 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	files, _ := filepath.Glob(filepath.Join(out, "stress", "*.partial", "c=4", "requests.jsonl"))
	if len(files) != 1 {
		t.Fatalf("no requests.jsonl in the killed run's folder (stderr: %s)", stderr.String())
	}
	records, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Only whole lines count: the kill may cut a write in the middle.
	lines := bytes.Split(records, []byte("\n"))
	lines = lines[:len(lines)-1]
	if len(lines) < 8 {
		t.Fatalf("%d records survived the kill, want the 8 or more that had ended (stderr: %s)", len(lines), stderr.String())
	}
	for i, line := range lines {
		var r result.Request
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !r.OK() || r.OutputTokens != 16 || r.End <= r.Sent {
			t.Errorf("record %d = seq %d ok %v, %d tokens: want a whole, successful request", i, r.Seq, r.OK(), r.OutputTokens)
		}
	}
}

// A stress run killed (SIGKILL) during its second level leaves a
// .partial folder; --resume-dir on it, without repeating the workload
// flags, reuses the ended level as is and runs the unfinished one again.
func TestStressResumeAfterKill(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	flags := []string{"--api-base", "sim", "--concurrency-levels", "1", "2", "--point-duration", "4", "--warmup-duration", "0.5",
		"--grace-period", "2", "--max-client-lag", "10s", "--output-dir", out, "--quiet"}
	cmd := exec.Command(os.Args[0], append(flags, "--input-length", "64", "--output-length", "16")...)
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Stress))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var partial string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && partial == ""; time.Sleep(100 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(out, "stress", "*.partial", "c=2", "requests.jsonl")); len(m) == 1 {
			if b, _ := os.ReadFile(m[0]); bytes.Count(b, []byte("\n")) >= 2 {
				partial = filepath.Dir(filepath.Dir(m[0]))
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if partial == "" {
		t.Fatalf("the second level never started (stderr: %s)", stderr.String())
	}
	c1, err := os.ReadFile(filepath.Join(partial, "c=1", "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, errOut := runCLI(t, t.Context(), Stress, append(flags, "--resume-dir", partial)...)
	if code != ExitOK {
		t.Fatalf("resume of the killed run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errOut)
	}
	res := readResults[stress.Results](t, filepath.Join(out, "stress", "latest", stress.ResultsFile))
	if res.InputLength != 64 || res.OutputLength != 16 || len(res.Levels) != 2 || res.ResumedFrom != partial {
		t.Errorf("resumed run: lengths %d/%d, %d levels, from %q; want 64/16, 2 levels, from %s", res.InputLength, res.OutputLength, len(res.Levels), res.ResumedFrom, partial)
	}
	again, err := os.ReadFile(filepath.Join(out, "stress", "latest", "c=1", "requests.jsonl"))
	if err != nil || !bytes.Equal(again, c1) {
		t.Errorf("level 1 was not reused as is (%v)", err)
	}
	for _, l := range res.Levels {
		if !l.Complete() || l.Config.InputLength != 64 {
			t.Errorf("level %v: end %q, conditions %+v", l.Level, l.EndReason, l.Config)
		}
	}
}
