package client

import "context"

// TokenMethod says how a TokenCounter measures prompt lengths. Its values
// are the ones recorded in result.Settings.LengthSource.
type TokenMethod string

const (
	// ByTokenize asks the server's /tokenize endpoint (Tokenize).
	ByTokenize TokenMethod = "tokenize"
	// ByUsageProbe sends a one-token request and reads its usage
	// (PromptTokens).
	ByUsageProbe TokenMethod = "usage_probe"
)

// TokenCounter measures prompt lengths in server tokens, chat template
// included: with the server's /tokenize endpoint while it has one, else
// with usage probes. A server without /tokenize is asked once; every later
// count goes straight to a probe. It is not safe for concurrent use.
type TokenCounter struct {
	c      *Client
	method TokenMethod
}

// NewTokenCounter returns a TokenCounter that asks c's server.
func NewTokenCounter(c *Client) *TokenCounter { return &TokenCounter{c: c} }

// Count returns how many prompt tokens the server sees for text. Transient
// failures (5xx, 429) are retried. Errors are *Error. Its signature fits
// sampler.CountFunc.
func (t *TokenCounter) Count(ctx context.Context, text string) (n int, err error) {
	if t.method != ByUsageProbe {
		var ok bool
		err = retry(ctx, func() (err error) {
			n, ok, err = t.c.Tokenize(ctx, text)
			return err
		})
		if err != nil || ok {
			if ok {
				t.method = ByTokenize
			}
			return n, err
		}
		t.method = ByUsageProbe
		t.c.log.Info("the server has no /tokenize endpoint; measuring prompt lengths with probe requests")
	}
	err = retry(ctx, func() (err error) {
		n, err = t.c.PromptTokens(ctx, text)
		return err
	})
	return n, err
}

// Method returns how the last count was made; empty before the first.
func (t *TokenCounter) Method() TokenMethod { return t.method }
