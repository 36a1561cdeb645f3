package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// SetupKind says why a server cannot be benchmarked as configured. It is
// the Kind of a SetupError.
type SetupKind int

// The setup failures, in the order a benchmark meets them.
const (
	// SetupUnreachable: no connection could be made.
	SetupUnreachable SetupKind = iota + 1
	// SetupUnauthorized: the server answered 401 or 403.
	SetupUnauthorized
	// SetupNoModelList: the model list could not be read and no model was
	// named.
	SetupNoModelList
	// SetupNoModels: the server lists no models and no model was named.
	SetupNoModels
	// SetupUnknownModel: the server does not serve the model: it is
	// missing from a non-empty model list (Models holds the list), or the
	// completion endpoint answered 404 with a message about the model.
	SetupUnknownModel
	// SetupNoEndpoint: the completion endpoint answered 404 or 405.
	SetupNoEndpoint
	// SetupHTTPStatus: the completion endpoint answered another status
	// >= 400.
	SetupHTTPStatus
	// SetupTimedOut: no answer before the request timeout or the caller's
	// deadline.
	SetupTimedOut
	// SetupNotStreaming: the server answered 2xx with something that is
	// not an event stream (a JSON completion, an HTML page).
	SetupNotStreaming
	// SetupPromptRefused: the server refused a prompt (CheckPrompt), e.g.
	// one longer than the model's context.
	SetupPromptRefused
	// SetupPromptMismatch: the server counted a different number of
	// prompt tokens than expected (CheckPrompt).
	SetupPromptMismatch
	// SetupBadStream: the server streamed, but every test request's
	// stream failed: malformed events (Class decode), an error event or a
	// broken stream (stream), or no generated text (no_content).
	SetupBadStream
)

var setupKindNames = [...]string{
	SetupUnreachable:    "unreachable",
	SetupUnauthorized:   "unauthorized",
	SetupNoModelList:    "no_model_list",
	SetupNoModels:       "no_models",
	SetupUnknownModel:   "unknown_model",
	SetupNoEndpoint:     "no_endpoint",
	SetupHTTPStatus:     "http_status",
	SetupTimedOut:       "timed_out",
	SetupNotStreaming:   "not_streaming",
	SetupPromptRefused:  "prompt_refused",
	SetupPromptMismatch: "prompt_mismatch",
	SetupBadStream:      "bad_stream",
}

// String returns the kind's snake_case name, for logs.
func (k SetupKind) String() string {
	if k > 0 && int(k) < len(setupKindNames) {
		return setupKindNames[k]
	}
	return fmt.Sprintf("SetupKind(%d)", int(k))
}

// SetupError is a server that cannot be benchmarked as configured, found
// by ResolveModel, Preflight or CheckPrompt. Match it with errors.As and
// switch on Kind; it also matches ErrUnreachable, ErrUnauthorized and
// ErrUnknownModel with errors.Is. Fields that do not apply to a kind are
// zero.
type SetupError struct {
	Kind SetupKind
	// Op is the step that failed: "list models", "preflight" or
	// "check prompt".
	Op string
	// URL is the URL requested.
	URL string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Model is the model asked for.
	Model string
	// Models is the server's model list (SetupUnknownModel from the list).
	Models []string
	// Class is the failed request's result.Err* class (Preflight).
	Class string
	// Message is the server's message or the failure's (Preflight: the
	// request's result.Request.Err).
	Message string
	// Tokens is the prompt length the server counted and Want the one
	// expected (CheckPrompt).
	Tokens, Want int
	// Err is the underlying *Error, when there is one.
	Err error
}

