package result

import "time"

// Definitions returns each metric's name and definition. It is written into
// every results JSON so that a reader knows exactly what was measured, and
// README.md repeats it. The methods below are the only implementations.
func Definitions() map[string]string {
	return map[string]string{
		"ttfc":          "time to first chunk: arrival of the first SSE chunk carrying generated text (content or reasoning; role-only and empty deltas do not count) minus the moment the request was sent",
		"tbt":           "time between tokens: gaps between consecutive content chunks; when a chunk carries several tokens the per-token gap is the chunk gap divided by its token count",
		"e2e":           "end-to-end latency: arrival of the last content chunk minus the moment the request was sent",
		"tpot":          "time per output token: (e2e - ttfc) / (output_tokens - 1), output tokens as reported by the server when it reports usage",
		"interactivity": "tokens per second seen by one user: 1 / tpot; the P99 column is the slowest 1% of users (1 / tpot_p99), not a 99th percentile of speed",
		"send_lag":      "actual send time minus intended send time (open-loop arrivals, ticket releases, free clients)",
		"percentiles":   "linear interpolation between closest ranks (numpy's default method)",
	}
}

// TTFC is the time to first chunk: the first content chunk's arrival minus
// Sent. ok is false when no content chunk arrived.
func (r *Request) TTFC() (d time.Duration, ok bool) {
	if len(r.TokenTimes) == 0 {
		return 0, false
	}
	return r.TokenTimes[0] - r.Sent, true
}

// E2E is the end-to-end latency: the last content chunk's arrival minus
// Sent. ok is false when no content chunk arrived.
func (r *Request) E2E() (d time.Duration, ok bool) {
	if len(r.TokenTimes) == 0 {
		return 0, false
	}
	return r.TokenTimes[len(r.TokenTimes)-1] - r.Sent, true
}

// TPOT is the time per output token after the first: (E2E - TTFC) divided by
// (OutputTokens - 1). ok is false with fewer than two output tokens or fewer
// than two chunks.
func (r *Request) TPOT() (d time.Duration, ok bool) {
	if r.OutputTokens < 2 || len(r.TokenTimes) < 2 {
		return 0, false
	}
	span := r.TokenTimes[len(r.TokenTimes)-1] - r.TokenTimes[0]
	return span / time.Duration(r.OutputTokens-1), true
}

// Interactivity is 1 / TPOT in tokens per second for this user. ok is false
// when TPOT is undefined or zero.
func (r *Request) Interactivity() (tokPerSec float64, ok bool) {
	tpot, ok := r.TPOT()
	if !ok || tpot <= 0 {
		return 0, false
	}
	return 1 / tpot.Seconds(), true
}

// ChunkGaps returns the gaps between consecutive content chunks (TBT per
// chunk). It has len(TokenTimes)-1 entries.
func (r *Request) ChunkGaps() []time.Duration {
	if len(r.TokenTimes) < 2 {
		return nil
	}
	gaps := make([]time.Duration, len(r.TokenTimes)-1)
	for i := 1; i < len(r.TokenTimes); i++ {
		gaps[i-1] = r.TokenTimes[i] - r.TokenTimes[i-1]
	}
	return gaps
}

// TokenGaps returns per-token gaps: each chunk gap divided evenly among the
// tokens the later chunk carried. When TokensPerChunk is unknown it equals
// ChunkGaps.
func (r *Request) TokenGaps() []time.Duration {
	if len(r.TokensPerChunk) != len(r.TokenTimes) {
		return r.ChunkGaps()
	}
	var gaps []time.Duration
	for i := 1; i < len(r.TokenTimes); i++ {
		n := r.TokensPerChunk[i]
		if n < 1 {
			n = 1
		}
		g := (r.TokenTimes[i] - r.TokenTimes[i-1]) / time.Duration(n)
		for range n {
			gaps = append(gaps, g)
		}
	}
	return gaps
}

// SendLag is Sent minus Intended: how late the client was against the
// traffic pattern's plan.
func (r *Request) SendLag() time.Duration { return r.Sent - r.Intended }
