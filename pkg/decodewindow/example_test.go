package decodewindow_test

import (
	"fmt"
	"time"

	"github.com/veeksha-go/veeksha/pkg/decodewindow"
)

func ExampleAnalyze() {
	ms := time.Millisecond
	// Two requests of a batch of two: the second starts decoding 50 ms
	// after the first and finishes 50 ms after it.
	streams := []decodewindow.Stream{
		{ID: 0, Arrivals: []time.Duration{100 * ms, 200 * ms, 300 * ms}},
		{ID: 1, Arrivals: []time.Duration{150 * ms, 250 * ms, 350 * ms}},
	}
	res, err := decodewindow.Analyze(streams, decodewindow.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("peak:", res.Peak)
	fmt.Println("windows:", res.Selected())
	fmt.Println("samples:", res.ChunkGaps)
	fmt.Printf("mean TBT: %.3f s\n", res.ChunkGapStats.Mean)
	// Output:
	// peak: 2
	// windows: [{150ms 300ms}]
	// samples: [100ms 100ms 100ms]
	// mean TBT: 0.100 s
}
