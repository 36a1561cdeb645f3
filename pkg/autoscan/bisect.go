package autoscan

import (
	"context"
	"maps"
	"math"
	"slices"
)

// DefaultBisectTolerance is how close the SLO search brings its bounds:
// (missed - met) / met <= 10 %.
const DefaultBisectTolerance = 0.1

// SLOSearch is the outcome of Bisect.
type SLOSearch struct {
	// MaxLevel is the highest level found to meet the objective; 0 when
	// no level did.
	MaxLevel float64 `json:"max_level_within_slo"`
	// Missed is the lowest level above MaxLevel that missed it; 0 when
	// every level measured met it (MaxLevel is then only a lower bound).
	Missed float64 `json:"lowest_level_missed"`
	// Probed lists the levels the search measured, in order.
	Probed []float64 `json:"probed,omitempty"`
	// Reason says how the search ended.
	Reason string `json:"reason"`
}

// Bisect searches for the highest level that meets an objective.
// measured maps every level measured so far to whether it met it. From
// the highest level that met it and the lowest level above that missed
// it, Bisect probes their geometric mean (rounded when whole is set, for
// numbers of clients) and narrows, until the gap is within tol of the
// lower level or no level lies between them. probe measures one level
// and says whether it met the objective; its error stops the search with
// what was found so far.
func Bisect(ctx context.Context, measured map[float64]bool, tol float64, whole bool, probe func(ctx context.Context, level float64) (bool, error)) (SLOSearch, error) {
	var s SLOSearch
	for _, l := range slices.Sorted(maps.Keys(measured)) {
		if measured[l] {
			s.MaxLevel = l
		}
	}
	if s.MaxLevel == 0 {
		s.Reason = "no measured level met the objective"
		return s, nil
	}
	for _, l := range slices.Sorted(maps.Keys(measured)) {
		if l > s.MaxLevel && !measured[l] {
			s.Missed = l
			break
		}
	}
	if s.Missed == 0 {
		s.Reason = "every measured level met the objective: the highest is a lower bound"
		return s, nil
	}
	for (s.Missed-s.MaxLevel)/s.MaxLevel > tol {
		mid := math.Sqrt(s.MaxLevel * s.Missed)
		if whole {
			mid = math.Round(mid)
		}
		if mid <= s.MaxLevel || mid >= s.Missed {
			s.Reason = "no level lies between the bounds"
			return s, nil
		}
		if err := ctx.Err(); err != nil {
			s.Reason = "stopped"
			return s, context.Cause(ctx)
		}
		met, err := probe(ctx, mid)
		if err != nil {
			s.Reason = "stopped"
			return s, err
		}
		s.Probed = append(s.Probed, mid)
		if met {
			s.MaxLevel = mid
		} else {
			s.Missed = mid
		}
	}
	s.Reason = "bounds within the tolerance"
	return s, nil
}
