package simengine

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling goroutine's thread in nanosleep(2) for d.
// The Go timer wakes up to about 1 ms late on Linux (the runtime's poller
// rounds its timeout down to whole milliseconds and then polls again);
// nanosleep wakes within about 0.1 ms, which keeps the engine's token
// release times close to its schedule.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR only shortens the sleep; the caller loops
}
