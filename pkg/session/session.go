// Package session opens everything a benchmark needs before it sends
// load: the simulated engine when the API base names it (a built-in
// profile, a profile file, or one fitted to a server's own runs), the
// client, the model, a preflight request that proves the server streams,
// the server's software and metrics endpoint, and the sampler whose
// prompts are calibrated to exact lengths in the server's tokens.
//
// A Go program runs a benchmark against any server with a Session:
//
//	s, err := session.Open(ctx, session.Config{APIBase: "sim"})
//	...
//	defer s.Close()
//	err = s.Calibrate(ctx, lengths)
//	res, err := prefill.Run(ctx, cfg, s.Deps(ctx))
//
// Errors the user fixes (a flag, or the server at the API base) are
// *Error values with a one-line hint naming what to change.
package session

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// Config is how to reach the server and what to ask of it.
type Config struct {
	// APIBase is the server's OpenAI base URL (usually ending in /v1), or
	// the simulated engine: "sim", "sim:<profile>", "sim:<profile.json>",
	// "sim:<output-dir>" or "sim:<prefill-run>+<decode-run>" (a profile
	// fitted to a server's own runs, see pkg/predict).
	APIBase string
	// APIKey is sent as a bearer token when set.
	APIKey string
	// Model is the model to benchmark; empty means the first one listed.
	Model string
	// Endpoint is "chat" (the default) or "completions".
	Endpoint string
	// Seed seeds the prompts' content.
	Seed uint64
	// NoPromptSalt leaves the unique salt out of prompts, so a server's
	// prefix cache can serve them.
	NoPromptSalt bool
	// NoExtraFields sends only standard OpenAI fields.
	NoExtraFields bool
	// RequestTimeout ends a request that receives nothing for that long;
	// RequestDeadline, when positive, bounds a request's whole life (see
	// client.Config).
	RequestTimeout  time.Duration
	RequestDeadline time.Duration
	// BenchmarkTimeout is recorded in the settings; the benchmarks apply it.
	BenchmarkTimeout time.Duration
	// MaxConcurrency is the most requests the plan has in flight.
	MaxConcurrency int
	// Logger gets the session's notes; nil discards.
	Logger *slog.Logger
}

// Session is an open connection to a benchmarkable server. Close it.
type Session struct {
	// Client sends the benchmark's requests, with the model resolved.
	Client *client.Client
	// Sampler makes the prompts; Calibrate fits them to exact lengths.
	Sampler *sampler.Sampler
	// Settings describe the server and the request options, as the
	// results record them (the API base without a password).
	Settings result.Settings
	// Fitted is the simulated engine's profile when it was fitted to a
	// server's runs (sim:<dir>; Settings.Predicted is then set); a run
	// saves it with its results, where it is itself a profile file.
	Fitted *simengine.Profile

	log        *slog.Logger
	tokens     *client.TokenCounter
	sim        *simengine.Server
	metricsURL string
	scraper    *servermetrics.Scraper
	// unlisted holds the server's model list when the model asked for is
	// not in it (the preflight then decides whether the server takes it).
	unlisted []string
}

// Error is a setup failure the user fixes: a flag, or the server at the
// API base. Its message is one line that names what to change. Nothing
// has been sent to the server as load when it is returned.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func errorf(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// setupTimeout bounds each setup step (model discovery, preflight,
// calibration probes) so a silent server is reported, not waited for.
const setupTimeout = 60 * time.Second

// SimProfiles names the simulated engine's built-in profiles.
func SimProfiles() []string { return simengine.Profiles() }

// IsSim reports whether an API base names the simulated engine.
func IsSim(apiBase string) bool { return apiBase == "sim" || strings.HasPrefix(apiBase, "sim:") }

// Open starts the simulated engine if cfg asks for it, connects, finds the
// model, checks with one short streamed request that the server can be
// benchmarked, and notes its software and metrics endpoint. An
// interrupted Open returns ctx's error.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	s := &Session{log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = string(client.Chat)
	}
	if err := s.open(ctx, cfg); err != nil {
		s.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("session setup interrupted: %w", ctx.Err())
		}
		return nil, err
	}
	return s, nil
}

