package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// errIdleTimeout is the cause of a request context ended by
// Config.RequestTimeout (nothing arrived for that long), and
// errRequestDeadline of one ended by Config.RequestDeadline; they tell
// the client's own limits apart from the caller's deadline or
// cancellation.
var (
	errIdleTimeout     = errors.New("request timeout: no data")
	errRequestDeadline = errors.New("request deadline")
)

// drainGrace bounds how long Stream waits, after [DONE], for the end of the
// response body. Reading the body to its end lets the connection be reused
// (closing it early closes the connection, and the next request would pay
// for a new one inside its TTFC); a server that keeps the response open
// after [DONE] costs at most this much, and only its connection is lost.
const drainGrace = 50 * time.Millisecond

// errorBodyLimit bounds how much of an error body is read.
const errorBodyLimit = 64 << 10

// Call is one request to send.
type Call struct {
	// Seq numbers the request in its run folder; it is recorded and sent
	// in the X-Request-Id header.
	Seq int
	// Warmup is recorded as is.
	Warmup bool
	// Prompt is the user message (chat) or the prompt text (completions).
	Prompt string
	// TargetPromptTokens is recorded as is: the prompt length asked for,
	// in server tokens.
	TargetPromptTokens int
	// MaxTokens is sent as max_tokens (and min_tokens when
	// Config.NonStandard); 0 sends neither and lets the server decide.
	MaxTokens int
	// Body is the serialized request body, set by Client.Prepare before
	// the send instant; Stream sends it as is. When nil, Stream builds it
	// from Prompt and MaxTokens before stamping Sent.
	Body []byte
	// Intended is when the traffic pattern wanted the request sent, as an
	// offset from the run start; it is recorded as is.
	Intended time.Duration
	// OnAccepted, when non-nil, is called exactly once, from Stream's
	// goroutine: when the response headers arrive with a 2xx status, or as
	// soon as the request fails in any way before that.
	OnAccepted func()
	// OnEvent, when non-nil, is called from Stream's goroutine for every
	// SSE data event the server sends ([DONE] included, comments not),
	// right after the event is stamped and before it is decoded. arrival
	// is the stamp, an offset from the run start (monotonic clock); for a
	// content chunk it equals the chunk's entry in TokenTimes. data is the
	// event's data field (each data line followed by "\n"). data is valid
	// only during the call: the client reuses its memory for the next
	// event, so copy what you keep; it must not be modified. The hook runs
	// on the hot path: time spent in it delays the next event's stamp. A
	// nil OnEvent costs nothing. It is for tools that read fields the
	// client ignores, such as a test server's send time.
	OnEvent func(arrival time.Duration, data []byte)
}

// Stream sends one streamed request and returns its record. began is the
// run's start: every time in the record is an offset from it (monotonic
// clock). Stream never fails: every outcome, including HTTP errors,
// resets, timeouts and cancellation, is recorded in the returned Request
// (ErrClass, Err, HTTPStatus), with whatever token times arrived before
// the failure. It returns when the stream has ended.
func (c *Client) Stream(ctx context.Context, began time.Time, call Call) result.Request {
	r := result.Request{
		Seq:                call.Seq,
		Warmup:             call.Warmup,
		TargetPromptTokens: call.TargetPromptTokens,
		TargetOutputTokens: call.MaxTokens,
		Intended:           call.Intended,
	}
	parent := ctx
	ctx, stop, dog := c.bound(parent)
	defer stop()
	var firstByte atomic.Int64 // written by the transport's reader goroutine
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// The inactivity window starts again once the request is written
		// (connecting and writing are activity) and when the answer begins.
		WroteRequest: func(httptrace.WroteRequestInfo) { dog.touch() },
		GotFirstResponseByte: func() {
			firstByte.Store(int64(time.Since(began)))
			dog.touch()
		},
	})
	r.Sent = time.Since(began) // kept if the request is never sent
	res, err := c.send(ctx, call, began, &r)
	r.FirstByte = time.Duration(firstByte.Load())
	clock := arrivalClock{began: began}
	if err == nil {
		if kr, ok := res.Body.(kernelRecv); ok {
			// The answer's first byte and its headers arrived when the
			// kernel received them, not later when they were read; never
			// before the request was sent, nor the headers before it.
			clock.recv = kr
			if r.FirstByte > 0 {
				r.FirstByte = max(clock.at(kr.firstByteRecv(), r.FirstByte), r.Sent)
			}
			r.Headers = max(clock.at(kr.headerRecv(), r.Headers), r.FirstByte, r.Sent)
		}
	}
	// send returns when the headers arrived or the request failed before
	// them: either way a launcher waiting on this request can go on.
	if call.OnAccepted != nil {
		call.OnAccepted()
	}

	switch {
	case err == nil && res.StatusCode >= 300:
		r.HTTPStatus = res.StatusCode
		r.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
		body := readExcerpt(res.Body, errorBodyLimit)
		r.End = time.Since(began)
		msg := fmt.Sprintf("HTTP %d: %s", res.StatusCode, errorMessage(body))
		if loc := res.Header.Get("Location"); res.StatusCode < 400 && loc != "" {
			msg = fmt.Sprintf("HTTP %d, redirect to %s (not followed: use that URL as the base URL): %s", res.StatusCode, loc, errorMessage(body))
		}
		fail(&r, result.ErrHTTPStatus, msg)
	case err != nil:
		r.End = time.Since(began)
		class, msg := c.classify(parent, ctx, err, "before the response headers")
		if class == result.ErrStream {
			class = result.ErrConnect // no headers yet: the connection failed
		}
		fail(&r, class, msg)
	default:
		r.HTTPStatus = res.StatusCode
		res.Body = dog.watch(res.Body)
		c.read(parent, ctx, stop, res, clock, call.OnEvent, &r)
	}
	if c.log.Enabled(parent, slog.LevelDebug) {
		c.log.Debug("request done", "req_seq", r.Seq, "http_status", r.HTTPStatus,
			"chunks", len(r.TokenTimes), "err_class", r.ErrClass, "err", r.Err)
	}
	return r
}