// Error returns a one-line message: the step, what went wrong, and the
// server's or transport's words.
func (e *SetupError) Error() string {
	var why string
	switch e.Kind {
	case SetupUnreachable:
		why = "no server is listening at " + redact(e.URL)
	case SetupUnauthorized:
		why = fmt.Sprintf("%s refused the API key (HTTP %d)", redact(e.URL), e.Status)
	case SetupNoModelList:
		why = "could not list the models at " + redact(e.URL)
	case SetupNoModels:
		why = redact(e.URL) + " lists no models"
	case SetupUnknownModel:
		why = fmt.Sprintf("model %q is not served by %s", e.Model, redact(e.URL))
		if len(e.Models) > 0 {
			why += " (it serves: " + strings.Join(e.Models, ", ") + ")"
		}
	case SetupNoEndpoint:
		why = fmt.Sprintf("%s answered HTTP %d: no such endpoint", e.URL, e.Status)
	case SetupHTTPStatus:
		why = fmt.Sprintf("%s answered HTTP %d", e.URL, e.Status)
	case SetupTimedOut:
		why = e.URL + " did not answer in time"
		if e.Want > 0 {
			why = fmt.Sprintf("%s did not answer a %d-token prompt in time", e.URL, e.Want)
		}
	case SetupNotStreaming:
		why = fmt.Sprintf("%s did not stream a completion (%s)", e.URL, e.Class)
	case SetupBadStream:
		why = fmt.Sprintf("%s streamed, but every test request failed (%s)", e.URL, e.Class)
	case SetupPromptRefused:
		why = fmt.Sprintf("%s refused a %d-token prompt", e.URL, e.Want)
	case SetupPromptMismatch:
		why = fmt.Sprintf("the server counted %d tokens for a %d-token prompt", e.Tokens, e.Want)
	default:
		why = e.Kind.String()
	}
	if d := e.Detail(); d != "" {
		return e.Op + ": " + why + ": " + d
	}
	return e.Op + ": " + why
}

// Detail is the server's message, else the transport's error: the step
// and URL that an *Error (and a *url.Error) would repeat are left out.
func (e *SetupError) Detail() string {
	var ce *Error
	switch {
	case e.Message != "":
		return e.Message
	case errors.As(e.Err, &ce) && ce.Err != nil:
		// Only an outermost *url.Error: a wrapped one comes with more words.
		if ue, ok := ce.Err.(*url.Error); ok {
			return ue.Err.Error()
		}
		return ce.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return ""
}

// Unwrap returns the underlying error, if any.
func (e *SetupError) Unwrap() error { return e.Err }

// Is matches ErrUnreachable, ErrUnauthorized and ErrUnknownModel by Kind.
func (e *SetupError) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return e.Kind == SetupUnreachable
	case ErrUnauthorized:
		return e.Kind == SetupUnauthorized
	case ErrUnknownModel:
		return e.Kind == SetupUnknownModel
	}
	return false
}

// setupError builds a SetupError around err, copying the status and
// message of the *Error inside it.
func setupError(kind SetupKind, op, url string, err error) *SetupError {
	se := &SetupError{Kind: kind, Op: op, URL: url, Err: err}
	var e *Error
	if errors.As(err, &e) {
		se.Status, se.Message, se.Class = e.Status, e.Message, e.Class
	}
	return se
}

// setupAttempts is how many times a setup request is tried when the
// server answers with a transient failure (5xx, 429): a flaky server is
// benchmarked (and its failures recorded), not turned away.
const setupAttempts = 3

// transient reports whether an HTTP status is worth retrying.
func transient(status int) bool {
	return status >= http.StatusInternalServerError || status == http.StatusTooManyRequests
}

// retry calls f until it succeeds, fails with something other than an
// *Error with a transient status, ctx ends, or setupAttempts calls were
// made; it returns f's last error.
func retry(ctx context.Context, f func() error) error {
	var err error
	for range setupAttempts {
		err = f()
		var e *Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &e) || !transient(e.Status) {
			break
		}
	}
	return err
}

// ResolveModel returns the model to benchmark. With want empty it is the
// first model the server lists. Otherwise it is want, checked against the
// server's list: a list without it is a SetupUnknownModel error, while an
// empty list, or one that cannot be read for a reason other than an
// unreachable server or a refused key, lets want through (some servers
// list nothing), with a warning in the log. Every error is a *SetupError.
// The Client's own model is not used; see WithModel.
func (c *Client) ResolveModel(ctx context.Context, want string) (string, error) {
	const op = "list models"
	url := c.resolve("models")
	models, err := c.Models(ctx)
	switch {
	case errors.Is(err, ErrUnreachable):
		return "", setupError(SetupUnreachable, op, url, err)
	case errors.Is(err, ErrUnauthorized):
		return "", setupError(SetupUnauthorized, op, url, err)
	case err != nil && want == "":
		return "", setupError(SetupNoModelList, op, url, err)
	case err != nil:
		c.log.Warn("could not list models; using the model as given", "model", want, "err", err)
		return want, nil
	case want == "" && len(models) == 0:
		return "", &SetupError{Kind: SetupNoModels, Op: op, URL: url}
	case want == "":
		return models[0], nil
	case len(models) == 0 || slices.Contains(models, want):
		return want, nil
	}
	return "", &SetupError{Kind: SetupUnknownModel, Op: op, URL: url, Model: want, Models: models}
}

