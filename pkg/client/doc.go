// Package client sends streamed completions to an OpenAI-compatible server
// and records each one as a result.Request: when it was sent, when each
// piece of generated text arrived, what the server reported, and how it
// failed if it did. It also has the few non-streaming calls a benchmark
// needs before it starts: Models, Tokenize and PromptTokens.
//
// # Setup
//
// Before it measures anything a benchmark finds out whether the server can
// be benchmarked at all, with one Client built before the model is known:
//
//   - ResolveModel picks or checks the model against GET /models, and
//     WithModel gives the Client for it (same connections);
//   - Preflight sends one short streamed request;
//   - Software names the server (Ollama, vLLM) when it says;
//   - TokenCounter measures prompt lengths (/tokenize, else usage probes);
//   - CheckPrompt checks that the longest prompt is accepted and counted as
//     expected.
//
// Transient answers (5xx, 429) are retried a few times. A server that cannot
// be benchmarked is a *SetupError whose Kind says why (unreachable, refused
// key, unknown model, missing endpoint, no streaming, ...), for the caller
// to turn into advice; this package neither prints nor names flags.
//
// # Timing points
//
// Every time is an offset from the run's start (the began argument of
// Stream), read from Go's monotonic clock:
//
//   - Sent: immediately before the request is handed to the HTTP
//     transport, after its body was serialized (by Prepare, which the
//     runner calls before the send instant, else by Stream itself), so
//     encoding is never counted as latency.
//   - FirstByte: when the first byte of the response arrived
//     (httptrace.GotFirstResponseByte).
//   - Headers: when the transport returned the response headers.
//   - TokenTimes: one entry per content chunk, stamped the moment the SSE
//     event is complete and before its JSON is decoded. A content
//     chunk carries generated text: chat delta.content, delta.reasoning_content
//     or delta.reasoning, or completions choices[].text. Role-only and empty
//     deltas, usage-only chunks and keep-alive comments are not content and
//     do not start TTFC.
//   - End: when the stream ended ([DONE], end of body, or failure).
//
// On Linux, against an http base URL, FirstByte, Headers and TokenTimes
// are the kernel's receive times of the bytes that completed them
// (SO_TIMESTAMPNS, read with each recvmsg; recvStamps), not the moments
// this process got to read them: a token that arrives while the client
// is busy with others, or waits for a CPU, is stamped when it arrived,
// and the client's own load does not enter the token times. The kernel
// reports, per read, the time of the last TCP segment it copied, so bytes
// that waited in the socket behind later ones take the later time: a
// stamp is never before the bytes arrived nor after the client read them.
// Elsewhere (https, other systems) the stamps are taken when the client
// reads. Sent is always this process's own clock, just before the write.
//
// # No SDK client on the wire
//
// The requests carry exactly these headers: Accept, Content-Type,
// Authorization (with a key), User-Agent and X-Request-Id. openai-go's
// client is not
// used: its request path marshals the params through its own reflection
// encoder and sjson (an order of magnitude more CPU per request than
// encoding/json on the small body types here, see BenchmarkPrepare), and
// that work landed on the core the stream reads need, in every burst of
// requests. Keeping the openai.Client also linked its thousand service
// methods into every binary. The body's fields are the OpenAI API's, held
// to openai-go's param types by TestBodyMatchesOpenAIParams.
//
// Nor are openai-go's types linked in for the cold paths (the model list,
// error bodies, the unstreamed usage probe): importing the package at all
// links it whole. A stripped program that decodes one openai.Model and
// one openai.ChatCompletionChunk is 20.1 MB, against 1.96 MB for the
// same program with encoding/json and its own two structs (go build
// -ldflags="-s -w" -trimpath, Go 1.26, openai-go v3.98.0): more than the
// 20 MB that each whole release binary is held to. openai-go stays the
// API's typed vocabulary in the tests, which hold our request bodies to
// its param types (TestBodyMatchesOpenAIParams) and what we read from a
// chunk to its ChatCompletionChunk and Completion types
// (TestChunkFactsMatchOpenAITypes).
//
// openai-go's typed stream is not used to read the answer either:
// Stream.Next decodes each chunk into the full ChatCompletionChunk type
// before it returns, so a timestamp taken after it includes ~30 µs of
// decoding (52 allocations) per chunk, and much more under load; and it
// aborts the whole stream on a chunk that carries "error": null, which
// some servers and proxies always send. Instead the response body is read
// by a small server-sent-events reader over a bufio.Reader (comments,
// other fields, CRLF and multi-line data handled; an event's data is copied
// into a buffer reused for the next event), each event is stamped as soon
// as it is complete, and only then decoded by a scanner that reads the few
// fields this package needs without allocating. An event the scanner is
// not sure about (an error, an unusual shape) is decoded with encoding/json
// instead, and FuzzChunkScanner checks that both agree. A stream's chunks
// repeat their first members (id, object, created, model) byte for byte,
// so each chunk that starts like the one before is read from where they
// end (chunkPrefix; FuzzChunkPrefix checks that this changes nothing):
// about 30 % fewer instructions per chunk. In steady state
// reading a content chunk allocates nothing, so a long run at tens of
// thousands of chunks per second does not make the garbage collector
// delay the stamps. See the package benchmarks for the per-chunk cost.
//
// # The transport
//
// Against an http base URL the Client speaks HTTP/1.1 itself (wireTransport):
// pooled keep-alive connections, the request written with one writev, and
// the answer read from one buffer per connection through a chunked-encoding
// decoder of its own into the event reader. net/http's Transport reads
// every chunk through five more layers and keeps two goroutines per
// connection: in tools/loadharness (1,000 streams of 50 chunks/s on one
// core) that cost 1.5 µs more CPU per chunk than reading the connection
// directly, and the client fell behind a server that writes its chunks
// faster than that. An https base URL goes through a net/http Transport
// (HTTP/1.1 as well), and so does every URL on systems where an idle
// connection cannot be checked without reading it (Windows): before a
// pooled connection is reused, the wire transport peeks at its socket, so
// that a connection the server closed while idle (uvicorn closes them after
// 5 s) is never sent a request. Neither follows a redirect: its extra round trip
// would be measured as the server's, so a 3xx is recorded as the HTTP
// status it is, with its Location in the message.
//
// # Outcomes
//
// Stream never returns an error: every outcome is data, recorded in the
// Request's ErrClass (one of result's Err* classes) and Err, with the
// token times that arrived before a failure kept.
//
//   - HTTP status >= 300 (429 included): ErrHTTPStatus, with HTTPStatus and
//     the server's message, from OpenAI's {"error":{"message"}} shape or
//     vLLM's {"object":"error","message"} shape.
//   - No connection, or it broke before the headers: ErrConnect.
//   - Nothing arrived for Config.RequestTimeout (an inactivity timeout),
//     before the headers or mid-stream: ErrTimeout, "timeout (no data for
//     1s) mid-stream". Keep-alive comments are data: a server that sends
//     them is waited for.
//   - Config.RequestDeadline (off by default) passed since the send:
//     ErrDeadline.
//   - The caller's context ended (cancel or its own deadline): ErrCanceled.
//   - The body broke (reset, cut) or ended before any finish_reason and
//     [DONE]: ErrStream. A body that ends after a finish_reason without
//     [DONE] is a success.
//   - An event with a non-null "error" (or "object":"error"): ErrStream
//     with the server's message.
//   - An event whose data is not JSON of the expected shape: ErrDecode.
//     Reading stops there: we cannot know what the bad event carried (text?
//     the finish?), so every later token time, gap and count of that
//     request would be silently off by one chunk. Recording the failure
//     keeps the request's numbers honest; the run goes on.
//   - A stream that ended normally with no generated text: ErrNoContent.
//
// # Tokens
//
// The request asks for usage (stream_options.include_usage). PromptTokens
// and OutputTokens come from the last usage object seen; without one,
// OutputTokens is the number of content chunks. When every content chunk
// carries cumulative usage (vLLM's continuous_usage_stats, asked for with
// Config.NonStandard), TokensPerChunk holds each chunk's share, so
// coalesced chunks are never mistaken for single tokens.
//
// # Environment
//
// Nothing is read from the environment: no OPENAI_* variable (the key is
// Config.APIKey, the URL Config.BaseURL) and no HTTP_PROXY.
package client
