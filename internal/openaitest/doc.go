// Package openaitest is a small scripted OpenAI-compatible HTTP server for
// tests. It listens on 127.0.0.1 (httptest) and serves:
//
//   - POST /v1/chat/completions and POST /v1/completions, streamed (SSE) when
//     the request body says "stream": true, else one JSON completion;
//   - GET /v1/models, listing Server.Model;
//   - POST /tokenize, vLLM-style, with the deterministic tokenizer below.
//
// Each completion request is answered by a Script: when headers go out, when
// the first content chunk is written (TTFT), the gap between chunks, how many
// tokens each chunk carries, the usage reporting, the SSE dialect (CRLF,
// keep-alive comments, a role-only first event, reasoning_content, "error":
// null, no [DONE]) and at most one Fault (connection reset, clean cut, stall,
// malformed JSON event, error event). A Script with Status >= 400 answers
// with that status and an error body instead. Every event is flushed as soon
// as it is written, and chunk times follow an absolute schedule from the
// request's arrival, so a slow handler never stretches the gaps.
//
// Tokenizer: a token is a whitespace-separated word of the prompt (or of the
// concatenated message contents on the chat endpoint); the chat template adds
// ChatTemplateTokens more. Generated tokens are the words "tok0 ", "tok1 ", ...
//
// Every request is recorded (Requests) with its headers and body, so a test
// can check exactly what a client sent.
package openaitest
