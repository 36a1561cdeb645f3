package cli

import (
	"errors"
	"fmt"
)

// Exit codes of every binary.
const (
	// ExitOK: the run finished and validation passed (or was skipped).
	ExitOK = 0
	// ExitRunFailed: the run could not be completed (an I/O error, a
	// server that went away before anything could be measured).
	ExitRunFailed = 1
	// ExitUsage: bad flags or configuration, an unreachable server, an
	// unknown model, a server that cannot stream.
	ExitUsage = 2
	// ExitValidation: the run finished but a validity check failed: the
	// measurement is not valid.
	ExitValidation = 3
	// ExitThreshold: the measurement is valid but a --threshold was
	// crossed at some point: the server is too slow for the user's gate.
	// A failed validity check takes precedence (3).
	ExitThreshold = 4
	// ExitInterrupted: Ctrl-C. What was measured has been written.
	ExitInterrupted = 130
)

// usageError is a problem the user can fix: bad input or a server that
// cannot be benchmarked as configured. It exits with ExitUsage and is
// printed as one line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries a specific exit code from a command's Run.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitUsage
	default:
		return ExitRunFailed
	}
}
