package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// Models lists the model IDs the server serves (GET <base>/models), in the
// server's order. Errors are *Error.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	list, err := c.modelList(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// listedModel is one entry of GET /models: its id and, from servers that
// say (vLLM, SGLang, the simulated engine), its context length.
type listedModel struct {
	ID          string `json:"id"`
	MaxModelLen int    `json:"max_model_len"`
}

func (c *Client) modelList(ctx context.Context) ([]listedModel, error) {
	var list struct {
		Data []listedModel `json:"data"`
	}
	if err := c.call(ctx, "list models", http.MethodGet, "models", nil, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

// ContextLength returns model's context length in tokens (prompt plus
// output) as GET <base>/models states it in max_model_len (vLLM, SGLang,
// the simulated engine); 0, with a nil error, when the server does not
// say or does not list the model. Errors are *Error.
func (c *Client) ContextLength(ctx context.Context, model string) (int, error) {
	list, err := c.modelList(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range list {
		if m.ID == model {
			return max(m.MaxModelLen, 0), nil
		}
	}
	return 0, nil
}

// Tokenize asks the server's vLLM-style /tokenize endpoint, at the server
// root (the base URL without its trailing /v1), how many tokens text is as
// the configured endpoint will see it: on the chat endpoint text is sent as
// one user message with add_generation_prompt, so the chat template's
// tokens are counted too. ok is false, with a nil error, when the server
// has no such endpoint (404, 405 or 501). Other errors are *Error.
func (c *Client) Tokenize(ctx context.Context, text string) (n int, ok bool, err error) {
	body := map[string]any{"model": c.cfg.Model, "prompt": text}
	if c.cfg.Endpoint == Chat {
		body = map[string]any{
			"model":                 c.cfg.Model,
			"messages":              []map[string]string{{"role": "user", "content": text}},
			"add_generation_prompt": true,
		}
	}
	var out struct {
		Count  *int  `json:"count"`
		Tokens []int `json:"tokens"`
	}
	err = c.call(ctx, "tokenize", http.MethodPost, c.tokenizePath(), body, &out)
	var e *Error
	if errors.As(err, &e) && !errors.Is(err, ErrUnknownModel) {
		switch e.Status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return 0, false, nil
		}
	}
	if err != nil {
		return 0, false, err
	}
	switch {
	case out.Count != nil:
		return *out.Count, true, nil
	case out.Tokens != nil:
		return len(out.Tokens), true, nil
	}
	return 0, false, &Error{Op: "tokenize", URL: c.resolve(c.tokenizePath()), Status: http.StatusOK,
		Message: "response has neither count nor tokens"}
}

// tokenizePath is /tokenize at the server root, relative to the base URL:
// "../tokenize" when the base URL ends in /v1, else "tokenize".
func (c *Client) tokenizePath() string {
	if strings.HasSuffix(c.base.Path, "/v1/") {
		return "../tokenize"
	}
	return "tokenize"
}

// PromptTokens returns the server's usage.prompt_tokens for text: the
// prompt length as the server counts it, chat template included. It covers
// servers without /tokenize (Ollama, hosted APIs). The probe is the
// benchmark's own request — streamed, with max_tokens 1 — so a server that
// streams whatever it is asked (ignoring "stream": false) is measured as
// well as one that does not. Only when the stream reports no usage (a
// server that ignores stream_options.include_usage) is the question asked
// again without streaming. Errors are *Error.
func (c *Client) PromptTokens(ctx context.Context, text string) (int, error) {
	const op = "probe prompt tokens"
	r := c.Stream(ctx, time.Now(), Call{Seq: -1, Prompt: text, MaxTokens: 1})
	switch {
	case !r.OK():
		return 0, requestError(op, c.resolve(c.path), &r)
	case r.UsageReported:
		return r.PromptTokens, nil
	}
	n, err := c.promptTokensUnstreamed(ctx, text)
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		e.Message = "the stream reported no usage, and without streaming: " + e.Message
	}
	return n, err
}

// promptTokensUnstreamed asks for usage.prompt_tokens with a
// non-streaming request.
func (c *Client) promptTokensUnstreamed(ctx context.Context, text string) (int, error) {
	params := c.newBody(text, 1)
	var out struct {
		Usage *struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := c.call(ctx, "probe prompt tokens", http.MethodPost, c.path, params, &out); err != nil {
		return 0, err
	}
	if out.Usage == nil {
		return 0, &Error{Op: "probe prompt tokens", URL: c.resolve(c.path), Status: http.StatusOK,
			Message: "response has no usage.prompt_tokens"}
	}
	return out.Usage.PromptTokens, nil
}

// requestError is the *Error of a failed streamed request r.
func requestError(op, url string, r *result.Request) *Error {
	// Error names the status itself.
	msg := strings.TrimPrefix(r.Err, fmt.Sprintf("HTTP %d: ", r.HTTPStatus))
	return &Error{Op: op, URL: url, Status: r.HTTPStatus, Message: msg, Class: r.ErrClass}
}

// call sends one non-streaming request and decodes its JSON answer into
// dst. Every failure is an *Error.
func (c *Client) call(ctx context.Context, op, method, path string, params, dst any) error {
	ctx, stop, dog := c.bound(ctx)
	defer stop()
	url := c.resolve(path)
	var data []byte
	if params != nil {
		var err error
		if data, err = json.Marshal(params); err != nil {
			return &Error{Op: op, URL: url, Err: fmt.Errorf("encode request: %w", err)}
		}
	}
	req, err := c.newRequest(ctx, method, url, "application/json", data)
	if err != nil {
		return &Error{Op: op, URL: url, Err: err}
	}
	res, err := c.hc.Do(req)
	if err == nil {
		res.Body = dog.watch(res.Body)
	}
	if err == nil && res.StatusCode >= 300 {
		body := readExcerpt(res.Body, errorBodyLimit)
		return &Error{Op: op, URL: url, Status: res.StatusCode, Message: errorMessage(body)}
	}
	if err != nil {
		class := ""
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errIdleTimeout):
			err, class = fmt.Errorf("timeout (no data for %v): %w", c.timeout, err), result.ErrTimeout
		case errors.Is(cause, errRequestDeadline):
			err, class = fmt.Errorf("deadline (%v after the send) passed: %w", c.deadline, err), result.ErrDeadline
		}
		return &Error{Op: op, URL: url, Err: err, Class: class}
	}
	body := readExcerpt(res.Body, 16<<20)
	if err := json.Unmarshal(body, dst); err != nil {
		return &Error{Op: op, URL: url, Status: res.StatusCode,
			Message: fmt.Sprintf("answer is not the expected JSON (%v): %s", err, excerpt(body))}
	}
	return nil
}

// resolve is the absolute URL of path, for messages.
func (c *Client) resolve(path string) string {
	u, err := c.base.Parse(path)
	if err != nil {
		return c.base.String() + path
	}
	return u.String()
}
