package client

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog ends a request that has received nothing for a while: the
// request timeout is an inactivity timeout, as in the original tool
// (httpx applies its timeout to each read, not to the whole response), so
// a long but healthy stream is never cut, while a server that goes
// silent — before the headers or mid-stream — is.
//
// Activity is recorded with one atomic store (touch), so the per-chunk
// path takes no lock; the timer checks, when it fires, how long the
// request has been quiet, and re-arms itself for the rest of the window
// when something arrived meanwhile.
//
// The watchdog reads the response body itself (watch, Read), rather than
// through a wrapper object: at thousands of streams every object a chunk's
// read touches is a cache miss, so the fields a read uses (body, last,
// start) come first and live in the one object.
type watchdog struct {
	body  io.ReadCloser // the watched response body (watch); only its reader uses it
	last  atomic.Int64  // offset from start of the last activity, in ns
	start time.Time
	idle  time.Duration
	fire  func()

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// newWatchdog starts a watchdog that calls fire once idle passes with no
// touch. The window starts now.
func newWatchdog(idle time.Duration, fire func()) *watchdog {
	w := &watchdog{idle: idle, start: time.Now(), fire: fire}
	w.mu.Lock()
	w.t = time.AfterFunc(idle, w.check)
	w.mu.Unlock()
	return w
}

// touch records activity: the inactivity window starts again.
func (w *watchdog) touch() {
	w.last.Store(int64(time.Since(w.start)))
}

// check runs when the timer fires: it fires the watchdog if the request
// has been quiet for the whole window, else waits for the rest of it.
func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	quiet := time.Since(w.start) - time.Duration(w.last.Load())
	if quiet >= w.idle {
		w.stopped = true
		w.fire()
		return
	}
	w.t.Reset(w.idle - quiet)
}

// stop ends the watch; fire is not called after stop returns.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// watch makes w the reader of body: every read that returns bytes is
// activity. The caller reads and closes the returned body (w itself)
// instead of body. Call it once, before the first read.
func (w *watchdog) watch(body io.ReadCloser) io.ReadCloser {
	w.body = body
	return w
}

// Read reads the watched body and touches the watchdog when bytes arrive.
func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if n > 0 {
		w.touch()
	}
	return n, err
}

// Close closes the watched body.
func (w *watchdog) Close() error {
	return w.body.Close()
}

// bound returns a context for one request made from parent: it ends with
// cause errRequestDeadline when the Client's RequestDeadline (if any)
// passes, and with cause errIdleTimeout when its watchdog — returned for
// the caller to touch — sees nothing arrive for RequestTimeout. stop ends
// the request: it stops the watchdog and cancels the context; calling it
// again does nothing.
func (c *Client) bound(parent context.Context) (ctx context.Context, stop func(), dog *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	cancelDeadline := context.CancelFunc(func() {})
	if c.deadline > 0 {
		ctx, cancelDeadline = context.WithTimeoutCause(ctx, c.deadline, errRequestDeadline)
	}
	dog = newWatchdog(c.timeout, func() { cancel(errIdleTimeout) })
	return ctx, func() {
		dog.stop()
		cancelDeadline()
		cancel(nil)
	}, dog
}
