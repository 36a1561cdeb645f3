package runner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// fakeSender answers each request after delay with one token, or, when
// hang is set, only when ctx ends (as a stuck stream does). With trickle
// set, a hanging request gets a token every trickle until ctx ends (a
// stream still receiving); with stallAfter set, it gets that many tokens
// (trickle apart) and then nothing (a stream that hung mid-way).
type fakeSender struct {
	delay      time.Duration
	hang       bool
	trickle    time.Duration
	stallAfter int
}

func (f fakeSender) Stream(ctx context.Context, began time.Time, call client.Call) result.Request {
	r := result.Request{Seq: call.Seq, Warmup: call.Warmup, Intended: call.Intended, Sent: time.Since(began),
		TargetPromptTokens: call.TargetPromptTokens, TargetOutputTokens: call.MaxTokens}
	if call.OnAccepted != nil {
		call.OnAccepted()
	}
	wait := time.After(f.delay)
	if f.hang {
		wait = nil
	}
	if f.trickle > 0 {
		tick := time.NewTicker(f.trickle)
		defer tick.Stop()
		for f.stallAfter == 0 || len(r.TokenTimes) < f.stallAfter {
			select {
			case <-tick.C:
				r.TokenTimes = append(r.TokenTimes, time.Since(began))
				continue
			case <-ctx.Done():
			}
			break
		}
	}
	select {
	case <-wait:
		r.TokenTimes = []time.Duration{time.Since(began)}
		r.OutputTokens = 1
	case <-ctx.Done():
		r.ErrClass, r.Err = result.ErrCanceled, "context canceled"
	}
	r.End = time.Since(began)
	return r
}

// memSink keeps what a point recorded.
type memSink struct {
	mu       sync.Mutex
	streamed []result.Request
	closed   []result.Request
}

func (s *memSink) Record(r result.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamed = append(s.streamed, r)
}

func (s *memSink) Close(all []result.Request) error {
	s.closed = all
	return nil
}

func call(slot traffic.Slot) (client.Call, error) {
	return client.Call{Seq: slot.Index, TargetPromptTokens: 8, MaxTokens: 1}, nil
}

func TestRunRecordsEveryRequest(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	var last Progress
	d := Deps{Sender: fakeSender{delay: time.Millisecond}, Progress: func(p Progress) { last = p },
		Records: func(path string) (Sink, error) {
			if path != "x/requests.jsonl" {
				t.Errorf("Records(%q), want x/requests.jsonl", path)
			}
			return sink, nil
		}}
	b, err := Run(t.Context(), Plan{Point: "x", Schedule: traffic.ClosedLoop(3, 50*time.Millisecond), Call: call, Records: "x/requests.jsonl"}, d)
	if err != nil {
		t.Fatal(err)
	}
	if b.EndReason != result.EndCompleted || b.Admitted != len(b.Requests) || len(b.Requests) < 3 {
		t.Fatalf("batch: end %q, admitted %d, %d records; want completed and one record per admitted request", b.EndReason, b.Admitted, len(b.Requests))
	}
	for i, r := range b.Requests {
		if r.Seq != i || !r.OK() {
			t.Fatalf("record %d = seq %d ok %v: want send order, all ok", i, r.Seq, r.OK())
		}
	}
	if len(sink.streamed) != len(b.Requests) || len(sink.closed) != len(b.Requests) {
		t.Errorf("sink got %d streamed and %d at close, want %d each", len(sink.streamed), len(sink.closed), len(b.Requests))
	}
	if last.Done != len(b.Requests) || last.Point != "x" || last.InFlight != 0 {
		t.Errorf("last progress = %+v, want all %d done", last, len(b.Requests))
	}
	if b.Client.WallS <= 0 {
		t.Errorf("no client fidelity sample: %+v", b.Client)
	}
}

