package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// slack is the loose upper bound added to scripted delays: the machine is
// shared and tests run under -race, so only lower bounds are tight.
const slack = 750 * time.Millisecond

// prompt has 4 words: 4 prompt tokens on completions, 4+7 on chat.
const prompt = "one two three four"

func newClient(t *testing.T, baseURL string, edit func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{
		BaseURL:        baseURL,
		Model:          openaitest.DefaultModel,
		RequestTimeout: 5 * time.Second,
		MaxConcurrency: 4,
		RunID:          "run",
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	t.Cleanup(c.Close)
	return c
}

// stream sends one request and checks the invariants every record must
// hold, whatever happened: OnAccepted called exactly once, times ordered.
func stream(t *testing.T, ctx context.Context, c *client.Client, call client.Call) result.Request {
	t.Helper()
	var accepted atomic.Int32
	call.OnAccepted = func() { accepted.Add(1) }
	began := time.Now()
	r := c.Stream(ctx, began, call)
	if n := accepted.Load(); n != 1 {
		t.Errorf("OnAccepted called %d times, want 1 (record %+v)", n, r)
	}
	checkOrder(t, r)
	return r
}

func checkOrder(t *testing.T, r result.Request) {
	t.Helper()
	if r.Sent <= 0 || r.End < r.Sent {
		t.Errorf("Sent = %v, End = %v, want 0 < Sent <= End", r.Sent, r.End)
	}
	if r.Headers != 0 && r.Headers < r.Sent {
		t.Errorf("Headers = %v before Sent = %v", r.Headers, r.Sent)
	}
	if r.FirstByte != 0 && r.FirstByte < r.Sent {
		t.Errorf("FirstByte = %v before Sent = %v", r.FirstByte, r.Sent)
	}
	prev := r.Headers
	for i, tt := range r.TokenTimes {
		if tt < prev || tt > r.End {
			t.Errorf("TokenTimes[%d] = %v, want within [%v, End %v]", i, tt, prev, r.End)
		}
		prev = tt
	}
	if r.TokensPerChunk != nil && len(r.TokensPerChunk) != len(r.TokenTimes) {
		t.Errorf("len(TokensPerChunk) = %d, want len(TokenTimes) = %d", len(r.TokensPerChunk), len(r.TokenTimes))
	}
}

func TestStreamSuccess(t *testing.T) {
	t.Parallel()
	const ttft, gap = 40 * time.Millisecond, 5 * time.Millisecond
	tests := []struct {
		name        string
		script      openaitest.Script
		endpoint    client.Endpoint
		nonStandard bool
		maxTokens   int

		wantChunks   int
		wantOutput   int
		wantUsage    bool
		wantPrompt   int
		wantPerChunk []int
		wantFinish   string
	}{
		{
			name:      "chat one token per chunk",
			script:    openaitest.Script{TTFT: ttft, Gap: gap},
			maxTokens: 5, wantChunks: 5, wantOutput: 5, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:      "completions",
			script:    openaitest.Script{TTFT: ttft, Gap: gap},
			endpoint:  client.Completions,
			maxTokens: 5, wantChunks: 5, wantOutput: 5, wantUsage: true, wantPrompt: 4, wantFinish: "length",
		},
		{
			name:      "role-only first event is not content",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, RoleFirst: true},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:      "keep-alive comments",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, KeepAlive: true},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:      "CRLF line endings",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, CRLF: true, KeepAlive: true},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:        "several tokens per chunk with continuous usage",
			script:      openaitest.Script{TTFT: ttft, Gap: gap, TokensPerChunk: 3, RoleFirst: true},
			nonStandard: true,
			maxTokens:   10, wantChunks: 4, wantOutput: 10, wantUsage: true, wantPrompt: 11,
			wantPerChunk: []int{3, 3, 3, 1}, wantFinish: "length",
		},
		{
			name:      "several tokens per chunk, usage only at the end",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, TokensPerChunk: 3},
			maxTokens: 10, wantChunks: 4, wantOutput: 10, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:        "usage only in the final chunk although asked per chunk",
			script:      openaitest.Script{TTFT: ttft, Gap: gap, TokensPerChunk: 2, Usage: openaitest.UsageFinal},
			nonStandard: true,
			maxTokens:   6, wantChunks: 3, wantOutput: 6, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:      "no usage: output counted from chunks",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Usage: openaitest.UsageNever, FinishReason: "stop"},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: false, wantFinish: "stop",
		},
		{
			name:      "reasoning_content counts as content",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Reasoning: true, RoleFirst: true},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:      "no [DONE] after a finished choice",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, NoDone: true},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
		{
			name:        `"error": null in every chunk`,
			script:      openaitest.Script{TTFT: ttft, Gap: gap, NullError: true},
			nonStandard: true,
			maxTokens:   4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11,
			wantPerChunk: []int{1, 1, 1, 1}, wantFinish: "length",
		},
		{
			name:      "short stall mid-stream",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.Stall, After: 2, Duration: 50 * time.Millisecond}},
			maxTokens: 4, wantChunks: 4, wantOutput: 4, wantUsage: true, wantPrompt: 11, wantFinish: "length",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, func(cfg *client.Config) {
				if tt.endpoint != "" {
					cfg.Endpoint = tt.endpoint
				}
				cfg.NonStandard = tt.nonStandard
			})
			r := stream(t, t.Context(), c, client.Call{Seq: 3, Prompt: prompt, MaxTokens: tt.maxTokens, TargetPromptTokens: 99})
			if !r.OK() {
				t.Fatalf("Stream failed: class %q, err %q", r.ErrClass, r.Err)
			}
			if got := len(r.TokenTimes); got != tt.wantChunks {
				t.Errorf("len(TokenTimes) = %d, want %d", got, tt.wantChunks)
			}
			if r.OutputTokens != tt.wantOutput {
				t.Errorf("OutputTokens = %d, want %d", r.OutputTokens, tt.wantOutput)
			}
			if r.UsageReported != tt.wantUsage {
				t.Errorf("UsageReported = %v, want %v", r.UsageReported, tt.wantUsage)
			}
			if tt.wantUsage && r.PromptTokens != tt.wantPrompt {
				t.Errorf("PromptTokens = %d, want %d", r.PromptTokens, tt.wantPrompt)
			}
			if diff := cmp.Diff(tt.wantPerChunk, r.TokensPerChunk); diff != "" {
				t.Errorf("TokensPerChunk (-want +got):\n%s", diff)
			}
			if r.FinishReason != tt.wantFinish {
				t.Errorf("FinishReason = %q, want %q", r.FinishReason, tt.wantFinish)
			}
			if r.HTTPStatus != http.StatusOK {
				t.Errorf("HTTPStatus = %d, want 200", r.HTTPStatus)
			}
			if r.Seq != 3 || r.TargetPromptTokens != 99 || r.TargetOutputTokens != tt.maxTokens {
				t.Errorf("Seq, TargetPromptTokens, TargetOutputTokens = %d, %d, %d, want 3, 99, %d",
					r.Seq, r.TargetPromptTokens, r.TargetOutputTokens, tt.maxTokens)
			}
			ttfc, _ := r.TTFC()
			if ttfc < ttft || ttfc > ttft+slack {
				t.Errorf("TTFC = %v, want in [%v, %v]", ttfc, ttft, ttft+slack)
			}
			if r.FirstByte == 0 || r.Headers == 0 || r.FirstByte > r.Headers {
				t.Errorf("FirstByte = %v, Headers = %v, want 0 < FirstByte <= Headers", r.FirstByte, r.Headers)
			}
			// Chunk i is written at TTFT + i*gap: the last one cannot
			// arrive before that.
			e2e, _ := r.E2E()
			if min := ttft + time.Duration(tt.wantChunks-1)*gap; e2e < min {
				t.Errorf("E2E = %v, want >= %v", e2e, min)
			}
		})
	}
}

