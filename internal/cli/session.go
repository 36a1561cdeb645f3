package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
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
	sim        *simengine.Server
	sampler    *sampler.Sampler
	settings   result.Settings
}

// setupTimeout bounds each setup step (model discovery, preflight,
// calibration probes) so a silent server is reported, not waited for.
const setupTimeout = 60 * time.Second

// openSession starts the simulated engine if asked, connects, finds the
// model and checks that the server streams. Every failure here is a
// usageError with a hint: nothing has been written yet.
func openSession(ctx context.Context, c *Common, log *slog.Logger, maxConcurrency int) (*session, error) {
	s := &session{log: log}
	base, server := c.APIBase, "external"
	if base == "sim" || strings.HasPrefix(base, "sim:") {
		sim, name, err := startSim(base, log)
		if err != nil {
			return nil, err
		}
		s.sim, base, server = sim, sim.BaseURL(), "sim:"+name
		log.Info("started the simulated engine", "base_url", base, "profile", name)
	}
	// One configuration for the whole session: the model is filled in once
	// it is known (listing models needs none).
	cfg := client.Config{
		BaseURL: base, APIKey: c.APIKey, Endpoint: client.Endpoint(c.Endpoint),
		RequestTimeout: c.RequestTimeout.D(), MaxConcurrency: maxConcurrency,
		NonStandard: !c.NoExtraFields, RunID: fmt.Sprintf("veeksha-%d", time.Now().UnixNano()%1e9), Logger: log,
	}
	cl, err := client.New(cfg)
	if err != nil {
		s.close()
		return nil, usageError{err}
	}
	s.client = cl
	model, err := s.resolveModel(ctx, c.Model, base)
	if err != nil {
		s.close()
		return nil, err
	}
	cl.Close()
	cfg.Model = model
	if s.client, err = client.New(cfg); err != nil {
		s.close()
		return nil, usageError{err}
	}
	nonce := rand.Uint64()
	if c.NoPromptSalt {
		nonce = 0
	}
	s.settings = result.Settings{
		APIBase: base, Server: server, Model: model, Endpoint: c.Endpoint, Seed: c.Seed,
		PromptNonce: nonce, PromptSalt: !c.NoPromptSalt, NonStandard: !c.NoExtraFields,
		RequestTimeoutS: c.RequestTimeout.D().Seconds(), BenchmarkTimeoutS: c.BenchmarkTimeout.D().Seconds(),
	}
	if err := s.preflight(ctx, base); err != nil {
		s.close()
		return nil, err
	}
	root := strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/v1")
	s.settings.ServerSoftware = detectSoftware(ctx, root)
	if strings.HasPrefix(s.settings.ServerSoftware, "ollama") && !c.NoExtraFields {
		log.Warn("this server is Ollama, which ignores ignore_eos and min_tokens: requests may stop before the requested output length; the output_tokens check reports any that do",
			"server", s.settings.ServerSoftware)
	}
	metricsURL := root + "/metrics"
	if servermetrics.Probe(ctx, metricsClient(), metricsURL) {
		s.metricsURL = metricsURL
		log.Info("scraping the server's metrics during the run", "url", metricsURL)
	}
	s.sampler = sampler.New(sampler.Config{Seed: c.Seed, Nonce: nonce, NoSalt: c.NoPromptSalt}, s.countTokens)
	return s, nil
}

// startSim starts the in-process simulated engine named by spec: "sim",
// "sim:<profile>" or "sim:<profile.json>".
func startSim(spec string, log *slog.Logger) (*simengine.Server, string, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(spec, "sim"), ":")
	if name == "" {
		name = simengine.DefaultProfileName()
	}
	profile, err := simengine.ResolveProfile(name)
	if err != nil {
		return nil, "", usagef("--api-base %s: %v (profiles: %s)", spec, err, strings.Join(simengine.Profiles(), ", "))
	}
	srv, err := simengine.Start(simengine.Options{Profile: profile, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("start the simulated engine: %w", err)
	}
	return srv, name, nil
}

