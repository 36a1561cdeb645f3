package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/client"
)

// closedURL is a base URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/v1"
}

// serve starts a loopback server with h and returns its base URL.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// listing answers GET /v1/models with status and, when it is 200, ids.
func listing(status int, ids ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(openaitest.OpenAIErrorBody(status, "scripted")))
			return
		}
		data := []map[string]string{}
		for _, id := range ids {
			data = append(data, map[string]string{"id": id, "object": "model"})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
	}
}

// setupKind returns the Kind of err's *SetupError, 0 when it has none.
func setupKind(err error) client.SetupKind {
	var se *client.SetupError
	if errors.As(err, &se) {
		return se.Kind
	}
	return 0
}

func TestResolveModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		handler   http.HandlerFunc // nil: nothing listens
		want      string
		wantModel string
		wantKind  client.SetupKind
		sentinel  error
	}{
		{"first listed", listing(200, "a", "b"), "", "a", 0, nil},
		{"listed", listing(200, "a", "b"), "b", "b", 0, nil},
		{"not listed", listing(200, "a", "b"), "c", "", client.SetupUnknownModel, client.ErrUnknownModel},
		{"empty list, model named", listing(200), "x", "x", 0, nil},
		{"empty list, none named", listing(200), "", "", client.SetupNoModels, nil},
		{"no list, model named", listing(500), "x", "x", 0, nil},
		{"no list, none named", listing(500), "", "", client.SetupNoModelList, nil},
		{"no models endpoint, none named", listing(404), "", "", client.SetupNoModelList, client.ErrNotFound},
		{"key refused", listing(401), "x", "", client.SetupUnauthorized, client.ErrUnauthorized},
		{"forbidden", listing(403), "", "", client.SetupUnauthorized, client.ErrUnauthorized},
		{"unreachable", nil, "x", "", client.SetupUnreachable, client.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := closedURL(t)
			if tt.handler != nil {
				base = serve(t, tt.handler)
			}
			c := newClient(t, base, func(cfg *client.Config) { cfg.Model = "" })
			got, err := c.ResolveModel(t.Context(), tt.want)
			if got != tt.wantModel || setupKind(err) != tt.wantKind {
				t.Fatalf("ResolveModel(%q) = %q, %v (kind %v), want %q, kind %v", tt.want, got, err, setupKind(err), tt.wantModel, tt.wantKind)
			}
			if tt.wantKind != 0 && !strings.HasPrefix(err.Error(), "list models: ") {
				t.Errorf("error %q does not start with the step", err)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
		})
	}
}