func TestStreamFailures(t *testing.T) {
	t.Parallel()
	const ttft, gap = 20 * time.Millisecond, 5 * time.Millisecond
	tests := []struct {
		name       string
		script     openaitest.Script
		timeout    time.Duration
		wantClass  string
		wantStatus int
		wantErr    string // substring of Err
		wantChunks int
	}{
		{
			name:      "HTTP 500 with an OpenAI error body",
			script:    openaitest.Script{Status: 500, ErrorBody: openaitest.OpenAIErrorBody(500, "the engine fell over")},
			wantClass: result.ErrHTTPStatus, wantStatus: 500, wantErr: "the engine fell over",
		},
		{
			name:      "HTTP 429",
			script:    openaitest.Script{Status: 429, ErrorBody: openaitest.OpenAIErrorBody(429, "slow down")},
			wantClass: result.ErrHTTPStatus, wantStatus: 429, wantErr: "slow down",
		},
		{
			name:      "vLLM error body without the error wrapper",
			script:    openaitest.Script{Status: 400, ErrorBody: openaitest.VLLMErrorBody(400, "prompt is too long for this model")},
			wantClass: result.ErrHTTPStatus, wantStatus: 400, wantErr: "prompt is too long",
		},
		{
			name:      "plain-text error body",
			script:    openaitest.Script{Status: 503, ErrorBody: "upstream\nunavailable"},
			wantClass: result.ErrHTTPStatus, wantStatus: 503, wantErr: "upstream unavailable",
		},
		{
			name:      "connection reset mid-stream keeps earlier tokens",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.Reset, After: 3}},
			wantClass: result.ErrStream, wantStatus: 200, wantChunks: 3,
		},
		{
			name:      "body cut before any finish_reason",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.Cut, After: 2}},
			wantClass: result.ErrStream, wantStatus: 200, wantErr: "ended early", wantChunks: 2,
		},
		{
			name:      "malformed JSON event stops the stream",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.Malformed, After: 2}},
			wantClass: result.ErrDecode, wantStatus: 200, wantErr: "decode event", wantChunks: 2,
		},
		{
			name:      "error event",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.ErrorEvent, After: 2, Message: "out of KV cache"}},
			wantClass: result.ErrStream, wantStatus: 200, wantErr: "out of KV cache", wantChunks: 2,
		},
		{
			name:      "stall before the headers past the timeout",
			script:    openaitest.Script{HeaderDelay: 10 * time.Second},
			timeout:   300 * time.Millisecond,
			wantClass: result.ErrTimeout, wantStatus: 0, wantErr: "timeout (no data for 300ms) before the response headers",
		},
		{
			name:      "stall mid-stream past the timeout",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Fault: openaitest.Fault{Kind: openaitest.Stall, After: 2, Duration: 10 * time.Second}},
			timeout:   300 * time.Millisecond,
			wantClass: result.ErrTimeout, wantStatus: 200, wantChunks: 2, wantErr: "timeout (no data for 300ms) mid-stream",
		},
		{
			name:      "no generated text",
			script:    openaitest.Script{RawBody: []byte("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")},
			wantClass: result.ErrNoContent, wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, func(cfg *client.Config) {
				if tt.timeout != 0 {
					cfg.RequestTimeout = tt.timeout
				}
			})
			r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 6})
			t.Logf("Err = %q", r.Err)
			if r.ErrClass != tt.wantClass {
				t.Errorf("ErrClass = %q, want %q (Err %q)", r.ErrClass, tt.wantClass, r.Err)
			}
			if r.Err == "" || !strings.Contains(r.Err, tt.wantErr) {
				t.Errorf("Err = %q, want it to contain %q", r.Err, tt.wantErr)
			}
			if r.HTTPStatus != tt.wantStatus {
				t.Errorf("HTTPStatus = %d, want %d", r.HTTPStatus, tt.wantStatus)
			}
			if got := len(r.TokenTimes); got != tt.wantChunks {
				t.Errorf("len(TokenTimes) = %d, want %d", got, tt.wantChunks)
			}
			// The timeout counts from the last thing that arrived (the
			// last chunk, else the send).
			last := r.Sent
			if n := len(r.TokenTimes); n > 0 {
				last = r.TokenTimes[n-1]
			}
			if tt.timeout != 0 && (r.End-last < tt.timeout || r.End-last > tt.timeout+slack) {
				t.Errorf("End - last activity = %v, want in [%v, %v]", r.End-last, tt.timeout, tt.timeout+slack)
			}
		})
	}
}

func TestStreamConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr+"/v1", nil)
	r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 4})
	if r.ErrClass != result.ErrConnect || r.HTTPStatus != 0 || r.Err == "" {
		t.Errorf("Stream to a closed port = class %q, status %d, err %q, want %q, 0, non-empty",
			r.ErrClass, r.HTTPStatus, r.Err, result.ErrConnect)
	}
}

func TestStreamCanceled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     openaitest.Script
		wantChunks int
	}{
		{"before the headers", openaitest.Script{HeaderDelay: 10 * time.Second}, 0},
		{"mid-stream", openaitest.Script{TTFT: 10 * time.Millisecond, Gap: 10 * time.Millisecond,
			Fault: openaitest.Fault{Kind: openaitest.Stall, After: 2, Duration: 10 * time.Second}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, nil)
			const after = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), after) // the caller's deadline is a cancellation too
			defer cancel()
			r := stream(t, ctx, c, client.Call{Prompt: prompt, MaxTokens: 4})
			if r.ErrClass != result.ErrCanceled {
				t.Errorf("ErrClass = %q, want %q (Err %q)", r.ErrClass, result.ErrCanceled, r.Err)
			}
			if got := len(r.TokenTimes); got != tt.wantChunks {
				t.Errorf("len(TokenTimes) = %d, want %d", got, tt.wantChunks)
			}
			// ctx is made a little before the run start (began, in stream).
			if r.End < after-50*time.Millisecond || r.End-r.Sent > after+slack {
				t.Errorf("End = %v, End - Sent = %v, want End >= %v and End - Sent <= %v", r.End, r.End-r.Sent, after, after+slack)
			}
		})
	}
}

