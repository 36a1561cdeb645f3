// Package autoscan plans the load levels of the stress benchmark. It is
// clock-free: it decides which levels to run, and a Prober supplied by the
// caller runs them.
//
// A level is a float64: an integer number of concurrent clients in closed
// loop (fixed-clients), or requests per second in open loop (fixed-rate,
// where manual levels may be fractional).
//
//   - Manual returns the user's levels sorted and deduplicated.
//   - LogSpaced returns log-spaced integer levels between two bounds (range
//     mode, and the fill phase of auto mode).
//   - Auto runs the three-phase automatic sweep: an exponential probe that
//     finds the upper bound where output throughput stops growing, an
//     interactivity bound below which lower load brings no perceptible
//     per-user gain, and log-spaced fill levels between the two, reusing
//     levels already measured (in this scan or in a resumed run). Every
//     decision is recorded in the returned Plan.
package autoscan
