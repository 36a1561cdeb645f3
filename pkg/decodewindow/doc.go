// Package decodewindow finds the steady-state decode window of a batch of
// streamed requests and extracts the time-between-tokens (TBT) samples that
// lie inside it. It is pure and clock-free: it reads chunk arrival offsets
// and never looks at a clock.
//
// A request decodes from its first content chunk to its last. The decode
// window is made of the times when at least a threshold number of requests
// were decoding at once; by default the threshold is the peak concurrency
// actually held (all of the batch, when the server batched it all). The
// samples are the gaps between consecutive content chunks whose later chunk
// arrived inside a selected window, both ends inclusive; the time to first
// chunk is never a sample. When the number of tokens each chunk carried is
// known, per-token gaps are reported too.
//
// The algorithm follows reference §6.4 of the original tool with two
// deliberate differences:
//
//   - Peak concurrency counts only concurrency held for a positive time.
//     When one request's last chunk and another's first chunk share the
//     same instant, the two were never decoding together, so they do not
//     make a peak of 2 (the original counted that instant).
//   - Adjacent qualifying segments are merged into one maximal segment, so
//     an arrival on a boundary is never counted twice. With a fixed
//     threshold below the peak this is common (the count goes 2, 3, 2); with
//     the default threshold it happens only when one request ends at the
//     very instant another starts.
//
// Analyze is the entry point; Result.Report is the decode_window.json form.
package decodewindow
