// Package stress is the stress microbenchmark: what throughput the server
// gives at what latency, over a series of load levels. A level is a number
// of concurrent clients (closed loop, fixed-clients) or an arrival rate in
// requests per second (open loop, fixed-rate, Poisson arrivals on an
// absolute schedule). Levels come from a list (manual), a log-spaced range,
// or an automatic scan (package autoscan) that finds where throughput stops
// growing.
//
// Each level runs for the point duration; admission stops at its end and
// in-flight requests get a grace period, after which they are cut and
// recorded as such. Throughput counts the tokens that arrived inside the
// fixed window [warmup, duration], divided by its length, so that ramp-up
// and drain never dilute it; latency percentiles use the requests sent
// inside that window.
package stress