// open fills s; Open closes what it started when it fails.
func (s *Session) open(ctx context.Context, cfg Config) error {
	base, server := cfg.APIBase, "external"
	if IsSim(base) {
		sim, name, fitted, err := startSim(base, s.log)
		if err != nil {
			return err
		}
		s.sim, s.Fitted, base, server = sim, fitted, sim.BaseURL(), "sim:"+name
		s.log.Info("started the simulated engine", "base_url", base, "profile", name)
	}
	// One client for the whole session, built before the model is known
	// (listing models needs none); WithModel shares its connections.
	cl, err := client.New(client.Config{
		BaseURL: base, APIKey: cfg.APIKey, Endpoint: client.Endpoint(cfg.Endpoint),
		RequestTimeout: cfg.RequestTimeout, RequestDeadline: cfg.RequestDeadline, MaxConcurrency: cfg.MaxConcurrency,
		NonStandard: !cfg.NoExtraFields, RunID: fmt.Sprintf("veeksha-%d", time.Now().UnixNano()%1e9), Logger: s.log,
	})
	if err != nil {
		return &Error{err.Error()}
	}
	s.Client = cl
	// shown is the base URL as printed and saved: without a password.
	shown := RedactURL(base)
	model, err := s.resolveModel(ctx, cfg.Model, shown)
	if err != nil {
		return err
	}
	s.Client = cl.WithModel(model)
	nonce := rand.Uint64()
	if cfg.NoPromptSalt {
		nonce = 0
	}
	s.Settings = result.Settings{
		APIBase: shown, Server: server, Model: model, Endpoint: cfg.Endpoint, Seed: cfg.Seed,
		PromptNonce: nonce, PromptSalt: !cfg.NoPromptSalt, NonStandard: !cfg.NoExtraFields,
		RequestTimeoutS: cfg.RequestTimeout.Seconds(), RequestDeadlineS: cfg.RequestDeadline.Seconds(),
		BenchmarkTimeoutS: cfg.BenchmarkTimeout.Seconds(), Predicted: s.Fitted != nil,
	}
	if err := s.preflight(ctx, shown); err != nil {
		var ue *Error
		if s.unlisted != nil && errors.As(err, &ue) && !strings.Contains(err.Error(), "--model") {
			return errorf("%v (and --model %q is not in the server's list%s)", err, model, s.listNote())
		}
		return err
	}
	if s.unlisted != nil {
		s.log.Warn("--model is not in the server's model list, but the server accepts it", "model", model, "listed", strings.Join(s.unlisted, ", "))
	}
	s.probeServer(ctx, cfg.NoExtraFields)
	s.tokens = client.NewTokenCounter(s.Client)
	s.Sampler = sampler.New(sampler.Config{Seed: cfg.Seed, Nonce: nonce, NoSalt: cfg.NoPromptSalt}, s.countTokens)
	return nil
}

// startSim starts the in-process simulated engine named by spec (see
// Config.APIBase).
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
		return nil, "", nil, errorf("--api-base %s: %v", spec, err)
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
func (s *Session) resolveModel(ctx context.Context, want, base string) (string, error) {
	mctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	model, err := s.Client.ResolveModel(mctx, want)
	var se *client.SetupError
	switch {
	case err == nil:
		return model, nil
	case ctx.Err() != nil || !errors.As(err, &se):
		return "", err
	}
	switch se.Kind {
	case client.SetupUnreachable:
		return "", errorf("no server is listening at --api-base %s: start one, or try --api-base sim for the built-in simulated engine", base)
	case client.SetupUnauthorized:
		return "", errorf("the server at %s refused the API key: set --api-key or VEEKSHA_API_KEY", base)
	case client.SetupNoModels:
		return "", errorf("the server at %s lists no models: name one with --model", base)
	case client.SetupUnknownModel:
		// Hosted APIs accept aliases they do not list: go on, and let the
		// preflight request decide (a refusal there is the user's to fix).
		s.unlisted = se.Models
		return want, nil
	}
	return "", errorf("could not list the models at %s/models (%v): is --api-base right (it usually ends in /v1)? or name one with --model", base, se.Err)
}