// Requests still running at the cutoff are cancelled. Only those still
// receiving tokens are named cut; a stream that hung (no token at all, or
// none in the receiving window) did not complete and is a timeout
// failure. The point itself completed.
func TestRunCutoff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		sender    fakeSender
		wantClass string
	}{
		{"still receiving", fakeSender{hang: true, trickle: 5 * time.Millisecond}, result.ErrCanceled},
		{"hung before any token", fakeSender{hang: true}, result.ErrTimeout},
		{"hung after two tokens", fakeSender{hang: true, trickle: 5 * time.Millisecond, stallAfter: 2}, result.ErrTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := Plan{Point: "c=2", Schedule: traffic.ClosedLoop(2, 10*time.Millisecond), Call: call,
				Duration: 10 * time.Millisecond, Cutoff: 150 * time.Millisecond, Receiving: 60 * time.Millisecond}
			b, err := Run(t.Context(), plan, Deps{Sender: tc.sender})
			if err != nil {
				t.Fatal(err)
			}
			if b.EndReason != result.EndCompleted || len(b.Requests) != 2 {
				t.Fatalf("end %q with %d records, want completed with 2", b.EndReason, len(b.Requests))
			}
			for _, r := range b.Requests {
				if r.ErrClass != tc.wantClass {
					t.Errorf("record %d: class %q err %q, want class %q", r.Seq, r.ErrClass, r.Err, tc.wantClass)
				}
				if cut := r.Err == CutError; cut != (tc.wantClass == result.ErrCanceled) {
					t.Errorf("record %d: err %q, cut = %v", r.Seq, r.Err, cut)
				}
				if r.End < plan.Cutoff {
					t.Errorf("record %d ended at %v, before the %v cutoff", r.Seq, r.End, plan.Cutoff)
				}
			}
		})
	}
}

func TestPlanReceivingDefault(t *testing.T) {
	t.Parallel()
	cases := []struct {
		plan Plan
		want time.Duration
	}{
		{Plan{Cutoff: time.Minute, Duration: 30 * time.Second}, ReceivingWindow},
		{Plan{Cutoff: 12 * time.Second, Duration: 10 * time.Second}, 2 * time.Second},
		{Plan{Cutoff: time.Second}, ReceivingWindow},
		{Plan{Cutoff: time.Minute, Duration: 10 * time.Second, Receiving: time.Second}, time.Second},
	}
	for _, tc := range cases {
		if got := tc.plan.receiving(); got != tc.want {
			t.Errorf("receiving(%+v) = %v, want %v", tc.plan, got, tc.want)
		}
	}
}

func TestRunEndReasons(t *testing.T) {
	t.Parallel()
	plan := Plan{Point: "p", Schedule: traffic.InOrder(3), Call: call, Total: 3}
	interrupted, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	b, _ := Run(interrupted, plan, Deps{Sender: fakeSender{hang: true}})
	if b.EndReason != result.EndInterrupted || len(b.Requests) != 1 || b.Requests[0].Err == CutError {
		t.Errorf("interrupted: end %q, %d records (%+v), want interrupted with 1 cancelled, not cut", b.EndReason, len(b.Requests), b.Requests)
	}
	timedOut, cancelT := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancelT()
	b, _ = Run(timedOut, plan, Deps{Sender: fakeSender{hang: true}})
	if b.EndReason != result.EndTimeout {
		t.Errorf("timed out: end %q, want %q", b.EndReason, result.EndTimeout)
	}
}

