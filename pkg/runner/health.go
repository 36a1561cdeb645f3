package runner

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// ErrServerFailing is the cause of a point that Health ended early: the
// server kept failing, and sending on would only hammer it.
var ErrServerFailing = errors.New("the server kept failing")

// Health is how a point treats a failing server: senders back off after
// failures and honour Retry-After, and the point ends early, with its
// reason recorded, once the server is plainly dead or refusing. The zero
// value does none of it.
type Health struct {
	// ConnectFailures connection failures in a row (no response at all)
	// end the point; 0 never.
	ConnectFailures int
	// FailuresInRow failed requests in a row, of any class, end the
	// point; 0 never. For a point sent one request at a time, whose
	// error rate over a few seconds rests on too few requests.
	FailuresInRow int
	// ErrorRate ends the point when more than this fraction of the
	// requests that ended in the last RateWindow failed, once the point
	// has run for RateWindow and at least MinRequests ended in it; 0 never.
	ErrorRate   float64
	RateWindow  time.Duration
	MinRequests int
	// FirstFailures, when positive, ends the point as soon as its first
	// FirstFailures requests have all failed: for a point that follows
	// one the server failed.
	FirstFailures int
	// BackoffMin is how long a closed-loop client waits after a failed
	// request before its next one, doubled with each failure in a row up
	// to BackoffMax; a success resets it. 0 turns backoff off (open loop:
	// arrivals do not wait for each other).
	BackoffMin, BackoffMax time.Duration
	// RetryAfterMax caps the wait a server asks for with Retry-After: no
	// request of the point is sent before that wait has passed. 0 ignores
	// Retry-After.
	RetryAfterMax time.Duration
}

// Defaults of DefaultHealth.
const (
	DefaultConnectFailures = 10
	DefaultFailuresInRow   = 10
	DefaultErrorRate       = 0.5
	DefaultRateWindow      = 5 * time.Second
	DefaultMinRequests     = 10
	DefaultBackoffMin      = 50 * time.Millisecond
	DefaultBackoffMax      = 5 * time.Second
	DefaultRetryAfterMax   = time.Minute
)

// DefaultHealth ends a point after 10 connection failures in a row or
// when more than half of the requests of the last 5 s failed, backs off
// from 50 ms to 5 s per client, and honours Retry-After up to a minute.
func DefaultHealth() Health {
	return Health{
		ConnectFailures: DefaultConnectFailures, ErrorRate: DefaultErrorRate, RateWindow: DefaultRateWindow,
		MinRequests: DefaultMinRequests, BackoffMin: DefaultBackoffMin, BackoffMax: DefaultBackoffMax,
		RetryAfterMax: DefaultRetryAfterMax,
	}
}

// guard applies a Health to one point. Its methods are safe for
// concurrent use; it is touched once per request, never per token.
type guard struct {
	h     Health
	began time.Time
	trip  func(reason string)

	mu         sync.Mutex
	tripped    string
	connectRow int           // connection failures in a row
	failRow    int           // failures in a row, any class
	count      int           // requests ended (canceled ones excluded)
	failedAll  int           // of which failed
	recent     []outcome     // ended within the rate window
	clientRow  map[int]int   // failures in a row per closed-loop client
	pauseUntil time.Duration // offset before which nothing is sent (Retry-After)
	backoffs   int           // backoff waits taken
	backoffFor time.Duration // their total length
	lastErr    string        // the last failure's message, for the reason
}

type outcome struct {
	at     time.Duration
	failed bool
}

func newGuard(h Health, began time.Time, trip func(reason string)) *guard {
	return &guard{h: h, began: began, trip: trip, clientRow: map[int]int{}}
}

// ended takes one request's outcome and returns how long its client
// should wait before its next request.
func (g *guard) ended(client int, r *result.Request) time.Duration {
	if r.ErrClass == result.ErrCanceled {
		return 0
	}
	now := time.Since(g.began)
	failed := !r.OK()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count++
	if failed {
		g.failedAll++
		g.failRow++
		g.lastErr = r.Err
	} else {
		g.failRow = 0
	}
	if r.ErrClass == result.ErrConnect {
		g.connectRow++
	} else {
		g.connectRow = 0
	}
	if r.RetryAfter > 0 && g.h.RetryAfterMax > 0 {
		g.pauseUntil = max(g.pauseUntil, now+min(r.RetryAfter, g.h.RetryAfterMax))
	}
	if g.h.ErrorRate > 0 {
		g.recent = append(g.recent, outcome{at: now, failed: failed})
		drop := 0
		for drop < len(g.recent) && g.recent[drop].at < now-g.h.RateWindow {
			drop++
		}
		g.recent = g.recent[drop:]
	}
	g.check(now)

	var wait time.Duration
	if failed {
		g.clientRow[client]++
		if g.h.BackoffMin > 0 {
			wait = g.h.BackoffMin
			for i := 1; i < g.clientRow[client] && wait < g.h.BackoffMax; i++ {
				wait *= 2
			}
			wait = min(wait, max(g.h.BackoffMax, g.h.BackoffMin))
		}
	} else {
		g.clientRow[client] = 0
	}
	if pause := g.pauseUntil - now; pause > wait {
		wait = pause
	}
	if wait > 0 {
		g.backoffs++
		g.backoffFor += wait
	}
	return wait
}

// check trips the guard when a rule says the server is failing; called
// with g.mu held.
func (g *guard) check(now time.Duration) {
	if g.tripped != "" {
		return
	}
	var reason string
	switch {
	case g.h.ConnectFailures > 0 && g.connectRow >= g.h.ConnectFailures:
		reason = fmt.Sprintf("%d connection failures in a row (last: %s)", g.connectRow, g.lastErr)
	case g.h.FailuresInRow > 0 && g.failRow >= g.h.FailuresInRow:
		reason = fmt.Sprintf("%d failed requests in a row (last: %s)", g.failRow, g.lastErr)
	case g.h.FirstFailures > 0 && g.count == g.h.FirstFailures && g.failedAll == g.count:
		reason = fmt.Sprintf("the first %d requests all failed, as in the previous point (last: %s)", g.count, g.lastErr)
	case g.h.ErrorRate > 0 && now >= g.h.RateWindow && len(g.recent) >= max(g.h.MinRequests, 1):
		failed := 0
		for _, o := range g.recent {
			if o.failed {
				failed++
			}
		}
		if frac := float64(failed) / float64(len(g.recent)); frac > g.h.ErrorRate {
			reason = fmt.Sprintf("%.0f%% of the %d requests that ended in the last %v failed (last: %s)", 100*frac, len(g.recent), g.h.RateWindow, g.lastErr)
		}
	}
	if reason != "" {
		g.tripped = reason
		g.trip(reason)
	}
}

// paused is how long a send must wait for a server's Retry-After.
func (g *guard) paused() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pauseUntil - time.Since(g.began)
}

// reason is why the guard ended the point, "" when it did not.
func (g *guard) reason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}
