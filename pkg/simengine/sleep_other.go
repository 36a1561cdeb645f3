//go:build !linux

package simengine

import "time"

// preciseSleep sleeps for d with the Go timer (see sleep_linux.go).
func preciseSleep(d time.Duration) { time.Sleep(d) }
