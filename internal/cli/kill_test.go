package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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
