package prefill_test

import (
	"context"
	"fmt"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/runner"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// A Go program runs the prefill benchmark against the simulated engine:
// no CLI, no files.
func ExampleRun() {
	ctx := context.Background()
	srv, _ := simengine.Start(simengine.Options{}) // an H100-shaped engine on a loopback port
	defer srv.Close()
	c, _ := client.New(client.Config{BaseURL: srv.BaseURL(), Model: srv.Model(), RequestTimeout: time.Minute})
	defer c.Close()
	prompts := sampler.New(sampler.Config{Seed: 42}, func(ctx context.Context, text string) (int, error) {
		n, _, err := c.Tokenize(ctx, text) // exact lengths, from the server's own tokenizer
		return n, err
	})
	cfg := prefill.Config{InputLengths: []int{128, 1024}, OutputTokens: 1, SamplesPerLength: 3, WarmupRequests: 1}
	if err := prompts.Calibrate(ctx, cfg.InputLengths); err != nil {
		fmt.Println(err)
		return
	}
	res, err := prefill.Run(ctx, cfg, runner.Deps{Sender: c, Prompts: prompts})
	for _, row := range res.Results {
		fmt.Printf("%d tokens: %d samples\n", row.InputLength, row.TTFC.Count)
	}
	fmt.Println("longer prompt, later first token:", res.Results[1].TTFC.Median > res.Results[0].TTFC.Median)
	fmt.Println("error:", err, "end:", res.EndReason, "checks failed:", res.Validation.Failed())
	// Output:
	// 128 tokens: 3 samples
	// 1024 tokens: 3 samples
	// longer prompt, later first token: true
	// error: <nil> end: completed checks failed: false
}
