package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/compare"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/session"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// benchmark is what each binary's command gives the common flow: flags
// to a Config, the Config to pkg/bench's Run, the results to a view.
type benchmark interface {
	common() *Common
	validate() error
	bench() Bench
	// start prepares the run before anything is created and describes
	// it: banner rows, the most concurrent streams, the prompt lengths to
	// calibrate. An error is the user's to fix.
	start() (runStart, error)
	// measure runs the benchmark; files receives per-point files.
	measure(ctx context.Context, d runner.Deps, files *runFiles) (view, error)
	// recheck re-runs the checks of the saved run in dir.
	recheck(dir string, bounds fidelity.Bounds) (view, validate.Report, error)
	// load reads a saved run for --compare-to.
	load(dir string) (view, error)
	// workload is what this run will measure, from the flags, to refuse a
	// --compare-to run that measured something else.
	workload() workload
}

// view is a run's results as the reporters see them.
type view struct {
	meta        *result.Meta
	results     any
	resultsFile string
	csvFile     string
	table       tableView
	charts      []report.Chart
	values      []compare.Value
	validation  *validate.Report
	facts       [][2]string
	// points are each point's client fidelity and server metrics.
	points []report.Point
	// workload is what the run measured (lengths, traffic, endpoint).
	workload workload
	// gate checks thresholds (--threshold) at the run's points.
	gate func(exprs []string) ([]validate.Check, error)
}

// tableView writes one results table as CSV, on the console and, as a
// Grid, in the report page.
type tableView struct {
	csv   func(io.Writer) error
	print func(io.Writer, console.Options) error
	grid  func() (report.Grid, error)
}

func newTableView[T any](t report.Table[T]) tableView {
	return tableView{
		csv:   func(w io.Writer) error { return report.WriteCSV(w, t) },
		print: func(w io.Writer, o console.Options) error { return console.Table(w, t, o) },
		grid:  t.Grid,
	}
}

// execute runs benchmark b end to end: --validate-only, or the
// self-check, session, run folder and banner, the run, its files, the
// printed results and the exit code.
func execute(ctx context.Context, e *env, b benchmark, log *slog.Logger) error {
	c := b.common()
	if m, ok := b.(*StressCmd); ok && m.merging() {
		return m.merge(ctx, e, log)
	}
	cmp, err := c.resolveComparison(b.bench())
	if err != nil {
		return err
	}
	var other view
	if cmp != nil {
		if other, err = b.load(cmp.dir); err != nil {
			return usagef("--compare-to %s: %v", cmp.dir, err)
		}
		if !c.ValidateOnly {
			if err := cmp.sameWorkload(b.workload(), other.workload, c.CompareAnyway); err != nil {
				return err
			}
		}
	}
	if c.ValidateOnly {
		return validateOnly(e, b, cmp, other)
	}
	s, dir, started, err := setUp(ctx, e, b, log)
	if err != nil {
		return err
	}
	defer s.Close()
	if cmp != nil {
		cmp.setPrediction(s.Settings.Predicted, other.meta.Settings.Predicted)
	}
	files := newRunFiles(dir, log, c.PlotRenderer)
	ui := newProgress(e, c)
	deps := s.Deps(ctx)
	deps.Progress, deps.Records = ui.update, files.records
	deps.Meta.ToolVersion, deps.Meta.StartedAt = e.build.String(), started
	deps.SkipValidation, deps.Bounds = c.SkipValidation, c.bounds()
	v, runErr := b.measure(ctx, deps, files)
	ui.stop()
	// The connections of the last point stay open, idle, in the pool: a
	// run near the open-file limit must not fail to write its results
	// because of them.
	s.Client.Close()
	if v.meta == nil {
		if ctx.Err() != nil {
			return exitError{code: ExitInterrupted, err: errors.New("interrupted before any point was measured")}
		}
		return runErr // nothing was measured
	}
	v.facts = append([][2]string{{"Model", s.Settings.Model}, {"Server", s.Label()}}, v.facts...)
	title := fmt.Sprintf("%s — %s", titleCase(b.bench()), s.Settings.Model)
	if err := finishRun(ctx, e, dir, files, title, v, cmp, other); err != nil {
		return err
	}
	return verdict(e, v, runErr)
}