// TestOnAcceptedAtHeaders checks that a sequential launcher is released
// when the server accepts the request, not when the stream ends.
func TestOnAcceptedAtHeaders(t *testing.T) {
	t.Parallel()
	const ttft = 200 * time.Millisecond
	srv := openaitest.New(t, openaitest.Script{TTFT: ttft})
	c := newClient(t, srv.URL, nil)
	began := time.Now()
	var at time.Duration
	calls := 0
	r := c.Stream(t.Context(), began, client.Call{Prompt: prompt, MaxTokens: 2, OnAccepted: func() {
		calls++
		at = time.Since(began)
	}})
	if !r.OK() || calls != 1 {
		t.Fatalf("Stream = class %q err %q, OnAccepted calls %d, want success and 1", r.ErrClass, r.Err, calls)
	}
	if at < r.Headers || at >= r.TokenTimes[0] {
		t.Errorf("OnAccepted at %v, want in [Headers %v, first token %v)", at, r.Headers, r.TokenTimes[0])
	}
}

func TestRequestBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		endpoint    client.Endpoint
		nonStandard bool
		apiKey      string
		wantPath    string
		want        map[string]any
	}{
		{
			name: "chat, standard fields only", endpoint: client.Chat, wantPath: "/v1/chat/completions",
			want: map[string]any{
				"model":          openaitest.DefaultModel,
				"messages":       []any{map[string]any{"role": "user", "content": prompt}},
				"max_tokens":     float64(7),
				"stream":         true,
				"stream_options": map[string]any{"include_usage": true},
			},
		},
		{
			name: "chat, non-standard fields", endpoint: client.Chat, nonStandard: true, apiKey: "sk-flag",
			wantPath: "/v1/chat/completions",
			want: map[string]any{
				"model":          openaitest.DefaultModel,
				"messages":       []any{map[string]any{"role": "user", "content": prompt}},
				"max_tokens":     float64(7),
				"min_tokens":     float64(7),
				"ignore_eos":     true,
				"stream":         true,
				"stream_options": map[string]any{"include_usage": true, "continuous_usage_stats": true},
			},
		},
		{
			name: "completions, non-standard fields", endpoint: client.Completions, nonStandard: true,
			wantPath: "/v1/completions",
			want: map[string]any{
				"model":          openaitest.DefaultModel,
				"prompt":         prompt,
				"max_tokens":     float64(7),
				"min_tokens":     float64(7),
				"ignore_eos":     true,
				"stream":         true,
				"stream_options": map[string]any{"include_usage": true, "continuous_usage_stats": true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, openaitest.Script{})
			c := newClient(t, srv.URL, func(cfg *client.Config) {
				cfg.Endpoint, cfg.NonStandard, cfg.APIKey = tt.endpoint, tt.nonStandard, tt.apiKey
			})
			r := stream(t, t.Context(), c, client.Call{Seq: 12, Prompt: prompt, MaxTokens: 7})
			if !r.OK() {
				t.Fatalf("Stream failed: %q %q", r.ErrClass, r.Err)
			}
			got := srv.Completions()
			if len(got) != 1 {
				t.Fatalf("server got %d completion requests, want 1", len(got))
			}
			if got[0].Path != tt.wantPath {
				t.Errorf("path = %q, want %q", got[0].Path, tt.wantPath)
			}
			if diff := cmp.Diff(tt.want, got[0].JSON()); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
			h := got[0].Header
			wantAuth := ""
			if tt.apiKey != "" {
				wantAuth = "Bearer " + tt.apiKey
			}
			for k, want := range map[string]string{
				"X-Request-Id":  "run-12",
				"Accept":        "text/event-stream",
				"Content-Type":  "application/json",
				"Authorization": wantAuth,
			} {
				if h.Get(k) != want {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), want)
				}
			}
		})
	}
}

