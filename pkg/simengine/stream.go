package simengine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// completion is a validated completion request.
type completion struct {
	chat      bool
	stream    bool
	usage     bool     // stream_options.include_usage
	cont      bool     // stream_options.continuous_usage_stats
	prompt    int      // prompt tokens
	blocks    []uint64 // hashes of the prompt's full blocks (nil without a prefix cache)
	maxOut    int
	minTokens int
	ignoreEOS bool
}

// parseCompletion validates a chat or completions body and counts its
// prompt tokens.
func (s *Server) parseCompletion(w http.ResponseWriter, r *http.Request, chat bool) (completion, *apiError) {
	var body completionBody
	if e := decodeBody(w, r, &body); e != nil {
		return completion{}, e
	}
	if e := s.checkModel(body.Model); e != nil {
		return completion{}, e
	}
	c := completion{chat: chat, stream: body.Stream, minTokens: body.MinTokens, ignoreEOS: body.IgnoreEOS}
	if body.StreamOptions != nil {
		c.usage = body.StreamOptions.IncludeUsage
		c.cont = body.StreamOptions.ContinuousUsageStats
	}
	// One pass counts the prompt's tokens and, with a prefix cache, hashes
	// its blocks.
	h := newBlockHasher(s.blockSize())
	if chat {
		if len(body.Messages) == 0 {
			return c, badRequest("messages", "messages is required and must not be empty")
		}
		h.addChat(body.Messages, body.AddGenerationPrompt == nil || *body.AddGenerationPrompt)
	} else {
		if len(body.Prompt) == 0 || string(body.Prompt) == "null" {
			return c, badRequest("prompt", "prompt is required")
		}
		if err := promptTokens(body.Prompt, h); err != nil {
			return c, badRequest("prompt", "%v", err)
		}
		if h.tokens == 0 {
			return c, badRequest("prompt", "prompt is empty (0 tokens)")
		}
	}
	c.prompt, c.blocks = h.tokens, h.blocks
	if body.N != nil && *body.N != 1 {
		return c, badRequest("n", "n is %d; the simulated engine makes one choice per request", *body.N)
	}
	limit := s.opts.MaxModelLen
	param := "prompt"
	if chat {
		param = "messages"
	}
	if c.prompt > limit {
		return c, contextError(limit, param, fmt.Sprintf("However, your request has %d input tokens. Please reduce the length of the input.", c.prompt))
	}
	switch {
	case body.MaxCompletionTokens != nil:
		c.maxOut = *body.MaxCompletionTokens
	case body.MaxTokens != nil:
		c.maxOut = *body.MaxTokens
	default:
		c.maxOut = limit - c.prompt
	}
	if c.maxOut < 1 {
		return c, badRequest("max_tokens", "max_tokens must be at least 1, got %d", c.maxOut)
	}
	if c.prompt+c.maxOut > limit {
		return c, contextError(limit, param, fmt.Sprintf("However, you requested %d tokens (%d in the input, %d in the completion). Please reduce the length of the input or completion.",
			c.prompt+c.maxOut, c.prompt, c.maxOut))
	}
	if c.minTokens < 0 || c.minTokens > c.maxOut {
		return c, badRequest("min_tokens", "min_tokens %d must be between 0 and max_tokens %d", c.minTokens, c.maxOut)
	}
	if !s.opts.ZeroCost && c.prompt+c.maxOut > s.opts.KVCacheTokens {
		return c, badRequest("max_tokens", "the request needs %d tokens of KV cache (%d prompt + %d completion) but the engine has %d",
			c.prompt+c.maxOut, c.prompt, c.maxOut, s.opts.KVCacheTokens)
	}
	return c, nil
}

// blockSize is the prefix cache's block size, or 0 when the engine has no
// prefix cache (turned off, or zero-cost mode): prompts are then counted,
// not hashed.
func (s *Server) blockSize() int {
	if s.opts.NoPrefixCache || s.opts.ZeroCost {
		return 0
	}
	return s.opts.BlockSize
}

func contextError(limit int, param, detail string) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		message: fmt.Sprintf("This model's maximum context length is %d tokens. %s", limit, detail),
		typ:     "invalid_request_error",
		param:   param,
		code:    "context_length_exceeded",
	}
}