// preflightPrompt is the prompt of the preflight request.
const preflightPrompt = " preflight check: say hello"

// Preflight sends one short streamed request (two tokens, sequence -1)
// for the Client's model, so that a server that cannot be benchmarked
// (wrong endpoint, unknown model, no streaming) is found before anything
// is measured. Transient failures (5xx, 429) are retried, and so is a
// stream that failed after it began (a malformed event, an error event, a
// broken connection): one bad event is a fault to record during the run,
// not a reason to refuse the server. It returns nil, a *SetupError, or the
// context's error wrapped when ctx was canceled. When ctx's deadline
// passes the error is SetupTimedOut.
func (c *Client) Preflight(ctx context.Context) error {
	var r result.Request
	for range setupAttempts {
		r = c.Stream(ctx, time.Now(), Call{Seq: -1, Prompt: preflightPrompt, MaxTokens: 2})
		if r.OK() || !(transient(r.HTTPStatus) || badStream(&r)) || ctx.Err() != nil {
			break
		}
	}
	switch {
	case r.OK():
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("preflight: %w", ctx.Err())
	}
	return c.preflightError(ctx, &r)
}

// preflightError classifies a failed preflight request. The order
// matters: a 404 is an unknown model when its message says so, else a
// missing endpoint.
func (c *Client) preflightError(ctx context.Context, r *result.Request) *SetupError {
	e := &SetupError{Op: "preflight", URL: c.resolve(c.path), Status: r.HTTPStatus,
		Model: c.cfg.Model, Class: r.ErrClass, Message: r.Err}
	switch s := r.HTTPStatus; {
	case r.ErrClass == result.ErrConnect:
		e.Kind = SetupUnreachable
	case s == http.StatusNotFound && strings.Contains(strings.ToLower(r.Err), "model"):
		e.Kind = SetupUnknownModel
	case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
		e.Kind = SetupNoEndpoint
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Kind = SetupUnauthorized
	case s >= 400:
		e.Kind = SetupHTTPStatus
	case r.ErrClass == result.ErrTimeout, r.ErrClass == result.ErrDeadline, r.ErrClass == result.ErrCanceled && ctx.Err() != nil:
		e.Kind = SetupTimedOut
	case badStream(r):
		e.Kind = SetupBadStream
	default:
		e.Kind = SetupNotStreaming
	}
	return e
}

// badStream reports whether r streamed (a 2xx event stream) but failed
// along the way: a malformed event, an error event, a broken or empty
// stream. A 2xx answer that was no event stream at all is not one.
func badStream(r *result.Request) bool {
	switch r.ErrClass {
	case result.ErrDecode, result.ErrNoContent:
		return true
	case result.ErrStream:
		return r.HTTPStatus >= 200 && r.HTTPStatus < 300 && !strings.HasPrefix(r.Err, NotStreaming)
	}
	return false
}

// CheckPrompt sends prompt once as a usage probe (PromptTokens,
// retried on transient failures) and checks that the server counts
// exactly tokens prompt tokens: a server that refuses the prompt (one
// longer than the model's context, say) is a SetupPromptRefused error,
// one that does not answer it in time (the request timeout or deadline)
// a SetupTimedOut error, and one that counts differently (its /tokenize
// and its usage disagree) a SetupPromptMismatch error.
func (c *Client) CheckPrompt(ctx context.Context, prompt string, tokens int) error {
	var n int
	err := retry(ctx, func() (err error) {
		n, err = c.PromptTokens(ctx, prompt)
		return err
	})
	const op = "check prompt"
	switch {
	case errors.Is(err, ErrTimedOut):
		se := setupError(SetupTimedOut, op, c.resolve(c.path), err)
		se.Model, se.Want = c.cfg.Model, tokens
		return se
	case err != nil:
		se := setupError(SetupPromptRefused, op, c.resolve(c.path), err)
		se.Model, se.Want = c.cfg.Model, tokens
		return se
	case n != tokens:
		return &SetupError{Kind: SetupPromptMismatch, Op: op, URL: c.resolve(c.path),
			Model: c.cfg.Model, Tokens: n, Want: tokens}
	}
	return nil
}
