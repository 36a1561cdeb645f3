package simengine

import (
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Finish reasons, as in the OpenAI API, plus abort for a request whose client
// went away.
const (
	finishLength = "length"
	finishStop   = "stop"
	finishAbort  = "abort"
)

// request is one completion inside the engine. The fields above mu are set
// before the request is submitted and never change; the engine goroutine owns
// prefilled, generated and reserved; mu guards what the HTTP handler reads.
type request struct {
	seq      int
	id       string    // response id, e.g. chatcmpl-sim-7
	clientID string    // the client's X-Request-Id, if any
	prompt   int       // prompt tokens
	maxOut   int       // maximum output tokens
	stopAt   int       // output tokens after which it stops (maxOut with ignore_eos)
	arrived  time.Time // when the handler submitted it
	blocks   []uint64  // hashes of the prompt's full blocks (nil without a prefix cache)

	canceled atomic.Bool // set by the handler when the client goes away

	// Engine goroutine only.
	prefilled int // prompt tokens in the KV cache, cached ones included
	cached    int // prompt tokens found in the prefix cache at admission
	inserted  int // prompt blocks put in the prefix cache so far
	generated int // output tokens produced
	admitted  time.Time
	firstTok  time.Time

	mu       sync.Mutex
	produced int    // output tokens the handler may send
	finish   string // finish reason once done, else ""
	notify   chan struct{}
}

func newRequest() *request {
	return &request{notify: make(chan struct{}, 1)}
}

// finishReason is why the request ended, or "" while it runs. Engine
// goroutine only.
func (r *request) finishReason() string {
	switch {
	case r.generated < r.stopAt:
		return ""
	case r.generated >= r.maxOut:
		return finishLength
	default:
		return finishStop
	}
}

// progress returns the tokens produced so far and, once the request has
// ended, its finish reason.
func (r *request) progress() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.produced, r.finish
}

// publish makes progress visible to the handler and wakes it.
func (r *request) publish(produced int, finish string) {
	r.mu.Lock()
	r.produced, r.finish = produced, finish
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default: // already signalled; the handler will read the latest state
	}
}

// gauges are the engine's live counters, read by /metrics.
type gauges struct {
	running    atomic.Int64
	waiting    atomic.Int64
	kvUsed     atomic.Int64 // tokens in the KV cache
	promptToks atomic.Int64 // prompt tokens of the admitted requests, cached or computed
	genToks    atomic.Int64 // output tokens produced
	// prefixQueries and prefixHits count the prompt tokens looked up in
	// the prefix cache and those found, as vLLM's counters do.
	prefixQueries atomic.Int64
	prefixHits    atomic.Int64
	finished      [3]atomic.Int64
}

func (g *gauges) countFinish(reason string) {
	switch reason {
	case finishLength:
		g.finished[0].Add(1)
	case finishStop:
		g.finished[1].Add(1)
	case finishAbort:
		g.finished[2].Add(1)
	}
}

// Iteration is one engine iteration as it was run. Times are offsets from the
// server's start (Server.Began), on the monotonic clock.
type Iteration struct {
	// Index counts iterations from 0.
	Index int `json:"iter"`
	// Start is when the iteration began on the engine's absolute schedule.
	Start time.Duration `json:"start_ns"`
	// End is Start plus the iteration's duration: when its tokens were
	// released to the clients.
	End time.Duration `json:"end_ns"`
	// Late is how long after End the engine goroutine actually woke up.
	Late time.Duration `json:"late_ns"`
	// PrefillTokens is the total prefill tokens of the iteration.
	PrefillTokens int `json:"prefill_tokens"`
	// DecodeBatch is the number of requests that decoded one token.
	DecodeBatch int `json:"decode_batch"`
	// DecodeContextTokens is the decoding requests' cached tokens, summed.
	DecodeContextTokens int `json:"decode_context_tokens"`
	// Running and Waiting count the admitted and the queued requests when
	// the iteration started (after admissions).
	Running int `json:"running"`
	Waiting int `json:"waiting"`
	// KVUsedTokens is the KV cache in use at the end of the iteration.
	KVUsedTokens int `json:"kv_used_tokens"`
	// Work lists what each request did, in scheduling order.
	Work []Work `json:"work"`
}

