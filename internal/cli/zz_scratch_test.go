package cli

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

func TestZZScratch(t *testing.T) {
	for _, b := range []Bench{Prefill, Decode, Stress} {
		var cmd any
		switch b {
		case Prefill:
			cmd = &struct {
				PrefillCmd `embed:""`
				Completion CompletionFlag `name:"completion" placeholder:"SHELL" help:"Print a completion script for bash, zsh or fish and exit."`
			}{}
		case Decode:
			cmd = &struct {
				DecodeCmd  `embed:""`
				Completion CompletionFlag `name:"completion" placeholder:"SHELL" help:"Print a completion script for bash, zsh or fish and exit."`
			}{}
		case Stress:
			cmd = &struct {
				StressCmd  `embed:""`
				Completion CompletionFlag `name:"completion" placeholder:"SHELL" help:"Print a completion script for bash, zsh or fish and exit."`
			}{}
		}
		p, err := kong.New(cmd, kong.Name(b.Binary()), kong.Vars{
			"version": "x", "default_api_base": DefaultAPIBase, "default_output_dir": DefaultOutputDir,
			"default_seed": "42", "default_request_timeout": "120", "default_benchmark_timeout": "600",
			"sim_profiles": strings.Join(simengine.Profiles(), ", "),
		}, benchVars())
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range completionShells {
			s, err := completionScript(p.Model, sh)
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll("/tmp/comp", 0o755)
			os.WriteFile(fmt.Sprintf("/tmp/comp/%s.%s", b.Binary(), sh), []byte(s), 0o644)
		}
	}
}
