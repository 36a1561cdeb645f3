package simengine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBodyBytes bounds a request body (a 128k-token prompt is under 1 MiB).
const maxBodyBytes = 64 << 20

// Server is a running simulated engine behind its HTTP API.
type Server struct {
	opts      Options
	began     time.Time
	created   int64  // Unix seconds at start, the "created" of responses
	modelJSON []byte // the model id as a JSON string
	ln        net.Listener
	srv       *http.Server
	eng       *engine // nil in zero-cost mode
	g         gauges
	seq       atomic.Int64
	closing   chan struct{}
	serveErr  chan error
	closeOnce sync.Once
	closeErr  error
}

// Start validates opts, starts the engine and serves its HTTP API on
// opts.Addr (a free loopback port by default) until Close.
func Start(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("simengine: %w", err)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("simengine: listen on %s: %w", o.Addr, err)
	}
	modelJSON, err := json.Marshal(o.Model)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("simengine: model %q: %w", o.Model, err)
	}
	now := time.Now()
	s := &Server{
		opts:      o,
		began:     now,
		created:   now.Unix(),
		modelJSON: modelJSON,
		ln:        ln,
		closing:   make(chan struct{}),
		serveErr:  make(chan error, 1),
	}
	if !o.ZeroCost {
		s.eng = newEngine(o, now, &s.g)
		go s.eng.run()
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	o.Logger.Debug("simengine started", "addr", ln.Addr().String(), "profile", o.Profile.Name,
		"model", o.Model, "chunk_size", o.ChunkSize, "max_running", o.MaxRunning, "zero_cost", o.ZeroCost)
	return s, nil
}

// BaseURL is the OpenAI base URL of the server, "http://127.0.0.1:PORT/v1".
func (s *Server) BaseURL() string { return "http://" + s.ln.Addr().String() + "/v1" }

// Addr is the address the server listens on, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Model is the served model id.
func (s *Server) Model() string { return s.opts.Model }

// Options returns the effective options: those given to Start with every
// default filled in.
func (s *Server) Options() Options { return s.opts }

// Began is the server's start time; Iteration and RequestRecord times are
// offsets from it.
func (s *Server) Began() time.Time { return s.began }

// Iterations returns the iterations run so far, in order. It is empty unless
// Options.Record is set, and always in zero-cost mode.
func (s *Server) Iterations() []Iteration {
	if s.eng == nil {
		return nil
	}
	it, _ := s.eng.records()
	return it
}

// Requests returns the requests that have left the engine (finished or
// aborted), in the order they left. It is empty unless Options.Record is set,
// and always in zero-cost mode.
func (s *Server) Requests() []RequestRecord {
	if s.eng == nil {
		return nil
	}
	_, reqs := s.eng.records()
	return reqs
}

// Close stops the server: open streams are cut, the engine stops. It is safe
// to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		err := s.srv.Close()
		if s.eng != nil {
			s.eng.stop()
		}
		if serr := <-s.serveErr; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			s.closeErr = fmt.Errorf("simengine: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.handleCompletion(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { s.handleCompletion(w, r, false) })
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /tokenize", s.handleTokenize)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

// decodeBody reads a JSON request body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return badRequest("", "read request body: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return badRequest("", "request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// checkModel accepts an empty model (the served one) or the served model.
func (s *Server) checkModel(model string) *apiError {
	if model == "" || model == s.opts.Model {
		return nil
	}
	return &apiError{
		status:  http.StatusNotFound,
		message: fmt.Sprintf("The model `%s` does not exist.", model),
		typ:     "invalid_request_error",
		param:   "model",
		code:    "model_not_found",
	}
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID          string `json:"id"`
		Object      string `json:"object"`
		Created     int64  `json:"created"`
		OwnedBy     string `json:"owned_by"`
		Root        string `json:"root"`
		MaxModelLen int    `json:"max_model_len"`
	}
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", []model{{s.opts.Model, "model", s.created, "veeksha-sim", s.opts.Model, s.opts.MaxModelLen}}})
}

// handleTokenize answers vLLM's /tokenize: {"prompt"} or {"messages",
// "add_generation_prompt"} in, {"count","max_model_len","tokens"} out.
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model               string        `json:"model"`
		Prompt              *string       `json:"prompt"`
		Messages            []chatMessage `json:"messages"`
		AddGenerationPrompt *bool         `json:"add_generation_prompt"`
	}
	if e := decodeBody(w, r, &body); e != nil {
		writeAPIError(w, e)
		return
	}
	if e := s.checkModel(body.Model); e != nil {
		writeAPIError(w, e)
		return
	}
	var ids []int
	switch {
	case body.Prompt != nil:
		ids = textTokenIDs(*body.Prompt, []int{})
	case body.Messages != nil:
		ids = chatTokenIDs(body.Messages, body.AddGenerationPrompt == nil || *body.AddGenerationPrompt)
	default:
		writeAPIError(w, badRequest("prompt", "tokenize: the body needs either prompt or messages"))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Count       int   `json:"count"`
		MaxModelLen int   `json:"max_model_len"`
		Tokens      []int `json:"tokens"`
	}{len(ids), s.opts.MaxModelLen, ids})
}

// handleMetrics writes the engine's state in Prometheus text format under
// vLLM's metric names. KV-cache usage is a fraction (1 = full), as in vLLM.
// The prefix-cache counters count prompt tokens looked up and found, as
// vLLM V1's do; they are left out when the engine has no prefix cache. The
// engine never preempts: that counter stays 0.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	label := `model_name="` + escapeLabel(s.opts.Model) + `"`
	kv := float64(s.g.kvUsed.Load()) / float64(s.opts.KVCacheTokens)
	if s.eng == nil {
		kv = 0
	}
	var b bytes.Buffer
	metric := func(name, typ, help string, v any, labels string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %v\n", name, help, name, typ, name, labels, v)
	}
	metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", s.g.running.Load(), label)
	metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", s.g.waiting.Load(), label)
	metric("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.", kv, label)
	metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv, label)
	metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", s.g.promptToks.Load(), label)
	metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", s.g.genToks.Load(), label)
	metric("vllm:num_preemptions_total", "counter", "Cumulative number of preemptions (the simulated engine never preempts).", 0, label)
	if s.blockSize() > 0 {
		metric("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in queried tokens.", s.g.prefixQueries.Load(), label)
		metric("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in cached tokens.", s.g.prefixHits.Load(), label)
	}
	fmt.Fprintf(&b, "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\n")
	for i, reason := range []string{finishLength, finishStop, finishAbort} {
		fmt.Fprintf(&b, "vllm:request_success_total{finished_reason=%q,%s} %d\n", reason, label, s.g.finished[i].Load())
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(b.Bytes()) // the client may be gone; nothing to do
}

func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