// Duration is the iteration's length, End - Start.
func (it Iteration) Duration() time.Duration { return it.End - it.Start }

// Shape is the cost-model input the iteration was timed with.
func (it Iteration) Shape() Shape {
	s := Shape{DecodeBatch: it.DecodeBatch, DecodeContextTokens: it.DecodeContextTokens}
	for _, w := range it.Work {
		if w.PrefillTokens > 0 {
			s.Prefill = append(s.Prefill, Chunk{Tokens: w.PrefillTokens, Past: w.PrefillPast})
		}
	}
	return s
}

// Work is one request's part of an iteration.
type Work struct {
	// Seq numbers the server's completion requests from 0 in arrival order.
	Seq int `json:"seq"`
	// ID is the response id ("chatcmpl-sim-7" or "cmpl-sim-7").
	ID string `json:"id"`
	// ClientID is the request's X-Request-Id header, if any.
	ClientID string `json:"client_id,omitempty"`
	// PrefillTokens and PrefillPast describe its prefill chunk, if any.
	PrefillTokens int `json:"prefill_tokens,omitempty"`
	PrefillPast   int `json:"prefill_past,omitempty"`
	// Decode is true when it decoded one token, with ContextTokens cached.
	Decode        bool `json:"decode,omitempty"`
	ContextTokens int  `json:"context_tokens,omitempty"`
	// Tokens is the number of output tokens it produced (0 or 1): 1 for a
	// decode and for the chunk that completes its prefill.
	Tokens int `json:"tokens"`
	// Finish is its finish reason if it ended in this iteration.
	Finish string `json:"finish,omitempty"`
}

// RequestRecord is what the engine did with one request. Times are offsets
// from the server's start; zero when the event did not happen.
// CachedTokens of the PromptTokens were found in the prefix cache at
// admission and never computed: its first prefill chunk starts there (its
// Work's PrefillPast).
type RequestRecord struct {
	Seq          int           `json:"seq"`
	ID           string        `json:"id"`
	ClientID     string        `json:"client_id,omitempty"`
	PromptTokens int           `json:"prompt_tokens"`
	CachedTokens int           `json:"cached_tokens"`
	MaxTokens    int           `json:"max_tokens"`
	OutputTokens int           `json:"output_tokens"`
	FinishReason string        `json:"finish_reason"`
	Arrived      time.Duration `json:"arrived_ns"`
	Admitted     time.Duration `json:"admitted_ns"`
	FirstToken   time.Duration `json:"first_token_ns"`
	Finished     time.Duration `json:"finished_ns"`
}

// engine is the continuous-batching scheduler. One goroutine (run) owns its
// queues; handlers talk to it through submit and the request's fields.
type engine struct {
	profile    Profile
	chunkSize  int
	maxRunning int
	kvCapacity int
	jitter     float64
	rng        *rand.Rand
	began      time.Time
	g          *gauges
	logw       io.Writer
	record     bool
	logger     *slog.Logger
	blockSize  int
	cache      *prefixCache // nil: no prefix cache

	submit chan *request
	quit   chan struct{}
	done   chan struct{}

	// Engine goroutine only.
	pending    []*request // received, but arrived after the next iteration's start
	waiting    []*request // FCFS queue, not admitted
	running    []*request // admitted, in admission order
	kvReserved int        // prompt + max output of the running requests
	kvUsed     int        // tokens in the KV cache
	iter       int

	mu         sync.Mutex // guards the records
	iterations []Iteration
	requests   []RequestRecord
}