// TestPreparedBodySent checks that Stream sends a body made by Prepare
// byte for byte, with the request's headers.
func TestPreparedBodySent(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	c := newClient(t, srv.URL, nil)
	call, err := c.Prepare(client.Call{Seq: 5, Prompt: prompt, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := string(call.Body)
	call.Prompt = "not sent: the prepared body wins"
	if r := stream(t, t.Context(), c, call); !r.OK() {
		t.Fatalf("Stream failed: %q %q", r.ErrClass, r.Err)
	}
	got := srv.Completions()
	if len(got) != 1 {
		t.Fatalf("server got %d completion requests, want 1", len(got))
	}
	if string(got[0].Body) != want {
		t.Errorf("body %q, want the prepared %q", got[0].Body, want)
	}
	if id := got[0].Header.Get("X-Request-Id"); id != "run-5" {
		t.Errorf("X-Request-Id = %q, want run-5", id)
	}
}

// TestEnvironmentIgnored sets every OPENAI_* variable openai-go's client
// read and checks that none of them reaches the server. It cannot be parallel
// (t.Setenv).
func TestEnvironmentIgnored(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("OPENAI_ADMIN_KEY", "sk-admin-from-env")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_ORG_ID", "org-env")
	t.Setenv("OPENAI_PROJECT_ID", "proj-env")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-Leak: yes\nAccept: text/plain\nContent-Type: text/plain")
	for _, key := range []string{"", "sk-flag"} {
		srv := openaitest.New(t, openaitest.Script{})
		c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.APIKey = key })
		r := stream(t, t.Context(), c, client.Call{Seq: 1, Prompt: prompt, MaxTokens: 2})
		if !r.OK() {
			t.Fatalf("Stream with key %q failed (did OPENAI_BASE_URL win?): %q %q", key, r.ErrClass, r.Err)
		}
		if _, err := c.Models(t.Context()); err != nil {
			t.Fatalf("Models: %v", err)
		}
		for _, req := range srv.Requests() {
			h := req.Header
			wantAuth := ""
			if key != "" {
				wantAuth = "Bearer " + key
			}
			if got := h.Get("Authorization"); got != wantAuth {
				t.Errorf("key %q, %s: Authorization = %q, want %q", key, req.Path, got, wantAuth)
			}
			for _, k := range []string{"X-Leak", "OpenAI-Organization", "OpenAI-Project"} {
				if v := h.Values(k); len(v) > 0 {
					t.Errorf("key %q, %s: header %s = %q leaked from the environment", key, req.Path, k, v)
				}
			}
			if req.Method == http.MethodPost && h.Get("Content-Type") != "application/json" {
				t.Errorf("key %q, %s: Content-Type = %q, want application/json", key, req.Path, h.Get("Content-Type"))
			}
			if strings.Contains(h.Get("Accept"), "text/plain") {
				t.Errorf("key %q, %s: Accept = %q leaked from the environment", key, req.Path, h.Get("Accept"))
			}
		}
	}
}

