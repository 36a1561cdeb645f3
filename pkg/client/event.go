package client

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// chunkEvent is the part of a stream chunk this package reads, for both
// endpoints (chat: choices[].delta, completions: choices[].text). Unknown
// fields are skipped by encoding/json without being stored.
type chunkEvent struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"` // vLLM, SGLang
			Reasoning        string `json:"reasoning"`         // Ollama, OpenRouter
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	// Error is an OpenAI-style error object; "error": null is not an error.
	Error json.RawMessage `json:"error"`
	// Object and Message carry a vLLM-style error sent as an event:
	// {"object":"error","message":...}.
	Object  string `json:"object"`
	Message string `json:"message"`
}

// streamState accumulates the events of one stream.
type streamState struct {
	times []time.Duration
	// perChunk holds the tokens of each content chunk, derived from
	// cumulative per-chunk usage; unusable once noPerChunk is set.
	perChunk   []int
	noPerChunk bool
	cum        int // last cumulative completion_tokens seen
	pending    int // tokens counted by usage since the last content chunk

	usage      bool
	prompt     int
	completion int
	finish     string
	// finishAt is the arrival of the first event carrying a finish_reason.
	finishAt time.Duration

	prefix chunkPrefix // the start of the last chunk, for scanChunk
}

// add takes one event's data, which arrived at offset at. A non-empty
// class means the stream must stop: the data was not valid JSON of the
// expected shape (ErrDecode) or the server sent an error (ErrStream).
func (s *streamState) add(data []byte, at time.Duration) (class, msg string) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", "" // an empty data field carries nothing
	}
	f, ok := scanChunk(data, &s.prefix)
	if !ok {
		// Anything the scanner does not read, errors included, is
		// decoded by encoding/json.
		if f, class, msg = decodeChunk(data); class != "" {
			return class, msg
		}
	}
	s.apply(f, at)
	return "", ""
}

// decodeChunk decodes one event's data with encoding/json: the reference
// for scanChunk, and its fallback. A non-empty class is as for add.
func decodeChunk(data []byte) (f chunkFacts, class, msg string) {
	var ev chunkEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return f, result.ErrDecode, "decode event: " + err.Error() + ": " + excerpt(data)
	}
	if msg, ok := ev.serverError(); ok {
		return f, result.ErrStream, "server sent an error event: " + msg
	}
	for i := range ev.Choices {
		ch := &ev.Choices[i]
		if ch.Text != "" || ch.Delta.Content != "" || ch.Delta.ReasoningContent != "" || ch.Delta.Reasoning != "" {
			f.content = true
		}
		if ch.FinishReason != "" {
			f.finish = ch.FinishReason
		}
	}
	if u := ev.Usage; u != nil {
		f.usage = true
		f.prompt, f.completion = u.PromptTokens, u.CompletionTokens
	}
	return f, "", ""
}

// apply adds the facts of one event, which arrived at offset at.
func (s *streamState) apply(f chunkFacts, at time.Duration) {
	if f.finish != "" {
		if s.finish == "" {
			s.finishAt = at
		}
		s.finish = f.finish
	}
	if f.usage {
		s.usage = true
		s.prompt, s.completion = f.prompt, f.completion
		if f.completion < s.cum {
			s.noPerChunk = true // not cumulative: cannot derive tokens per chunk
		}
		s.pending += f.completion - s.cum
		s.cum = f.completion
	}
	if f.content {
		s.times = append(s.times, at)
		if !f.usage {
			s.noPerChunk = true
		} else {
			// Tokens counted by usage on events without text (a token
			// that decoded to nothing yet) belong to this chunk.
			s.perChunk = append(s.perChunk, s.pending)
			s.pending = 0
		}
	}
}

// reserve sizes the stream's per-chunk storage for maxTokens content
// chunks (capped at maxReserve), so that appending them does not
// allocate. maxTokens <= 0 reserves nothing.
func (s *streamState) reserve(maxTokens int) {
	n := min(maxTokens, maxReserve)
	if n <= 0 {
		return
	}
	s.times = make([]time.Duration, 0, n)
	s.perChunk = make([]int, 0, n)
}

// maxReserve caps what reserve allocates up front: 16 bytes per chunk,
// 256 KiB at the cap.
const maxReserve = 16384

// fill copies the accumulated stream into r.
func (s *streamState) fill(r *result.Request) {
	r.TokenTimes = s.times
	if len(s.times) == 0 && s.usage && s.completion > 0 && s.finish != "" {
		// The server generated tokens but streamed no text: a server
		// that holds back a token ending inside a UTF-8 character drops
		// it at the end (Ollama). The event that closed the generation
		// is then the one that carries it, and its arrival is the token's.
		r.TokenTimes = []time.Duration{s.finishAt}
	}
	r.UsageReported = s.usage
	r.FinishReason = s.finish
	if s.usage {
		r.PromptTokens = s.prompt
		r.OutputTokens = s.completion
	} else {
		r.OutputTokens = len(s.times)
	}
	if !s.noPerChunk && len(s.times) > 0 && len(s.perChunk) == len(s.times) {
		// Tokens counted after the last content chunk (e.g. a stop token
		// that produced no text) go to it, so the sum matches usage.
		s.perChunk[len(s.perChunk)-1] += s.pending
		r.TokensPerChunk = s.perChunk
	}
}

// serverError returns the message of an error carried in a stream event.
func (ev *chunkEvent) serverError() (string, bool) {
	if len(ev.Error) > 0 && !bytes.Equal(ev.Error, []byte("null")) {
		return errorMessage(ev.Error), true
	}
	if ev.Object == "error" {
		if ev.Message == "" {
			return "(no message)", true
		}
		return ev.Message, true
	}
	return "", false
}

// errorMessage extracts a readable message from an error body or value in
// any of the shapes servers use: OpenAI {"error":{"message":...}}, vLLM
// {"object":"error","message":...}, {"error":"text"}, FastAPI
// {"detail":...}, a bare JSON string, or plain text (an excerpt).
func errorMessage(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	var s string
	switch {
	case json.Unmarshal(b, &s) == nil && s != "":
		return s
	case json.Unmarshal(b, &v) != nil:
		// not a JSON object: plain text
	case v.Message != "":
		return v.Message
	case len(v.Error) > 0 && !bytes.Equal(v.Error, []byte("null")):
		return errorMessage(v.Error)
	case len(v.Detail) > 0:
		return errorMessage(v.Detail)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty body)"
	}
	return excerpt(b)
}

// excerptLen is the most bytes of a body quoted in an error message.
const excerptLen = 200

// excerpt is a one-line, valid UTF-8 quote of the start of b.
func excerpt(b []byte) string {
	b = bytes.TrimSpace(b)
	cut := len(b) > excerptLen
	if cut {
		b = b[:excerptLen]
	}
	s := strings.ToValidUTF8(string(b), "?") // a rune split by the cut becomes "?"
	s = strings.Join(strings.Fields(s), " ")
	if cut {
		s += "..."
	}
	return s
}

// readExcerpt reads at most limit bytes of body and closes it.
func readExcerpt(body io.ReadCloser, limit int64) []byte {
	if body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(body, limit))
	_ = body.Close()
	return b
}
