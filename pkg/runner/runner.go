package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// Sender sends one streamed request and returns its record, failures
// included; *client.Client implements it.
type Sender interface {
	Stream(ctx context.Context, began time.Time, call client.Call) result.Request
}

var _ Sender = (*client.Client)(nil)

// Preparer is a Sender that can serialize a request before its send
// instant (client.Client.Prepare): Run prepares every call it builds, so
// that no encoding happens between a slot's release and the socket write.
type Preparer interface {
	Prepare(call client.Call) (client.Call, error)
}

var _ Preparer = (*client.Client)(nil)

// Prompter makes the prompt of one request; *sampler.Sampler implements it.
type Prompter interface {
	Prompt(length, point, seq int) (string, error)
}

// Sink receives a point's records: Record as each request ends (from any
// goroutine), Close once with every record in send order.
// *report.RecordFile implements it.
type Sink interface {
	Record(r result.Request)
	Close(all []result.Request) error
}

// ServerMetrics scrapes the server's own metrics on demand and summarizes
// what they said between two instants; *servermetrics.Scraper implements
// it. Run scrapes at each point's start and end, so every point, however
// short, has counters from before and after it.
type ServerMetrics interface {
	ScrapeNow(ctx context.Context)
	Summarize(from, to time.Time) servermetrics.Summary
}

var _ ServerMetrics = (*servermetrics.Scraper)(nil)

// Progress is a snapshot of a point in progress.
type Progress struct {
	// Point names the point ("il=512", "bs=4_il=128", "c=8").
	Point string
	// Elapsed is the time since the point began; Duration is a timed
	// point's length (0 for a point of a fixed number of requests).
	Elapsed, Duration time.Duration
	// Done counts the measured requests that ended (warm-ups excluded),
	// Failed those of them that failed, InFlight those still running;
	// Total is the number planned (0 for a timed point).
	Done, Failed, InFlight, Total int
}

// ProgressInterval is how often Run reports progress during a point.
const ProgressInterval = 200 * time.Millisecond

// CutError is the error text of a request still running, and still
// receiving tokens, at a point's cutoff. A cut request is not a failure,
// but it is left out of the latencies and counted next to them.
const CutError = "cut: still receiving tokens at the end of the grace period"

// ReceivingWindow is how recent a request's last content chunk must be,
// at the cutoff, for the request to count as still receiving tokens (and
// so be cut rather than failed); a shorter grace period shortens it.
const ReceivingWindow = 5 * time.Second

// Deps are what the benchmarks need besides their Config. Only Sender is
// required.
type Deps struct {
	Sender  Sender
	Prompts Prompter
	// Logger gets a line per failed request (warn) and per point (info);
	// nil discards.
	Logger *slog.Logger
	// Progress, when set, is called every ProgressInterval during a point
	// and once at its end, from one goroutine at a time.
	Progress func(Progress)
	// Records, when set, opens the sink of a record file named by its
	// path in the run folder ("requests.jsonl", "c=8/requests.jsonl").
	Records func(path string) (Sink, error)
	// Server, when set, is scraped at each point's start and end and asked
	// what the server reported during the point (Batch.Server).
	Server ServerMetrics
	// Meta is the results header as far as the caller knows it (settings,
	// tool version, start time); a benchmark fills in the rest.
	Meta result.Meta
	// SkipValidation leaves the validity checks out of the results.
	SkipValidation bool
	// Bounds are the client-fidelity limits of the checks; zero means
	// fidelity.DefaultBounds.
	Bounds fidelity.Bounds
}

// Log returns d.Logger, or a logger that discards.
func (d Deps) Log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// CheckBounds returns d.Bounds, or the default bounds when unset.
func (d Deps) CheckBounds() fidelity.Bounds {
	if d.Bounds == (fidelity.Bounds{}) {
		return fidelity.DefaultBounds()
	}
	return d.Bounds
}