// setUp prepares benchmark b's run: its plan, the output folder check, the
// session with the server and the run folder (beginRun).
func setUp(ctx context.Context, e *env, b benchmark, log *slog.Logger) (*session.Session, *report.Dir, time.Time, error) {
	c := b.common()
	plan, err := b.start()
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if err := checkOpenFiles(plan, c, log); err != nil {
		return nil, nil, time.Time{}, err
	}
	if err := checkOutputDir(c.OutputDir, b.bench()); err != nil {
		return nil, nil, time.Time{}, err
	}
	for _, w := range plan.warnings {
		log.Warn(w)
	}
	s, dir, started, err := beginRun(ctx, e, c, log, plan)
	if err != nil && ctx.Err() != nil {
		return nil, nil, time.Time{}, setupError(ctx, err)
	}
	return s, dir, started, err
}

// verdict turns a finished run into its exit: an interrupt (130, always:
// a check that the interrupted requests failed is not the server's
// fault), a run error, failed validation (3).
func verdict(e *env, v view, runErr error) error {
	if v.meta.EndReason == result.EndInterrupted {
		// The validation of what was measured is still shown.
		if err := finishValidation(e, v.validation); err != nil && exitCode(err) != ExitValidation {
			return err
		}
		return exitError{code: ExitInterrupted}
	}
	if runErr != nil && !errors.Is(runErr, stress.ErrNoValidPoint) {
		return runErr
	}
	if err := finishValidation(e, v.validation); err != nil {
		return err
	}
	return runErr
}

// validateOnly re-runs the checks of an existing run and creates nothing.
func validateOnly(e *env, b benchmark, cmp *comparison, other view) error {
	c := b.common()
	dir, err := report.Resolve(c.OutputDir, string(b.bench()), c.RunDir)
	if err != nil {
		return usageError{err}
	}
	v, rep, err := b.recheck(dir, c.bounds())
	if err != nil {
		return usageError{err}
	}
	if len(c.Threshold) > 0 && v.gate != nil {
		// The thresholds given replace the saved run's.
		if rep.Thresholds, err = v.gate(c.Threshold); err != nil {
			return usageError{err}
		}
	}
	fmt.Fprintf(e.stdout, "Validating %s\n", dir)
	if cmp != nil {
		cmp.setPrediction(v.meta.Settings.Predicted, other.meta.Settings.Predicted)
		if err := cmp.sameWorkload(v.workload, other.workload, c.CompareAnyway); err != nil {
			return err
		}
		t, err := cmp.write(nil, v, other)
		if err != nil {
			return err
		}
		if err := printComparison(e, cmp, t); err != nil {
			return err
		}
	}
	return finishValidation(e, &rep)
}

// checkOpenFiles makes sure the open-file limit allows the plan's
// connections before any work (session.EnsureOpenFiles): a soft limit is
// raised (and logged), a hard limit too low refuses the run, naming the
// command that fixes it.
func checkOpenFiles(r runStart, c *Common, log *slog.Logger) error {
	conns := r.conns
	if conns == 0 {
		conns = r.streams
	}
	f, err := session.EnsureOpenFiles(conns, session.IsSim(c.APIBase) || c.SelfCheck)
	var low *session.OpenFilesError
	switch {
	case errors.As(err, &low):
		return usagef("%s %v: run `ulimit -n %d` in this shell and retry (above the hard limit that needs root or /etc/security/limits.conf)%s",
			r.connsFrom, low, f.Need, lowerHint(r.connsFrom))
	case err != nil:
		return usagef("%s needs about %d open files: %v: run `ulimit -n %d` in this shell and retry", r.connsFrom, f.Need, err, f.Need)
	case f.Raised:
		log.Info("raised the open-file soft limit", "from", f.Soft, "to", f.Need, "hard", f.Hard)
	}
	return nil
}

// lowerHint suggests the other way out: a smaller plan.
func lowerHint(flag string) string {
	if !strings.HasPrefix(flag, "--") {
		return ""
	}
	name, _, _ := strings.Cut(flag, " ")
	return ", or lower " + name
}

// checkOutputDir makes sure a run folder can be written under
// --output-dir before the server is contacted (an unwritable folder found
// after a long run would lose it), and creates nothing: it writes and
// removes a file in the nearest folder that exists on the way.
func checkOutputDir(base string, b Bench) error {
	dir := filepath.Join(base, string(b))
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return usagef("--output-dir %s: %s is not a folder", base, dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return usagef("--output-dir %s: %v", base, err)
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	f, err := os.CreateTemp(dir, ".veeksha-write-check-*")
	if err != nil {
		return usagef("--output-dir %s: cannot write in %s: %v", base, dir, err)
	}
	if err := errors.Join(f.Close(), os.Remove(f.Name())); err != nil {
		return usagef("--output-dir %s: %v", base, err)
	}
	return nil
}

// titleCase is a benchmark's name as a title: "Prefill".
func titleCase(b Bench) string {
	s := string(b)
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
