// Package result holds the data model every benchmark shares: Request, the
// timeline and outcome of one streamed completion, and the per-request metric
// definitions (TTFC, TBT, E2E, TPOT, interactivity) derived from it.
//
// Every time in a Request is a time.Duration offset from the run's start,
// taken from Go's monotonic clock. Wall-clock time appears only in run
// metadata. On disk a Request is one line of requests.jsonl, with times in
// seconds (see MarshalJSON).
package result