// send builds the HTTP request of call (its body from Prepare, else
// built here), stamps r.Sent immediately before handing it to the
// transport and r.Headers when the response headers arrived. Nothing is
// encoded between the two stamps' reference points and the socket write
// but the HTTP/1.1 request line and headers.
func (c *Client) send(ctx context.Context, call Call, began time.Time, r *result.Request) (*http.Response, error) {
	call, err := c.Prepare(call)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, c.url, "text/event-stream", call.Body)
	if err != nil {
		return nil, err
	}
	req.Header["X-Request-Id"] = []string{c.requestID(call.Seq)}
	r.Sent = time.Since(began)
	// The transport itself, not an http.Client: a redirect is not
	// followed (its round trip would be measured as the server's time)
	// but recorded as the HTTP status it is.
	res, err := c.streams.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.Headers = time.Since(began)
	return res, nil
}

// requestID is the X-Request-Id of request seq: "<RunID>-<seq>", or just
// "<seq>" without a RunID.
func (c *Client) requestID(seq int) string {
	if c.cfg.RunID == "" {
		return strconv.Itoa(seq)
	}
	return c.cfg.RunID + "-" + strconv.Itoa(seq)
}

// kernelRecv is implemented by a response body that knows when the
// kernel received what was read of the answer (wall-clock Unix ns, 0 when
// unknown): the wire transport's on Linux (recvStamps).
type kernelRecv interface {
	firstByteRecv() int64 // the read that brought the answer's first byte
	headerRecv() int64    // the read that completed the headers
	lastRecv() int64      // the latest read of the body
}

// arrivalClock stamps arrivals as offsets from began on the monotonic
// clock. With kernel receive times (recv non-nil) a stamp is moved back
// from the moment the client read the bytes to the moment the kernel
// received them: how long they waited for this process to be scheduled
// and to read them is the client's delay, not the server's. The two
// times are compared on the wall clock, read once with the monotonic one,
// so only a wall clock step between them could mislead, and maxBackdate
// bounds that.
type arrivalClock struct {
	began time.Time
	recv  kernelRecv // nil: stamps are when the client reads
}

// maxBackdate bounds how long before the client's reading a kernel receive
// time is believed; a longer wait, or a receive time after the reading,
// means the wall clock was stepped in between, and the reading's own time
// is used.
const maxBackdate = 10 * time.Second

// now stamps an event completed by the latest read.
func (c arrivalClock) now() time.Duration {
	if c.recv == nil {
		return time.Since(c.began)
	}
	return c.at(c.recv.lastRecv(), -1)
}

// at returns the offset of kernel receive time k. When k is 0 or not
// believable it returns read, the client's own stamp, or when read is
// negative the present.
func (c arrivalClock) at(k int64, read time.Duration) time.Duration {
	now := time.Now()
	if read < 0 {
		read = now.Sub(c.began)
	}
	if k == 0 {
		return read
	}
	back := time.Duration(now.UnixNano() - k)
	if back < 0 || back > maxBackdate {
		return read
	}
	return min(now.Sub(c.began)-back, read)
}