// TestConnectionReuse checks the transport tuning: sequential and
// concurrent waves of streams reuse connections instead of reopening them,
// so connection setup stays out of TTFC.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{Gap: time.Millisecond})
	const width = 8
	c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.MaxConcurrency = width })
	for wave := range 3 {
		done := make(chan result.Request, width)
		for i := range width {
			go func() {
				done <- c.Stream(t.Context(), time.Now(), client.Call{Seq: wave*width + i, Prompt: prompt, MaxTokens: 5})
			}()
		}
		for range width {
			if r := <-done; !r.OK() {
				t.Fatalf("wave %d: Stream failed: %q %q", wave, r.ErrClass, r.Err)
			}
		}
	}
	if got := srv.Conns(); got > width {
		t.Errorf("3 waves of %d streams opened %d connections, want <= %d", width, got, width)
	}
}

func TestNonStreamingServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"hello"}}]}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/v1", nil)
	r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 4})
	if r.ErrClass != result.ErrStream || !strings.Contains(r.Err, "did not stream") {
		t.Errorf("Stream against a non-streaming server = %q %q, want %q mentioning 'did not stream'", r.ErrClass, r.Err, result.ErrStream)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     client.Config
		wantErr string
	}{
		{"ok", client.Config{BaseURL: "http://localhost:8000/v1"}, ""},
		{"empty base URL", client.Config{}, "base URL is empty"},
		{"bad scheme", client.Config{BaseURL: "ftp://x/v1"}, "scheme"},
		{"no host", client.Config{BaseURL: "http:///v1"}, "no host"},
		{"bad endpoint", client.Config{BaseURL: "http://x/v1", Endpoint: "embeddings"}, `endpoint "embeddings"`},
		{"negative timeout", client.Config{BaseURL: "http://x/v1", RequestTimeout: -1}, "negative"},
		{"all problems at once", client.Config{Endpoint: "x", MaxConcurrency: -1}, "max concurrency -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New(%+v) = %v, want no error", tt.cfg, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New(%+v) = %v, want an error containing %q", tt.cfg, err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.Model = "" })
	got, err := c.Models(t.Context())
	if err != nil || !slices.Equal(got, []string{openaitest.DefaultModel}) {
		t.Errorf("Models() = %v, %v, want [%s], nil", got, err, openaitest.DefaultModel)
	}
}

func TestTokenizeAndProbe(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	tests := []struct {
		endpoint client.Endpoint
		want     int
	}{
		{client.Chat, 4 + openaitest.ChatTemplateTokens},
		{client.Completions, 4},
	}
	for _, tt := range tests {
		t.Run(string(tt.endpoint), func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.Endpoint = tt.endpoint })
			n, ok, err := c.Tokenize(t.Context(), prompt)
			if n != tt.want || !ok || err != nil {
				t.Errorf("Tokenize(%q) = %d, %v, %v, want %d, true, nil", prompt, n, ok, err, tt.want)
			}
			// The tokenize request goes to the server root, not under /v1.
			if !slices.ContainsFunc(srv.Requests(), func(r openaitest.Received) bool { return r.Path == "/tokenize" }) {
				t.Errorf("no request to /tokenize among %v", srv.Requests())
			}
			n, err = c.PromptTokens(t.Context(), prompt)
			if n != tt.want || err != nil {
				t.Errorf("PromptTokens(%q) = %d, %v, want %d, nil", prompt, n, err, tt.want)
			}
		})
	}
}

func TestTokenizeMissing(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "404 page not found", status)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL+"/v1", nil)
			n, ok, err := c.Tokenize(t.Context(), prompt)
			if n != 0 || ok || err != nil {
				t.Errorf("Tokenize on a server answering %d = %d, %v, %v, want 0, false, nil", status, n, ok, err)
			}
		})
	}
}

