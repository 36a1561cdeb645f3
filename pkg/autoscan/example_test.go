package autoscan_test

import (
	"context"
	"fmt"
	"math"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
)

func ExampleLogSpaced() {
	fmt.Println(autoscan.LogSpaced(1, 64, 8))
	// Output: [1 2 3 6 11 20 35 64]
}

func ExampleAuto() {
	// A made-up server whose throughput saturates near 64 clients and
	// whose per-user speed falls as soon as load rises.
	probe := func(_ context.Context, level float64) (autoscan.Measurement, error) {
		return autoscan.Measurement{
			OutputThroughput: 1000 * (1 - math.Exp(-level/16)),
			InteractivityP50: 100 / (1 + level/4),
			Valid:            true,
		}, nil
	}
	plan, err := autoscan.Auto(context.Background(), autoscan.AutoConfig{FillPoints: 6}, nil, probe)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("stop:", plan.Phase1Stop, "bounds:", plan.Lower, plan.Upper)
	fmt.Println("levels:", plan.Levels)
	// Output:
	// stop: gain_below_threshold bounds: 1 128
	// levels: [1 2 3 4 8 16 32 49 64 128]
}