// Requests never sent are recorded when the plan says how.
func TestRunUnsent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	plan := Plan{Point: "bs=3", Schedule: traffic.LaunchInOrder(3, time.Second), Call: call, Total: 3,
		Unsent: func(seq int) result.Request {
			return result.Request{Seq: seq, ErrClass: result.ErrCanceled, Err: "not sent"}
		}}
	b, err := Run(ctx, plan, Deps{Sender: fakeSender{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Requests) != 3 || b.Requests[2].Seq != 2 || b.Requests[2].Err != "not sent" {
		t.Errorf("records = %+v, want 3, the unsent ones recorded", b.Requests)
	}
}

// A request that cannot be built ends the point; what ran is kept.
func TestRunCallError(t *testing.T) {
	t.Parallel()
	boom := errors.New("no prompt")
	plan := Plan{Point: "il=8", Schedule: traffic.InOrder(5), Total: 5, Call: func(slot traffic.Slot) (client.Call, error) {
		if slot.Index == 2 {
			return client.Call{}, boom
		}
		return call(slot)
	}}
	b, err := Run(t.Context(), plan, Deps{Sender: fakeSender{}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "il=8") {
		t.Errorf("err = %v, want it to wrap %v and name the point", err, boom)
	}
	if len(b.Requests) != 2 {
		t.Errorf("%d records, want the 2 sent before the failure", len(b.Requests))
	}
}

// A plan's own timeout ends it as the benchmark timeout.
func TestRunPlanTimeout(t *testing.T) {
	t.Parallel()
	plan := Plan{Point: "p", Schedule: traffic.InOrder(2), Call: call, Total: 2, Timeout: 30 * time.Millisecond}
	b, err := Run(t.Context(), plan, Deps{Sender: fakeSender{hang: true}})
	if err != nil {
		t.Fatal(err)
	}
	if b.EndReason != result.EndTimeout || len(b.Requests) != 1 || b.Requests[0].Err == CutError {
		t.Errorf("end %q, records %+v: want benchmark_timeout with the one request cancelled", b.EndReason, b.Requests)
	}
}

// preparingSender is a fakeSender that prepares calls (see Preparer): it
// records when each was prepared, and checks in Stream that a prepared
// body arrives.
type preparingSender struct {
	fakeSender
	mu       sync.Mutex
	prepared map[int]time.Time
	unready  []int // sequence numbers streamed without a body
}

func (p *preparingSender) Prepare(call client.Call) (client.Call, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared[call.Seq] = time.Now()
	call.Body = []byte("body")
	return call, nil
}

func (p *preparingSender) Stream(ctx context.Context, began time.Time, call client.Call) result.Request {
	if string(call.Body) != "body" {
		p.mu.Lock()
		p.unready = append(p.unready, call.Seq)
		p.mu.Unlock()
	}
	return p.fakeSender.Stream(ctx, began, call)
}

// The first Ahead requests are built and prepared before the point's
// clock starts; the others as they are released; all are prepared.
func TestRunAhead(t *testing.T) {
	t.Parallel()
	s := &preparingSender{fakeSender: fakeSender{delay: time.Millisecond}, prepared: map[int]time.Time{}}
	const n, ahead = 6, 3
	b, err := Run(t.Context(), Plan{Point: "bs=6", Schedule: traffic.LaunchInOrder(n, time.Second), Call: call, Total: n, Ahead: ahead},
		Deps{Sender: s})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Requests) != n || len(s.unready) > 0 {
		t.Fatalf("%d records, streamed without a prepared body: %v; want %d, none", len(b.Requests), s.unready, n)
	}
	for seq := range n {
		at, ok := s.prepared[seq]
		switch {
		case !ok:
			t.Errorf("request %d never prepared", seq)
		case seq < ahead && !at.Before(b.Began):
			t.Errorf("request %d prepared %v after the point began, want before", seq, at.Sub(b.Began))
		case seq >= ahead && at.Before(b.Began):
			t.Errorf("request %d prepared %v before the point began, want as released", seq, b.Began.Sub(at))
		}
	}
}

// A failure to build one of the first Ahead requests ends the point
// there, as a failure at release does: the earlier ones are sent.
func TestRunAheadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("no prompt")
	built := 0
	plan := Plan{Point: "c=4", Schedule: traffic.InOrder(5), Total: 5, Ahead: 4, Call: func(slot traffic.Slot) (client.Call, error) {
		built++
		if slot.Index == 2 {
			return client.Call{}, boom
		}
		return call(slot)
	}}
	b, err := Run(t.Context(), plan, Deps{Sender: fakeSender{}})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap %v", err, boom)
	}
	if len(b.Requests) != 2 || built != 3 {
		t.Errorf("%d records after %d builds, want the 2 built before the failure and no build after it", len(b.Requests), built)
	}
}

// With a Lookahead, an open loop's requests are built and prepared before
// their arrival, not at it; every request is prepared exactly once.
func TestRunLookahead(t *testing.T) {
	t.Parallel()
	s := &preparingSender{fakeSender: fakeSender{delay: time.Millisecond}, prepared: map[int]time.Time{}}
	const gap = 40 * time.Millisecond
	arrivals := []time.Duration{gap, 2 * gap, 3 * gap, 4 * gap, 5 * gap}
	b, err := Run(t.Context(), Plan{Point: "qps=25", Schedule: traffic.OpenLoop(arrivals), Call: call, Lookahead: 2},
		Deps{Sender: s})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Requests) != len(arrivals) || len(s.unready) > 0 {
		t.Fatalf("%d records, streamed without a prepared body: %v; want %d, none", len(b.Requests), s.unready, len(arrivals))
	}
	for seq, at := range arrivals {
		// Slot seq is asked for when slot seq-2 is taken (or at the
		// start): a gap or more before its arrival.
		if p, ok := s.prepared[seq]; !ok || !p.Before(b.Began.Add(at)) {
			t.Errorf("request %d prepared at %v, want before its arrival at %v", seq, p.Sub(b.Began), at)
		}
	}
	// Building stays bounded: at most Lookahead past the last slot taken.
	if n := len(s.prepared); n > len(arrivals)+2 {
		t.Errorf("%d requests prepared for %d arrivals with a lookahead of 2", n, len(arrivals))
	}
}

