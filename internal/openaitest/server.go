package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultModel is the only model the server lists and accepts. A completion
// request naming another (non-empty) model gets a vLLM-style 404.
const DefaultModel = "test-model"

// ChatTemplateTokens is the number of tokens the chat template adds to the
// words of the messages, in usage.prompt_tokens and in /tokenize.
const ChatTemplateTokens = 7

// DefaultMaxTokens is how many tokens a completion generates when neither the
// Script (Tokens) nor the request (max_tokens) says.
const DefaultMaxTokens = 16

// UsageMode says when the stream carries a usage object.
type UsageMode int

const (
	// UsageAsRequested follows the request, as vLLM does: a final usage
	// chunk (empty choices) when stream_options.include_usage is true, and
	// cumulative usage in every chunk as well when
	// stream_options.continuous_usage_stats is also true.
	UsageAsRequested UsageMode = iota
	// UsageNever sends no usage at all.
	UsageNever
	// UsageFinal sends usage only in a final chunk with empty choices.
	UsageFinal
	// UsageEveryChunk sends cumulative usage in every chunk and in a final
	// chunk with empty choices.
	UsageEveryChunk
)

// FaultKind names a failure a Script injects into a stream.
type FaultKind int

const (
	// NoFault: the stream runs to its end.
	NoFault FaultKind = iota
	// Reset hijacks the connection and resets it (TCP RST) mid-body.
	Reset
	// Cut ends the response body cleanly, without finish_reason or [DONE].
	Cut
	// Stall sleeps Fault.Duration (or until the client goes away), then
	// carries on with the stream.
	Stall
	// Malformed writes an event whose data is not valid JSON, then carries on.
	Malformed
	// ErrorEvent writes {"error":{"message":Fault.Message,...}} as an event
	// and ends the stream.
	ErrorEvent
)

// Fault is one failure injected into a stream after After content chunks
// have been written (0: before the first one; at least the number of chunks:
// after the last one, before the usage chunk and [DONE]).
type Fault struct {
	Kind     FaultKind
	After    int
	Duration time.Duration // Stall only
	Message  string        // ErrorEvent only
}

// Script tells the server how to answer one completion request. The zero
// Script streams max_tokens one-token chunks as fast as it can, with
// finish_reason "length" and usage as requested. A non-streamed request
// honours only Status, ErrorBody, HeaderDelay, TTFT, Tokens and
// FinishReason.
type Script struct {
	// Aliases are model names the server accepts on completions without
	// listing them (as hosted APIs accept aliases).
	Aliases []string
	// Status, when >= 400, answers with that status and ErrorBody instead
	// of a completion (after HeaderDelay).
	Status int
	// ErrorBody is the body sent with Status; empty means
	// OpenAIErrorBody(Status, "scripted error").
	ErrorBody string

	// HeaderDelay is the wait between the request's arrival and the
	// response headers.
	HeaderDelay time.Duration
	// TTFT is the time from the request's arrival to the first content
	// chunk. Chunk i is written at TTFT + i*Gap after arrival.
	TTFT time.Duration
	// Gap is the time between content chunks.
	Gap time.Duration
	// Tokens is the number of tokens generated; 0 means the request's
	// max_tokens, or DefaultMaxTokens without one.
	Tokens int
	// TokensPerChunk is how many tokens each content chunk carries (the
	// last may carry fewer); 0 means 1.
	TokensPerChunk int
	// FinishReason is sent on the last content chunk; empty means "length".
	FinishReason string

	// RoleFirst sends a role-only delta ({"role":"assistant","content":""})
	// before the first content chunk (chat endpoint only), right after the
	// headers.
	RoleFirst bool
	// Reasoning puts the text in delta.reasoning_content instead of
	// delta.content (chat endpoint only).
	Reasoning bool
	// KeepAlive writes a ": keep-alive" comment before every event.
	KeepAlive bool
	// CRLF ends every line with "\r\n" instead of "\n".
	CRLF bool
	// NullError adds "error": null to every chunk.
	NullError bool
	// NoDone leaves out the final "data: [DONE]".
	NoDone bool
	// Usage says when usage is reported.
	Usage UsageMode
	// Fault injects one failure.
	Fault Fault

	// Header is added to the response headers of an error answer
	// (Status >= 400), e.g. Retry-After.
	Header http.Header
	// Hangup closes the connection without any answer (after
	// HeaderDelay), as a server that died does.
	Hangup bool

	// RawBody, when non-nil, is written verbatim as the stream body (with
	// Content-Type text/event-stream, or ContentType) after HeaderDelay;
	// every other field but Status is ignored.
	RawBody []byte
	// ContentType, when set, replaces text/event-stream as the
	// Content-Type of a streamed answer (an HTML page from a proxy).
	ContentType string
	// IgnoreStreamFalse streams the answer even when the request asks
	// for "stream": false, as some servers do.
	IgnoreStreamFalse bool
	// NoTokenize answers /tokenize with 404, as servers without it do.
	// It is read from the Script for an empty Received.
	NoTokenize bool
	// MaxModelLen, when positive, is the model's context length: listed
	// as max_model_len in /v1/models (read from the Script for an empty
	// Received, as vLLM lists it), and a completion whose prompt plus
	// max_tokens exceeds it is refused with vLLM's 400.
	MaxModelLen int
}