// Plan is one point's load.
type Plan struct {
	// Point names the point in progress events and logs.
	Point string
	// Schedule releases the requests.
	Schedule traffic.Schedule
	// Call builds the request of a slot (prompt, lengths, sequence
	// number). An error ends the point: no further request is sent, and
	// Run returns it.
	Call func(slot traffic.Slot) (client.Call, error)
	// Ahead is how many requests, slots 0 to Ahead-1, are built (and
	// prepared, see Preparer) before the point's clock starts, so that a
	// first wave released at once (a closed loop's clients, a decode
	// batch) spends its send instants sending, not encoding. Call is then
	// given a Slot with only Index set, and must not fail for an index the
	// schedule may release (a slot never released is built for nothing).
	// Later slots are built as they are released, before their Sent stamp
	// (or earlier, with Lookahead).
	Ahead int
	// Lookahead, when positive, keeps up to this many requests built and
	// prepared beyond the last slot released, in a goroutine of their own,
	// so that an open loop's arrivals spend their send instants sending.
	// Call is then given a Slot with only Index set, for indexes the
	// schedule may never release: it must accept any index.
	Lookahead int
	// Total is the number of measured requests planned, for progress (0
	// for a timed point); Duration is a timed point's length.
	Total    int
	Duration time.Duration
	// Timeout, when positive, bounds the whole point (--benchmark-timeout):
	// when it passes, requests in flight are cancelled and EndReason is
	// result.EndTimeout.
	Timeout time.Duration
	// Cutoff, when positive, is the offset from the point's start at
	// which requests still in flight are cancelled. Those still receiving
	// tokens (a content chunk within Receiving of the cutoff) are recorded
	// as canceled with CutError; the others did not complete and are
	// failed requests of class timeout.
	Cutoff time.Duration
	// Receiving is how recent the last content chunk of a request in
	// flight at Cutoff must be for it to be cut rather than failed; zero
	// means ReceivingWindow, capped at the grace period (Cutoff minus
	// Duration) when the point is timed.
	Receiving time.Duration
	// Records is the record file of the point ("" for none).
	Records string
	// StartAt, when set, is the wall-clock instant at which the point's
	// clock starts (a sharded run's planned level start): Run builds the
	// Ahead requests, then waits until StartAt, so that the first wave
	// leaves on time. An instant already past starts the point at once.
	StartAt time.Time
	// Health, when set, makes senders back off from a failing server
	// (and honour Retry-After) and ends the point early, with
	// EndServerFailing, when the server keeps failing.
	Health *Health
	// Unsent, when set, makes the record of every request in [0, Total)
	// that was never sent (the point ended first), so that nothing
	// planned is silently missing. It needs Call to number requests by
	// slot index.
	Unsent func(seq int) result.Request
}

// Batch is what one point recorded.
type Batch struct {
	// Began is when the point started: request times are offsets from it.
	Began time.Time
	// Requests holds every request the point sent, in send order.
	Requests []result.Request
	// Admitted is the number of requests the schedule admitted.
	Admitted int
	// EndReason is result.EndCompleted, or why the point stopped early
	// (result.EndInterrupted, result.EndTimeout).
	EndReason string
	// Client is what the client process did during the point.
	Client fidelity.Sample
	// StopReason says why Health ended the point early (EndReason is
	// result.EndServerFailing); empty otherwise.
	StopReason string
	// Backoffs counts the waits senders took after failures or for a
	// Retry-After, and BackoffTime is their total length.
	Backoffs    int
	BackoffTime time.Duration
	// Server is what the server's own metrics said during the point; nil
	// without Deps.Server.
	Server *servermetrics.Summary
}

