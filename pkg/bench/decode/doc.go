// Package decode is the decode microbenchmark: how the time between tokens
// (TBT) changes with batch size and context length. For each (batch size
// B, input length L) it launches B requests in order, each released when
// the previous one has been accepted, so that the first is decoding before
// the last finishes its prefill; then it measures TBT only inside the
// decode window, the time when all B requests were decoding together
// (package decodewindow). Outside it, ramp-up prefills and the ragged tail
// would mix other batch sizes into the numbers.
package decode
