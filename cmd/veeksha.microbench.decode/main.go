// Command veeksha.microbench.decode measures how the time between tokens
// (TBT) changes with batch size, inside the window where the whole batch
// decodes together, on an OpenAI-compatible server.
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
	os.Exit(cli.Main(cli.Decode, os.Args[1:], os.Stdout, os.Stderr, cli.Build{Version: version, Commit: commit, Date: date}))
}