// Run executes plan until its schedule ends or ctx is done, and returns
// every request it sent. When ctx ends, requests in flight are cancelled
// and recorded as such, and EndReason says why (interrupted, or the
// benchmark timeout when ctx's deadline passed). The error is a failure
// to build a request or to write the records; the batch is returned
// with it, whole.
func Run(ctx context.Context, plan Plan, d Deps) (Batch, error) {
	if d.Sender == nil || plan.Schedule == nil || plan.Call == nil {
		return Batch{}, errors.New("runner: a plan needs a schedule and a call builder, and deps a sender")
	}
	log := d.Log()
	var sink Sink
	if plan.Records != "" && d.Records != nil {
		s, err := d.Records(plan.Records)
		if err != nil {
			return Batch{}, fmt.Errorf("point %s: %w", plan.Point, err)
		}
		sink = s
	}
	if plan.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, plan.Timeout)
		defer cancel()
	}
	c := collector{plan: plan, sink: sink, log: log}
	if p, ok := d.Sender.(Preparer); ok {
		c.prepare = p.Prepare
	}
	c.buildAhead(plan.Ahead)
	if plan.Lookahead > 0 && c.aheadErr == nil {
		c.look = newLookahead(len(c.ahead), plan.Lookahead, c.build)
		defer c.look.stop()
	}
	if d.Server != nil {
		// Read the server's counters before the point's clock starts (and
		// before a planned start, which a slow scrape must not delay).
		d.Server.ScrapeNow(ctx)
	}
	if !plan.StartAt.IsZero() && !sleep(ctx, time.Until(plan.StartAt)) {
		// Interrupted before the point began: nothing was sent.
		b := Batch{Began: time.Now(), EndReason: EndReason(ctx)}
		if sink != nil {
			if err := sink.Close(nil); err != nil {
				return b, fmt.Errorf("point %s: %w", plan.Point, err)
			}
		}
		return b, nil
	}
	b := Batch{Began: time.Now()}
	c.began = b.Began
	sendCtx, stopSending := context.WithCancelCause(ctx)
	defer stopSending(nil)
	if plan.Cutoff > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithDeadline(sendCtx, b.Began.Add(plan.Cutoff))
		defer cancel()
	}
	if plan.Health != nil {
		c.guard = newGuard(*plan.Health, b.Began, func(reason string) {
			log.Warn("ending the point early: the server keeps failing", "point", plan.Point, "reason", reason)
			stopSending(ErrServerFailing)
		})
	}
	stopProgress := c.reportProgress(d.Progress)
	meter := fidelity.Start()
	b.Admitted = plan.Schedule(sendCtx, b.Began, func(ctx context.Context, slot traffic.Slot) {
		c.send(ctx, d.Sender, slot)
	})
	b.Client = meter.Stop()
	stopProgress()
	if d.Server != nil {
		// Every request has ended: the scrape sent now reads the
		// counters after the point. It runs on an interrupted run too.
		ended := time.Now()
		d.Server.ScrapeNow(context.WithoutCancel(ctx))
		s := d.Server.Summarize(b.Began, ended)
		b.Server = &s
	}

	b.EndReason = EndReason(ctx)
	if c.guard != nil {
		c.guard.mu.Lock()
		b.Backoffs, b.BackoffTime = c.guard.backoffs, c.guard.backoffFor
		c.guard.mu.Unlock()
	}
	switch {
	case b.EndReason != result.EndCompleted:
	case c.guard != nil && c.guard.reason() != "":
		b.EndReason, b.StopReason = result.EndServerFailing, c.guard.reason()
		c.markStopped(b.StopReason)
	default:
		c.markCut(plan.Cutoff, plan.receiving())
	}
	b.Requests = c.sorted(plan.Total, plan.Unsent)
	var errs []error
	if c.callErr != nil {
		errs = append(errs, fmt.Errorf("point %s: build request: %w", plan.Point, c.callErr))
	}
	if sink != nil {
		if err := sink.Close(b.Requests); err != nil {
			errs = append(errs, fmt.Errorf("point %s: %w", plan.Point, err))
		}
	}
	log.Debug("point recorded", "point", plan.Point, "requests", len(b.Requests), "failed", c.failed.Load(), "end_reason", b.EndReason)
	return b, errors.Join(errs...)
}

// EndReason names why work bound to ctx stopped: completed while ctx is
// live, the benchmark timeout when its deadline passed, else interrupted.
func EndReason(ctx context.Context) string {
	switch {
	case ctx.Err() == nil:
		return result.EndCompleted
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return result.EndTimeout
	default:
		return result.EndInterrupted
	}
}

