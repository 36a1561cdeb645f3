package simengine

// Every random choice of the HTTP layer is a pure function of the seed, what
// is being decided, the request's sequence number and, for per-event choices,
// the event's index. So the same seed gives the same faults and the same
// early stops for the n-th request, whatever the timing, and tests can
// predict them.

// Purposes of a decision, mixed into its hash so choices are independent.
const (
	decideFail uint64 = iota + 1
	decideStall
	decideMalformed
	decideStop
)

// unit returns a uniform number in [0, 1) for (seed, purpose, seq, index).
func unit(seed, purpose uint64, seq, index int) float64 {
	h := mix(seed ^ mix(purpose*0x9E3779B97F4A7C15^mix(uint64(seq)+0x632BE59BD9B4E019*uint64(index+1))))
	return float64(h>>11) / (1 << 53)
}

// mix is splitmix64's finalizer.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// hit reports whether the choice for (purpose, seq, index) falls in fraction.
func hit(seed, purpose uint64, fraction float64, seq, index int) bool {
	return fraction > 0 && unit(seed, purpose, seq, index) < fraction
}

// stopLength is the output length of a request that may stop early (no
// ignore_eos): uniform over [max(minTokens, 1), maxTokens].
func stopLength(seed uint64, seq, minTokens, maxTokens int) int {
	lo := max(minTokens, 1)
	if lo >= maxTokens {
		return maxTokens
	}
	return lo + int(unit(seed, decideStop, seq, 0)*float64(maxTokens-lo+1))
}