// Received is one request as the server saw it.
type Received struct {
	// N is the arrival index among completion requests (chat and legacy,
	// from 0); -1 for other requests (models, tokenize).
	N      int
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// JSON decodes the request body as a JSON object; nil when it is not one.
func (r Received) JSON() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil
	}
	return m
}

// Server is a running scripted server. Its fields are read-only.
type Server struct {
	// URL is the OpenAI base URL, "http://127.0.0.1:<port>/v1".
	URL string
	// Root is the server root, "http://127.0.0.1:<port>", where /tokenize lives.
	Root string
	// Model is the model the server lists (DefaultModel).
	Model string

	srv    *httptest.Server
	script func(Received) Script

	mu          sync.Mutex
	reqs        []Received
	completions int
	conns       int
}

// New starts a server that answers every completion request with s. It is
// closed when the test ends.
func New(tb testing.TB, s Script) *Server {
	tb.Helper()
	return NewFunc(tb, func(Received) Script { return s })
}

// NewFunc starts a server that asks script how to answer each completion
// request; script may be called from several goroutines at once. The server
// is closed when the test ends.
func NewFunc(tb testing.TB, script func(Received) Script) *Server {
	tb.Helper()
	s := &Server{Model: DefaultModel, script: script}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.srv.Start()
	s.Root = s.srv.URL
	s.URL = s.srv.URL + "/v1"
	tb.Cleanup(s.Close)
	return s
}

// Close drops every open connection and stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.reqs))
	copy(out, s.reqs)
	return out
}

