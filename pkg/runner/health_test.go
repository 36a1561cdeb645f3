package runner

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/traffic"
)

// funcSender answers each request with answer(n), n counting requests
// from 0, after delay.
type funcSender struct {
	n      atomic.Int64
	delay  time.Duration
	answer func(n int, r *result.Request)
}

func (f *funcSender) Stream(ctx context.Context, began time.Time, call client.Call) result.Request {
	r := result.Request{Seq: call.Seq, Intended: call.Intended, Sent: time.Since(began), TargetOutputTokens: call.MaxTokens}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			r.ErrClass, r.Err, r.End = result.ErrCanceled, "context canceled", time.Since(began)
			return r
		}
	}
	r.TokenTimes, r.OutputTokens = []time.Duration{time.Since(began)}, 1
	f.answer(int(f.n.Add(1)-1), &r)
	r.End = time.Since(began)
	return r
}

func refused(_ int, r *result.Request) {
	r.TokenTimes, r.OutputTokens = nil, 0
	r.ErrClass, r.Err = result.ErrConnect, "dial tcp 127.0.0.1:1: connection refused"
}

func status(code int, after time.Duration) func(int, *result.Request) {
	return func(_ int, r *result.Request) {
		r.TokenTimes, r.OutputTokens = nil, 0
		r.ErrClass, r.HTTPStatus, r.Err, r.RetryAfter = result.ErrHTTPStatus, code, "HTTP error", after
	}
}

// A dead server (every connection refused) ends a 30 s point within a
// second, after a handful of requests, with the reason recorded; without
// Health the same point sends flat out.
func TestHealthEndsPointOnDeadServer(t *testing.T) {
	t.Parallel()
	h := Health{ConnectFailures: 10, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
	plan := Plan{Point: "c=4", Schedule: traffic.ClosedLoop(4, 30*time.Second), Call: call, Duration: 30 * time.Second, Health: &h}
	began := time.Now()
	b, err := Run(t.Context(), plan, Deps{Sender: &funcSender{answer: refused}})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the point took %v against a dead server", took)
	}
	if b.EndReason != result.EndServerFailing || !strings.Contains(b.StopReason, "10 connection failures in a row") ||
		!strings.Contains(b.StopReason, "connection refused") {
		t.Errorf("end %q, reason %q; want server_failing with the connection failures named", b.EndReason, b.StopReason)
	}
	if n := len(b.Requests); n < 10 || n > 20 {
		t.Errorf("%d requests sent to a dead server, want 10 to 20", n)
	}
	if b.Backoffs == 0 || b.BackoffTime <= 0 {
		t.Errorf("no backoff recorded: %d waits, %v", b.Backoffs, b.BackoffTime)
	}

	// The same without Health: hundreds of requests in 100 ms.
	plan.Health, plan.Schedule, plan.Duration = nil, traffic.ClosedLoop(4, 100*time.Millisecond), 100*time.Millisecond
	b, _ = Run(t.Context(), plan, Deps{Sender: &funcSender{answer: refused}})
	if len(b.Requests) < 100 || b.EndReason != result.EndCompleted {
		t.Errorf("without Health: %d requests, end %q; the comparison needs a flat-out sender", len(b.Requests), b.EndReason)
	}
}