// preflight checks with one short streamed request (see
// client.Preflight) that the server can be benchmarked, with a hint when
// it cannot.
func (s *Session) preflight(ctx context.Context, base string) error {
	pctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	err := s.Client.Preflight(pctx)
	var se *client.SetupError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil || !errors.As(err, &se):
		return err
	}
	ep := s.Settings.Endpoint
	switch se.Kind {
	case client.SetupUnreachable:
		return errorf("no server is listening at --api-base %s: start one, or try --api-base sim", base)
	case client.SetupUnknownModel:
		return errorf("--model %q: the server does not know it (%s)%s", s.Settings.Model, se.Message, s.listNote())
	case client.SetupNoEndpoint:
		return errorf("%s answered %d: this server has no %s endpoint (try --endpoint %s, or check --api-base)", RedactURL(se.URL), se.Status, ep, otherEndpoint(ep))
	case client.SetupUnauthorized:
		return errorf("the server refused the API key (%d): set --api-key or VEEKSHA_API_KEY", se.Status)
	case client.SetupHTTPStatus:
		return errorf("the server answered %d to a test request at %s: %s", se.Status, RedactURL(se.URL), se.Message)
	case client.SetupTimedOut:
		if se.Class == result.ErrTimeout || se.Class == result.ErrDeadline {
			return errorf("the server at %s did not answer a test request in time (%s): is it overloaded, or is --request-timeout too short for it?", base, se.Message)
		}
		return errorf("the server at %s did not answer a test request within %v", base, setupTimeout)
	case client.SetupBadStream:
		return errorf("the server at %s streamed, but each of its test requests failed (%s: %s)", RedactURL(se.URL), se.Class, se.Message)
	}
	if strings.HasPrefix(se.Message, client.NotStreaming) && !strings.Contains(se.Message, "application/json") {
		// An HTML page or plain text: something other than an OpenAI
		// server answered (a proxy, a web UI, a wrong path).
		return errorf("%s did not answer with an event stream (%s): is --api-base the server's OpenAI API (it usually ends in /v1)?", RedactURL(se.URL), se.Message)
	}
	return errorf("the server at %s did not stream a completion (%s: %s): it must support \"stream\": true", RedactURL(se.URL), se.Class, se.Message)
}

func otherEndpoint(e string) string {
	if e == string(client.Completions) {
		return string(client.Chat)
	}
	return string(client.Completions)
}

// probeServer records the server software and finds its metrics endpoint.
// Neither is required: a failure only leaves them out.
func (s *Session) probeServer(ctx context.Context, noExtraFields bool) {
	s.Settings.ServerSoftware = s.Client.Software(ctx)
	if strings.HasPrefix(s.Settings.ServerSoftware, "ollama") && !noExtraFields {
		s.log.Warn("this server is Ollama, which ignores ignore_eos and min_tokens: requests may stop before the requested output length; the output_tokens check reports any that do",
			"server", s.Settings.ServerSoftware)
	}
	metricsURL := s.Client.Root() + "/metrics"
	if servermetrics.Available(ctx, metricsClient(), metricsURL) {
		s.metricsURL = metricsURL
		s.log.Info("scraping the server's metrics during the run", "url", metricsURL)
	}
}

// ContextLength is the model's context length as the server lists it
// (client.ContextLength), or 0 when it does not say or cannot be asked:
// then nothing can be checked against it. It is recorded in Settings.
func (s *Session) ContextLength(ctx context.Context) int {
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	n, err := s.Client.ContextLength(cctx, s.Settings.Model)
	if err != nil {
		s.log.Debug("could not read the model's context length", "err", err)
		n = 0
	}
	s.Settings.ContextLength = n
	return n
}

