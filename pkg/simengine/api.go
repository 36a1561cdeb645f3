package simengine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// completionBody is the part of an OpenAI chat or completions request the
// engine reads. Other fields (temperature, ...) are accepted and ignored.
type completionBody struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	MinTokens           int             `json:"min_tokens"`
	IgnoreEOS           bool            `json:"ignore_eos"`
	N                   *int            `json:"n"`
	AddGenerationPrompt *bool           `json:"add_generation_prompt"`
}

type streamOptions struct {
	IncludeUsage         bool `json:"include_usage"`
	ContinuousUsageStats bool `json:"continuous_usage_stats"`
}

type chatMessage struct {
	Role    string         `json:"role"`
	Content messageContent `json:"content"`
}

// messageContent is a message's text: a string, or an array of content
// parts whose "text" parts are joined with newlines (as vLLM does).
type messageContent struct{ Text string }

func (c *messageContent) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		c.Text = ""
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &c.Text)
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(data, &parts); err != nil {
		return errors.New("content is neither a string nor an array of content parts")
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	c.Text = strings.Join(texts, "\n")
	return nil
}

// promptTokens reads the tokens of a completions prompt into h: a string,
// an array of token ids, or an array holding one of those.
func promptTokens(raw json.RawMessage, h *blockHasher) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("prompt: %w", err)
		}
		h.addText(s)
		return nil
	}
	if scanIntArray(raw, h) {
		return nil
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(raw, &batch); err == nil {
		if len(batch) != 1 {
			return fmt.Errorf("prompt holds %d prompts; the simulated engine takes one per request", len(batch))
		}
		if b := bytes.TrimSpace(batch[0]); len(b) > 0 && (b[0] == '"' || b[0] == '[') {
			return promptTokens(b, h)
		}
	}
	return errors.New("prompt is neither a string, an array of token ids, nor a one-element array of those")
}

// scanIntArray reads a JSON array of non-negative integers, such as a
// prompt of token ids, into h without decoding it: encoding/json takes
// about 0.3 ms for 1500 ids, which would show up in the engine's time to
// first token. It returns false, having added nothing, when raw is not
// such an array.
func scanIntArray(raw []byte, h *blockHasher) bool {
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return false
	}
	// A first pass validates, so that nothing is added for an array the
	// slow path must read.
	n, digits := 0, 0
	for _, c := range raw[1 : len(raw)-1] {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == ',':
			if digits == 0 {
				return false
			}
			n, digits = n+1, 0
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default: // signs, fractions, strings and nested arrays take the slow path
			return false
		}
	}
	if digits == 0 && n > 0 {
		return false // trailing comma
	}
	id, digits := 0, 0
	for _, c := range raw[1 : len(raw)-1] {
		switch {
		case c >= '0' && c <= '9':
			id, digits = id*10+int(c-'0'), digits+1
		case c == ',':
			h.add(id)
			id, digits = 0, 0
		}
	}
	if digits > 0 {
		h.add(id)
	}
	return true
}

// apiError is an OpenAI-style error response.
type apiError struct {
	status  int
	message string
	typ     string
	param   string
	code    string
}

func (e *apiError) Error() string { return e.message }

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...), typ: "invalid_request_error", param: param}
}

// writeAPIError writes e as {"error":{"message","type","param","code"}}.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    any     `json:"code"`
		} `json:"error"`
	}
	body.Error.Message, body.Error.Type = e.message, e.typ
	if e.param != "" {
		body.Error.Param = &e.param
	}
	body.Error.Code = e.status
	if e.code != "" {
		body.Error.Code = e.code
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n')) // the client may be gone; nothing to do
}

// usage is the OpenAI usage object.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func newUsage(prompt, completion int) usage {
	return usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}
