package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/session"
)

// fittedProfileFile is the file a prediction run (--api-base sim:<runs>)
// saves its fitted engine profile in; it is itself a profile file
// (--api-base sim:<run>/sim_profile.json).
const fittedProfileFile = "sim_profile.json"

// sessionConfig translates the common flags to the session's
// configuration.
func sessionConfig(c *Common, maxConcurrency int, log *slog.Logger) session.Config {
	return session.Config{
		APIBase: c.APIBase, APIKey: c.APIKey, Model: c.Model, Endpoint: c.Endpoint,
		Seed: c.Seed, NoPromptSalt: c.NoPromptSalt, NoExtraFields: c.NoExtraFields,
		RequestTimeout: c.RequestTimeout.D(), RequestDeadline: c.RequestDeadline.D(), BenchmarkTimeout: c.BenchmarkTimeout.D(),
		MaxConcurrency: maxConcurrency, Logger: log,
	}
}

// setupError is err, from pkg/session, as the CLI reports it: an
// interrupt exits 130, a problem the user fixes exits 2 with its hint.
func setupError(ctx context.Context, err error) error {
	var se *session.Error
	switch {
	case ctx.Err() != nil:
		// The setup failed because the user stopped it, not because the
		// server or the flags are wrong.
		return exitError{code: ExitInterrupted, err: errors.New("interrupted during setup: nothing was measured")}
	case errors.As(err, &se):
		return usageError{err}
	}
	return err
}

// runStart is what beginRun needs to know about a benchmark.
type runStart struct {
	bench Bench
	// streams is the most concurrent requests the plan needs.
	streams int
	// lengths are the prompt lengths to calibrate.
	lengths []int
	// title heads the banner; rows are the benchmark's own banner rows.
	title string
	rows  [][2]string
	// warnings are logged before the run starts.
	warnings []string
	// seed, when set, is the seed of the prompt bodies in place of
	// --seed (a shard's own).
	seed *uint64
	// conns is the most connections the plan may hold open at once, for
	// the open-file check (0: streams); connsFrom names the flag it comes
	// from, for the message.
	conns     int
	connsFrom string
	// fits, when set, checks the plan against the model's context length
	// (0 when the server does not say): an error is the user's to fix.
	fits func(contextLen int) error
}

// beginRun does what every benchmark does before it sends load: the
// optional self-check, the session (server, model, preflight), prompt
// calibration, the run folder, and the banner. It returns when the run
// started (wall clock, for the results). The caller closes the session.
func beginRun(ctx context.Context, e *env, c *Common, log *slog.Logger, r runStart) (*session.Session, *report.Dir, time.Time, error) {
	if c.SelfCheck {
		if err := selfCheck(ctx, e, c, log, r.streams); err != nil {
			return nil, nil, time.Time{}, err
		}
	}
	cfg := sessionConfig(c, r.streams, log)
	if r.seed != nil {
		cfg.Seed = *r.seed
	}
	s, err := session.Open(ctx, cfg)
	if err != nil {
		return nil, nil, time.Time{}, setupError(ctx, err)
	}
	dir, started, err := createRun(ctx, e, c, s, r)
	if err != nil {
		s.Close()
		return nil, nil, time.Time{}, err
	}
	return s, dir, started, nil
}

// createRun calibrates the prompts, creates the run folder (with the
// fitted engine profile, when there is one) and prints the banner.
func createRun(ctx context.Context, e *env, c *Common, s *session.Session, r runStart) (*report.Dir, time.Time, error) {
	// A plan longer than the model's context is refused before anything
	// is calibrated or sent, not found as HTTP 400s.
	if n := s.ContextLength(ctx); r.fits != nil {
		if err := r.fits(n); err != nil {
			return nil, time.Time{}, usageError{err}
		}
	}
	if err := s.Calibrate(ctx, r.lengths); err != nil {
		return nil, time.Time{}, setupError(ctx, err)
	}
	started := e.now()
	dir, err := report.Create(c.OutputDir, string(r.bench), started)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("create the run folder: %w", err)
	}
	if s.Fitted != nil {
		if err := dir.WriteFile(fittedProfileFile, func(w io.Writer) error { return report.WriteJSON(w, s.Fitted) }); err != nil {
			return nil, time.Time{}, err
		}
		r.rows = append(r.rows, [2]string{"Engine profile", "fitted to the server's own prefill and decode runs: " + fittedProfileFile})
	}
	if c.Quiet {
		return dir, started, nil
	}
	st := s.Settings
	rows := append([][2]string{
		{"Model", st.Model}, {"API base", st.APIBase}, {"Server", s.Label()},
		{"Endpoint", c.Endpoint}, {"Output dir", dir.FinalPath()},
	}, r.rows...)
	rows = append(rows, [2]string{"Prompt lengths", fmt.Sprintf("exact, measured by %s (server adds %d tokens)", st.LengthSource, st.PromptOverheadTokens)})
	if o := c.slo(); !o.IsZero() {
		rows = append(rows, [2]string{"SLO", o.String()})
	}
	if err := console.Banner(e.stdout, r.title, rows, consoleOptions(e)); err != nil {
		return nil, time.Time{}, fmt.Errorf("print banner: %w", err)
	}
	return dir, started, nil
}