func TestStartupErrors(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/v1"
	l.Close()
	status := func(code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1"
	}
	tests := []struct {
		name    string
		baseURL string
		call    func(*client.Client) error
		want    []error // errors.Is must hold for each
		notWant []error
		msg     string
	}{
		{
			name: "connection refused", baseURL: closed,
			call: func(c *client.Client) error { _, err := c.Models(t.Context()); return err },
			want: []error{client.ErrUnreachable}, notWant: []error{client.ErrNotFound}, msg: "no server is listening at " + closed,
		},
		{
			name: "no models endpoint", baseURL: status(404, `{"detail":"Not Found"}`),
			call: func(c *client.Client) error { _, err := c.Models(t.Context()); return err },
			want: []error{client.ErrNotFound}, notWant: []error{client.ErrUnknownModel, client.ErrUnreachable}, msg: "HTTP 404: Not Found",
		},
		{
			name: "bad key", baseURL: status(401, openaitest.OpenAIErrorBody(401, "Incorrect API key provided")),
			call: func(c *client.Client) error { _, err := c.Models(t.Context()); return err },
			want: []error{client.ErrUnauthorized}, msg: "Incorrect API key provided",
		},
		{
			name: "unknown model, vLLM 404", baseURL: openaitest.New(t, openaitest.Script{}).URL,
			call: func(c *client.Client) error {
				_, err := c.PromptTokens(t.Context(), prompt)
				return err
			},
			want: []error{client.ErrUnknownModel, client.ErrNotFound}, msg: "does not exist",
		},
		{
			name: "unknown model, 400", baseURL: status(400, openaitest.OpenAIErrorBody(400, "model 'x' is not loaded")),
			call: func(c *client.Client) error {
				_, err := c.PromptTokens(t.Context(), prompt)
				return err
			},
			want: []error{client.ErrUnknownModel}, notWant: []error{client.ErrNotFound}, msg: "is not loaded",
		},
		{
			name: "unknown model on tokenize is an error, not a missing endpoint", baseURL: openaitest.New(t, openaitest.Script{}).URL,
			call: func(c *client.Client) error {
				_, _, err := c.Tokenize(t.Context(), prompt)
				return err
			},
			want: []error{client.ErrUnknownModel}, msg: "does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, tt.baseURL, func(cfg *client.Config) { cfg.Model = "no-such-model" })
			err := tt.call(c)
			if err == nil {
				t.Fatalf("call = nil error, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, w)
				}
			}
			for _, w := range tt.notWant {
				if errors.Is(err, w) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, w)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines, want one", err)
			}
		})
	}
}

// A server that generated a token but streamed no text for it (Ollama
// drops a token that ends inside a UTF-8 character): the event that closed
// the generation carries the token, so TTFC is still measured.
func TestTokenWithoutText(t *testing.T) {
	t.Parallel()
	body := "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"length\"}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":1,\"total_tokens\":12}}\n\ndata: [DONE]\n\n"
	srv := openaitest.New(t, openaitest.Script{RawBody: []byte(body), HeaderDelay: 20 * time.Millisecond})
	c := newClient(t, srv.URL, nil)
	r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 1})
	if !r.OK() || len(r.TokenTimes) != 1 || r.OutputTokens != 1 {
		t.Fatalf("record = %+v, want success with one token time", r)
	}
	if ttfc, _ := r.TTFC(); ttfc < 20*time.Millisecond {
		t.Errorf("TTFC %v is below the server's 20 ms delay", ttfc)
	}
}

// A stream that never stops (far more chunks than max_tokens) is cut off
// by the client: a stream failure with bounded records, not an endless read.
func TestStreamStopsEndlessStream(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{TTFT: time.Millisecond, Tokens: 1_000_000})
	c := newClient(t, srv.URL, nil)
	began := time.Now()
	r := c.Stream(t.Context(), began, client.Call{Seq: 1, Prompt: prompt, MaxTokens: 16})
	if took := time.Since(began); took > 4*time.Second {
		t.Errorf("the endless stream was read for %v", took)
	}
	if r.ErrClass != result.ErrStream || !strings.Contains(r.Err, "max_tokens 16") {
		t.Errorf("endless stream: class %q err %q, want a stream failure naming max_tokens", r.ErrClass, r.Err)
	}
	if n := len(r.TokenTimes); n < 16 || n > 4*16+64 {
		t.Errorf("%d chunks recorded, want between 16 and %d", n, 4*16+64)
	}
}

