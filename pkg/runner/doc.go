// Package runner is the one load engine under every benchmark and the
// client self-check. A benchmark describes one point as a Plan: a
// traffic.Schedule (sequential, launched in order, closed loop, open-loop
// Poisson), a function that builds the request of each slot, and where
// its records go. Run executes the plan and returns a Batch: every
// request's record in send order, what the client process did meanwhile
// (fidelity), and why it ended.
//
// The flow of one request: the schedule decides its slot and intended
// send time; Run builds its client.Call and has the Sender serialize it
// (Preparer) — the first Plan.Ahead of them before the point's clock
// starts, then Plan.Lookahead of them ahead of the schedule in a goroutine
// of their own, or else as their slots are released; always before the
// Sent stamp; the Sender (the streaming client) stamps and streams it; the finished record goes to the point's Sink
// (requests.jsonl, appended as each request ends) and into the batch.
//
// Run is where cancellation, the end-of-point cutoff and cut requests,
// progress events and client-fidelity sampling are handled, once for
// all benchmarks. It never prints; progress goes to Deps.Progress.
package runner
