// Package fdlimit checks the process's open-file limit (RLIMIT_NOFILE)
// against what a run will need, before the run starts. Every stream is a
// connection, and every connection a file descriptor: a plan with more
// concurrent streams than the limit allows would fail its requests with
// "too many open files" and could not even write its results. Ensure
// raises the soft limit when the hard limit allows (Go itself raises it to
// the hard limit at start-up on Linux, so this mostly matters elsewhere),
// and otherwise reports a *TooLowError naming the limit to set.
//
// On platforms without the limit (Windows) Ensure does nothing.
package fdlimit

import (
	"errors"
	"fmt"
)

// Unlimited is the value of an unlimited Soft or Hard limit.
const Unlimited = ^uint64(0)

// Limit is an open-file limit: the soft limit in force and the hard
// ceiling an unprivileged process may raise it to.
type Limit struct {
	Soft, Hard uint64
}

// ErrUnsupported is returned by Get on a platform without the limit.
var ErrUnsupported = errors.New("fdlimit: no open-file limit on this platform")

// TooLowError says that the hard limit is below what the run needs.
type TooLowError struct {
	Need  uint64
	Limit Limit
}

func (e *TooLowError) Error() string {
	return fmt.Sprintf("needs about %d open files, but the open-file limit is %d (hard limit %d)", e.Need, e.Limit.Soft, e.Limit.Hard)
}

// Ensure makes sure the process may open need files. It returns the limit
// found and whether it raised the soft limit (to need). When the hard
// limit is below need the error is a *TooLowError, and nothing is
// changed. On a platform without the limit it returns ErrUnsupported.
func Ensure(need uint64) (found Limit, raised bool, err error) {
	found, err = Get()
	if err != nil {
		return found, false, err
	}
	soft, ok := decide(found, need)
	switch {
	case !ok:
		return found, false, &TooLowError{Need: need, Limit: found}
	case soft == found.Soft:
		return found, false, nil
	}
	if err := setSoft(found, soft); err != nil {
		return found, false, fmt.Errorf("fdlimit: raise the open-file limit from %d to %d: %w", found.Soft, soft, err)
	}
	return found, true, nil
}

// decide returns the soft limit the process should run with to open need
// files, and false when the hard limit does not allow it.
func decide(l Limit, need uint64) (soft uint64, ok bool) {
	switch {
	case l.Soft >= need:
		return l.Soft, true
	case l.Hard >= need:
		return need, true
	}
	return l.Soft, false
}
