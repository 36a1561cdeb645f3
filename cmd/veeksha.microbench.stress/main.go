// Command veeksha.microbench.stress measures the throughput an
// OpenAI-compatible server gives at each load level, and the latency it
// costs: manual, log-spaced or automatically found levels, closed or open loop.
package main

import (
	"os"

	"github.com/veeksha-go/veeksha/internal/cli"
)

// Set by the release build's ldflags.
var (
	version = ""
	commit  = ""
	date    = ""
)

func main() {
	os.Exit(cli.Main(cli.Stress, os.Args[1:], os.Stdout, os.Stderr, cli.Build{Version: version, Commit: commit, Date: date}))
}
