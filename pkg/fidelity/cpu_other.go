//go:build !unix && !windows

package fidelity

import "time"

// processCPU is unknown on this platform; CPU use is then reported as 0.
func processCPU() time.Duration { return 0 }