// Each client backs off after a failure, doubling up to the maximum: one
// client against a server answering 500 sends a few requests in 600 ms,
// not thousands; the error-rate rule, off here, does not end the point.
func TestHealthBacksOff(t *testing.T) {
	t.Parallel()
	h := Health{BackoffMin: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond}
	plan := Plan{Point: "c=1", Schedule: traffic.ClosedLoop(1, 600*time.Millisecond), Call: call, Duration: 600 * time.Millisecond, Health: &h}
	b, err := Run(t.Context(), plan, Deps{Sender: &funcSender{answer: status(500, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	// Waits 20, 40, 80, 80, ... ms: 9 requests in 600 ms at most.
	if n := len(b.Requests); n < 4 || n > 10 {
		t.Errorf("%d requests in 600 ms with backoff, want 4 to 10", n)
	}
	for i := 1; i < len(b.Requests); i++ {
		gap := b.Requests[i].Sent - b.Requests[i-1].End
		want := min(20*time.Millisecond<<(i-1), 80*time.Millisecond)
		if gap < want {
			t.Errorf("request %d sent %v after the previous failure, want >= %v", i, gap, want)
		}
	}
	if b.EndReason != result.EndCompleted {
		t.Errorf("end %q, want completed (no rule to end it)", b.EndReason)
	}
}

// A 429 with Retry-After holds every request of the point until it has
// passed, open loop included.
func TestHealthHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var arrivals []time.Duration
	for i := range 40 {
		arrivals = append(arrivals, time.Duration(i)*10*time.Millisecond)
	}
	h := Health{RetryAfterMax: time.Second}
	answer := func(n int, r *result.Request) {
		if n == 0 {
			status(429, 300*time.Millisecond)(n, r)
		}
	}
	plan := Plan{Point: "qps=100", Schedule: traffic.OpenLoop(arrivals), Call: call, Health: &h}
	b, err := Run(t.Context(), plan, Deps{Sender: &funcSender{answer: answer}})
	if err != nil {
		t.Fatal(err)
	}
	first := b.Requests[0]
	if first.HTTPStatus != 429 {
		t.Fatalf("first request %+v, want the 429", first)
	}
	for _, r := range b.Requests[1:] {
		if r.Intended > first.End+5*time.Millisecond && r.Sent < first.End+290*time.Millisecond {
			t.Errorf("request %d sent at %v, within the 300 ms Retry-After of the 429 that ended at %v", r.Seq, r.Sent, first.End)
		}
	}
	if b.Backoffs == 0 {
		t.Errorf("the Retry-After wait is not recorded")
	}
}

// More than half of the requests of the last window failed: the point
// ends, but not before the window has passed.
func TestHealthErrorRate(t *testing.T) {
	t.Parallel()
	h := Health{ErrorRate: 0.5, RateWindow: 200 * time.Millisecond, MinRequests: 5}
	plan := Plan{Point: "c=2", Schedule: traffic.ClosedLoop(2, 10*time.Second), Call: call, Duration: 10 * time.Second, Health: &h}
	// Two of every three requests fail.
	answer := func(n int, r *result.Request) {
		if n%3 != 0 {
			status(503, 0)(n, r)
		}
	}
	began := time.Now()
	b, err := Run(t.Context(), plan, Deps{Sender: &funcSender{delay: 2 * time.Millisecond, answer: answer}})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if b.EndReason != result.EndServerFailing || !strings.Contains(b.StopReason, "in the last 200ms failed") {
		t.Fatalf("end %q, reason %q; want server_failing by the error rate", b.EndReason, b.StopReason)
	}
	if took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("ended after %v, want after the 200 ms window and well before 10 s", took)
	}

	// A third failing is below the rate: the point runs to its end.
	answer = func(n int, r *result.Request) {
		if n%3 == 0 {
			status(503, 0)(n, r)
		}
	}
	plan.Schedule, plan.Duration = traffic.ClosedLoop(2, 400*time.Millisecond), 400*time.Millisecond
	b, _ = Run(t.Context(), plan, Deps{Sender: &funcSender{delay: 2 * time.Millisecond, answer: answer}})
	if b.EndReason != result.EndCompleted {
		t.Errorf("a third failing: end %q (%s), want completed", b.EndReason, b.StopReason)
	}
}

// After a point the server failed, the next one ends as soon as its first
// requests fail the same way.
func TestHealthFirstFailures(t *testing.T) {
	t.Parallel()
	h := Health{FirstFailures: 4}
	plan := Plan{Point: "c=1", Schedule: traffic.ClosedLoop(1, 10*time.Second), Call: call, Duration: 10 * time.Second, Health: &h}
	b, _ := Run(t.Context(), plan, Deps{Sender: &funcSender{answer: status(500, 0)}})
	if b.EndReason != result.EndServerFailing || len(b.Requests) != 4 || !strings.Contains(b.StopReason, "first 4 requests all failed") {
		t.Errorf("end %q after %d requests (%s), want server_failing after 4", b.EndReason, len(b.Requests), b.StopReason)
	}
}

// Sent one at a time, a point against a server that refuses every
// request (429) ends after FailuresInRow of them; a success in between
// starts the count again.
func TestHealthFailuresInRow(t *testing.T) {
	t.Parallel()
	h := Health{FailuresInRow: 5, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}
	plan := Plan{Point: "prefill", Schedule: traffic.InOrder(40), Call: call, Total: 40, Health: &h}
	s := &funcSender{answer: status(429, 0)}
	b, err := Run(t.Context(), plan, Deps{Sender: s})
	if err != nil {
		t.Fatal(err)
	}
	if b.EndReason != result.EndServerFailing || len(b.Requests) != 5 || !strings.Contains(b.StopReason, "5 failed requests in a row") {
		t.Errorf("end %q (%s) after %d requests, want server_failing after 5", b.EndReason, b.StopReason, len(b.Requests))
	}
	// Every other request succeeds: never 5 failures in a row.
	s = &funcSender{answer: func(n int, r *result.Request) {
		if n%2 == 0 {
			status(429, 0)(n, r)
		}
	}}
	b, err = Run(t.Context(), plan, Deps{Sender: s})
	if err != nil || b.EndReason != result.EndCompleted || len(b.Requests) != 40 {
		t.Errorf("alternating: end %q after %d requests (%v), want completed after 40", b.EndReason, len(b.Requests), err)
	}
}
