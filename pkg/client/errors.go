package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// Sentinel errors for the startup calls (Models, Tokenize,
// PromptTokens), matched with errors.Is on the *Error they return,
// and for the setup steps (ResolveModel, Preflight, CheckPrompt), whose
// *SetupError matches ErrUnreachable, ErrUnauthorized and ErrUnknownModel
// by its Kind. One error can match several: an unknown model answered
// with 404 is both ErrUnknownModel and ErrNotFound, so check
// ErrUnknownModel first.
var (
	// ErrUnreachable: no connection could be made (connection refused, no
	// such host, network unreachable).
	ErrUnreachable = errors.New("server unreachable")
	// ErrNotFound: the server answered 404 (no such endpoint, or no such
	// model).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the server answered 401 or 403 (missing or wrong
	// API key).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnknownModel: the server answered 404, 400 or 422 with a message
	// that mentions the model.
	ErrUnknownModel = errors.New("unknown model")
	// ErrTimedOut: no answer in time: nothing arrived for the request
	// timeout, or the request deadline passed.
	ErrTimedOut = errors.New("timed out")
)

// Error is a failed startup call. It matches the sentinel errors above
// with errors.Is, and unwraps to the transport error when there was no
// response.
type Error struct {
	// Op is what was attempted, e.g. "list models".
	Op string
	// URL is the URL requested.
	URL string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Message is the server's error message (or a body excerpt).
	Message string
	// Err is the transport error when Status is 0.
	Err error
	// Class is the result.Err* class of the failure when it is known
	// (a streamed probe's, or a timeout); empty otherwise.
	Class string
}

// Error returns a one-line message that names the URL.
func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.unreachable():
		return fmt.Sprintf("%s: no server is listening at %s: %v", e.Op, redact(e.URL), e.Err)
	case e.Status == 0 && e.Err != nil:
		return fmt.Sprintf("%s: %s: %v", e.Op, redact(e.URL), e.Err)
	case e.Status == 0:
		return fmt.Sprintf("%s: %s: %s", e.Op, redact(e.URL), e.Message)
	}
	return fmt.Sprintf("%s: %s answered HTTP %d: %s", e.Op, redact(e.URL), e.Status, e.Message)
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches ErrUnreachable, ErrNotFound, ErrUnauthorized,
// ErrUnknownModel and ErrTimedOut.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrTimedOut:
		return e.Class == result.ErrTimeout || e.Class == result.ErrDeadline
	case ErrUnreachable:
		return e.Status == 0 && e.unreachable()
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnknownModel:
		switch e.Status {
		case http.StatusNotFound, http.StatusBadRequest, http.StatusUnprocessableEntity:
			return strings.Contains(strings.ToLower(e.Message), "model")
		}
	}
	return false
}

// unreachable reports whether the transport error happened while dialing.
func (e *Error) unreachable() bool {
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(e.Err, &dns)
}

// retryAfter reads a Retry-After header (RFC 9110: delay-seconds or an
// HTTP date) as a wait from now; 0 when absent, unreadable or past.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact is u with any password replaced by "xxxxx": error messages are
// printed and saved, the credentials in a base URL never are.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