// Conns returns the number of TCP connections accepted so far: a client
// that reuses connections opens one per concurrent request, not one per
// request.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Completions returns the completion requests received so far (chat and
// legacy), in arrival order.
func (s *Server) Completions() []Received {
	var out []Received
	for _, r := range s.Requests() {
		if r.N >= 0 {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) record(r *http.Request, body []byte, completion bool) Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Received{N: -1, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if completion {
		rec.N = s.completions
		s.completions++
	}
	s.reqs = append(s.reqs, rec)
	return rec
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	chat := r.URL.Path == "/v1/chat/completions"
	completion := r.Method == http.MethodPost && (chat || r.URL.Path == "/v1/completions")
	rec := s.record(r, body, completion)
	switch {
	case completion:
		s.complete(w, r, rec, chat)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		m := map[string]any{"id": s.Model, "object": "model", "created": 0, "owned_by": "openaitest"}
		if n := s.script(Received{N: -1}).MaxModelLen; n > 0 {
			m["max_model_len"] = n
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{m}})
	case r.Method == http.MethodPost && r.URL.Path == "/tokenize" && !s.script(Received{N: -1}).NoTokenize:
		s.tokenize(w, body)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	}
}

// request is the part of a completion request the server looks at.
type request struct {
	Model    string `json:"model"`
	Prompt   any    `json:"prompt"`
	Messages []struct {
		Content any `json:"content"`
	} `json:"messages"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
	Stream              bool `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
}

// promptTokens counts the prompt with the package tokenizer.
func (q *request) promptTokens() int {
	if q.Messages != nil {
		n := ChatTemplateTokens
		for _, m := range q.Messages {
			n += words(m.Content)
		}
		return n
	}
	return words(q.Prompt)
}

// words counts whitespace-separated words in a string, or in every string
// of a list; token-ID lists count one token per element.
func words(v any) int {
	switch v := v.(type) {
	case string:
		return len(strings.Fields(v))
	case []any:
		n := 0
		for _, e := range v {
			if _, ok := e.(float64); ok {
				n++
				continue
			}
			n += words(e)
		}
		return n
	}
	return 0
}

// accepts reports whether the script's Aliases hold model.
func (sc Script) accepts(model string) bool { return slices.Contains(sc.Aliases, model) }

func (s *Server) tokenize(w http.ResponseWriter, body []byte) {
	var q request
	if err := json.Unmarshal(body, &q); err != nil {
		writeJSON(w, http.StatusBadRequest, json.RawMessage(VLLMErrorBody(http.StatusBadRequest, "invalid JSON: "+err.Error())))
		return
	}
	if q.Model != "" && q.Model != s.Model && !s.script(Received{}).accepts(q.Model) {
		writeJSON(w, http.StatusNotFound, json.RawMessage(VLLMErrorBody(http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", q.Model))))
		return
	}
	n := q.promptTokens()
	tokens := make([]int, n)
	for i := range tokens {
		tokens[i] = i
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": n, "max_model_len": 1 << 20, "tokens": tokens})
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, rec Received, chat bool) {
	start := time.Now()
	ctx := r.Context()
	var q request
	if err := json.Unmarshal(rec.Body, &q); err != nil {
		writeJSON(w, http.StatusBadRequest, json.RawMessage(VLLMErrorBody(http.StatusBadRequest, "invalid JSON: "+err.Error())))
		return
	}
	sc := s.script(rec)
	if !sleepUntil(ctx, start.Add(sc.HeaderDelay)) {
		return
	}
	if sc.Hangup {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	if sc.Status >= 400 {
		for k, v := range sc.Header {
			w.Header()[k] = v
		}
		b := sc.ErrorBody
		if b == "" {
			b = OpenAIErrorBody(sc.Status, "scripted error")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(sc.Status)
		_, _ = io.WriteString(w, b)
		return
	}
	if q.Model != "" && q.Model != s.Model && !slices.Contains(sc.Aliases, q.Model) {
		writeJSON(w, http.StatusNotFound, json.RawMessage(VLLMErrorBody(http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", q.Model))))
		return
	}
	tokens := sc.Tokens
	if tokens <= 0 {
		switch {
		case q.MaxTokens != nil:
			tokens = *q.MaxTokens
		case q.MaxCompletionTokens != nil:
			tokens = *q.MaxCompletionTokens
		default:
			tokens = DefaultMaxTokens
		}
	}
	prompt := q.promptTokens()
	if sc.MaxModelLen > 0 && prompt+tokens > sc.MaxModelLen {
		writeJSON(w, http.StatusBadRequest, json.RawMessage(VLLMErrorBody(http.StatusBadRequest, fmt.Sprintf(
			"This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion).",
			sc.MaxModelLen, prompt+tokens, prompt, tokens))))
		return
	}
	if !q.Stream && !sc.IgnoreStreamFalse {
		if !sleepUntil(ctx, start.Add(sc.TTFT)) {
			return
		}
		writeJSON(w, http.StatusOK, whole(chat, tokenText(0, tokens), prompt, tokens, sc.finish()))
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	if sc.ContentType != "" {
		w.Header().Set("Content-Type", sc.ContentType)
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if sc.RawBody != nil {
		_, _ = w.Write(sc.RawBody)
		_ = rc.Flush()
		return
	}

	st := &streamer{w: w, rc: rc, sc: sc, chat: chat, prompt: prompt, eol: "\n"}
	if sc.CRLF {
		st.eol = "\r\n"
	}
	include := q.StreamOptions != nil && q.StreamOptions.IncludeUsage
	continuous := include && q.StreamOptions.ContinuousUsageStats
	switch sc.Usage {
	case UsageAsRequested:
		st.usageFinal, st.usageEvery = include, continuous
	case UsageFinal:
		st.usageFinal = true
	case UsageEveryChunk:
		st.usageFinal, st.usageEvery = true, true
	}

	if sc.RoleFirst && chat {
		st.event(st.chunk(&delta{Role: "assistant", Content: new("")}, nil, nil, 0))
	}
	per := max(sc.TokensPerChunk, 1)
	sent, chunks := 0, 0
	for sent < tokens {
		if sc.Fault.Kind != NoFault && sc.Fault.After == chunks {
			if !st.fault(ctx) {
				return
			}
		}
		if !sleepUntil(ctx, start.Add(sc.TTFT+time.Duration(chunks)*sc.Gap)) {
			return
		}
		k := min(per, tokens-sent)
		text := tokenText(sent, k)
		sent += k
		chunks++
		var finish *string
		if sent == tokens {
			finish = new(sc.finish())
		}
		if chat {
			d := &delta{Content: &text}
			if sc.Reasoning {
				d = &delta{ReasoningContent: &text}
			}
			st.event(st.chunk(d, nil, finish, sent))
		} else {
			st.event(st.chunk(nil, &text, finish, sent))
		}
	}
	if sc.Fault.Kind != NoFault && sc.Fault.After >= chunks {
		if !st.fault(ctx) {
			return
		}
	}
	if st.usageFinal {
		c := st.chunk(nil, nil, nil, sent)
		c.Choices = []choice{}
		c.Usage = &usage{PromptTokens: prompt, CompletionTokens: sent, TotalTokens: prompt + sent}
		st.event(c)
	}
	if !sc.NoDone {
		st.write("data: [DONE]" + st.eol + st.eol)
	}
}

func (sc *Script) finish() string {
	if sc.FinishReason == "" {
		return "length"
	}
	return sc.FinishReason
}

// streamer writes the SSE events of one stream.
type streamer struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	sc         Script
	chat       bool
	prompt     int
	eol        string
	usageFinal bool
	usageEvery bool
}

type delta struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
}

type choice struct {
	Index        int     `json:"index"`
	Delta        *delta  `json:"delta,omitempty"`
	Text         *string `json:"text,omitempty"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []choice        `json:"choices"`
	Usage   *usage          `json:"usage,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// chunk builds one stream chunk; generated is the cumulative token count.
func (st *streamer) chunk(d *delta, text, finish *string, generated int) chunk {
	c := chunk{ID: "cmpl-openaitest", Object: "text_completion", Model: DefaultModel,
		Choices: []choice{{Delta: d, Text: text, FinishReason: finish}}}
	if st.chat {
		c.ID, c.Object = "chatcmpl-openaitest", "chat.completion.chunk"
	}
	if st.usageEvery {
		c.Usage = &usage{PromptTokens: st.prompt, CompletionTokens: generated, TotalTokens: st.prompt + generated}
	}
	if st.sc.NullError {
		c.Error = json.RawMessage("null")
	}
	return c
}

func (st *streamer) event(c chunk) {
	b, _ := json.Marshal(c) // cannot fail: plain structs of strings and numbers
	st.write("data: " + string(b) + st.eol + st.eol)
}

func (st *streamer) write(s string) {
	if st.sc.KeepAlive {
		s = ": keep-alive" + st.eol + st.eol + s
	}
	_, _ = io.WriteString(st.w, s)
	_ = st.rc.Flush()
}

// fault injects the Script's fault; false means the stream is over.
func (st *streamer) fault(ctx context.Context) bool {
	f := st.sc.Fault
	switch f.Kind {
	case Reset:
		conn, _, err := st.rc.Hijack()
		if err != nil {
			return false
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, not FIN
		}
		_ = conn.Close()
		return false
	case Cut:
		return false
	case Stall:
		return sleepUntil(ctx, time.Now().Add(f.Duration))
	case Malformed:
		st.write(`data: {"choices":[{"delta":{"content":"broken` + st.eol + st.eol)
		return true
	case ErrorEvent:
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": f.Message, "type": "server_error", "code": 500}})
		st.write("data: " + string(b) + st.eol + st.eol)
		return false
	}
	return true
}

// whole is a non-streamed completion.
func whole(chat bool, text string, prompt, n int, finish string) map[string]any {
	u := usage{PromptTokens: prompt, CompletionTokens: n, TotalTokens: prompt + n}
	if chat {
		return map[string]any{
			"id": "chatcmpl-openaitest", "object": "chat.completion", "model": DefaultModel,
			"choices": []any{map[string]any{"index": 0, "finish_reason": finish,
				"message": map[string]any{"role": "assistant", "content": text}}},
			"usage": u,
		}
	}
	return map[string]any{
		"id": "cmpl-openaitest", "object": "text_completion", "model": DefaultModel,
		"choices": []any{map[string]any{"index": 0, "finish_reason": finish, "text": text}},
		"usage":   u,
	}
}

// tokenText is the text of tokens first .. first+n-1.
func tokenText(first, n int) string {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "tok%d ", i)
	}
	return b.String()
}

// OpenAIErrorBody is an error body in OpenAI's shape:
// {"error":{"message":msg,"type":...,"param":null,"code":...}}.
func OpenAIErrorBody(status int, msg string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": errorType(status), "param": nil, "code": nil,
	}})
	return string(b)
}

// VLLMErrorBody is an error body in vLLM's shape, without the "error"
// wrapper: {"object":"error","message":msg,"type":...,"param":null,"code":status}.
func VLLMErrorBody(status int, msg string) string {
	b, _ := json.Marshal(map[string]any{
		"object": "error", "message": msg, "type": errorType(status), "param": nil, "code": status,
	})
	return string(b)
}

func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequestError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	}
	return "server_error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// sleepUntil waits until t; false when ctx ended first (the client left).
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