// handleCompletion serves POST /v1/chat/completions (chat) and
// /v1/completions.
func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request, chat bool) {
	c, e := s.parseCompletion(w, r, chat)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	seq := int(s.seq.Add(1) - 1)
	o := &s.opts
	if hit(o.Seed, decideFail, o.FailFraction, seq, 0) {
		writeAPIError(w, &apiError{
			status:  o.FailStatus,
			message: fmt.Sprintf("simulated failure of request %d (status %d)", seq, o.FailStatus),
			typ:     errorType(o.FailStatus),
		})
		return
	}
	stopAt := c.maxOut
	if !c.ignoreEOS {
		stopAt = stopLength(o.Seed, seq, c.minTokens, c.maxOut)
	}
	id := "cmpl-sim-" + strconv.Itoa(seq)
	if chat {
		id = "chatcmpl-sim-" + strconv.Itoa(seq)
	}
	if rid := r.Header.Get("X-Request-Id"); rid != "" {
		w.Header().Set("X-Request-Id", rid)
	}
	src := &source{stopAt: stopAt, maxOut: c.maxOut, tpc: o.TokensPerChunk}
	if o.ZeroCost {
		src.t0 = time.Now().Add(o.FixedTTFT)
		src.gap = o.FixedGap
		src.timer = time.NewTimer(time.Until(src.t0))
		defer src.timer.Stop()
		s.g.running.Add(1)
		defer s.g.running.Add(-1)
	} else {
		req := newRequest()
		req.seq, req.id, req.clientID = seq, id, r.Header.Get("X-Request-Id")
		req.prompt, req.maxOut, req.stopAt, req.blocks = c.prompt, c.maxOut, stopAt, c.blocks
		req.arrived = time.Now()
		s.g.waiting.Add(1)
		select {
		case s.eng.submit <- req:
		case <-r.Context().Done():
			s.g.waiting.Add(-1)
			return
		case <-s.closing:
			s.g.waiting.Add(-1)
			writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, message: "server is shutting down", typ: "server_error"})
			return
		}
		defer req.canceled.Store(true) // a no-op for the engine once the request has finished
		src.req = req
	}
	var err error
	if c.stream {
		err = s.writeStream(r.Context(), w, c, id, seq, src)
	} else {
		err = s.writeWhole(r.Context(), w, c, id, src)
	}
	if err != nil {
		s.opts.Logger.Debug("completion ended early", "id", id, "err", err)
	}
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// source tells a handler how many tokens its request has produced: the
// engine's count, or in zero-cost mode a count computed from the clock.
type source struct {
	stopAt int
	maxOut int
	tpc    int // tokens per event

	req *request // engine mode

	// Zero-cost mode: token i (0-based) is due at t0 + i·gap.
	t0    time.Time
	gap   time.Duration
	timer *time.Timer
}

// progress returns the tokens produced so far and, once all are, the finish
// reason.
func (src *source) progress() (int, string) {
	if src.req != nil {
		return src.req.progress()
	}
	now := time.Now()
	if now.Before(src.t0) {
		return 0, ""
	}
	n := src.stopAt
	if src.gap > 0 {
		n = min(n, 1+int(now.Sub(src.t0)/src.gap))
	}
	if n < src.stopAt {
		return n, ""
	}
	if src.stopAt == src.maxOut {
		return n, finishLength
	}
	return n, finishStop
}

// arm sets the zero-cost timer for the next event after sent tokens.
func (src *source) arm(sent int) {
	src.armAt(min(sent+src.tpc, src.stopAt) - 1) // the token that completes the next event
}

// armAt sets the zero-cost timer for when token i (0-based) is due.
func (src *source) armAt(i int) {
	if src.timer == nil {
		return
	}
	src.timer.Reset(time.Until(src.t0.Add(time.Duration(i) * src.gap)))
}

// wake returns the channels that signal new progress.
func (src *source) wake() (<-chan struct{}, <-chan time.Time) {
	if src.req != nil {
		return src.req.notify, nil
	}
	return nil, src.timer.C
}

var errClosing = errors.New("server is closing")

// writeStream sends the completion as server-sent events.
func (s *Server) writeStream(ctx context.Context, w http.ResponseWriter, c completion, id string, seq int, src *source) error {
	o := &s.opts
	st := &eventWriter{s: s, w: w, rc: http.NewResponseController(w), c: c, id: id, buf: make([]byte, 0, 512)}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := st.rc.Flush(); err != nil {
		return err
	}
	if o.RoleEvent && c.chat {
		if err := st.role(); err != nil {
			return err
		}
	}
	var keepAlive <-chan time.Time
	if o.KeepAlive > 0 {
		t := time.NewTicker(o.KeepAlive)
		defer t.Stop()
		keepAlive = t.C
	}
	stall := hit(o.Seed, decideStall, o.StallFraction, seq, 0)
	notify, tick := src.wake()
	for {
		produced, finish := src.progress()
		for {
			ready := produced - st.sent
			if ready <= 0 || (ready < src.tpc && finish == "") {
				break
			}
			if stall && st.sent >= o.StallAfterTokens {
				stall = false
				if err := sleepCtx(ctx, s.closing, o.StallDuration); err != nil {
					return err
				}
				produced, finish = src.progress() // tokens made during the stall go out now
				continue
			}
			if hit(o.Seed, decideMalformed, o.MalformedFraction, seq, st.events) {
				if err := st.malformed(); err != nil {
					return err
				}
			}
			n := min(src.tpc, ready)
			last := ""
			if st.sent+n == produced {
				last = finish
			}
			if err := st.content(n, last); err != nil {
				return err
			}
		}
		if finish != "" && st.sent >= produced {
			s.countZeroCost(produced, finish)
			if c.usage {
				if err := st.usage(); err != nil {
					return err
				}
			}
			return st.done()
		}
		if st.sent < src.stopAt {
			src.arm(st.sent)
		}
		select {
		case <-notify:
		case <-tick:
		case <-keepAlive:
			if err := st.write([]byte(": keep-alive\n\n")); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errClosing
		}
	}
}