func TestResolveModelListsServed(t *testing.T) {
	t.Parallel()
	c := newClient(t, serve(t, listing(200, "a", "b")), nil)
	_, err := c.ResolveModel(t.Context(), "c")
	var se *client.SetupError
	if !errors.As(err, &se) {
		t.Fatalf("ResolveModel(c) = %v, want a *SetupError", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, se.Models); diff != "" || se.Model != "c" {
		t.Errorf("SetupError Model %q, Models (-want +got):\n%s", se.Model, diff)
	}
	if want := `list models: model "c" is not served by ` + se.URL + " (it serves: a, b)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	notJSON := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"hello"}}]}`))
	}
	tests := []struct {
		name     string
		script   *openaitest.Script // nil: handler
		handler  http.HandlerFunc   // nil with script nil: nothing listens
		edit     func(*client.Config)
		wantKind client.SetupKind
		status   int
		tries    int // completion requests expected; 0: not checked
	}{
		{name: "streams", script: &openaitest.Script{}, tries: 1},
		{name: "unreachable", wantKind: client.SetupUnreachable},
		{name: "unknown model", script: &openaitest.Script{}, edit: func(c *client.Config) { c.Model = "nope" },
			wantKind: client.SetupUnknownModel, status: 404, tries: 1},
		{name: "no such endpoint", handler: http.NotFound, wantKind: client.SetupNoEndpoint, status: 404},
		{name: "method not allowed", script: &openaitest.Script{Status: 405}, wantKind: client.SetupNoEndpoint, status: 405},
		{name: "key refused", script: &openaitest.Script{Status: 401}, wantKind: client.SetupUnauthorized, status: 401, tries: 1},
		{name: "forbidden", script: &openaitest.Script{Status: 403}, wantKind: client.SetupUnauthorized, status: 403},
		{name: "bad request", script: &openaitest.Script{Status: 400, ErrorBody: openaitest.VLLMErrorBody(400, "max_tokens is too large")},
			wantKind: client.SetupHTTPStatus, status: 400, tries: 1},
		{name: "overloaded every time", script: &openaitest.Script{Status: 503}, wantKind: client.SetupHTTPStatus, status: 503, tries: 3},
		{name: "request timeout", script: &openaitest.Script{HeaderDelay: 10 * time.Second},
			edit: func(c *client.Config) { c.RequestTimeout = 100 * time.Millisecond }, wantKind: client.SetupTimedOut, tries: 1},
		{name: "no content", script: &openaitest.Script{RawBody: []byte(`data: {"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")},
			wantKind: client.SetupBadStream, status: 200, tries: 3},
		{name: "a malformed event every time", script: &openaitest.Script{Fault: openaitest.Fault{Kind: openaitest.Malformed}},
			wantKind: client.SetupBadStream, status: 200, tries: 3},
		{name: "answers without streaming", handler: notJSON, wantKind: client.SetupNotStreaming, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := closedURL(t)
			var srv *openaitest.Server
			switch {
			case tt.script != nil:
				srv = openaitest.New(t, *tt.script)
				base = srv.URL
			case tt.handler != nil:
				base = serve(t, tt.handler)
			}
			c := newClient(t, base, tt.edit)
			err := c.Preflight(t.Context())
			if setupKind(err) != tt.wantKind || (err == nil) != (tt.wantKind == 0) {
				t.Fatalf("Preflight = %v (kind %v), want kind %v", err, setupKind(err), tt.wantKind)
			}
			var se *client.SetupError
			if errors.As(err, &se) && se.Status != tt.status {
				t.Errorf("Preflight = %v: status %d, want %d", err, se.Status, tt.status)
			}
			if tt.tries != 0 && len(srv.Completions()) != tt.tries {
				t.Errorf("server got %d completion requests, want %d", len(srv.Completions()), tt.tries)
			}
			if se != nil && (!strings.HasPrefix(se.Error(), "preflight: ") || strings.Contains(se.Error(), "\n")) {
				t.Errorf("Error() = %q, want one line starting with the step", se)
			}
		})
	}
}

func TestPreflightRetriesTransient(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
		if r.N < 2 {
			return openaitest.Script{Status: []int{429, 502}[r.N]}
		}
		return openaitest.Script{}
	})
	c := newClient(t, srv.URL, nil)
	if err := c.Preflight(t.Context()); err != nil {
		t.Fatalf("Preflight after 429, 502 = %v, want nil", err)
	}
	if n := len(srv.Completions()); n != 3 {
		t.Errorf("server got %d completion requests, want 3", n)
	}
}

func TestPreflightContext(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{HeaderDelay: 10 * time.Second})
	c := newClient(t, srv.URL, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := c.Preflight(ctx); setupKind(err) != client.SetupTimedOut {
		t.Errorf("Preflight past the caller's deadline = %v, want kind %v", err, client.SetupTimedOut)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := c.Preflight(ctx)
	if !errors.Is(err, context.Canceled) || setupKind(err) != 0 {
		t.Errorf("Preflight canceled = %v, want context.Canceled and no SetupError", err)
	}
}

func TestWithModelSharesConnections(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.Model = "" })
	model, err := c.ResolveModel(t.Context(), "")
	if err != nil || model != openaitest.DefaultModel {
		t.Fatalf("ResolveModel = %q, %v, want %q", model, err, openaitest.DefaultModel)
	}
	run := c.WithModel(model)
	if c.Model() != "" || run.Model() != model {
		t.Errorf("Model() = %q and WithModel(%q).Model() = %q, want the original unchanged", c.Model(), model, run.Model())
	}
	if err := run.Preflight(t.Context()); err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	reqs := srv.Completions()
	if len(reqs) != 1 || reqs[0].JSON()["model"] != model {
		t.Fatalf("completion requests %v, want one for %q", reqs, model)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("listing and preflight opened %d connections, want 1 (one transport)", n)
	}
}

func TestTokenCounter(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	tc := client.NewTokenCounter(newClient(t, srv.URL, func(c *client.Config) { c.Endpoint = client.Completions }))
	if tc.Method() != "" {
		t.Errorf("Method() before counting = %q, want empty", tc.Method())
	}
	n, err := tc.Count(t.Context(), prompt)
	if n != 4 || err != nil || tc.Method() != client.ByTokenize {
		t.Errorf("Count(%q) = %d, %v by %q, want 4 by %q", prompt, n, err, tc.Method(), client.ByTokenize)
	}
}

// probeServer has no /tokenize and answers every completion with usage
// prompt_tokens 42, after failing the first fail of them with 503.
func probeServer(t *testing.T, fail int32) (base string, tokenizes, completions *atomic.Int32) {
	tokenizes, completions = new(atomic.Int32), new(atomic.Int32)
	base = serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tokenize" {
			tokenizes.Add(1)
			http.NotFound(w, r)
			return
		}
		if completions.Add(1) <= fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(openaitest.OpenAIErrorBody(503, "warming up")))
			return
		}
		// The probe is the benchmark's streamed request.
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(`data: {"choices":[{"text":"x","finish_reason":"length"}]}` + "\n\n" +
			`data: {"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":1}}` + "\n\ndata: [DONE]\n\n"))
	})
	return base, tokenizes, completions
}

func TestTokenCounterUsageProbe(t *testing.T) {
	t.Parallel()
	base, tokenizes, completions := probeServer(t, 2)
	tc := client.NewTokenCounter(newClient(t, base, func(c *client.Config) { c.Endpoint = client.Completions }))
	for i := range 2 {
		n, err := tc.Count(t.Context(), prompt)
		if n != 42 || err != nil || tc.Method() != client.ByUsageProbe {
			t.Fatalf("Count #%d = %d, %v by %q, want 42 by %q", i, n, err, tc.Method(), client.ByUsageProbe)
		}
	}
	if tokenizes.Load() != 1 || completions.Load() != 4 {
		t.Errorf("server got %d tokenize and %d completion requests, want 1 and 4 (two 503s retried)", tokenizes.Load(), completions.Load())
	}
}

func TestTokenCounterGivesUp(t *testing.T) {
	t.Parallel()
	base, _, completions := probeServer(t, 100)
	tc := client.NewTokenCounter(newClient(t, base, nil))
	_, err := tc.Count(t.Context(), prompt)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || completions.Load() != 3 {
		t.Errorf("Count against a server that always answers 503 = %v after %d requests, want *Error 503 after 3", err, completions.Load())
	}
}

func TestCheckPrompt(t *testing.T) {
	t.Parallel()
	tooLong := openaitest.VLLMErrorBody(400, "This model's maximum context length is 8 tokens")
	tests := []struct {
		name     string
		script   func(openaitest.Received) openaitest.Script
		tokens   int
		wantKind client.SetupKind
	}{
		{"counted as expected", func(openaitest.Received) openaitest.Script { return openaitest.Script{} }, 4, 0},
		{"after a 503", func(r openaitest.Received) openaitest.Script {
			if r.N == 0 {
				return openaitest.Script{Status: 503}
			}
			return openaitest.Script{}
		}, 4, 0},
		{"counted differently", func(openaitest.Received) openaitest.Script { return openaitest.Script{} }, 5, client.SetupPromptMismatch},
		{"too long", func(openaitest.Received) openaitest.Script { return openaitest.Script{Status: 400, ErrorBody: tooLong} }, 4, client.SetupPromptRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewFunc(t, tt.script)
			c := newClient(t, srv.URL, func(c *client.Config) { c.Endpoint = client.Completions })
			err := c.CheckPrompt(t.Context(), prompt, tt.tokens)
			if setupKind(err) != tt.wantKind || (err == nil) != (tt.wantKind == 0) {
				t.Fatalf("CheckPrompt(%d tokens) = %v, want kind %v", tt.tokens, err, tt.wantKind)
			}
			var se *client.SetupError
			switch {
			case !errors.As(err, &se):
			case se.Kind == client.SetupPromptMismatch && (se.Tokens != 4 || se.Want != 5):
				t.Errorf("mismatch Tokens %d, Want %d, want 4, 5", se.Tokens, se.Want)
			case se.Kind == client.SetupPromptRefused && (se.Status != 400 || !strings.Contains(se.Error(), "maximum context length")):
				t.Errorf("refused: status %d, %q, want 400 and the server's message", se.Status, se)
			}
		})
	}
}

func TestSoftware(t *testing.T) {
	t.Parallel()
	version := func(path, v string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != path {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(`{"version":"` + v + `"}`))
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		want    string
	}{
		{"ollama", version("/api/version", "0.17.4"), "ollama 0.17.4"},
		{"vllm", version("/version", "0.11.0"), "vllm 0.11.0"},
		{"unknown", http.NotFound, ""},
		{"not json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }, ""},
		{"unreachable", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := closedURL(t)
			if tt.handler != nil {
				base = serve(t, tt.handler)
			}
			if got := newClient(t, base, nil).Software(t.Context()); got != tt.want {
				t.Errorf("Software() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, want string }{
		{"http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"},
		{"http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"},
		{"http://127.0.0.1:8000", "http://127.0.0.1:8000"},
		{"http://127.0.0.1:8000/api/v1", "http://127.0.0.1:8000/api"},
	}
	for _, tt := range tests {
		if got := newClient(t, tt.base, nil).Root(); got != tt.want {
			t.Errorf("Root() of %q = %q, want %q", tt.base, got, tt.want)
		}
	}
}

func TestSetupErrorMessage(t *testing.T) {
	t.Parallel()
	c := newClient(t, closedURL(t), nil)
	_, err := c.ResolveModel(t.Context(), "")
	msg := err.Error()
	if strings.Count(msg, "list models") != 1 || strings.Count(msg, "/v1/models") != 1 || !strings.Contains(msg, "no server is listening") {
		t.Errorf("Error() = %q, want the step and URL once and the reason", msg)
	}
	if got := client.SetupPromptMismatch.String(); got != "prompt_mismatch" {
		t.Errorf("SetupPromptMismatch.String() = %q", got)
	}
	if got := client.SetupKind(99).String(); got != "SetupKind(99)" {
		t.Errorf("SetupKind(99).String() = %q", got)
	}
}

// One malformed event in the preflight is a fault, not a server that
// cannot stream: the preflight tries again and the server passes.
func TestPreflightRetriesOneMalformedEvent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewFunc(t, func(r openaitest.Received) openaitest.Script {
		if r.N == 0 {
			return openaitest.Script{Fault: openaitest.Fault{Kind: openaitest.Malformed}}
		}
		return openaitest.Script{}
	})
	c := newClient(t, srv.URL, nil)
	if err := c.Preflight(t.Context()); err != nil {
		t.Fatalf("Preflight after one malformed event = %v, want nil", err)
	}
	if n := len(srv.Completions()); n != 2 {
		t.Errorf("server got %d completion requests, want 2", n)
	}
}