// countTokens measures a prompt's length in server tokens (see
// client.TokenCounter), each count bounded by setupTimeout.
func (s *Session) countTokens(ctx context.Context, text string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	return s.tokens.Count(cctx, text)
}

// Calibrate finds exact-length prompts for lengths (in server tokens) and
// sends the longest once, outside any measurement: a server that refuses
// it, or counts it differently, is reported before the run.
func (s *Session) Calibrate(ctx context.Context, lengths []int) error {
	err := s.Sampler.Calibrate(ctx, lengths)
	s.Settings.LengthSource = string(s.tokens.Method())
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("prompt calibration interrupted: %w", ctx.Err())
	case errors.Is(err, sampler.ErrTooShort):
		return errorf("--input-lengths: %v", err)
	default:
		return errorf("could not build exact-length prompts: %v", err)
	}
	s.Settings.PromptOverheadTokens = s.Sampler.Overhead()
	return s.checkLongest(ctx, slices.Max(lengths))
}

// checkLongest sends the longest prompt once (see client.CheckPrompt): a
// server that refuses it (longer than the model's context) is reported
// before anything is created, and its usage must confirm the calibration.
func (s *Session) checkLongest(ctx context.Context, length int) error {
	prompt, err := s.Sampler.CheckPrompt(length)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	err = s.Client.CheckPrompt(cctx, prompt, length)
	var se *client.SetupError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("prompt calibration interrupted: %w", ctx.Err())
	case errors.As(err, &se) && se.Kind == client.SetupPromptMismatch:
		return errorf("--input-lengths %d: the server counted %d tokens for the calibrated prompt (its /tokenize and its usage disagree): prompt lengths cannot be made exact", length, se.Tokens)
	case errors.As(err, &se) && se.Kind == client.SetupTimedOut:
		return errorf("--input-lengths %d: the server did not answer a prompt of that length in time (%s): raise --request-timeout if its prefill is that slow", length, se.Detail())
	case errors.As(err, &se) && se.Err != nil:
		err = se.Err
	}
	return errorf("--input-lengths %d: the server refused a prompt of that length: %v", length, err)
}

// Label describes the server for banners and report pages.
func (s *Session) Label() string { return ServerLabel(s.Settings) }

// ServerLabel describes the server of settings st.
func ServerLabel(st result.Settings) string {
	if st.ServerSoftware == "" {
		return st.Server
	}
	return st.Server + " (" + st.ServerSoftware + ")"
}

// metricsClient is the HTTP client of the metrics scraper: a short
// timeout, so a slow /metrics never holds a run.
func metricsClient() *http.Client { return &http.Client{Timeout: 2 * time.Second} }

// Deps is what a benchmark's Run needs from the session: the sender, the
// prompts, the settings, and the server's metrics when it has them (a
// scraper runs from the first call until Close). The caller adds its
// own progress, record files and check bounds.
func (s *Session) Deps(ctx context.Context) runner.Deps {
	d := runner.Deps{Sender: s.Client, Prompts: s.Sampler, Logger: s.log, Meta: result.Meta{Settings: s.Settings}}
	if s.metricsURL != "" && s.scraper == nil {
		s.scraper = servermetrics.Start(ctx, metricsClient(), s.metricsURL, 200*time.Millisecond, s.log)
	}
	if s.scraper != nil {
		d.Server = s.scraper
	}
	return d
}

// Close stops the scraper, closes the client's connections and stops the
// simulated engine.
func (s *Session) Close() {
	if s.scraper != nil {
		s.scraper.Stop()
	}
	if s.Client != nil {
		s.Client.Close()
	}
	if s.sim != nil {
		_ = s.sim.Close()
	}
}

// listNote names the server's models when --model was not among them.
func (s *Session) listNote() string {
	if len(s.unlisted) == 0 {
		return ""
	}
	return "; it lists: " + strings.Join(s.unlisted, ", ")
}

// RedactURL is u with any password replaced by "xxxxx", for printing and
// saving; u unchanged when it does not parse.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
