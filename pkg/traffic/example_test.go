package traffic_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/veeksha-go/veeksha/pkg/traffic"
)

func ExampleOpen() {
	// Poisson arrivals at 200 requests/s for 50 ms, from a seeded RNG.
	arrivals := traffic.PoissonArrivals(200, rand.New(rand.NewPCG(42, 0)), 50*time.Millisecond)
	lag := make([]time.Duration, len(arrivals))
	began := time.Now()
	n := traffic.Open(context.Background(), began, arrivals, func(ctx context.Context, s traffic.Slot) {
		// A real send would stream one completion here.
		lag[s.Index] = time.Since(began) - s.Intended
	})
	fmt.Println("admitted:", n, "of", len(arrivals))
	for i, l := range lag {
		if l < 0 {
			fmt.Println("request", i, "started early")
		}
	}
	// Output: admitted: 12 of 12
}
