package openaitest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/internal/openaitest"
)

// post sends body to path and returns the status and the whole response
// body, or the body read so far and the read error.
func post(t *testing.T, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "yes")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// dataEvents returns the data payloads of an SSE body, in order.
func dataEvents(body string) []string {
	var out []string
	for line := range strings.SplitSeq(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

const chatBody = `{"model":"test-model","messages":[{"role":"user","content":"a b c"}],"max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}`

func TestStreamWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script openaitest.Script
		path   string
		body   string
		want   []string
		check  func(t *testing.T, raw string)
	}{
		{
			name: "chat with final usage", script: openaitest.Script{}, path: "/v1/chat/completions", body: chatBody,
			want: []string{
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[{"index":0,"delta":{"content":"tok0 "},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[{"index":0,"delta":{"content":"tok1 "},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[{"index":0,"delta":{"content":"tok2 "},"logprobs":null,"finish_reason":"length"}]}`,
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}`,
				`[DONE]`,
			},
		},
		{
			name:   "completions, two tokens per chunk, continuous usage, no [DONE]",
			script: openaitest.Script{TokensPerChunk: 2, NoDone: true, FinishReason: "stop"},
			path:   "/v1/completions",
			body:   `{"model":"test-model","prompt":"a b","max_tokens":3,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
			want: []string{
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[{"index":0,"text":"tok0 tok1 ","logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}`,
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[{"index":0,"text":"tok2 ","logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}`,
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}`,
			},
		},
		{
			name:   "role first, reasoning, null error, no usage, CRLF, keep-alive",
			script: openaitest.Script{Tokens: 1, RoleFirst: true, Reasoning: true, NullError: true, Usage: openaitest.UsageNever, CRLF: true, KeepAlive: true},
			path:   "/v1/chat/completions", body: chatBody,
			want: []string{
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"error":null}`,
				`{"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":"test-model","choices":[{"index":0,"delta":{"reasoning_content":"tok0 "},"logprobs":null,"finish_reason":"length"}],"error":null}`,
				`[DONE]`,
			},
			check: func(t *testing.T, raw string) {
				if strings.Count(raw, ": keep-alive\r\n\r\n") != 3 || strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") {
					t.Errorf("body %q: want 3 keep-alive comments and only CRLF line ends", raw)
				}
			},
		},
		{
			name:   "malformed event after one chunk",
			script: openaitest.Script{Tokens: 2, Usage: openaitest.UsageNever, Fault: openaitest.Fault{Kind: openaitest.Malformed, After: 1}},
			path:   "/v1/completions", body: `{"prompt":"a","stream":true}`,
			want: []string{
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[{"index":0,"text":"tok0 ","logprobs":null,"finish_reason":null}]}`,
				`{"choices":[{"delta":{"content":"broken`,
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[{"index":0,"text":"tok1 ","logprobs":null,"finish_reason":"length"}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "error event ends the stream",
			script: openaitest.Script{Tokens: 2, Fault: openaitest.Fault{Kind: openaitest.ErrorEvent, After: 0, Message: "boom"}},
			path:   "/v1/completions", body: `{"prompt":"a","stream":true}`,
			want: []string{`{"error":{"code":500,"message":"boom","type":"server_error"}}`},
		},
		{
			name:   "cut after the last chunk",
			script: openaitest.Script{Tokens: 1, Fault: openaitest.Fault{Kind: openaitest.Cut, After: 5}},
			path:   "/v1/completions", body: `{"prompt":"a","stream":true}`,
			want: []string{
				`{"id":"cmpl-openaitest","object":"text_completion","created":0,"model":"test-model","choices":[{"index":0,"text":"tok0 ","logprobs":null,"finish_reason":"length"}]}`,
			},
		},
		{
			name:   "raw body",
			script: openaitest.Script{RawBody: []byte("data: hello\n\n")},
			path:   "/v1/chat/completions", body: chatBody,
			want: []string{"hello"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			status, raw, err := post(t, srv.Root+tt.path, tt.body)
			if status != http.StatusOK || err != nil {
				t.Fatalf("POST %s = %d, %v, want 200, nil", tt.path, status, err)
			}
			if diff := cmp.Diff(tt.want, dataEvents(raw)); diff != "" {
				t.Errorf("data events (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, raw)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	const ttft, gap = 60 * time.Millisecond, 20 * time.Millisecond
	srv := openaitest.New(t, openaitest.Script{TTFT: ttft, Gap: gap, Tokens: 4, Usage: openaitest.UsageNever})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/completions", strings.NewReader(`{"prompt":"a","stream":true}`))
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if h := time.Since(start); h >= ttft {
		t.Errorf("headers after %v, want before TTFT %v", h, ttft)
	}
	br := bufio.NewReader(res.Body)
	for i := 0; i < 4; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read chunk %d: %v", i, err)
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		if got, min := time.Since(start), ttft+time.Duration(i)*gap; got < min {
			t.Errorf("chunk %d arrived after %v, want >= %v", i, got, min)
		}
		i++
	}
}

func TestErrorsAndFaults(t *testing.T) {
	t.Parallel()
	t.Run("status with vLLM body", func(t *testing.T) {
		t.Parallel()
		srv := openaitest.New(t, openaitest.Script{Status: 500, ErrorBody: openaitest.VLLMErrorBody(500, "oops")})
		status, body, _ := post(t, srv.URL+"/chat/completions", chatBody)
		if status != 500 || body != `{"code":500,"message":"oops","object":"error","param":null,"type":"server_error"}` {
			t.Errorf("POST = %d %s, want 500 and the vLLM body", status, body)
		}
	})
	t.Run("default error body", func(t *testing.T) {
		t.Parallel()
		srv := openaitest.New(t, openaitest.Script{Status: 429})
		status, body, _ := post(t, srv.URL+"/chat/completions", chatBody)
		if status != 429 || !strings.Contains(body, `"message":"scripted error"`) {
			t.Errorf("POST = %d %s, want 429 and an OpenAI error body", status, body)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		t.Parallel()
		srv := openaitest.New(t, openaitest.Script{})
		status, body, _ := post(t, srv.URL+"/chat/completions", `{"model":"other","stream":true}`)
		if status != 404 || !strings.Contains(body, "does not exist") {
			t.Errorf("POST = %d %s, want 404 saying the model does not exist", status, body)
		}
	})
	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		srv := openaitest.New(t, openaitest.Script{Tokens: 5, Fault: openaitest.Fault{Kind: openaitest.Reset, After: 2}})
		_, body, err := post(t, srv.URL+"/chat/completions", chatBody)
		if err == nil || len(dataEvents(body)) != 2 {
			t.Errorf("read = %d events, error %v, want 2 events and an error", len(dataEvents(body)), err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		t.Parallel()
		const stall = 100 * time.Millisecond
		srv := openaitest.New(t, openaitest.Script{Tokens: 2, Fault: openaitest.Fault{Kind: openaitest.Stall, After: 1, Duration: stall}})
		start := time.Now()
		_, body, err := post(t, srv.URL+"/chat/completions", chatBody)
		if d := time.Since(start); err != nil || d < stall || len(dataEvents(body)) != 4 {
			t.Errorf("stream took %v with %d events, error %v, want >= %v, 4 events, nil", d, len(dataEvents(body)), err, stall)
		}
	})
}

func TestOtherEndpointsAndRecording(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(t, openaitest.Script{})
	get, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/models", nil)
	res, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	var models struct{ Data []struct{ ID string } }
	err = json.NewDecoder(res.Body).Decode(&models)
	res.Body.Close()
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != openaitest.DefaultModel {
		t.Errorf("GET /v1/models = %+v, %v, want one model %q", models, err, openaitest.DefaultModel)
	}

	tokenize := []struct{ body, want string }{
		{`{"model":"test-model","prompt":"a b c"}`, `"count":3`},
		{`{"messages":[{"role":"user","content":"a b c"}],"add_generation_prompt":true}`, `"count":10`},
	}
	for _, tt := range tokenize {
		status, body, _ := post(t, srv.Root+"/tokenize", tt.body)
		if status != 200 || !strings.Contains(body, tt.want) {
			t.Errorf("POST /tokenize %s = %d %s, want 200 with %s", tt.body, status, body, tt.want)
		}
	}
	status, body, _ := post(t, srv.URL+"/chat/completions", `{"messages":[{"role":"user","content":"a b"}],"max_tokens":2}`)
	if status != 200 || !strings.Contains(body, `"content":"tok0 tok1 "`) || !strings.Contains(body, `"prompt_tokens":9`) {
		t.Errorf("non-streamed chat = %d %s, want 200 with two tokens and 9 prompt tokens", status, body)
	}
	post(t, srv.URL+"/chat/completions", chatBody)

	reqs := srv.Requests()
	var got []string
	for _, r := range reqs {
		got = append(got, r.Method+" "+r.Path+" "+strconv.Itoa(r.N))
	}
	want := []string{"GET /v1/models -1", "POST /tokenize -1", "POST /tokenize -1", "POST /v1/chat/completions 0", "POST /v1/chat/completions 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Requests() (-want +got):\n%s", diff)
	}
	last := srv.Completions()[1]
	if last.Header.Get("X-Test") != "yes" || last.JSON()["max_tokens"] != float64(3) {
		t.Errorf("recorded request = header %v, body %s, want X-Test and max_tokens 3", last.Header, last.Body)
	}
	if srv.Conns() < 1 {
		t.Errorf("Conns() = %d, want >= 1", srv.Conns())
	}
}
