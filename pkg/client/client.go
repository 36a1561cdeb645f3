package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Endpoint selects the OpenAI API a Client streams from.
type Endpoint string

const (
	// Chat is POST <base>/chat/completions: the prompt is sent as one user
	// message and the server applies its chat template.
	Chat Endpoint = "chat"
	// Completions is POST <base>/completions: the prompt text is sent as is.
	Completions Endpoint = "completions"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultRequestTimeout is how long a request may receive nothing
	// (Config.RequestTimeout).
	DefaultRequestTimeout = 120 * time.Second
	// DefaultMaxConcurrency sizes the idle-connection pool when
	// Config.MaxConcurrency is 0.
	DefaultMaxConcurrency = 256
)

// userAgent is sent with every request, so server logs name the tool.
const userAgent = "veeksha-go"

// Config says which server to talk to and how. It holds no secrets other
// than APIKey, which is sent only as "Authorization: Bearer <key>".
type Config struct {
	// BaseURL is the OpenAI base URL, e.g. "http://localhost:8000/v1".
	BaseURL string
	// APIKey is sent as a bearer token when non-empty. The package reads
	// no environment variable (OPENAI_API_KEY included).
	APIKey string
	// Model is sent with every request. It may be empty while the model
	// is not known yet: such a Client can list models (Models,
	// ResolveModel), and WithModel then gives one for the chosen model.
	Model string
	// Endpoint is Chat (the default when empty) or Completions.
	Endpoint Endpoint
	// RequestTimeout is an inactivity timeout, as in the original tool:
	// a request that receives nothing for this long — no response
	// headers, no byte of its stream — fails with class timeout. A
	// stream of any length that keeps sending is never cut by it. 0
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// RequestDeadline, when positive, bounds each request from the send to
	// the end of its stream, however steadily it streams: past it the
	// request fails with class deadline. 0 means none.
	RequestDeadline time.Duration
	// MaxConcurrency is the most requests the caller will have in flight
	// at once; it sizes the connection pool so that connections are
	// reused between requests instead of reopened. 0 means
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// NonStandard adds the vLLM-style fields that pin the output length
	// and report usage per chunk: ignore_eos, min_tokens and
	// stream_options.continuous_usage_stats.
	NonStandard bool
	// RunID prefixes the X-Request-Id header ("<RunID>-<seq>"), so server
	// logs can be matched with requests.jsonl. Make it unique per run
	// folder: some servers reject two in-flight requests with one id.
	RunID string
	// Logger receives debug records per request; nil discards them.
	Logger *slog.Logger
}

// Client sends streamed completions to one server. It is safe for
// concurrent use. Each Client owns its HTTP transport and connections;
// call Close when done.
type Client struct {
	cfg  Config
	base *url.URL
	path string // "chat/completions" or "completions", relative to base
	url  string // the absolute URL of path
	tr   *http.Transport
	hc   *http.Client
	// streams is the transport of every request (through hc for the
	// set-up requests, directly for the streams): the wire transport
	// (wire) for an http base URL where it is supported, else tr.
	streams  http.RoundTripper
	wire     *wireTransport
	log      *slog.Logger
	timeout  time.Duration // inactivity
	deadline time.Duration // total, 0 for none
}