// collector gathers a point's records as its requests end.
type collector struct {
	plan    Plan
	sink    Sink
	began   time.Time
	log     *slog.Logger
	prepare func(client.Call) (client.Call, error) // nil: the sender cannot

	// ahead holds the calls of slots 0 to len(ahead)-1, built before the
	// point began; aheadErr is the failure to build slot len(ahead).
	ahead    []client.Call
	aheadErr error
	look     *lookahead // nil without Plan.Lookahead

	done, failed, inFlight atomic.Int64

	guard *guard // nil without a Health

	mu      sync.Mutex
	recs    []result.Request
	callErr error // the first failure to build a request; no request is sent after it
}

// send builds, streams and records the request of one slot.
func (c *collector) send(ctx context.Context, s Sender, slot traffic.Slot) {
	c.mu.Lock()
	stopped := c.callErr != nil
	c.mu.Unlock()
	if stopped {
		return
	}
	var call client.Call
	var err error
	switch i := slot.Index; {
	case i < len(c.ahead):
		call = c.ahead[i]
		c.ahead[i] = client.Call{} // the body is the sender's now
	case c.aheadErr != nil:
		err = c.aheadErr
	case c.look != nil:
		call, err = c.look.take(i)
	default:
		call, err = c.build(slot)
	}
	if err != nil {
		c.mu.Lock()
		if c.callErr == nil {
			c.callErr = err
		}
		c.mu.Unlock()
		return
	}
	call.Intended = slot.Intended
	if slot.Accepted != nil && call.OnAccepted == nil {
		call.OnAccepted = slot.Accepted
	}
	if c.guard != nil && !sleep(ctx, c.guard.paused()) {
		return // the point ended while waiting for the server's Retry-After
	}
	c.inFlight.Add(1)
	r := s.Stream(ctx, c.began, call)
	c.inFlight.Add(-1)
	if !r.Warmup {
		c.done.Add(1)
		if !r.OK() {
			c.failed.Add(1)
			if r.ErrClass != result.ErrCanceled {
				c.log.Warn("request failed", "point", c.plan.Point, "req_seq", r.Seq, "error_class", r.ErrClass, "err", r.Err)
			}
		}
	}
	if c.sink != nil {
		c.sink.Record(r)
	}
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
	if c.guard != nil {
		// The client waits before its next request: back off from a
		// failing server instead of resending at once.
		sleep(ctx, c.guard.ended(slot.Client, &r))
	}
}

// build makes the call of slot and prepares it.
func (c *collector) build(slot traffic.Slot) (client.Call, error) {
	call, err := c.plan.Call(slot)
	if err == nil && c.prepare != nil {
		call, err = c.prepare(call)
	}
	return call, err
}

// buildAhead builds the calls of slots 0 to n-1, in order, stopping at the
// first failure (kept for the slots from there on).
func (c *collector) buildAhead(n int) {
	c.ahead = make([]client.Call, 0, max(n, 0))
	for i := range max(n, 0) {
		call, err := c.build(traffic.Slot{Index: i})
		if err != nil {
			c.aheadErr = err
			return
		}
		c.ahead = append(c.ahead, call)
	}
}

// lookahead builds calls in index order in its own goroutine, keeping up
// to n built beyond the highest index taken.
type lookahead struct {
	n     int
	build func(traffic.Slot) (client.Call, error)

	mu      sync.Mutex
	cond    *sync.Cond
	built   map[int]builtCall
	next    int   // the next index to build
	want    int   // build while next < want
	err     error // the build that failed ends the building
	stopped bool
	done    chan struct{}
}

type builtCall struct {
	call client.Call
	err  error
}

// errLookaheadStopped is what take returns after the point ended.
var errLookaheadStopped = errors.New("runner: the point ended")

