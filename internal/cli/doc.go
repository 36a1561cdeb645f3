// Package cli is the command-line front end of the three microbenchmark
// binaries: kong flag structs, the shared session setup (simulated engine,
// the client's configuration, hints for the setup errors pkg/client finds,
// prompt calibration, run folder), progress display, result writing, and
// exit codes. Main is the whole program; the
// cmd/ mains only pass it their build information.
package cli
