package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/predict"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/report/console"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// session is everything a benchmark needs to talk to the server: the
// simulated engine when --api-base is sim, the client, the model, and the
// calibrated prompt sampler.
type session struct {
	// started is when the run folder was created (wall clock, for metadata).
	started time.Time
	// metricsURL is the server's Prometheus endpoint when it has one.
	metricsURL string
	log        *slog.Logger
	client     *client.Client
	tokens     *client.TokenCounter
	sim        *simengine.Server
	// unlisted holds the server's model list when --model is not in it
	// (the preflight then decides whether the server takes it).
	unlisted []string
	// fitted is the simulated engine's profile when it was fitted to a
	// server's runs (sim:<dir>); it is saved in the run folder.
	fitted   *simengine.Profile
	sampler  *sampler.Sampler
	settings result.Settings
}

// setupTimeout bounds each setup step (model discovery, preflight,
// calibration probes) so a silent server is reported, not waited for.
const setupTimeout = 60 * time.Second

// openSession starts the simulated engine if asked, connects, finds the
// model and checks that the server streams. Every failure here is a
// usageError with a hint: nothing has been written yet.
func openSession(ctx context.Context, c *Common, log *slog.Logger, maxConcurrency int, seed uint64) (*session, error) {
	s := &session{log: log}
	if err := s.open(ctx, c, maxConcurrency, seed); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// open fills s; openSession closes what it started when it fails.
// seed is the seed of the prompt bodies.
func (s *session) open(ctx context.Context, c *Common, maxConcurrency int, seed uint64) error {
	base, server := c.APIBase, "external"
	if base == "sim" || strings.HasPrefix(base, "sim:") {
		sim, name, fitted, err := startSim(base, s.log)
		if err != nil {
			return err
		}
		s.sim, s.fitted, base, server = sim, fitted, sim.BaseURL(), "sim:"+name
		s.log.Info("started the simulated engine", "base_url", base, "profile", name)
	}
	// One client for the whole session, built before the model is known
	// (listing models needs none); WithModel shares its connections.
	cl, err := client.New(clientConfig(c, base, maxConcurrency, s.log))
	if err != nil {
		return usageError{err}
	}
	s.client = cl
	// shown is the base URL as printed and saved: without a password.
	shown := redactURL(base)
	model, err := s.resolveModel(ctx, c.Model, shown)
	if err != nil {
		return err
	}
	s.client = cl.WithModel(model)
	nonce := rand.Uint64()
	if c.NoPromptSalt {
		nonce = 0
	}
	s.settings = result.Settings{
		APIBase: shown, Server: server, Model: model, Endpoint: c.Endpoint, Seed: c.Seed,
		PromptNonce: nonce, PromptSalt: !c.NoPromptSalt, NonStandard: !c.NoExtraFields,
		RequestTimeoutS: c.RequestTimeout.D().Seconds(), BenchmarkTimeoutS: c.BenchmarkTimeout.D().Seconds(),
	}
	if err := s.preflight(ctx, shown); err != nil {
		var ue usageError
		if s.unlisted != nil && errors.As(err, &ue) && !strings.Contains(err.Error(), "--model") {
			return usagef("%v (and --model %q is not in the server's list%s)", err, model, s.listNote())
		}
		return err
	}
	if s.unlisted != nil {
		s.log.Warn("--model is not in the server's model list, but the server accepts it", "model", model, "listed", strings.Join(s.unlisted, ", "))
	}
	s.probeServer(ctx, c.NoExtraFields)
	s.tokens = client.NewTokenCounter(s.client)
	s.sampler = sampler.New(sampler.Config{Seed: seed, Nonce: nonce, NoSalt: c.NoPromptSalt}, s.countTokens)
	return nil
}

// clientConfig translates the common flags to the client's configuration.
// The model is left out: it is resolved with the client.
func clientConfig(c *Common, base string, maxConcurrency int, log *slog.Logger) client.Config {
	return client.Config{
		BaseURL: base, APIKey: c.APIKey, Endpoint: client.Endpoint(c.Endpoint),
		RequestTimeout: c.RequestTimeout.D(), MaxConcurrency: maxConcurrency,
		NonStandard: !c.NoExtraFields, RunID: fmt.Sprintf("veeksha-%d", time.Now().UnixNano()%1e9), Logger: log,
	}
}

// startSim starts the in-process simulated engine named by spec: "sim",
// "sim:<profile>", "sim:<profile.json>", or a profile fitted to a server's
// own runs: "sim:<output-dir>" (its prefill and decode runs' latest) or
// "sim:<prefill-run>+<decode-run>" (see pkg/predict).
func startSim(spec string, log *slog.Logger) (*simengine.Server, string, *simengine.Profile, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(spec, "sim"), ":")
	if name == "" {
		name = simengine.DefaultProfileName()
	}
	var profile simengine.Profile
	var err error
	if st, statErr := os.Stat(name); strings.Contains(name, "+") || (statErr == nil && st.IsDir()) {
		profile, err = fitProfile(name)
	} else if profile, err = simengine.ResolveProfile(name); err != nil {
		err = fmt.Errorf("%v (profiles: %s)", err, strings.Join(simengine.Profiles(), ", "))
	}
	if err != nil {
		return nil, "", nil, usagef("--api-base %s: %v", spec, err)
	}
	srv, err := simengine.Start(simengine.Options{Profile: profile, Logger: log})
	if err != nil {
		return nil, "", nil, fmt.Errorf("start the simulated engine: %w", err)
	}
	if profile.Fit == nil {
		return srv, name, nil, nil
	}
	return srv, name, &profile, nil
}

