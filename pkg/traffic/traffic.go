package traffic

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Slot tells a send which request it runs and when it was meant to start.
type Slot struct {
	// Index is the request's place in the order of admission, from 0,
	// unique within one call.
	Index int
	// Client is the closed-loop client that sends the request (Closed
	// only; 0 otherwise).
	Client int
	// Intended is the offset from the run start at which the pattern
	// wanted the request sent: the scheduled arrival (Open), the moment the
	// client became free (Sequential, Closed), the release of its launch
	// ticket (SequentialLaunch). The send compares it with its actual send
	// time to report send lag.
	Intended time.Duration
	// Accepted, when set (LaunchInOrder), releases the next request of the
	// batch: call it once the server has accepted this one. It may be
	// called any number of times, from any goroutine.
	Accepted func()
}

// SendFunc runs one request and returns when it is over. It must return
// soon after ctx is done.
type SendFunc func(ctx context.Context, slot Slot)

// PoissonArrivals returns the arrival offsets of a Poisson process of rate
// requests per second over [0, until): cumulative exponential gaps drawn
// from rng, in increasing order. The first arrival is at the first gap, not
// at 0, so the expected number of arrivals is exactly rate * until. Gaps
// are never clipped (the original clipped them at 3/rate, which raised the
// rate by 5 %), and fractional rates are allowed. The same rng state gives
// the same arrivals. A rate that is not positive and finite, a nil rng or
// until <= 0 gives nil.
func PoissonArrivals(rate float64, rng *rand.Rand, until time.Duration) []time.Duration {
	if !(rate > 0) || math.IsInf(rate, 1) || rng == nil || until <= 0 {
		return nil
	}
	var out []time.Duration
	t := 0.0 // seconds, summed in float64 so that rounding never accumulates
	for {
		t += rng.ExpFloat64() / rate
		d := time.Duration(math.Round(t * 1e9))
		if t >= until.Seconds() || d >= until {
			return out
		}
		out = append(out, d)
	}
}

// Sequential sends n requests one at a time, in order: request i+1 starts
// when request i has returned. It stops early when ctx is done and returns
// the number of requests admitted.
func Sequential(ctx context.Context, began time.Time, n int, send SendFunc) int {
	for i := range n {
		if ctx.Err() != nil {
			return i
		}
		send(ctx, Slot{Index: i, Intended: time.Since(began)})
	}
	return max(n, 0)
}

// Closed runs a closed loop of clients: each client sends its next request
// as soon as its previous one returns, with no think time. All clients
// start at once (a burst, as the original's ramp-up of 0). A client admits
// a new request only while its Intended time, the moment it became free,
// is before admitUntil (an offset from began) and ctx is not done; requests
// in flight at admitUntil run to their end. Closed returns the number of
// requests admitted, after every send has returned.
func Closed(ctx context.Context, began time.Time, clients int, admitUntil time.Duration, send SendFunc) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Since(began)
	for c := range max(clients, 0) {
		wg.Go(func() {
			for intended := start; intended < admitUntil && ctx.Err() == nil; intended = time.Since(began) {
				send(ctx, Slot{Index: int(next.Add(1) - 1), Client: c, Intended: intended})
			}
		})
	}
	wg.Wait()
	return int(next.Load())
}

// Open sends one request per arrival (offsets from began, in increasing
// order), each in its own goroutine started at began + arrival. The
// schedule is absolute: each wait is computed from began, never by adding
// up sleeps, and nothing waits for requests in flight (there is no
// in-flight cap), so a slow server cannot delay arrivals. An arrival whose
// time has already passed starts at once. Slot.Intended is the arrival.
// Open stops admitting when ctx is done and returns the number of requests
// admitted, after every send has returned.
func Open(ctx context.Context, began time.Time, arrivals []time.Duration, send SendFunc) int {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i, at := range arrivals {
		if !waitUntil(ctx, timer, began.Add(at)) {
			return i
		}
		wg.Go(func() { send(ctx, Slot{Index: i, Intended: at}) })
	}
	return len(arrivals)
}

// SequentialLaunch launches n requests in order and keeps them all in
// flight together: request k+1 is released when request k calls accepted
// (its response headers arrived, or it failed), when request k's send
// returns, or when ticketTimeout has passed since request k was released,
// whichever comes first; ticketTimeout <= 0 means no timeout. So a failed
// or stuck request never stalls the batch. Slot.Intended is the release
// time. accepted may be called any number of times, from any goroutine.
// SequentialLaunch stops releasing when ctx is done and returns the number
// of requests admitted, after every send has returned.
func SequentialLaunch(ctx context.Context, began time.Time, n int, ticketTimeout time.Duration,
	send func(ctx context.Context, slot Slot, accepted func())) int {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := range n {
		if ctx.Err() != nil {
			return k
		}
		released := make(chan struct{})
		accepted := sync.OnceFunc(func() { close(released) })
		slot := Slot{Index: k, Intended: time.Since(began)}
		wg.Go(func() {
			defer accepted()
			send(ctx, slot, accepted)
		})
		var timeout <-chan time.Time
		if ticketTimeout > 0 {
			timer.Reset(ticketTimeout)
			timeout = timer.C
		}
		select {
		case <-released:
		case <-timeout:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	return max(n, 0)
}

// waitUntil blocks until deadline and reports true, or until ctx is done
// and reports false.
func waitUntil(ctx context.Context, timer *time.Timer, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-timer.C:
		return true
	}
}
