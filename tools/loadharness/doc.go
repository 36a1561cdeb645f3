// Command loadharness measures the benchmark client's own overhead: how
// late it sees what a server sent, how much CPU and memory it needs per
// stream, and how that compares with a bare net/http reader.
//
// It starts the simulated engine (tools/simengine) in zero-cost mode as a
// separate process on a free loopback port: every stream gets its first
// chunk a fixed time after the request arrives and then one chunk every
// fixed gap, and every chunk carries "sim_sent_unix_ns", the engine's
// wall-clock time just before it wrote the chunk. For each scenario
// (streams × tokens per second) and each reader it re-executes itself as a
// worker process ("loadharness worker ..."), which opens all the streams,
// stamps every chunk's arrival and reports:
//
//   - receive lag: arrival − sim_sent_unix_ns, both wall-clock on the same
//     machine, for the steady state (every stream open and past its first
//     chunks) and for the connection-opening burst around it;
//   - engine lateness: how late the engine sent each chunk compared with a
//     perfect grid, estimated per stream because the engine does not expose
//     its plan (see README.md);
//   - client CPU (getrusage, user+sys) as cores, RSS and memory per open
//     stream, connection-open time (httptrace GetConn→GotConn), Go scheduler
//     latency, errors.
//
// With -pin (the default on a machine with two or more CPUs) the engine runs
// on CPU 1 and the worker on CPU 0 (taskset), so neither steals the other's
// core. Every scenario is bounded in stream count and time; everything runs
// on 127.0.0.1. See README.md for the method and the measured tables.
package main
