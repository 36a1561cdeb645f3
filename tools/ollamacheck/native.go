package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// nativeResult is one streamed call to Ollama's native /api/chat: the
// client's own timestamps and the durations the server reported in its
// final message.
type nativeResult struct {
	// Sent, FirstChunk and LastChunk are offsets from the caller's began
	// (monotonic clock): just before the request was issued, and when the
	// first and last lines carrying generated text were read.
	Sent, FirstChunk, LastChunk time.Duration
	// Chunks is the number of lines that carried generated text.
	Chunks int
	// DoneReason is the server's done_reason ("length", "stop").
	DoneReason string
	// Server holds the server's own timings and counts.
	Server serverTimings
}

// TTFC is the client-side time to first chunk of the native call.
func (r nativeResult) TTFC() time.Duration { return r.FirstChunk - r.Sent }

// serverTimings are the metrics of Ollama's final streamed message. The
// durations are the server's, in nanoseconds on the wire.
//
// What they span (ollama v0.17.4, server/routes.go and
// runner/ollamarunner/runner.go):
//   - Load: from the start of the HTTP handler to a runner being assigned
//     by the scheduler (the model load, when it was not loaded).
//   - PromptEval: in the runner, from the first batch that held the
//     sequence to the logits of its last prompt token, i.e. the prefill
//     including the forward pass that yields the first output token.
//   - Eval: from those first logits to the last output token's logits,
//     minus the time spent sampling: EvalCount-1 decode steps.
//   - Total: the whole handler, to the final message.
//
// Not in any of them: the chat template, tokenization, the wait for a free
// parallel slot, the HTTP hop to the runner, sampling and streaming.
type serverTimings struct {
	Total           time.Duration `json:"total_duration"`
	Load            time.Duration `json:"load_duration"`
	PromptEvalCount int           `json:"prompt_eval_count"`
	PromptEval      time.Duration `json:"prompt_eval_duration"`
	EvalCount       int           `json:"eval_count"`
	Eval            time.Duration `json:"eval_duration"`
}

// chatLine is one line of the native /api/chat stream.
type chatLine struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done       bool   `json:"done"`
	DoneReason string `json:"done_reason"`
	Error      string `json:"error"`
	serverTimings
}

// nativeClient calls Ollama's native API at the server root.
type nativeClient struct {
	root  string // e.g. "http://127.0.0.1:11434", no trailing slash
	model string
	hc    *http.Client
}

// nativeRoot turns an OpenAI base URL (".../v1") into the server root the
// native API lives under.
func nativeRoot(apiBase string) (string, error) {
	u, err := url.Parse(apiBase)
	if err != nil {
		return "", fmt.Errorf("parse -api-base %q: %w", apiBase, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("-api-base %q: want an http(s) URL such as http://127.0.0.1:11434/v1", apiBase)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

// chat sends prompt as one user message to /api/chat, streamed, and reads
// the answer line by line, stamping each line as soon as it is read.
// Options mirror what Ollama's OpenAI layer sets for a chat completion
// without sampling fields (temperature 1, top_p 1, num_predict =
// max_tokens), so both paths do the same work.
func (c *nativeClient) chat(ctx context.Context, began time.Time, prompt string, maxTokens int) (nativeResult, error) {
	body, err := json.Marshal(map[string]any{
		"model":    c.model,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
		"stream":   true,
		"options":  map[string]any{"num_predict": maxTokens, "temperature": 1.0, "top_p": 1.0},
	})
	if err != nil {
		return nativeResult{}, fmt.Errorf("encode /api/chat request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.root+"/api/chat", bytes.NewReader(body))
	if err != nil {
		return nativeResult{}, fmt.Errorf("build /api/chat request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")

	var r nativeResult
	r.Sent = time.Since(began)
	res, err := c.hc.Do(req)
	if err != nil {
		return r, fmt.Errorf("POST %s/api/chat: %w", c.root, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return r, fmt.Errorf("POST %s/api/chat: HTTP %d: %s", c.root, res.StatusCode, bytes.TrimSpace(msg))
	}
	return readChatStream(res.Body, began, r)
}

// readChatStream reads the NDJSON answer of /api/chat into r. It fails on
// a server error line, an undecodable line, or a stream that ends before
// its done line.
func readChatStream(body io.Reader, began time.Time, r nativeResult) (nativeResult, error) {
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadBytes('\n')
		at := time.Since(began)
		if len(bytes.TrimSpace(line)) > 0 {
			var ev chatLine
			if jerr := json.Unmarshal(line, &ev); jerr != nil {
				return r, fmt.Errorf("decode /api/chat line %q: %w", excerpt(line), jerr)
			}
			if ev.Error != "" {
				return r, fmt.Errorf("/api/chat: server error: %s", ev.Error)
			}
			if ev.Message.Content != "" {
				if r.Chunks == 0 {
					r.FirstChunk = at
				}
				r.LastChunk = at
				r.Chunks++
			}
			if ev.Done {
				r.DoneReason = ev.DoneReason
				r.Server = ev.serverTimings
				if r.Chunks == 0 {
					return r, errors.New("/api/chat: the answer carried no generated text")
				}
				return r, nil
			}
		}
		if err == io.EOF {
			return r, errors.New("/api/chat: stream ended before its done line")
		}
		if err != nil {
			return r, fmt.Errorf("read /api/chat stream: %w", err)
		}
	}
}

// excerpt shortens b for an error message.
func excerpt(b []byte) string {
	const max = 120
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
