package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// enginePackage is the simulated engine's command, built by the harness.
const enginePackage = "github.com/veeksha-go/veeksha/tools/simengine"

// engineModel is the model id the engine serves and the readers ask for.
const engineModel = "sim"

// buildEngine builds tools/simengine into dir with the go command and
// returns the binary's path.
func buildEngine(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	out := filepath.Join(dir, "simengine")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, enginePackage)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", enginePackage, err)
	}
	return out, nil
}

// pinnedCommand runs name on CPU cpu with taskset, or unpinned when cpu is
// negative.
func pinnedCommand(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	if cpu < 0 {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "taskset", append([]string{"-c", strconv.Itoa(cpu), name}, args...)...)
}

// engineMemLimit is the engine's GOMEMLIMIT: with GOGC=off it collects
// garbage only when its heap nears this size.
const engineMemLimit = "4GiB"

// engineProc is a running simulated engine process.
type engineProc struct {
	cmd *exec.Cmd
	url string // base URL, "http://127.0.0.1:PORT/v1"
}

// engineStartTimeout bounds how long the engine may take to print its URL.
const engineStartTimeout = 10 * time.Second

// startEngine starts the engine at path in zero-cost mode on a free
// loopback port (pinned to cpu unless negative) and waits for its URL.
func startEngine(ctx context.Context, path string, cpu int, ttft, gap time.Duration, stderr io.Writer) (*engineProc, error) {
	cmd := pinnedCommand(ctx, cpu, path,
		"--addr", "127.0.0.1:0", "--model", engineModel,
		"--zero-cost", "--ttft", ttft.String(), "--gap", gap.String())
	cmd.Stderr = stderr
	// The engine is the measuring instrument: it stamps a chunk just before
	// writing it, and a garbage collection between the two would count as
	// the client's receive lag. In zero-cost mode it allocates per
	// connection, not per chunk, so it runs without collections, with a
	// memory limit as a safety net.
	cmd.Env = append(os.Environ(), "GOGC=off", "GOMEMLIMIT="+engineMemLimit)
	// The engine stops on SIGINT; exec kills it if it does not within the
	// WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start engine %s: %w", path, err)
	}
	e := &engineProc{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out) // the engine prints nothing more
	}()
	select {
	case l, ok := <-line:
		if f := strings.Fields(l); ok && len(f) > 0 && strings.HasPrefix(f[0], "http://127.0.0.1:") {
			e.url = f[0]
			return e, nil
		}
		_ = e.stop()
		return nil, fmt.Errorf("engine %s printed %q, want its base URL", path, l)
	case <-time.After(engineStartTimeout):
		_ = e.stop()
		return nil, fmt.Errorf("engine %s printed no URL within %v", path, engineStartTimeout)
	}
}

// cpu returns the engine's user+sys CPU time so far.
func (e *engineProc) cpu() (time.Duration, error) {
	return processCPUOf(e.cmd.Process.Pid)
}

// rss returns the engine's resident set size in bytes.
func (e *engineProc) rss() (int64, error) {
	return residentBytesOf(e.cmd.Process.Pid)
}

// stop interrupts the engine and waits for it to exit.
func (e *engineProc) stop() error {
	if err := e.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("interrupt engine: %w", err)
	}
	err := e.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			return nil // taskset without the engine's handler, or a second interrupt
		}
	}
	if err != nil {
		return fmt.Errorf("engine exited: %w", err)
	}
	return nil
}