// resolveModel returns the model to benchmark: the one asked for, checked
// against the server's list, or the server's first model.
func (s *session) resolveModel(ctx context.Context, want, base string) (string, error) {
	mctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	models, err := s.client.Models(mctx)
	if err != nil {
		switch {
		case errors.Is(err, client.ErrUnreachable):
			return "", usagef("no server is listening at --api-base %s: start one, or try --api-base sim for the built-in simulated engine", base)
		case errors.Is(err, client.ErrUnauthorized):
			return "", usagef("the server at %s refused the API key: set --api-key or VEEKSHA_API_KEY", base)
		case want != "":
			// Some servers have no model list; go on with the name given.
			s.log.Warn("could not list models; using --model as given", "err", err)
			return want, nil
		default:
			return "", usagef("could not list the models at %s/models (%v): is --api-base right (it usually ends in /v1)? or name one with --model", base, err)
		}
	}
	if want == "" {
		if len(models) == 0 {
			return "", usagef("the server at %s lists no models: name one with --model", base)
		}
		return models[0], nil
	}
	for _, m := range models {
		if m == want {
			return want, nil
		}
	}
	if len(models) == 0 {
		return want, nil
	}
	return "", usagef("--model %q: the server at %s does not serve it (it serves: %s)", want, base, strings.Join(models, ", "))
}

// setupAttempts is how many times a setup request is tried when the
// server answers with a transient failure (5xx, 429): a flaky server is
// benchmarked (and its failures recorded), not turned away.
const setupAttempts = 3

func transient(status int) bool { return status >= 500 || status == 429 }

// preflight sends one short streamed request so that a server that cannot
// be benchmarked (wrong endpoint, unknown model, no streaming) is reported
// before anything is created.
func (s *session) preflight(ctx context.Context, base string) error {
	pctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	var r result.Request
	for range setupAttempts {
		r = s.client.Stream(pctx, time.Now(), client.Call{Seq: -1, Prompt: " preflight check: say hello", MaxTokens: 2})
		if r.OK() || !transient(r.HTTPStatus) {
			break
		}
	}
	if r.OK() {
		return nil
	}
	if ctx.Err() != nil {
		return exitError{ExitInterrupted, errors.New("interrupted")}
	}
	endpoint := strings.TrimSuffix(base, "/") + "/" + s.endpointPath()
	switch {
	case r.ErrClass == result.ErrConnect:
		return usagef("no server is listening at --api-base %s: start one, or try --api-base sim", base)
	case r.HTTPStatus == 404 && strings.Contains(strings.ToLower(r.Err), "model"):
		return usagef("--model %q: the server does not know it (%s)", s.settings.Model, r.Err)
	case r.HTTPStatus == 404 || r.HTTPStatus == 405:
		return usagef("%s answered %d: this server has no %s endpoint (try --endpoint %s, or check --api-base)", endpoint, r.HTTPStatus, s.settings.Endpoint, otherEndpoint(s.settings.Endpoint))
	case r.HTTPStatus == 401 || r.HTTPStatus == 403:
		return usagef("the server refused the API key (%d): set --api-key or VEEKSHA_API_KEY", r.HTTPStatus)
	case r.HTTPStatus >= 400:
		return usagef("the server answered %d to a test request at %s: %s", r.HTTPStatus, endpoint, r.Err)
	case r.ErrClass == result.ErrTimeout:
		return usagef("the server at %s did not answer a test request within %v", base, setupTimeout)
	default:
		return usagef("the server at %s did not stream a completion (%s: %s): it must support \"stream\": true", endpoint, r.ErrClass, r.Err)
	}
}

func (s *session) endpointPath() string {
	if s.settings.Endpoint == string(client.Completions) {
		return "completions"
	}
	return "chat/completions"
}

func otherEndpoint(e string) string {
	if e == string(client.Completions) {
		return string(client.Chat)
	}
	return string(client.Completions)
}