func newEngine(o Options, began time.Time, g *gauges) *engine {
	var cache *prefixCache
	if !o.NoPrefixCache {
		cache = newPrefixCache(o.PrefixCacheBlocks)
	}
	return &engine{
		blockSize:  o.BlockSize,
		cache:      cache,
		profile:    o.Profile,
		chunkSize:  o.ChunkSize,
		maxRunning: o.MaxRunning,
		kvCapacity: o.KVCacheTokens,
		jitter:     o.Jitter,
		rng:        rand.New(rand.NewPCG(o.Seed, 0x5EED0F51)),
		began:      began,
		g:          g,
		logw:       o.IterationLog,
		record:     o.Record,
		logger:     o.Logger,
		submit:     make(chan *request, 1024),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// planned is one request's work in the iteration being run.
type planned struct {
	r       *request
	prefill int // prompt tokens prefilled now
	decode  bool
	context int // cached tokens, for a decode
}

// run is the engine loop. Iterations follow an absolute schedule: iteration
// k+1 starts at the planned end of iteration k, however late the goroutine
// woke, so timer jitter never accumulates. An idle engine starts its next
// iteration when a request arrives.
func (e *engine) run() {
	defer close(e.done)
	var next time.Time // start of the next iteration
	var plan []planned
	for {
		if len(e.pending)+len(e.waiting)+len(e.running) == 0 {
			select {
			case r := <-e.submit:
				e.pending = append(e.pending, r)
			case <-e.quit:
				return
			}
			next = time.Now()
		}
		e.receive()
		e.promote(next)
		plan = e.plan(plan[:0], next)
		if len(plan) == 0 {
			// Only requests that arrived after next are left: start as
			// soon as they are in.
			next = time.Now()
			continue
		}
		shape := shapeOf(plan)
		d := e.profile.Duration(shape)
		if e.jitter > 0 {
			d = time.Duration(float64(d) * (1 + e.jitter*(2*e.rng.Float64()-1)))
		}
		end := next.Add(d)
		if !e.sleepUntil(end) {
			return
		}
		e.complete(plan, shape, next, end)
		next = end
		if late := time.Since(end); late > maxLate {
			// The process was not running (suspended, or starved by the
			// machine). A real engine's host-driven scheduler would have
			// stalled too, so start again from now rather than release a
			// burst of catch-up iterations.
			e.logger.Warn("simulated engine fell behind its schedule; restarting it from now",
				"late", late, "iteration", e.iter-1)
			next = time.Now()
		}
	}
}

// maxLate is how far behind its schedule the engine may fall before it gives
// the schedule up. Normal wake-up lateness is about 0.1 ms.
const maxLate = 100 * time.Millisecond

// receive moves every submitted request into pending without blocking.
func (e *engine) receive() {
	for {
		select {
		case r := <-e.submit:
			e.pending = append(e.pending, r)
		default:
			return
		}
	}
}

// promote queues the pending requests that arrived by start. A request that
// arrived after the iteration's start waits for the next one, as it would in
// a real engine.
func (e *engine) promote(start time.Time) {
	keep := e.pending[:0]
	for _, r := range e.pending {
		if r.arrived.After(start) {
			keep = append(keep, r)
		} else {
			e.waiting = append(e.waiting, r)
		}
	}
	clear(e.pending[len(keep):])
	e.pending = keep
}

// plan schedules one iteration starting at start into dst: one decode token
// for every running request past its prefill, then prefill chunks for the
// running requests still prefilling, then new admissions from the waiting
// queue in arrival order, until the token budget is spent. Admission stops
// at the first waiting request that does not fit (MaxRunning or KV cache),
// so no later request overtakes it.
func (e *engine) plan(dst []planned, start time.Time) []planned {
	e.dropCanceled(start)
	budget := e.chunkSize
	for _, r := range e.running {
		if r.prefilled == r.prompt && budget > 0 {
			dst = append(dst, planned{r: r, decode: true, context: r.prompt + r.generated - 1})
			budget--
		}
	}
	for _, r := range e.running {
		if r.prefilled < r.prompt && budget > 0 {
			n := min(budget, r.prompt-r.prefilled)
			dst = append(dst, planned{r: r, prefill: n})
			budget -= n
		}
	}
	admitted := 0
	for _, r := range e.waiting {
		need := r.prompt + r.maxOut
		if budget == 0 || len(e.running) >= e.maxRunning || e.kvReserved+need > e.kvCapacity {
			break
		}
		admitted++
		e.kvReserved += need
		r.admitted = start
		e.running = append(e.running, r)
		e.lookUp(r)
		n := min(budget, r.prompt-r.prefilled)
		dst = append(dst, planned{r: r, prefill: n})
		budget -= n
	}
	if admitted > 0 {
		clear(e.waiting[:admitted])
		e.waiting = e.waiting[admitted:]
		e.g.waiting.Add(int64(-admitted))
		e.g.running.Store(int64(len(e.running)))
	}
	return dst
}

// lookUp finds the longest run of r's leading prompt blocks in the prefix
// cache: those tokens are in the KV cache at once, and its prefill starts
// after them. As in vLLM, the last prompt token is always computed (its
// logits give the first output token), so a prompt found whole still
// prefills its last block.
func (e *engine) lookUp(r *request) {
	if e.cache == nil {
		return
	}
	blocks := e.cache.match(r.blocks, (r.prompt-1)/e.blockSize)
	r.cached = blocks * e.blockSize
	r.prefilled, r.inserted = r.cached, blocks
	e.kvUsed += r.cached
	e.g.prefixQueries.Add(int64(r.prompt))
	e.g.prefixHits.Add(int64(r.cached))
	e.g.promptToks.Add(int64(r.cached))
}

// cacheComputed puts r's prompt blocks that are now fully computed in the
// prefix cache, so that a later prompt sharing them finds them.
func (e *engine) cacheComputed(r *request) {
	if e.cache == nil {
		return
	}
	for full := min(r.prefilled/e.blockSize, len(r.blocks)); r.inserted < full; r.inserted++ {
		e.cache.insert(r.blocks[r.inserted])
	}
}

// dropCanceled removes the requests whose clients went away.
func (e *engine) dropCanceled(now time.Time) {
	e.waiting = slices.DeleteFunc(e.waiting, func(r *request) bool {
		if !r.canceled.Load() {
			return false
		}
		e.g.waiting.Add(-1)
		e.retire(r, finishAbort, now)
		return true
	})
	n := len(e.running)
	e.running = slices.DeleteFunc(e.running, func(r *request) bool {
		if !r.canceled.Load() {
			return false
		}
		e.kvReserved -= r.prompt + r.maxOut
		e.kvUsed -= r.prefilled + r.generated
		e.retire(r, finishAbort, now)
		return true
	})
	if len(e.running) != n {
		e.g.running.Store(int64(len(e.running)))
		e.g.kvUsed.Store(int64(e.kvUsed))
	}
}

func shapeOf(plan []planned) Shape {
	var s Shape
	for _, p := range plan {
		if p.decode {
			s.DecodeBatch++
			s.DecodeContextTokens += p.context
		} else {
			s.Prefill = append(s.Prefill, Chunk{Tokens: p.prefill, Past: p.r.prefilled})
		}
	}
	return s
}

// maxSleep bounds one sleep so Close is honoured within this delay even
// during a long iteration.
const maxSleep = 20 * time.Millisecond

// sleepUntil waits until deadline; it returns false if the engine was told
// to quit first.
func (e *engine) sleepUntil(deadline time.Time) bool {
	for {
		select {
		case <-e.quit:
			return false
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		preciseSleep(min(left, maxSleep))
	}
}

// complete applies an iteration that ran from start to end: it advances the
// requests, releases their tokens to the handlers, retires the finished ones
// and records the iteration.
func (e *engine) complete(plan []planned, shape Shape, start, end time.Time) {
	now := time.Now()
	keep := e.record || e.logw != nil
	var it Iteration
	if keep {
		it = Iteration{
			Index:               e.iter,
			Start:               start.Sub(e.began),
			End:                 end.Sub(e.began),
			Late:                now.Sub(end),
			PrefillTokens:       shape.PrefillTokens(),
			DecodeBatch:         shape.DecodeBatch,
			DecodeContextTokens: shape.DecodeContextTokens,
			Running:             len(e.running),
			Waiting:             len(e.waiting),
			Work:                make([]Work, 0, len(plan)),
		}
	}
	e.iter++
	var prefilled, generated int
	finished := false
	for _, p := range plan {
		r := p.r
		w := Work{Seq: r.seq, ID: r.id, ClientID: r.clientID, PrefillTokens: p.prefill, Decode: p.decode}
		if p.decode {
			w.ContextTokens = p.context
		} else {
			w.PrefillPast = r.prefilled
		}
		tokens := 0
		if p.prefill > 0 {
			r.prefilled += p.prefill
			prefilled += p.prefill
			e.cacheComputed(r)
			if r.prefilled == r.prompt {
				tokens = 1
				r.firstTok = end
			}
		}
		if p.decode {
			tokens = 1
		}
		r.generated += tokens
		generated += tokens
		finish := r.finishReason()
		if finish != "" {
			finished = true
		}
		w.Tokens, w.Finish = tokens, finish
		if finish != "" {
			e.retireAt(r, finish, end)
		}
		if keep {
			it.Work = append(it.Work, w)
		}
	}
	e.kvUsed += prefilled + generated
	if finished {
		e.running = slices.DeleteFunc(e.running, func(r *request) bool {
			if r.generated < r.stopAt {
				return false
			}
			e.kvReserved -= r.prompt + r.maxOut
			e.kvUsed -= r.prefilled + r.generated
			return true
		})
		e.g.running.Store(int64(len(e.running)))
	}
	e.g.kvUsed.Store(int64(e.kvUsed))
	e.g.promptToks.Add(int64(prefilled))
	e.g.genToks.Add(int64(generated))
	if e.record {
		it.KVUsedTokens = e.kvUsed
		e.mu.Lock()
		e.iterations = append(e.iterations, it)
		e.mu.Unlock()
	}
	// Release the tokens only now, so a client that sees its last token also
	// sees the engine's counters and records updated.
	for _, p := range plan {
		if r := p.r; r.generated > 0 {
			r.publish(r.generated, r.finishReason())
		}
	}
	if e.logw != nil {
		it.KVUsedTokens = e.kvUsed
		if line, err := json.Marshal(it); err == nil {
			if _, err := e.logw.Write(append(line, '\n')); err != nil {
				e.logger.Debug("iteration log write failed", "err", err)
			}
		}
	}
}

// retire ends a request that will not run again (the caller removes it from
// its queue), telling its handler and recording it.
func (e *engine) retire(r *request, finish string, now time.Time) {
	r.publish(r.generated, finish)
	e.retireAt(r, finish, now)
}

// retireAt counts and records a finished request.
func (e *engine) retireAt(r *request, finish string, at time.Time) {
	e.g.countFinish(finish)
	if !e.record {
		return
	}
	rec := RequestRecord{
		Seq:          r.seq,
		ID:           r.id,
		ClientID:     r.clientID,
		PromptTokens: r.prompt,
		CachedTokens: r.cached,
		MaxTokens:    r.maxOut,
		OutputTokens: r.generated,
		FinishReason: finish,
		Arrived:      r.arrived.Sub(e.began),
		Finished:     at.Sub(e.began),
	}
	if !r.admitted.IsZero() {
		rec.Admitted = r.admitted.Sub(e.began)
	}
	if !r.firstTok.IsZero() {
		rec.FirstToken = r.firstTok.Sub(e.began)
	}
	e.mu.Lock()
	e.requests = append(e.requests, rec)
	e.mu.Unlock()
}

// stop ends the engine loop and waits for it.
func (e *engine) stop() {
	close(e.quit)
	<-e.done
}

func (e *engine) records() ([]Iteration, []RequestRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.iterations), slices.Clone(e.requests)
}