// fitProfile fits a profile to the prefill and decode runs spec names,
// assuming the default profile's terms for what the runs cannot tell.
func fitProfile(spec string) (simengine.Profile, error) {
	src, err := predict.Resolve(spec)
	if err != nil {
		return simengine.Profile{}, err
	}
	assumed, err := simengine.LookupProfile(simengine.DefaultProfileName())
	if err != nil {
		return simengine.Profile{}, err
	}
	p, _, err := predict.FromRuns(src, assumed)
	return p, err
}

// resolveModel returns the model to benchmark (see client.ResolveModel),
// with a hint when there is none.
func (s *session) resolveModel(ctx context.Context, want, base string) (string, error) {
	mctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	model, err := s.client.ResolveModel(mctx, want)
	var se *client.SetupError
	switch {
	case err == nil:
		return model, nil
	case ctx.Err() != nil:
		return "", exitError{ExitInterrupted, errors.New("interrupted")}
	case !errors.As(err, &se):
		return "", err
	}
	switch se.Kind {
	case client.SetupUnreachable:
		return "", usagef("no server is listening at --api-base %s: start one, or try --api-base sim for the built-in simulated engine", base)
	case client.SetupUnauthorized:
		return "", usagef("the server at %s refused the API key: set --api-key or VEEKSHA_API_KEY", base)
	case client.SetupNoModels:
		return "", usagef("the server at %s lists no models: name one with --model", base)
	case client.SetupUnknownModel:
		// Hosted APIs accept aliases they do not list: go on, and let the
		// preflight request decide (a refusal there is a usage error).
		s.unlisted = se.Models
		return want, nil
	}
	return "", usagef("could not list the models at %s/models (%v): is --api-base right (it usually ends in /v1)? or name one with --model", base, se.Err)
}

// preflight checks with one short streamed request (see
// client.Preflight) that the server can be benchmarked, with a hint when
// it cannot.
func (s *session) preflight(ctx context.Context, base string) error {
	pctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	err := s.client.Preflight(pctx)
	var se *client.SetupError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return exitError{ExitInterrupted, errors.New("interrupted")}
	case !errors.As(err, &se):
		return err
	}
	ep := s.settings.Endpoint
	switch se.Kind {
	case client.SetupUnreachable:
		return usagef("no server is listening at --api-base %s: start one, or try --api-base sim", base)
	case client.SetupUnknownModel:
		return usagef("--model %q: the server does not know it (%s)%s", s.settings.Model, se.Message, s.listNote())
	case client.SetupNoEndpoint:
		return usagef("%s answered %d: this server has no %s endpoint (try --endpoint %s, or check --api-base)", redactURL(se.URL), se.Status, ep, otherEndpoint(ep))
	case client.SetupUnauthorized:
		return usagef("the server refused the API key (%d): set --api-key or VEEKSHA_API_KEY", se.Status)
	case client.SetupHTTPStatus:
		return usagef("the server answered %d to a test request at %s: %s", se.Status, redactURL(se.URL), se.Message)
	case client.SetupTimedOut:
		return usagef("the server at %s did not answer a test request within %v", base, setupTimeout)
	}
	return usagef("the server at %s did not stream a completion (%s: %s): it must support \"stream\": true", redactURL(se.URL), se.Class, se.Message)
}

func otherEndpoint(e string) string {
	if e == string(client.Completions) {
		return string(client.Chat)
	}
	return string(client.Completions)
}

// probeServer records the server software and finds its metrics endpoint.
// Neither is required: a failure only leaves them out.
func (s *session) probeServer(ctx context.Context, noExtraFields bool) {
	s.settings.ServerSoftware = s.client.Software(ctx)
	if strings.HasPrefix(s.settings.ServerSoftware, "ollama") && !noExtraFields {
		s.log.Warn("this server is Ollama, which ignores ignore_eos and min_tokens: requests may stop before the requested output length; the output_tokens check reports any that do",
			"server", s.settings.ServerSoftware)
	}
	metricsURL := s.client.Root() + "/metrics"
	if servermetrics.Available(ctx, metricsClient(), metricsURL) {
		s.metricsURL = metricsURL
		s.log.Info("scraping the server's metrics during the run", "url", metricsURL)
	}
}

// countTokens measures a prompt's length in server tokens (see
// client.TokenCounter), each count bounded by setupTimeout.
func (s *session) countTokens(ctx context.Context, text string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	return s.tokens.Count(cctx, text)
}

