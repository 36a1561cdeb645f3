package autoscan

import (
	"context"
	"errors"
	"testing"
)

func TestBisect(t *testing.T) {
	t.Parallel()
	// A server that meets the objective up to 37 clients.
	meets := func(l float64) bool { return l <= 37 }
	tests := []struct {
		name     string
		measured map[float64]bool
		whole    bool
		max      float64
		missed   float64
	}{
		// 16..64: 32 met, 45 missed, 38 missed, 35 met; 35..38 is within 10 %.
		{"clients: narrows to within 10 %", map[float64]bool{1: true, 16: true, 64: false}, true, 35, 38},
		{"rates: fractional levels", map[float64]bool{16: true, 64: false}, false, 36.6, 40.3},
		{"nothing met", map[float64]bool{64: false}, true, 0, 0},
		{"everything met", map[float64]bool{8: true, 16: true}, true, 16, 0},
		{"adjacent whole levels", map[float64]bool{37: true, 38: false}, true, 37, 38},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			probes := 0
			s, err := Bisect(t.Context(), tt.measured, DefaultBisectTolerance, tt.whole, func(_ context.Context, l float64) (bool, error) {
				probes++
				if l == 0 || l != l {
					t.Fatalf("probed level %v", l)
				}
				return meets(l), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.Missed != 0 && (s.Missed-s.MaxLevel)/s.MaxLevel > DefaultBisectTolerance && s.Missed-s.MaxLevel > 1 {
				t.Errorf("bounds %v..%v are not within 10 %%", s.MaxLevel, s.Missed)
			}
			if !meets(s.MaxLevel) && s.MaxLevel != 0 {
				t.Errorf("MaxLevel %v does not meet the objective", s.MaxLevel)
			}
			if tt.whole && (s.MaxLevel != tt.max || s.Missed != tt.missed) {
				t.Errorf("Bisect = %v..%v, want %v..%v (%s)", s.MaxLevel, s.Missed, tt.max, tt.missed, s.Reason)
			}
			if !tt.whole && (s.MaxLevel > 37 || s.Missed <= 37 || s.MaxLevel < 37/1.1) {
				t.Errorf("Bisect = %v..%v, want bounds around 37 (%s)", s.MaxLevel, s.Missed, s.Reason)
			}
			if probes != len(s.Probed) {
				t.Errorf("%d probes, %d recorded", probes, len(s.Probed))
			}
		})
	}
	// A probe's error stops the search with what was found.
	boom := errors.New("boom")
	s, err := Bisect(t.Context(), map[float64]bool{1: true, 64: false}, DefaultBisectTolerance, true, func(context.Context, float64) (bool, error) { return false, boom })
	if !errors.Is(err, boom) || s.MaxLevel != 1 {
		t.Errorf("Bisect with a failing probe = %+v, %v", s, err)
	}
}