// newLookahead starts building from index from, n ahead.
func newLookahead(from, n int, build func(traffic.Slot) (client.Call, error)) *lookahead {
	l := &lookahead{n: n, build: build, built: map[int]builtCall{}, next: from, want: from + n, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.loop()
	return l
}

func (l *lookahead) loop() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for !l.stopped && l.next >= l.want {
			l.cond.Wait()
		}
		if l.stopped {
			l.mu.Unlock()
			return
		}
		i := l.next
		l.next++
		l.mu.Unlock()
		call, err := l.build(traffic.Slot{Index: i})
		l.mu.Lock()
		l.built[i] = builtCall{call, err}
		if err != nil {
			l.err = err
			l.stopped = true
		}
		l.cond.Broadcast()
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// take returns the call of index i, waiting for it to be built; it asks
// for the next n to be built.
func (l *lookahead) take(i int) (client.Call, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := i + 1 + l.n; w > l.want {
		l.want = w
		l.cond.Broadcast()
	}
	for {
		if b, ok := l.built[i]; ok {
			delete(l.built, i)
			return b.call, b.err
		}
		if l.stopped {
			if l.err != nil {
				return client.Call{}, l.err
			}
			return client.Call{}, errLookaheadStopped
		}
		l.cond.Wait()
	}
}

// stop ends the building and waits for the goroutine.
func (l *lookahead) stop() {
	l.mu.Lock()
	l.stopped = true
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.done
}

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// markStopped names the requests cancelled when Health ended the point.
func (c *collector) markStopped(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.recs {
		if c.recs[i].ErrClass == result.ErrCanceled {
			c.recs[i].Err = "canceled: the point ended early: " + reason
		}
	}
}

// receiving is the plan's Receiving window with its default.
func (p Plan) receiving() time.Duration {
	if p.Receiving > 0 {
		return p.Receiving
	}
	w := ReceivingWindow
	if grace := p.Cutoff - p.Duration; p.Duration > 0 && grace > 0 {
		w = min(w, grace)
	}
	return w
}

// markCut classifies the cancelled requests: called while ctx is live,
// so the cutoff cancelled them. A request whose last content chunk
// arrived within receiving of the cutoff was still streaming: it is cut.
// Any other (no token at all, or none for that long: a hung stream) did
// not complete: it is a failed request of class timeout.
func (c *collector) markCut(cutoff, receiving time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.recs {
		r := &c.recs[i]
		if r.ErrClass != result.ErrCanceled {
			continue
		}
		if n := len(r.TokenTimes); n > 0 && r.TokenTimes[n-1] >= cutoff-receiving {
			r.Err = CutError
			continue
		}
		r.ErrClass = result.ErrTimeout
		if len(r.TokenTimes) == 0 {
			r.Err = fmt.Sprintf("timeout: no token by the cutoff %v after the point began (sent at %v)", cutoff.Round(time.Millisecond), r.Sent.Round(time.Millisecond))
		} else {
			r.Err = fmt.Sprintf("timeout: did not complete by the cutoff %v after the point began, and no token in its last %v", cutoff.Round(time.Millisecond), receiving)
		}
		c.log.Warn("request failed", "point", c.plan.Point, "req_seq", r.Seq, "error_class", r.ErrClass, "err", r.Err)
	}
}

// sorted returns the records in send order (by sequence number), with
// the records unsent makes for the numbers in [0, total) never sent.
func (c *collector) sorted(total int, unsent func(seq int) result.Request) []result.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if unsent != nil {
		sent := make(map[int]bool, len(c.recs))
		for i := range c.recs {
			sent[c.recs[i].Seq] = true
		}
		for seq := range total {
			if !sent[seq] {
				c.recs = append(c.recs, unsent(seq))
			}
		}
	}
	slices.SortStableFunc(c.recs, func(a, b result.Request) int { return cmp.Compare(a.Seq, b.Seq) })
	return c.recs
}

// reportProgress calls report every ProgressInterval until the returned
// stop function is called, which reports once more and waits.
func (c *collector) reportProgress(report func(Progress)) (stop func()) {
	if report == nil {
		return func() {}
	}
	snapshot := func() Progress {
		return Progress{Point: c.plan.Point, Elapsed: time.Since(c.began), Duration: c.plan.Duration,
			Done: int(c.done.Load()), Failed: int(c.failed.Load()), InFlight: int(c.inFlight.Load()), Total: c.plan.Total}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				report(snapshot())
				return
			case <-tick.C:
				report(snapshot())
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// Save writes the records of a point that was not run here (a resumed
// one) to the record file path, when d.Records is set.
func (d Deps) Save(path string, reqs []result.Request) error {
	if d.Records == nil {
		return nil
	}
	sink, err := d.Records(path)
	if err != nil {
		return err
	}
	return sink.Close(reqs)
}