// New checks cfg and builds a Client. It makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = Chat
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		base:     base,
		path:     "chat/completions",
		log:      cfg.Logger,
		timeout:  cfg.RequestTimeout,
		deadline: cfg.RequestDeadline,
	}
	if cfg.Endpoint == Completions {
		c.path = "completions"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.url = c.resolve(c.path)
	c.tr = newTransport(cfg.MaxConcurrency)
	// No Timeout, which would cut long streams: each request has its
	// own inactivity watchdog (RequestTimeout) and optional deadline.
	c.streams = c.tr
	if base.Scheme == "http" && wireSupported {
		c.wire = newWireTransport(cfg.MaxConcurrency)
		c.streams = c.wire
	}
	c.hc = &http.Client{
		Transport: c.streams,
		// A redirect is answered as the status it is, as a stream's is:
		// the base URL should name the server itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// validate reports every problem in cfg and returns the parsed base URL.
func (cfg *Config) validate() (*url.URL, error) {
	var errs []error
	base, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		errs = append(errs, errors.New("client: base URL is empty"))
	case err != nil:
		errs = append(errs, fmt.Errorf("client: base URL %q: %w", cfg.BaseURL, err))
	case base.Scheme != "http" && base.Scheme != "https":
		errs = append(errs, fmt.Errorf("client: base URL %q: scheme must be http or https", cfg.BaseURL))
	case base.Host == "":
		errs = append(errs, fmt.Errorf("client: base URL %q has no host", cfg.BaseURL))
	}
	if cfg.Endpoint != Chat && cfg.Endpoint != Completions {
		errs = append(errs, fmt.Errorf("client: endpoint %q: want %q or %q", cfg.Endpoint, Chat, Completions))
	}
	if cfg.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("client: request timeout %v is negative", cfg.RequestTimeout))
	}
	if cfg.RequestDeadline < 0 {
		errs = append(errs, fmt.Errorf("client: request deadline %v is negative", cfg.RequestDeadline))
	}
	if cfg.MaxConcurrency < 0 {
		errs = append(errs, fmt.Errorf("client: max concurrency %d is negative", cfg.MaxConcurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	return base, nil
}

// newTransport builds the one HTTP transport of a Client, tuned for many
// long streams to one host:
//   - MaxIdleConnsPerHost >= the concurrency, so a wave of requests reuses
//     the previous wave's connections (the default keeps 2 and reopens the
//     rest, and connection setup would land in TTFC);
//   - HTTP/1.1 only: one stream per TCP connection, as the Python tools do;
//     HTTP/2 over TLS multiplexes streams and adds head-of-line delays;
//   - no transparent gzip, which would buffer the event stream;
//   - no response-header timeout: a long prefill is not a failure; the
//     per-request inactivity watchdog (RequestTimeout) and optional
//     deadline (RequestDeadline) bound a request.
func newTransport(maxConcurrency int) *http.Transport {
	return &http.Transport{
		Proxy: nil, // HTTP_PROXY is ignored: a proxy's latency would be measured as the server's
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no total limit
		MaxIdleConnsPerHost:   maxConcurrency,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// newRequest builds a request to url with exactly the headers this
// package sends: Accept, Content-Type (with a body), Authorization (with
// an API key), User-Agent and, for completions, X-Request-Id. Nothing is
// taken from the environment.
func (c *Client) newRequest(ctx context.Context, method, url, accept string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Body = requestBody{bytes.NewReader(body), body}
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return requestBody{bytes.NewReader(body), body}, nil }
	}
	h := make(http.Header, 6)
	h["Accept"] = []string{accept}
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	if c.cfg.APIKey != "" {
		h["Authorization"] = []string{"Bearer " + c.cfg.APIKey}
	}
	h["User-Agent"] = []string{userAgent}
	req.Header = h
	return req, nil
}

// requestBody is a request body whose bytes the wire transport writes as
// they are, without reading them into a copy.
type requestBody struct {
	*bytes.Reader
	b []byte
}

func (requestBody) Close() error { return nil }

// Close closes the Client's idle connections. Requests in flight are not
// affected.
func (c *Client) Close() {
	c.tr.CloseIdleConnections()
	if c.wire != nil {
		c.wire.CloseIdleConnections()
	}
}

// BaseURL returns the effective base URL requests go to (with a trailing
// slash), for logs and run metadata.
func (c *Client) BaseURL() string { return c.base.String() }

// Root returns the server root: the base URL without its trailing slash
// and without a final /v1, e.g. "http://localhost:8000". Non-OpenAI
// endpoints (/tokenize, /version, /metrics) live there.
func (c *Client) Root() string {
	return strings.TrimSuffix(strings.TrimSuffix(c.base.String(), "/"), "/v1")
}

// Model returns the model sent with every request; empty for a Client
// that only lists models.
func (c *Client) Model() string { return c.cfg.Model }

// WithModel returns a Client that sends model and otherwise behaves like
// c. Both share one transport and its connections, so the Client built to
// list models (see ResolveModel) is reused for the run; Close on either
// closes the idle connections of both. c is not changed.
func (c *Client) WithModel(model string) *Client {
	cp := *c
	cp.cfg.Model = model
	return &cp
}

// drain reads what is left of a body, at most limit bytes, so the
// connection can be reused, then closes it.
func drain(body io.ReadCloser, limit int64) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, limit))
	_ = body.Close()
}