// --request-timeout is an inactivity timeout, as in the original tool: a
// stream much longer than it that keeps sending succeeds, a stream that
// goes quiet for it fails as a timeout, and the optional total deadline
// (RequestDeadline) ends a long stream however steadily it sends.
func TestStreamInactivityTimeoutAndDeadline(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	steady := openaitest.Script{TTFT: 100 * time.Millisecond, Gap: 100 * time.Millisecond, Tokens: 15}
	tests := []struct {
		name      string
		script    openaitest.Script
		deadline  time.Duration
		wantClass string
		wantErr   string
	}{
		{name: "slow but steady stream, 5x the timeout", script: steady},
		{
			name:      "stalled stream",
			script:    openaitest.Script{TTFT: 50 * time.Millisecond, Gap: 50 * time.Millisecond, Fault: openaitest.Fault{Kind: openaitest.Stall, After: 3, Duration: 5 * time.Second}},
			wantClass: result.ErrTimeout, wantErr: "timeout (no data for 300ms) mid-stream",
		},
		{
			name:      "total deadline on a steady stream",
			script:    steady,
			deadline:  700 * time.Millisecond,
			wantClass: result.ErrDeadline, wantErr: "deadline (700ms after the send) passed mid-stream",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, func(cfg *client.Config) {
				cfg.RequestTimeout, cfg.RequestDeadline = idle, tt.deadline
			})
			r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 15})
			if r.ErrClass != tt.wantClass || !strings.Contains(r.Err, tt.wantErr) {
				t.Fatalf("ErrClass %q, Err %q; want class %q with %q", r.ErrClass, r.Err, tt.wantClass, tt.wantErr)
			}
			switch tt.wantClass {
			case "":
				if e2e := r.End - r.Sent; e2e < 3*idle {
					t.Errorf("the stream took %v, not much longer than the %v timeout: the test proves nothing", e2e, idle)
				}
			case result.ErrDeadline:
				if d := r.End - r.Sent; d < tt.deadline || d > tt.deadline+slack {
					t.Errorf("ended %v after the send, want in [%v, %v]", d, tt.deadline, tt.deadline+slack)
				}
				if len(r.TokenTimes) == 0 || len(r.TokenTimes) >= 15 {
					t.Errorf("%d chunks before the deadline, want some but not all", len(r.TokenTimes))
				}
			}
		})
	}
}

// The length probe is the benchmark's own streamed request: a server that
// streams whatever it is asked (ignoring "stream": false) is measured; a
// stream without usage falls back to a non-streamed question; a timeout
// is reported as one (ErrTimedOut).
func TestPromptTokensStreamed(t *testing.T) {
	t.Parallel()
	want := 4 + openaitest.ChatTemplateTokens
	tests := []struct {
		name   string
		script openaitest.Script
		want   int
		err    error
	}{
		{"server that ignores stream false", openaitest.Script{IgnoreStreamFalse: true}, want, nil},
		{"stream without usage", openaitest.Script{Usage: openaitest.UsageNever}, want, nil},
		{"no answer within the timeout", openaitest.Script{HeaderDelay: 5 * time.Second}, 0, client.ErrTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, func(cfg *client.Config) { cfg.RequestTimeout = 300 * time.Millisecond })
			n, err := c.PromptTokens(t.Context(), prompt)
			if n != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("PromptTokens = %d, %v; want %d, %v", n, err, tt.want, tt.err)
			}
			if tt.err != nil && !strings.Contains(err.Error(), "timeout (no data for 300ms)") {
				t.Errorf("error %q does not say it timed out", err)
			}
			if first := srv.Completions()[0].JSON(); first["stream"] != true {
				t.Errorf("the probe was not streamed: %v", first)
			}
		})
	}
}

// A 200 answer that is not an event stream names its content type and
// quotes its start.
func TestStreamHTMLAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{ContentType: "text/html; charset=utf-8", RawBody: []byte("<html><body>Welcome to nginx</body></html>\n")})
	c := newClient(t, srv.URL, nil)
	r := stream(t, t.Context(), c, client.Call{Prompt: prompt, MaxTokens: 4})
	if r.ErrClass != result.ErrStream || !strings.Contains(r.Err, "Content-Type text/html, not text/event-stream") || !strings.Contains(r.Err, "Welcome to nginx") {
		t.Errorf("ErrClass %q, Err %q; want a stream error naming text/html and quoting the page", r.ErrClass, r.Err)
	}
}