// A failure to build ahead ends the point where the failed slot would
// have been sent; the earlier ones are sent.
func TestRunLookaheadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("no prompt")
	plan := Plan{Point: "qps=1", Schedule: traffic.InOrder(6), Lookahead: 3, Call: func(slot traffic.Slot) (client.Call, error) {
		if slot.Index == 3 {
			return client.Call{}, boom
		}
		return call(slot)
	}}
	b, err := Run(t.Context(), plan, Deps{Sender: fakeSender{}})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap %v", err, boom)
	}
	if len(b.Requests) != 3 {
		t.Errorf("%d records, want the 3 built before the failure", len(b.Requests))
	}
}

// scrapeLog is a ServerMetrics that records when it was scraped, and
// what it was asked to summarize.
type scrapeLog struct {
	mu       sync.Mutex
	scrapes  []time.Time
	from, to time.Time
	liveCtx  []bool
}

func (s *scrapeLog) ScrapeNow(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scrapes = append(s.scrapes, time.Now())
	s.liveCtx = append(s.liveCtx, ctx.Err() == nil)
}

func (s *scrapeLog) Summarize(from, to time.Time) servermetrics.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.to = from, to
	return servermetrics.Summary{Scrapes: len(s.scrapes)}
}

// Run scrapes the server at the point's start, before its clock, and at
// its end, after every request ended (an interrupted point too), and
// summarizes exactly the point.
func TestRunScrapesEachPoint(t *testing.T) {
	t.Parallel()
	for _, interrupt := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		sm := &scrapeLog{}
		sender := fakeSender{delay: 20 * time.Millisecond}
		if interrupt {
			sender = fakeSender{hang: true}
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		b, err := Run(ctx, Plan{Point: "p", Schedule: traffic.InOrder(2), Call: call}, Deps{Sender: sender, Server: sm})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(sm.scrapes) != 2 || b.Server == nil {
			t.Fatalf("interrupt %v: %d scrapes, summary %v; want 2 and a summary", interrupt, len(sm.scrapes), b.Server)
		}
		if !sm.scrapes[0].Before(b.Began) || !sm.from.Equal(b.Began) {
			t.Errorf("interrupt %v: first scrape at %v, point began %v, summarized from %v", interrupt, sm.scrapes[0], b.Began, sm.from)
		}
		var last time.Duration
		for _, r := range b.Requests {
			last = max(last, r.End)
		}
		lastEnd := b.Began.Add(last)
		if sm.to.Before(lastEnd) || sm.scrapes[1].Before(sm.to) {
			t.Errorf("interrupt %v: last request ended %v, summarized to %v, end scrape %v", interrupt, lastEnd, sm.to, sm.scrapes[1])
		}
		if !sm.liveCtx[1] {
			t.Errorf("interrupt %v: the end scrape got a cancelled context", interrupt)
		}
	}
}

// With StartAt, the point's clock starts at that instant, after the first
// wave is built; an instant already past starts it at once.
func TestRunStartAt(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(150 * time.Millisecond)
	var mu sync.Mutex
	var built time.Time // when the first wave (slots 0 and 1) was built
	plan := Plan{Point: "x", Schedule: traffic.ClosedLoop(2, 20*time.Millisecond), Ahead: 2, StartAt: at.Round(0),
		Call: func(slot traffic.Slot) (client.Call, error) {
			if slot.Index < 2 {
				mu.Lock()
				built = time.Now()
				mu.Unlock()
			}
			return call(slot)
		}}
	b, err := Run(t.Context(), plan, Deps{Sender: fakeSender{delay: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := built
	mu.Unlock()
	if b.Began.Before(at) || !first.Before(at) || len(b.Requests) < 2 {
		t.Errorf("began %v, first wave built %v, %d requests; want built before and begun at or after %v", b.Began, first, len(b.Requests), at)
	}
	plan.StartAt = time.Now().Add(-time.Hour)
	began := time.Now()
	if b, err = Run(t.Context(), plan, Deps{Sender: fakeSender{delay: time.Millisecond}}); err != nil || b.Began.Sub(began) > time.Second {
		t.Errorf("a past StartAt: began %v after the call (%v), want at once", b.Began.Sub(began), err)
	}
}
