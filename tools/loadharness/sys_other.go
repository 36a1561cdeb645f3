//go:build !linux

package main

import (
	"errors"
	"time"
)

// The harness measures through Linux interfaces (getrusage, /proc); on
// other systems these report nothing and the table shows zeros.

func residentBytes() int64                    { return 0 }
func residentBytesOf(int) (int64, error)      { return 0, errors.New("not supported on this system") }
func openFileLimit() (soft, hard uint64)      { return 0, 0 }
func processCPUOf(int) (time.Duration, error) { return 0, errors.New("not supported on this system") }
func loadAverage() float64                    { return -1 }
