package session

import (
	"errors"
	"fmt"

	"github.com/veeksha-go/veeksha/internal/fdlimit"
)

// openFilesMargin is the open files a run needs besides its connections:
// record and results files, plots, a browser's pipes, the Go runtime's
// own.
const openFilesMargin = 64

// OpenFiles is what EnsureOpenFiles found.
type OpenFiles struct {
	// Need is the open files the run needs.
	Need uint64
	// Soft and Hard are the limits found (zero on a platform without
	// one); Raised says the soft limit was raised to Need.
	Soft, Hard uint64
	Raised     bool
}

// OpenFilesError says that the hard open-file limit is below what a run
// needs: only the user (ulimit -n, or root) can raise it.
type OpenFilesError struct {
	Need, Soft, Hard uint64
}

func (e *OpenFilesError) Error() string {
	return fmt.Sprintf("needs about %d open files, but the open-file limit is %d (hard limit %d)", e.Need, e.Soft, e.Hard)
}

// OpenFilesNeeded is the open files a run holding conns connections at
// once needs: one per connection, a quarter more for the connections a
// closed loop dials while a finished stream's connection is still on its
// way back to the pool (measured: at a limit of exactly 300 + 64, 300
// clients under load had 15 connections fail to open), twice that when
// the server end of every connection is in this process too (the
// simulated engine, the self-check's engine), plus a margin for files.
func OpenFilesNeeded(conns int, engineInProcess bool) uint64 {
	conns += conns / 4
	if engineInProcess {
		conns *= 2
	}
	return uint64(max(conns, 1)) + openFilesMargin
}

// EnsureOpenFiles makes sure this process may open the files a run with
// conns connections needs (OpenFilesNeeded), before any work: a soft
// limit below it is raised when the hard limit allows; otherwise the
// error is an *OpenFilesError and nothing is changed. On a platform
// without the limit (Windows) it checks nothing.
func EnsureOpenFiles(conns int, engineInProcess bool) (OpenFiles, error) {
	need := OpenFilesNeeded(conns, engineInProcess)
	found, raised, err := fdlimit.Ensure(need)
	f := OpenFiles{Need: need, Soft: found.Soft, Hard: found.Hard, Raised: raised}
	var low *fdlimit.TooLowError
	switch {
	case errors.Is(err, fdlimit.ErrUnsupported):
		return f, nil
	case errors.As(err, &low):
		return f, &OpenFilesError{Need: need, Soft: low.Limit.Soft, Hard: low.Limit.Hard}
	case err != nil:
		return f, fmt.Errorf("open-file limit: %w", err)
	}
	return f, nil
}
