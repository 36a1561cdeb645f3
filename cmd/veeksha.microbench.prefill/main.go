// Command veeksha.microbench.prefill measures how time to first chunk
// (TTFC) grows with prompt length on an OpenAI-compatible server.
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
	os.Exit(cli.Main(cli.Prefill, os.Args[1:], os.Stdout, os.Stderr, cli.Build{Version: version, Commit: commit, Date: date}))
}