// read consumes the event stream of a 2xx response into r.
//
// Each event's arrival is stamped by clock as soon as its data is complete
// (the blank line after it has been read), before its JSON is decoded, so
// decoding cost never lands in a token time; with the kernel's receive
// times the stamp is when the bytes that completed it reached the machine.
// Stamps never go back: an event is stamped no earlier than the headers
// and the event before it. onEvent, when non-nil, sees every event right
// after its stamp. The per-chunk storage is sized for
// r.TargetOutputTokens (Call.MaxTokens) content chunks up front.
func (c *Client) read(parent, ctx context.Context, cancel func(), res *http.Response, clock arrivalClock,
	onEvent func(time.Duration, []byte), r *result.Request) {
	began := clock.began
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "application/json" {
		body := readExcerpt(res.Body, errorBodyLimit)
		r.End = time.Since(began)
		fail(r, result.ErrStream, NotStreaming+" (Content-Type application/json): "+excerpt(body))
		return
	}
	defer res.Body.Close()
	var body io.Reader = res.Body
	var head *headBuffer
	if mt != "" && mt != "text/event-stream" {
		// Another content type (an HTML page from a proxy, plain text)
		// is read as events all the same, in case the server mislabels a
		// real stream; its start is kept to quote it if it is not one.
		head = &headBuffer{}
		body = io.TeeReader(res.Body, head)
	}
	sse := newSSEReader(body)
	var st streamState
	st.reserve(r.TargetOutputTokens)
	var failClass, failMsg string
	var readErr error
	done := false
	limit := eventLimit(r.TargetOutputTokens)
	floor := r.Headers // no event is stamped before it
	for events := 1; ; events++ {
		data, err := sse.next()
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		if limit > 0 && events > limit {
			// A server that never stops must not fill the memory and the
			// records: read no further.
			failClass, failMsg = result.ErrStream, fmt.Sprintf("stream sent more than %d events for max_tokens %d: stopped reading", limit, r.TargetOutputTokens)
			cancel()
			break
		}
		at := max(clock.now(), floor)
		floor = at
		if onEvent != nil {
			onEvent(at, data)
		}
		if isDone(data) {
			done = true
			break
		}
		if class, msg := st.add(data, at); class != "" {
			failClass, failMsg = class, msg
			break
		}
	}
	r.End = time.Since(began)
	st.fill(r)
	switch {
	case head != nil && sse.events == 0 && failClass == "" && readErr == nil:
		fail(r, result.ErrStream, fmt.Sprintf("%s (Content-Type %s, not text/event-stream): %s", NotStreaming, mt, excerpt(head.b)))
	case failClass != "":
		fail(r, failClass, failMsg)
	case done:
		t := time.AfterFunc(drainGrace, cancel)
		drain(res.Body, errorBodyLimit)
		t.Stop()
	case readErr != nil:
		class, msg := c.classify(parent, ctx, readErr, "mid-stream")
		fail(r, class, msg)
	case st.finish == "":
		fail(r, result.ErrStream, "stream ended early: body ended before any finish_reason or [DONE]")
	}
	if r.ErrClass == "" && len(r.TokenTimes) == 0 {
		fail(r, result.ErrNoContent, "stream ended without any generated text")
	}
}

// NotStreaming starts the Err of a request whose 2xx answer was not an
// event stream (a JSON completion, an HTML page): the server ignored
// "stream": true, or something other than the server answered.
const NotStreaming = "server did not stream"

// headBuffer keeps the first headLimit bytes written to it.
type headBuffer struct{ b []byte }

// headLimit is how much of a body that is not an event stream is kept to
// be quoted.
const headLimit = 512

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := headLimit - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// eventLimit is the most events a stream of maxTokens tokens may send
// before the client stops reading it: four per token (a content event,
// usage and role events, malformed extras) plus some slack; 0 (no limit)
// when maxTokens is unknown.
func eventLimit(maxTokens int) int {
	if maxTokens <= 0 {
		return 0
	}
	return 4*maxTokens + 64
}

// isDone reports whether an event's data is the [DONE] sentinel.
func isDone(data []byte) bool {
	return bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]"))
}

// classify maps an error seen while sending or reading (at stage) to an
// error class: the inactivity timeout, the request deadline, the caller's
// cancellation (or deadline), or a broken connection (ErrStream; the
// caller turns it into ErrConnect when no headers had arrived).
func (c *Client) classify(parent, ctx context.Context, err error, stage string) (class, msg string) {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errIdleTimeout):
		return result.ErrTimeout, fmt.Sprintf("timeout (no data for %v) %s", c.timeout, stage)
	case errors.Is(cause, errRequestDeadline):
		return result.ErrDeadline, fmt.Sprintf("deadline (%v after the send) passed %s", c.deadline, stage)
	case parent.Err() != nil:
		return result.ErrCanceled, fmt.Sprintf("canceled %s: %v", stage, context.Cause(parent))
	}
	return result.ErrStream, fmt.Sprintf("connection broke %s: %v", stage, err)
}

func fail(r *result.Request, class, msg string) {
	r.ErrClass, r.Err = class, msg
}