// countTokens measures a prompt's length in server tokens: with the
// server's /tokenize endpoint when it has one, else with a probe request
// reading usage.prompt_tokens. The method found is recorded in settings.
func (s *session) countTokens(ctx context.Context, text string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if s.settings.LengthSource != "usage_probe" {
		n, ok, err := s.client.Tokenize(cctx, text)
		if err != nil {
			return 0, err
		}
		if ok {
			s.settings.LengthSource = "tokenize"
			return n, nil
		}
		s.settings.LengthSource = "usage_probe"
		s.log.Info("the server has no /tokenize endpoint; measuring prompt lengths with probe requests")
	}
	var n int
	var err error
	for range setupAttempts {
		n, err = s.client.ProbePromptTokens(cctx, text)
		var ce *client.Error
		if err == nil || !errors.As(err, &ce) || !transient(ce.Status) {
			break
		}
	}
	return n, err
}

// calibrate finds exact-length prompts for lengths.
func (s *session) calibrate(ctx context.Context, lengths []int) error {
	if err := s.sampler.Calibrate(ctx, lengths); err != nil {
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

// checkLongest sends the longest prompt once, outside the measurements: a
// server that refuses it (longer than the model's context) is reported
// before anything is created, and its usage must confirm the calibration.
func (s *session) checkLongest(ctx context.Context, length int) error {
	prompt, err := s.sampler.ProbePrompt(length)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	var n int
	for range setupAttempts {
		n, err = s.client.ProbePromptTokens(cctx, prompt)
		var ce *client.Error
		if err == nil || !errors.As(err, &ce) || !transient(ce.Status) {
			break
		}
	}
	switch {
	case ctx.Err() != nil:
		return exitError{ExitInterrupted, errors.New("interrupted during prompt calibration")}
	case err != nil:
		return usagef("--input-lengths %d: the server refused a prompt of that length: %v", length, err)
	case n != length:
		return usagef("--input-lengths %d: the server counted %d tokens for the calibrated prompt (its /tokenize and its usage disagree): prompt lengths cannot be made exact", length, n)
	}
	return nil
}

// serverLabel describes the server for banners and index pages.
func serverLabel(st result.Settings) string {
	if st.ServerSoftware == "" {
		return st.Server
	}
	return st.Server + " (" + st.ServerSoftware + ")"
}

// detectSoftware names the server software behind root when it says so:
// Ollama answers /api/version, vLLM /version. Empty when unknown.
func detectSoftware(ctx context.Context, root string) string {
	for _, probe := range []struct{ path, name string }{{"/api/version", "ollama"}, {"/version", "vllm"}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, root+probe.path, nil)
		if err != nil {
			return ""
		}
		resp, err := metricsClient().Do(req)
		if err != nil {
			return ""
		}
		var v struct {
			Version string `json:"version"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && err == nil && v.Version != "" {
			return probe.name + " " + v.Version
		}
	}
	return ""
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

// serverSummary summarizes what the server reported in [from, to]; nil
// without a scraper.
func serverSummary(sc *servermetrics.Scraper, from, to time.Time) *servermetrics.Summary {
	if sc == nil {
		return nil
	}
	sum := sc.Summarize(from, to)
	return &sum
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
	s, err := openSession(ctx, c, log, r.streams)
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
	if !c.Quiet {
		rows := append([][2]string{
			{"Model", s.settings.Model}, {"API base", s.settings.APIBase}, {"Server", serverLabel(s.settings)},
			{"Endpoint", c.Endpoint}, {"Output dir", dir.FinalPath()},
		}, r.rows...)
		rows = append(rows, [2]string{"Prompt lengths", fmt.Sprintf("exact, measured by %s (server adds %d tokens)", s.settings.LengthSource, s.settings.PromptOverheadTokens)})
		if err := console.Banner(e.stdout, r.title, rows, consoleOptions(e)); err != nil {
			s.close()
			return nil, nil, fmt.Errorf("print banner: %w", err)
		}
	}
	return s, dir, nil
}
