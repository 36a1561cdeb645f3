//go:build !unix && !windows

package fidelity

import "time"

// ProcessCPU is unknown on this platform; CPU use is then reported as 0.
func ProcessCPU() time.Duration { return 0 }
