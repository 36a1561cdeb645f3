package result

import (
	"time"
)

// Error classes recorded in Request.ErrClass. A request with an empty
// ErrClass succeeded.
const (
	// ErrHTTPStatus: the server answered with a status code >= 300 (a
	// redirect cannot carry a stream either).
	ErrHTTPStatus = "http_status"
	// ErrConnect: no connection could be made, or it was reset before the
	// response headers arrived.
	ErrConnect = "connect"
	// ErrTimeout: the request received nothing for --request-timeout (an
	// inactivity timeout), before the headers or mid-stream; or, in
	// stress, it had not completed, and was not receiving tokens, when the
	// level's grace period ended.
	ErrTimeout = "timeout"
	// ErrDeadline: --request-deadline (a total deadline from the send,
	// off by default) passed before the stream ended.
	ErrDeadline = "deadline"
	// ErrStream: the stream broke after it began: a reset, a cut before the
	// end, or an error event sent by the server.
	ErrStream = "stream"
	// ErrDecode: an SSE event whose data was not valid JSON of the expected shape.
	ErrDecode = "decode"
	// ErrNoContent: the stream ended normally but carried no generated text.
	ErrNoContent = "no_content"
	// ErrCanceled: the run stopped (point ended, interrupt, benchmark
	// timeout) while the request was in flight.
	ErrCanceled = "canceled"
)

// Request is one streamed completion: what was asked, when each event
// happened, and what came back. Times are offsets from the run start
// (monotonic clock); a zero time means the event did not happen, except
// Intended and Sent, which are always set for a request that was attempted.
type Request struct {
	// Seq numbers requests in send order within one run folder, from 0;
	// in a sharded run, within one shard (Shard).
	Seq int
	// Shard is the index of the shard process that sent the request, and
	// Shards the number of shards of the run; Shards is 0 when the run
	// was not sharded. A merged run keeps each record's Shard and Seq:
	// the pair is unique in it.
	Shard, Shards int
	// Warmup requests are kept and flagged, never dropped, and excluded
	// from the statistics.
	Warmup bool

	// TargetPromptTokens is the prompt length the benchmark asked for, in
	// server tokens (chat template included on the chat endpoint).
	TargetPromptTokens int
	// PromptTokens is usage.prompt_tokens as the server reported it; valid
	// only when UsageReported is true.
	PromptTokens int
	// TargetOutputTokens is the max_tokens value sent.
	TargetOutputTokens int
	// OutputTokens is usage.completion_tokens when UsageReported, else the
	// number of tokens counted on the client (the sum of TokensPerChunk, or
	// the number of content chunks when the server does not report per-chunk usage).
	OutputTokens int
	// UsageReported says whether the server sent a usage object.
	UsageReported bool

	// Intended is when the traffic pattern wanted the request sent: the
	// scheduled arrival in open loop, the moment the client became free in
	// closed loop, the release of the launch ticket in sequential launch.
	Intended time.Duration
	// Sent is taken immediately before the HTTP request is issued.
	Sent time.Duration
	// Headers is when the response headers arrived.
	Headers time.Duration
	// FirstByte is when the first byte of the response arrived (httptrace).
	FirstByte time.Duration
	// TokenTimes holds the arrival of every content chunk, stamped when the
	// SSE event was read and before it was decoded (or, where the client
	// reads them, the kernel's receive time of the bytes that completed
	// it; see pkg/client). Role-only and empty
	// deltas are not content chunks; reasoning text is.
	TokenTimes []time.Duration
	// TokensPerChunk holds the number of generated tokens each content chunk
	// carried, parallel to TokenTimes, when the server reports it (per-chunk
	// usage); nil when unknown.
	TokensPerChunk []int
	// End is when the stream ended ([DONE], end of body, or failure).
	End time.Duration

	// FinishReason is the last finish_reason the server sent ("length", "stop").
	FinishReason string
	// HTTPStatus is the response status code, 0 when no response arrived.
	HTTPStatus int
	// RetryAfter is how long the server asked the client to wait before
	// its next request (a Retry-After header on a failed response); 0
	// when it did not say.
	RetryAfter time.Duration
	// Err describes the failure; empty on success.
	Err string
	// ErrClass is one of the Err* constants; empty on success.
	ErrClass string
}

// Shift moves every time of r that happened by d: to another clock's
// offsets (a shard's records onto its merged run's clock).
func (r *Request) Shift(d time.Duration) {
	r.Intended += d
	r.Sent += d
	for _, t := range []*time.Duration{&r.Headers, &r.FirstByte, &r.End} {
		if *t != 0 {
			*t += d
		}
	}
	for i := range r.TokenTimes {
		r.TokenTimes[i] += d
	}
}

// OK reports whether the request succeeded.
func (r *Request) OK() bool { return r.ErrClass == "" }

// Chunks is the number of content chunks received.
func (r *Request) Chunks() int { return len(r.TokenTimes) }
