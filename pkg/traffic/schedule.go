package traffic

import (
	"context"
	"time"
)

// Schedule is one arrival pattern, ready to run: it calls send once per
// request it admits, with the request's Slot, and returns the number of
// requests admitted after every send has returned. The load engine
// (pkg/runner) runs any Schedule the same way, so a benchmark chooses its
// pattern by value.
type Schedule func(ctx context.Context, began time.Time, send SendFunc) int

// InOrder is Sequential as a Schedule: n requests, one at a time.
func InOrder(n int) Schedule {
	return func(ctx context.Context, began time.Time, send SendFunc) int {
		return Sequential(ctx, began, n, send)
	}
}

// LaunchInOrder is SequentialLaunch as a Schedule: n requests kept in
// flight together, each released once the previous one is accepted. The
// send accepts its request by calling Slot.Accept (the client does it when
// the response headers arrive).
func LaunchInOrder(n int, ticketTimeout time.Duration) Schedule {
	return func(ctx context.Context, began time.Time, send SendFunc) int {
		return SequentialLaunch(ctx, began, n, ticketTimeout, func(ctx context.Context, slot Slot, accepted func()) {
			slot.Accepted = accepted
			send(ctx, slot)
		})
	}
}

// ClosedLoop is Closed as a Schedule: clients each sending their next
// request as soon as the previous one returns, admitting until admitUntil.
func ClosedLoop(clients int, admitUntil time.Duration) Schedule {
	return func(ctx context.Context, began time.Time, send SendFunc) int {
		return Closed(ctx, began, clients, admitUntil, send)
	}
}

// OpenLoop is Open as a Schedule: one request per arrival offset, on an
// absolute schedule that never waits for requests in flight.
func OpenLoop(arrivals []time.Duration) Schedule {
	return func(ctx context.Context, began time.Time, send SendFunc) int {
		return Open(ctx, began, arrivals, send)
	}
}
