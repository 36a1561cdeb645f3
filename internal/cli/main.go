package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/session"
)

// Build describes the binary, from ldflags in release builds.
type Build struct {
	Version string
	Commit  string
	Date    string
}

// String is the --version line: "veeksha.microbench.prefill v0.3.0 (commit abc1234, built 2026-11-26)".
// Without ldflags the module version from the build info is used, so a
// binary installed with go install reports the version it was installed at.
func (b Build) String() string {
	v, commit := b.Version, b.Commit
	if v == "" || v == "dev" {
		if info, ok := debug.ReadBuildInfo(); ok {
			if mv := info.Main.Version; mv != "" {
				v = mv
			}
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && commit == "" {
					commit = s.Value
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var extra []string
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		extra = append(extra, "commit "+commit)
	}
	if b.Date != "" {
		extra = append(extra, "built "+b.Date)
	}
	if len(extra) == 0 {
		return v
	}
	return v + " (" + strings.Join(extra, ", ") + ")"
}

// Bench names one of the three benchmarks.
type Bench string

// The three benchmarks.
const (
	Prefill Bench = "prefill"
	Decode  Bench = "decode"
	Stress  Bench = "stress"
)

// Binary is the executable's name for b.
func (b Bench) Binary() string { return "veeksha.microbench." + string(b) }

// env is what a command gets from the process.
type env struct {
	stdout, stderr io.Writer
	// stdoutTTY and stderrTTY say whether the streams are terminals.
	stdoutTTY, stderrTTY bool
	width                int
	build                Build
	now                  func() time.Time
	// completing says that a shell runs the binary for completions
	// (COMP_LINE is set): run answers through kongplete and runs nothing.
	completing bool
	// executable is the binary's path, which completion scripts call.
	executable string
}

// stopSignals end a run as Ctrl-C does: SIGINT, SIGTERM, and SIGHUP (a
// dropped SSH session must not lose what was measured).
func stopSignals() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} }

// Main runs the benchmark binary b with args and returns its exit code. It
// owns the process's signals: the first Ctrl-C (or SIGTERM, SIGHUP) stops
// the run and writes what was measured, exit 130; a second exits at once
// with 130.
func Main(b Bench, args []string, stdout, stderr *os.File, build Build) int {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	go func() {
		// After the first signal the run winds down and writes its results;
		// a second one means the user does not want to wait.
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, stopSignals()...)
		<-again
		fmt.Fprintln(stderr, "interrupted again: exiting without waiting")
		os.Exit(ExitInterrupted)
	}()
	e := &env{
		stdout: stdout, stderr: stderr, build: build, now: time.Now,
		stdoutTTY:  term.IsTerminal(int(stdout.Fd())),
		stderrTTY:  term.IsTerminal(int(stderr.Fd())),
		completing: os.Getenv("COMP_LINE") != "",
	}
	if exe, err := os.Executable(); err == nil {
		e.executable = exe
	}
	if e.stdoutTTY {
		if w, _, err := term.GetSize(int(stdout.Fd())); err == nil {
			e.width = w
		}
	}
	return run(ctx, b, args, e)
}

// exitPanic unwinds kong's parse when --help or --version asks to exit.
type exitPanic int

// run parses args for benchmark b and runs it. Tests call it directly.
func run(ctx context.Context, b Bench, args []string, e *env) (code int) {
	cmd := newCommand(b)
	if cmd == nil {
		fmt.Fprintf(e.stderr, "unknown benchmark %q\n", b)
		return ExitUsage
	}
	parser, err := newParser(cmd, b, e)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: internal error: %v\n", b.Binary(), err)
		return ExitRunFailed
	}
	defer func() {
		if p := recover(); p != nil {
			c, ok := p.(exitPanic)
			if !ok {
				panic(p)
			}
			code = int(c)
		}
	}()
	if e.completing {
		// Answer the shell and exit 0 through kong.Exit (newParser).
		completeLine(parser)
		return ExitOK
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: error: %v (see --help)\n", b.Binary(), err)
		return ExitUsage
	}
	if f, ok := cmd.(interface{ setExplicit(map[string]bool) }); ok {
		f.setExplicit(explicitFlags(kctx))
	}
	if err := errors.Join(cmd.common().validateCommon(), cmd.validate()); err != nil {
		fmt.Fprintf(e.stderr, "%s: error: %s\n", b.Binary(), oneLine(err))
		return ExitUsage
	}
	log := newLogger(e.stderr, cmd.common())
	err = execute(ctx, e, cmd, log)
	code = exitCode(err)
	var ee exitError
	switch {
	case err == nil || code == ExitValidation || code == ExitThreshold:
	case code == ExitInterrupted:
		if errors.As(err, &ee) && ee.err != nil {
			fmt.Fprintf(e.stderr, "%s: %s\n", b.Binary(), oneLine(ee.err))
		}
	default:
		fmt.Fprintf(e.stderr, "%s: error: %s\n", b.Binary(), oneLine(err))
	}
	return code
}

// newCommand is benchmark b's flag struct, nil for an unknown b.
func newCommand(b Bench) benchmark {
	switch b {
	case Prefill:
		return &PrefillCmd{}
	case Decode:
		return &DecodeCmd{}
	case Stress:
		return &StressCmd{}
	}
	return nil
}

// newParser is the kong parser of cmd. Its exit (--help, --version,
// completion) unwinds with an exitPanic that run recovers.
func newParser(cmd benchmark, b Bench, e *env) (*kong.Kong, error) {
	return kong.New(cmd,
		kong.Name(b.Binary()),
		kong.Description(description(b)),
		kong.Writers(e.stdout, e.stderr),
		kong.Exit(func(c int) { panic(exitPanic(c)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.Vars{
			"version":                   b.Binary() + " " + e.build.String(),
			"default_api_base":          DefaultAPIBase,
			"default_output_dir":        DefaultOutputDir,
			"default_seed":              fmt.Sprint(DefaultSeed),
			"default_request_timeout":   fmt.Sprint(DefaultRequestTimeout.Seconds()),
			"default_benchmark_timeout": fmt.Sprint(DefaultBenchmarkTimeout.Seconds()),
			"sim_profiles":              strings.Join(session.SimProfiles(), ", "),
			"default_max_client_lag":    fmt.Sprint(fidelity.DefaultBounds().Fail.Seconds()),
			"threshold_metrics":         thresholdNames(b),
		},
		benchVars(),
		kong.Bind(executable(e.executable)),
	)
}

// explicitFlags names the flags the user gave, on the command line or
// through their environment variables, as opposed to defaults.
func explicitFlags(kctx *kong.Context) map[string]bool {
	set := map[string]bool{}
	for _, p := range kctx.Path {
		if p.Flag != nil && !p.Resolved {
			set[p.Flag.Name] = true
		}
	}
	for _, f := range kctx.Flags() {
		for _, env := range f.Envs {
			if _, ok := os.LookupEnv(env); ok {
				set[f.Name] = true
			}
		}
	}
	return set
}

// oneLine joins a multi-error into one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func description(b Bench) string {
	switch b {
	case Prefill:
		return "Time to first chunk (TTFC) vs prompt length, one request at a time, against an OpenAI-compatible server."
	case Decode:
		return "Time between tokens (TBT) vs batch size, measured in the window where the whole batch decodes together."
	default:
		return "Throughput vs latency over load levels (concurrent clients or request rates), manual, range or auto."
	}
}

func newLogger(w io.Writer, c *Common) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
