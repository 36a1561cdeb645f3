// Package cli is the command-line front end of the three microbenchmark
// binaries: kong flag structs turned into a pkg/session and a benchmark's
// Config, the run folder and banner, progress display, result writing,
// and exit codes. Main is the whole program; the
// cmd/ mains only pass it their build information.
package cli