// writeWhole waits for the whole completion and sends it as one JSON body.
func (s *Server) writeWhole(ctx context.Context, w http.ResponseWriter, c completion, id string, src *source) error {
	notify, tick := src.wake()
	produced, finish := src.progress()
	for finish == "" {
		src.armAt(src.stopAt - 1)
		select {
		case <-notify:
		case <-tick:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errClosing
		}
		produced, finish = src.progress()
	}
	s.countZeroCost(produced, finish)
	text := make([]byte, 0, 7*produced)
	for i := range produced {
		text = appendOutputToken(text, i)
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      any     `json:"message,omitempty"`
		Text         *string `json:"text,omitempty"`
		Logprobs     any     `json:"logprobs"`
		FinishReason string  `json:"finish_reason"`
	}
	ch := choice{FinishReason: finish}
	object := "text_completion"
	if c.chat {
		object = "chat.completion"
		ch.Message = struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}{"assistant", string(text)}
	} else {
		t := string(text)
		ch.Text = &t
	}
	writeJSON(w, http.StatusOK, struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   usage    `json:"usage"`
	}{id, object, s.created, s.opts.Model, []choice{ch}, newUsage(c.prompt, produced)})
	return nil
}

// countZeroCost keeps /metrics counters in zero-cost mode, where no engine
// counts tokens.
func (s *Server) countZeroCost(produced int, finish string) {
	if s.eng != nil {
		return
	}
	s.g.genToks.Add(int64(produced))
	s.g.countFinish(finish)
}

func sleepCtx(ctx context.Context, closing <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closing:
		return errClosing
	}
}

// eventWriter builds SSE events by appending to one reused buffer, so a
// stream allocates nothing per token.
type eventWriter struct {
	s        *Server
	w        http.ResponseWriter
	rc       *http.ResponseController
	c        completion
	id       string
	buf      []byte
	sent     int // tokens sent
	events   int // content events sent
	roleSent bool
}

func (st *eventWriter) write(b []byte) error {
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}

// begin appends `data: {"id":...,"object":...,"created":...,"model":...`.
func (st *eventWriter) begin(b []byte) []byte {
	b = append(b, `data: {"id":"`...)
	b = append(b, st.id...)
	if st.c.chat {
		b = append(b, `","object":"chat.completion.chunk","created":`...)
	} else {
		b = append(b, `","object":"text_completion","created":`...)
	}
	b = strconv.AppendInt(b, st.s.created, 10)
	b = append(b, `,"model":`...)
	return append(b, st.s.modelJSON...)
}

// end appends the optional continuous usage and send time, and closes the
// event.
func (st *eventWriter) end(b []byte, withUsage bool) []byte {
	if withUsage && st.c.cont {
		b = appendUsage(b, st.c.prompt, st.sent)
	}
	if st.s.opts.SentTimestamps {
		b = append(b, `,"sim_sent_unix_ns":`...)
		b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	}
	return append(b, "}\n\n"...)
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, '}')
}

// role sends the role-only first event, as vLLM does.
func (st *eventWriter) role() error {
	b := st.begin(st.buf[:0])
	b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]`...)
	b = st.end(b, true)
	st.buf = b
	st.roleSent = true
	return st.write(b)
}

// content sends the next n tokens in one event; finish is set on the last.
func (st *eventWriter) content(n int, finish string) error {
	b := st.begin(st.buf[:0])
	b = append(b, `,"choices":[{"index":0,`...)
	if st.c.chat {
		b = append(b, `"delta":{`...)
		if !st.roleSent {
			b = append(b, `"role":"assistant",`...)
			st.roleSent = true
		}
		b = append(b, `"content":"`...)
	} else {
		b = append(b, `"text":"`...)
	}
	for i := range n {
		b = appendOutputToken(b, st.sent+i)
	}
	b = append(b, '"')
	if st.c.chat {
		b = append(b, '}')
	}
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = append(b, finish...)
		b = append(b, '"')
	}
	b = append(b, "}]"...)
	st.sent += n
	st.events++
	b = st.end(b, true)
	st.buf = b
	return st.write(b)
}

// malformed sends an event whose data is cut short: invalid JSON.
func (st *eventWriter) malformed() error {
	b := st.begin(st.buf[:0])
	b = append(b, `,"choices":[{"index":0,"delta":{"content":" tok`...)
	b = append(b, "\n\n"...)
	st.buf = b
	return st.write(b)
}

// usage sends the final usage event with empty choices.
func (st *eventWriter) usage() error {
	b := st.begin(st.buf[:0])
	b = append(b, `,"choices":[]`...)
	b = appendUsage(b, st.c.prompt, st.sent)
	b = st.end(b, false)
	st.buf = b
	return st.write(b)
}

func (st *eventWriter) done() error {
	return st.write([]byte("data: [DONE]\n\n"))
}