// calibrate finds exact-length prompts for lengths.
func (s *session) calibrate(ctx context.Context, lengths []int) error {
	err := s.sampler.Calibrate(ctx, lengths)
	s.settings.LengthSource = string(s.tokens.Method())
	if err != nil {
		if errors.Is(err, sampler.ErrTooShort) {
			return usagef("--input-lengths: %v", err)
		}
		if ctx.Err() != nil {
			return exitError{ExitInterrupted, errors.New("interrupted during prompt calibration")}
		}
		return usagef("could not build exact-length prompts: %v", err)
	}
	s.settings.PromptOverheadTokens = s.sampler.Overhead()
	return s.checkLongest(ctx, slices.Max(lengths))
}

// checkLongest sends the longest prompt once, outside the measurements
// (see client.CheckPrompt): a server that refuses it (longer than the
// model's context) is reported before anything is created, and its usage
// must confirm the calibration.
func (s *session) checkLongest(ctx context.Context, length int) error {
	prompt, err := s.sampler.CheckPrompt(length)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	err = s.client.CheckPrompt(cctx, prompt, length)
	var se *client.SetupError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return exitError{ExitInterrupted, errors.New("interrupted during prompt calibration")}
	case errors.As(err, &se) && se.Kind == client.SetupPromptMismatch:
		return usagef("--input-lengths %d: the server counted %d tokens for the calibrated prompt (its /tokenize and its usage disagree): prompt lengths cannot be made exact", length, se.Tokens)
	case errors.As(err, &se) && se.Err != nil:
		err = se.Err
	}
	return usagef("--input-lengths %d: the server refused a prompt of that length: %v", length, err)
}

// serverLabel describes the server for banners and index pages.
func serverLabel(st result.Settings) string {
	if st.ServerSoftware == "" {
		return st.Server
	}
	return st.Server + " (" + st.ServerSoftware + ")"
}

// metricsClient is the HTTP client of the metrics scraper: a short
// timeout, so a slow /metrics never holds a run.
func metricsClient() *http.Client { return &http.Client{Timeout: 2 * time.Second} }

// scrape starts scraping the server's metrics, or returns nil when it has
// none. Summaries of a nil scraper are empty.
func (s *session) scrape(ctx context.Context) *servermetrics.Scraper {
	if s.metricsURL == "" {
		return nil
	}
	return servermetrics.Start(ctx, metricsClient(), s.metricsURL, 200*time.Millisecond, s.log)
}

func (s *session) close() {
	if s.client != nil {
		s.client.Close()
	}
	if s.sim != nil {
		_ = s.sim.Close()
	}
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
}

// beginRun does what every benchmark does before it sends load: the
// optional self-check, the session (server, model, preflight), prompt
// calibration, the run folder, and the banner. The caller closes the
// session.
func beginRun(ctx context.Context, e *env, c *Common, log *slog.Logger, r runStart) (*session, *report.Dir, error) {
	if c.SelfCheck {
		if err := selfCheck(ctx, e, c, log, r.streams); err != nil {
			return nil, nil, err
		}
	}
	seed := c.Seed
	if r.seed != nil {
		seed = *r.seed
	}
	s, err := openSession(ctx, c, log, r.streams, seed)
	if err != nil {
		return nil, nil, err
	}
	if err := s.calibrate(ctx, r.lengths); err != nil {
		s.close()
		return nil, nil, err
	}
	s.started = e.now()
	dir, err := report.Create(c.OutputDir, string(r.bench), s.started)
	if err != nil {
		s.close()
		return nil, nil, fmt.Errorf("create the run folder: %w", err)
	}
	if s.fitted != nil {
		if err := dir.WriteFile(predict.ProfileFile, func(w io.Writer) error { return report.WriteJSON(w, s.fitted) }); err != nil {
			s.close()
			return nil, nil, err
		}
		r.rows = append(r.rows, [2]string{"Engine profile", "fitted to the server's own prefill and decode runs: " + predict.ProfileFile})
	}
	if !c.Quiet {
		rows := append([][2]string{
			{"Model", s.settings.Model}, {"API base", s.settings.APIBase}, {"Server", serverLabel(s.settings)},
			{"Endpoint", c.Endpoint}, {"Output dir", dir.FinalPath()},
		}, r.rows...)
		rows = append(rows, [2]string{"Prompt lengths", fmt.Sprintf("exact, measured by %s (server adds %d tokens)", s.settings.LengthSource, s.settings.PromptOverheadTokens)})
		if o := c.slo(); !o.IsZero() {
			rows = append(rows, [2]string{"SLO", o.String()})
		}
		if err := console.Banner(e.stdout, r.title, rows, consoleOptions(e)); err != nil {
			s.close()
			return nil, nil, fmt.Errorf("print banner: %w", err)
		}
	}
	return s, dir, nil
}

// listNote names the server's models when --model was not among them.
func (s *session) listNote() string {
	if len(s.unlisted) == 0 {
		return ""
	}
	return "; it lists: " + strings.Join(s.unlisted, ", ")
}

// redactURL is u with any password replaced by "xxxxx", for printing and
// saving; u unchanged when it does not parse.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
