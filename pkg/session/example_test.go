package session_test

import (
	"context"
	"fmt"

	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/session"
)

// A Go program runs the prefill benchmark against a server through a
// Session: here the simulated engine, but any OpenAI-compatible base URL
// works the same way.
func ExampleOpen() {
	ctx := context.Background()
	s, err := session.Open(ctx, session.Config{APIBase: "sim", Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	cfg := prefill.Config{InputLengths: []int{128, 1024}, OutputTokens: 1, SamplesPerLength: 3, WarmupRequests: 1}
	if err := s.Calibrate(ctx, cfg.InputLengths); err != nil {
		fmt.Println(err)
		return
	}
	res, err := prefill.Run(ctx, cfg, s.Deps(ctx))
	fmt.Println("server:", s.Settings.Server, "lengths measured by:", s.Settings.LengthSource)
	for _, row := range res.Results {
		fmt.Printf("%d tokens: %d samples\n", row.InputLength, row.TTFC.Count)
	}
	fmt.Println("error:", err, "checks failed:", res.Validation.Failed())
	// Output:
	// server: sim:llama3-8b-h100 lengths measured by: tokenize
	// 128 tokens: 3 samples
	// 1024 tokens: 3 samples
	// error: <nil> checks failed: false
}
