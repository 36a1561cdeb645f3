package simengine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// DefaultAddr is the listen address used when Options.Addr is empty: a free
// loopback port.
const DefaultAddr = "127.0.0.1:0"

// Options configures Start. The zero value runs the default profile on a free
// loopback port with no test knobs. Engine limits left at 0 come from the
// profile.
type Options struct {
	// Addr is the TCP address to listen on; default DefaultAddr.
	Addr string
	// Profile is the deployment to simulate; the zero value (empty Name)
	// means the default profile.
	Profile Profile
	// Model is the served model id; default the profile's name.
	Model string

	// ChunkSize is the token budget of one iteration; default the profile's.
	ChunkSize int
	// MaxRunning is the most requests admitted at once; default the
	// profile's, capped at ChunkSize (every running request must be able to
	// decode in every iteration).
	MaxRunning int
	// KVCacheTokens is the KV-cache capacity in tokens; default the
	// profile's. A request is admitted only when its prompt plus its maximum
	// output fit in the free capacity.
	KVCacheTokens int
	// MaxModelLen is the context length in tokens; default the profile's.
	MaxModelLen int

	// BlockSize is the prefix cache's block size in tokens; default
	// DefaultBlockSize (16, as vLLM).
	BlockSize int
	// PrefixCacheBlocks is the prefix cache's capacity in blocks, least
	// recently used evicted first; default KVCacheTokens / BlockSize.
	PrefixCacheBlocks int
	// NoPrefixCache turns the prefix cache off (it is on by default, as
	// vLLM's automatic prefix caching): every prompt is then prefilled in
	// full, and /metrics has no prefix-cache counters.
	NoPrefixCache bool

	// Seed drives every random choice: jitter, early stops, and which
	// requests, streams and events the fault knobs hit.
	Seed uint64
	// Jitter, when positive, multiplies each iteration's duration by
	// 1+u with u uniform in [-Jitter, +Jitter]; default the profile's (0,
	// off). Must be below 1.
	Jitter float64

	// TokensPerChunk is the number of tokens carried by each SSE event
	// (the last event of a stream may carry fewer); default the profile's,
	// else 1.
	TokensPerChunk int
	// RoleEvent sends, as vLLM does, a first event whose delta holds only
	// {"role":"assistant"}, as soon as the request is accepted.
	RoleEvent bool
	// KeepAlive, when positive, sends an SSE comment ": keep-alive" at this
	// interval on every open stream.
	KeepAlive time.Duration
	// SentTimestamps adds "sim_sent_unix_ns", the server's wall-clock time
	// (Unix nanoseconds) just before the write, to every stream event. It is
	// always on in zero-cost mode.
	SentTimestamps bool

	// FailFraction of requests, chosen per request from Seed, are answered
	// with status FailStatus and an OpenAI-style error body.
	FailFraction float64
	// FailStatus is the HTTP status of failed requests; default 500.
	FailStatus int
	// StallFraction of streams, chosen per request from Seed, stop sending
	// for StallDuration once StallAfterTokens tokens have been sent. The
	// engine keeps generating meanwhile; the tokens made during the stall
	// are sent when it ends, one event each.
	StallFraction float64
	// StallAfterTokens is the number of tokens sent before a stall; default 1.
	StallAfterTokens int
	// StallDuration is how long a stalled stream sends nothing.
	StallDuration time.Duration
	// MalformedFraction of content events, chosen per event from Seed, are
	// preceded by an extra event whose data is truncated, invalid JSON. No
	// token is lost: the valid event follows.
	MalformedFraction float64

	// ZeroCost replaces the engine by fixed timing for measuring a client's
	// own overhead: no batching and no limits; every request gets its first
	// token FixedTTFT after it arrives and then one token every FixedGap,
	// independently of all others.
	ZeroCost bool
	// FixedTTFT is the time to the first token in zero-cost mode.
	FixedTTFT time.Duration
	// FixedGap is the time between tokens in zero-cost mode.
	FixedGap time.Duration

	// Record keeps every iteration and finished request in memory for
	// Server.Iterations and Server.Requests. Off by default: a long run
	// makes tens of thousands of iterations.
	Record bool
	// IterationLog, when set, receives one JSON line per iteration (an
	// Iteration), written by the engine goroutine just after the
	// iteration's tokens are released; every line is written when Close
	// returns. A slow writer delays the engine.
	IterationLog io.Writer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// withDefaults fills the zero fields from the profile and the package
// defaults. It returns an error only when the default profile cannot load.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Profile.Name == "" {
		p, err := LookupProfile(defaultProfile)
		if err != nil {
			return o, err
		}
		o.Profile = p
	}
	p := o.Profile
	if o.Model == "" {
		o.Model = p.Name
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = p.ChunkSize
	}
	if o.MaxRunning == 0 {
		o.MaxRunning = min(p.MaxRunning, o.ChunkSize)
	}
	if o.KVCacheTokens == 0 {
		o.KVCacheTokens = p.KVCacheTokens
	}
	if o.MaxModelLen == 0 {
		o.MaxModelLen = p.MaxModelLen
	}
	if o.Jitter == 0 {
		o.Jitter = p.Jitter
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.PrefixCacheBlocks == 0 && o.BlockSize > 0 {
		o.PrefixCacheBlocks = max(o.KVCacheTokens/o.BlockSize, 1)
	}
	if o.TokensPerChunk == 0 {
		o.TokensPerChunk = max(p.TokensPerChunk, 1)
	}
	if o.FailStatus == 0 {
		o.FailStatus = http.StatusInternalServerError
	}
	if o.StallAfterTokens == 0 {
		o.StallAfterTokens = 1
	}
	if o.ZeroCost {
		o.SentTimestamps = true
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// validate reports every problem of options that went through withDefaults.
func (o Options) validate() error {
	var errs []error
	if err := o.Profile.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"ChunkSize", o.ChunkSize},
		{"MaxRunning", o.MaxRunning},
		{"KVCacheTokens", o.KVCacheTokens},
		{"MaxModelLen", o.MaxModelLen},
		{"TokensPerChunk", o.TokensPerChunk},
		{"StallAfterTokens", o.StallAfterTokens},
		{"BlockSize", o.BlockSize},
		{"PrefixCacheBlocks", o.PrefixCacheBlocks},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("simengine: %s %d is not positive", f.name, f.v))
		}
	}
	if o.MaxRunning > o.ChunkSize {
		errs = append(errs, fmt.Errorf("simengine: MaxRunning %d is above ChunkSize %d: every running request must fit a decode token in the iteration budget", o.MaxRunning, o.ChunkSize))
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("simengine: Jitter %g is outside [0, 1)", o.Jitter))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"FailFraction", o.FailFraction},
		{"StallFraction", o.StallFraction},
		{"MalformedFraction", o.MalformedFraction},
	} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("simengine: %s %g is outside [0, 1]", f.name, f.v))
		}
	}
	if o.FailStatus < 400 || o.FailStatus > 599 {
		errs = append(errs, fmt.Errorf("simengine: FailStatus %d is not an HTTP error status (400-599)", o.FailStatus))
	}
	if o.StallDuration < 0 || o.KeepAlive < 0 || o.FixedTTFT < 0 || o.FixedGap < 0 {
		errs = append(errs, fmt.Errorf("simengine: negative duration (StallDuration %v, KeepAlive %v, FixedTTFT %v, FixedGap %v)",
			o.StallDuration, o.KeepAlive, o.FixedTTFT, o.FixedGap))
	}
	return errors.Join(errs...)
}
