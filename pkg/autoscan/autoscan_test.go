package autoscan

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestLogSpaced(t *testing.T) {
	t.Parallel()
	// Reference §7.1.
	tests := []struct {
		lo, hi float64
		n      int
		want   []float64
	}{
		{1, 64, 8, []float64{1, 2, 3, 6, 11, 20, 35, 64}},
		{1, 16, 5, []float64{1, 2, 4, 8, 16}},
		{1, 32, 8, []float64{1, 2, 3, 4, 7, 12, 20, 32}},
		{2, 32, 4, []float64{2, 5, 13, 32}},
		{1, 128, 8, []float64{1, 2, 4, 8, 16, 32, 64, 128}},
		{1, 2, 8, []float64{1, 2}},
		{8, 8, 5, []float64{8}},
		{4, 64, 1, []float64{4}},
		{1, 256, 10, []float64{1, 2, 3, 6, 12, 22, 40, 75, 138, 256}},
		// Also used by the auto-mode tests below.
		{1, 256, 8, []float64{1, 2, 5, 11, 24, 53, 116, 256}},
		{8, 256, 8, []float64{8, 13, 22, 35, 58, 95, 156, 256}},
		// Bounds below 1 are clamped, except for n <= 1.
		{0.25, 4, 3, []float64{1, 2, 4}},
		{0.5, 4, 0, []float64{0.5}},
		{math.NaN(), 4, 3, nil},
		{1, math.Inf(1), 3, nil},
	}
	for _, tc := range tests {
		got := LogSpaced(tc.lo, tc.hi, tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("LogSpaced(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
		}
	}
}

func TestManual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want []float64
	}{
		{[]float64{8, 2, 4, 2}, []float64{2, 4, 8}},
		{[]float64{0.5, 1.5, 0.5}, []float64{0.5, 1.5}},
		{nil, nil},
	}
	for _, tc := range tests {
		in := slices.Clone(tc.in)
		if got := Manual(in); !slices.Equal(got, tc.want) {
			t.Errorf("Manual(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Manual modified its input: %v, was %v", in, tc.in)
		}
	}
}

// curve is a made-up server: a value at powers of two, interpolated
// linearly in log2(level) in between and held flat beyond the ends.
type curve map[float64]float64

func (c curve) at(level float64) float64 {
	keys := slices.Sorted(maps.Keys(c))
	if level <= keys[0] {
		return c[keys[0]]
	}
	for i := 1; i < len(keys); i++ {
		if level <= keys[i] {
			lo, hi := keys[i-1], keys[i]
			f := (math.Log2(level) - math.Log2(lo)) / (math.Log2(hi) - math.Log2(lo))
			return c[lo] + f*(c[hi]-c[lo])
		}
	}
	return c[keys[len(keys)-1]]
}

// fakeServer answers probes from curves and records the levels probed.
type fakeServer struct {
	tput, inter curve
	invalid     map[float64]bool
	fail        map[float64]error
	onProbe     func(level float64) // called before answering
	calls       []float64
}

func (f *fakeServer) probe(_ context.Context, level float64) (Measurement, error) {
	f.calls = append(f.calls, level)
	if f.onProbe != nil {
		f.onProbe(level)
	}
	if err := f.fail[level]; err != nil {
		return Measurement{}, err
	}
	return Measurement{
		Level:            level,
		OutputThroughput: f.tput.at(level),
		InteractivityP50: f.inter.at(level),
		Valid:            !f.invalid[level],
	}, nil
}

// workedTput is the throughput of reference §7.3's worked example.
var workedTput = curve{1: 111, 2: 200, 4: 333, 8: 500, 16: 667, 32: 800, 64: 889, 128: 941, 256: 970}

var powers = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}

// decisionsOf returns the phase-3 decisions keyed by level.
func decisionsOf(p Plan, phase int) map[float64]Decision {
	out := map[float64]Decision{}
	for _, d := range p.Decisions {
		if d.Phase == phase {
			out[d.Level] = d
		}
	}
	return out
}

func TestAutoWorkedExample(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		inter     curve
		wantLower float64
		wantFill  []float64
		// wantProbes are the fill levels probed after phase 1's 1..256.
		wantProbes []float64
		// wantReuse maps fill targets to the measured level reused.
		wantReuse map[float64]float64
	}{
		{
			// Interactivity falls at once: 2 is more than 5 % slower than 1.
			name:       "lower bound 1",
			inter:      curve{1: 100, 2: 90, 4: 80, 8: 70, 16: 60, 32: 50, 64: 40, 128: 30, 256: 20},
			wantLower:  1,
			wantFill:   []float64{1, 2, 5, 11, 24, 53, 116, 256},
			wantProbes: []float64{11, 24, 53},
			wantReuse:  map[float64]float64{5: 4, 116: 128},
		},
		{
			// A plateau up to 8 (within 5 % of the best), then a fall.
			name:       "lower bound 8",
			inter:      curve{1: 100, 2: 99, 4: 98, 8: 96, 16: 80, 32: 60, 64: 40, 128: 30, 256: 20},
			wantLower:  8,
			wantFill:   []float64{8, 13, 22, 35, 58, 95, 156, 256},
			wantProbes: []float64{13, 22, 95},
			wantReuse:  map[float64]float64{35: 32, 58: 64, 156: 128},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &fakeServer{tput: workedTput, inter: tc.inter}
			plan, err := Auto(t.Context(), AutoConfig{}, nil, srv.probe)
			if err != nil {
				t.Fatalf("Auto: %v", err)
			}
			if got, want := srv.calls, append(slices.Clone(powers), tc.wantProbes...); !slices.Equal(got, want) {
				t.Errorf("probed levels = %v, want %v", got, want)
			}
			if plan.Phase1Stop != StopGain || plan.Upper != 256 || plan.Lower != tc.wantLower {
				t.Errorf("Phase1Stop, Upper, Lower = %v, %v, %v, want %v, 256, %v", plan.Phase1Stop, plan.Upper, plan.Lower, StopGain, tc.wantLower)
			}
			if !slices.Equal(plan.Fill, tc.wantFill) {
				t.Errorf("Fill = %v, want %v", plan.Fill, tc.wantFill)
			}
			wantLevels := Manual(append(slices.Clone(powers), tc.wantProbes...))
			if !slices.Equal(plan.Levels, wantLevels) {
				t.Errorf("Levels = %v, want %v", plan.Levels, wantLevels)
			}
			fill := decisionsOf(plan, 3)
			for target, from := range tc.wantReuse {
				d := fill[target]
				if d.Action != ReusedNearby || d.ReusedFrom != from {
					t.Errorf("fill decision for %v = %v, want reuse of %v", target, d, from)
				}
				if want := math.Abs(from-target) / target; math.Abs(d.Distance-want) > 1e-12 {
					t.Errorf("fill decision for %v: distance %v, want %v", target, d.Distance, want)
				}
			}
			// Phase 1's last decision carries the failing gain (970/941 - 1).
			p1 := decisionsOf(plan, 1)
			if d := p1[256]; d.Gain == nil || math.Abs(*d.Gain-(970.0/941-1)) > 1e-12 {
				t.Errorf("phase 1 decision for 256 = %v, want gain %.4f", d, 970.0/941-1)
			}
			if d := p1[1]; d.Gain != nil {
				t.Errorf("phase 1 decision for 1 = %v, want no gain", d)
			}
			if len(plan.Points) != len(plan.Levels) {
				t.Fatalf("%d points for %d levels", len(plan.Points), len(plan.Levels))
			}
			for i, p := range plan.Points {
				if p.Level != plan.Levels[i] || !p.Valid {
					t.Errorf("Points[%d] = %+v, want a valid point at level %v", i, p, plan.Levels[i])
				}
			}
		})
	}
}

// TestAutoLowerFromBest: when the smallest level is below the floor (noise
// at low load), the bound is still the highest level within the threshold
// of the best, as SPEC §4 says, not a fallback to the smallest level.
func TestAutoLowerFromBest(t *testing.T) {
	t.Parallel()
	srv := &fakeServer{
		tput:  curve{1: 100, 2: 200, 4: 400, 8: 800, 16: 810},
		inter: curve{1: 90, 2: 100, 4: 97, 8: 80, 16: 70},
	}
	plan, err := Auto(t.Context(), AutoConfig{}, nil, srv.probe)
	if err != nil {
		t.Fatalf("Auto: %v", err)
	}
	if plan.Lower != 4 || plan.BestInteractivityP50 != 100 || plan.Upper != 16 {
		t.Errorf("Lower, Best, Upper = %v, %v, %v, want 4, 100, 16", plan.Lower, plan.BestInteractivityP50, plan.Upper)
	}
	d := decisionsOf(plan, 2)[4]
	if d.Action != Bound || !strings.Contains(d.Reason, "before level 8") {
		t.Errorf("phase 2 decision = %v, want the bound at 4 before level 8", d)
	}
}

func TestAutoPhase1Stops(t *testing.T) {
	t.Parallel()
	growing := curve{1: 100, 1 << 20: 100 << 20}
	falling := curve{1: 100, 1 << 20: 1}
	tests := []struct {
		name       string
		cfg        AutoConfig
		invalid    map[float64]bool
		wantStop   StopReason
		wantPhase1 []float64
		wantUpper  float64
	}{
		{"max probes", AutoConfig{MaxProbes: 3}, nil, StopMaxProbes, []float64{1, 2, 4}, 4},
		{"default max probes", AutoConfig{}, nil, StopMaxProbes, powersUpTo(1 << 19), 1 << 19},
		{"max level", AutoConfig{MaxLevel: 10}, nil, StopMaxLevel, []float64{1, 2, 4, 8}, 8},
		{"max level on a power of two", AutoConfig{MaxLevel: 8}, nil, StopMaxLevel, []float64{1, 2, 4, 8}, 8},
		{"invalid point", AutoConfig{}, map[float64]bool{8: true}, StopInvalid, []float64{1, 2, 4, 8}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &fakeServer{tput: growing, inter: falling, invalid: tc.invalid}
			plan, err := Auto(t.Context(), tc.cfg, nil, srv.probe)
			if err != nil {
				t.Fatalf("Auto: %v", err)
			}
			if plan.Phase1Stop != tc.wantStop || plan.Upper != tc.wantUpper {
				t.Errorf("Phase1Stop, Upper = %v, %v, want %v, %v", plan.Phase1Stop, plan.Upper, tc.wantStop, tc.wantUpper)
			}
			if got := srv.calls[:min(len(tc.wantPhase1), len(srv.calls))]; !slices.Equal(got, tc.wantPhase1) {
				t.Errorf("phase 1 probed %v, want %v", got, tc.wantPhase1)
			}
			if got := len(decisionsOf(plan, 1)); got != len(tc.wantPhase1) {
				t.Errorf("%d phase 1 decisions, want %d", got, len(tc.wantPhase1))
			}
			for _, l := range srv.calls {
				if tc.cfg.MaxLevel > 0 && l > tc.cfg.MaxLevel {
					t.Errorf("probed level %v above max level %v", l, tc.cfg.MaxLevel)
				}
				if !tc.invalid[l] && l > tc.wantUpper {
					t.Errorf("probed level %v above the upper bound %v", l, tc.wantUpper)
				}
			}
			// An invalid level that ran stays in the plan, flagged.
			for l := range tc.invalid {
				i := slices.Index(plan.Levels, l)
				if i < 0 || plan.Points[i].Valid {
					t.Errorf("Levels = %v, want invalid level %v kept and flagged", plan.Levels, l)
				}
			}
		})
	}
}

func powersUpTo(max float64) []float64 {
	var out []float64
	for c := 1.0; c <= max; c *= 2 {
		out = append(out, c)
	}
	return out
}

// TestAutoMaxLevelResumed: a resumed level above MaxLevel raises the upper
// bound, but no fill level above MaxLevel is probed.
func TestAutoMaxLevelResumed(t *testing.T) {
	t.Parallel()
	srv := &fakeServer{tput: workedTput, inter: curve{1: 100, 256: 10}}
	measured := map[float64]Measurement{64: {OutputThroughput: 889, InteractivityP50: 30, Valid: true}}
	plan, err := Auto(t.Context(), AutoConfig{MaxLevel: 16}, measured, srv.probe)
	if err != nil {
		t.Fatalf("Auto: %v", err)
	}
	if plan.Upper != 64 {
		t.Errorf("Upper = %v, want 64 (the resumed level)", plan.Upper)
	}
	for _, l := range srv.calls {
		if l > 16 {
			t.Errorf("probed level %v above max level 16", l)
		}
	}
	skipped := 0
	for _, d := range decisionsOf(plan, 3) {
		if d.Action == AboveMaxLevel {
			skipped++
		}
	}
	if skipped == 0 {
		t.Errorf("no fill target skipped as above max level; decisions %v", plan.Decisions)
	}
	if !slices.Contains(plan.Levels, 64) {
		t.Errorf("Levels = %v, want the resumed level 64", plan.Levels)
	}
}

func TestAutoResume(t *testing.T) {
	t.Parallel()
	inter := curve{1: 100, 2: 90, 4: 80, 8: 70, 16: 60, 32: 50, 64: 40, 128: 30, 256: 20}
	measured := map[float64]Measurement{}
	for _, l := range []float64{1, 2, 4, 8, 16, 24} {
		// The Level field is ignored: the key is the level.
		measured[l] = Measurement{Level: -1, OutputThroughput: workedTput.at(l), InteractivityP50: inter.at(l), Valid: true}
	}
	before := maps.Clone(measured)
	srv := &fakeServer{tput: workedTput, inter: inter}
	plan, err := Auto(t.Context(), AutoConfig{}, measured, srv.probe)
	if err != nil {
		t.Fatalf("Auto: %v", err)
	}
	// Same scan as the worked example, minus the resumed levels.
	if want := []float64{32, 64, 128, 256, 11, 53}; !slices.Equal(srv.calls, want) {
		t.Errorf("probed levels = %v, want %v", srv.calls, want)
	}
	for _, l := range []float64{1, 2, 4, 8, 16} {
		if d := decisionsOf(plan, 1)[l]; d.Action != AlreadyMeasured {
			t.Errorf("phase 1 decision for resumed level %v = %v, want %v", l, d, AlreadyMeasured)
		}
	}
	if d := decisionsOf(plan, 3)[24]; d.Action != AlreadyMeasured {
		t.Errorf("fill decision for resumed level 24 = %v, want %v", d, AlreadyMeasured)
	}
	for _, l := range []float64{1, 2, 4, 8, 16, 24} {
		i := slices.Index(plan.Levels, l)
		if i < 0 || plan.Points[i].Level != l {
			t.Errorf("resumed level %v missing from the plan (Levels %v)", l, plan.Levels)
		}
	}
	if !maps.Equal(measured, before) {
		t.Errorf("Auto modified measured: %v, was %v", measured, before)
	}

	// Resumed levels count as probes: with 3 probes allowed and 1, 2, 4
	// resumed, phase 1 probes nothing.
	srv = &fakeServer{tput: workedTput, inter: inter}
	plan, err = Auto(t.Context(), AutoConfig{MaxProbes: 3}, measured, srv.probe)
	if err != nil {
		t.Fatalf("Auto: %v", err)
	}
	if plan.Phase1Stop != StopMaxProbes || len(decisionsOf(plan, 1)) != 3 {
		t.Errorf("Phase1Stop = %v with %d decisions, want %v after 3", plan.Phase1Stop, len(decisionsOf(plan, 1)), StopMaxProbes)
	}
	for _, l := range srv.calls {
		if _, ok := measured[l]; ok {
			t.Errorf("resumed level %v probed again", l)
		}
	}
}

func TestAutoErrors(t *testing.T) {
	t.Parallel()
	errDown := errors.New("server down")
	inter := curve{1: 100, 256: 10}

	t.Run("probe error", func(t *testing.T) {
		t.Parallel()
		srv := &fakeServer{tput: workedTput, inter: inter, fail: map[float64]error{4: errDown}}
		plan, err := Auto(t.Context(), AutoConfig{}, nil, srv.probe)
		if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "level 4") {
			t.Fatalf("Auto error = %v, want %v wrapped naming level 4", err, errDown)
		}
		if !slices.Equal(plan.Levels, []float64{1, 2}) {
			t.Errorf("partial plan Levels = %v, want [1 2]", plan.Levels)
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		srv := &fakeServer{tput: workedTput, inter: inter}
		srv.onProbe = func(level float64) {
			if level == 2 {
				cancel()
			}
		}
		plan, err := Auto(ctx, AutoConfig{}, nil, srv.probe)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Auto error = %v, want context.Canceled", err)
		}
		if !slices.Equal(srv.calls, []float64{1, 2}) || !slices.Equal(plan.Levels, []float64{1, 2}) {
			t.Errorf("probed %v, Levels %v, want [1 2] for both", srv.calls, plan.Levels)
		}
	})

	t.Run("no valid point", func(t *testing.T) {
		t.Parallel()
		srv := &fakeServer{tput: workedTput, inter: inter, invalid: map[float64]bool{1: true}}
		plan, err := Auto(t.Context(), AutoConfig{}, nil, srv.probe)
		if !errors.Is(err, ErrNoValidPoint) {
			t.Fatalf("Auto error = %v, want ErrNoValidPoint", err)
		}
		if plan.Phase1Stop != StopInvalid || !slices.Equal(plan.Levels, []float64{1}) {
			t.Errorf("Phase1Stop, Levels = %v, %v, want %v, [1]", plan.Phase1Stop, plan.Levels, StopInvalid)
		}
	})

	t.Run("bad config", func(t *testing.T) {
		t.Parallel()
		bad := []AutoConfig{
			{Threshold: -0.1},
			{Threshold: 1},
			{Threshold: math.NaN()},
			{MaxProbes: -1},
			{FillPoints: -2},
			{MaxLevel: math.Inf(1)},
			{Reuse: -0.2},
		}
		for _, cfg := range bad {
			srv := &fakeServer{tput: workedTput, inter: inter}
			if _, err := Auto(t.Context(), cfg, nil, srv.probe); err == nil || len(srv.calls) > 0 {
				t.Errorf("Auto(%+v) error = %v after %d probes, want an error before any probe", cfg, err, len(srv.calls))
			}
		}
		if _, err := Auto(t.Context(), AutoConfig{}, nil, nil); err == nil {
			t.Errorf("Auto with a nil prober: error = nil, want one")
		}
	})
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	g := 0.031
	tests := []struct {
		d    Decision
		want string
	}{
		{Decision{Phase: 1, Level: 256, Action: Probed, Gain: &g, Reason: "stop"}, "phase 1: level 256 probed, gain +3.1%: stop"},
		{Decision{Phase: 3, Level: 5, Action: ReusedNearby, ReusedFrom: 4, Distance: 0.2}, "phase 3: level 5 reused_nearby (level 4, distance 0.200)"},
		{Decision{Phase: 3, Level: 0.5, Action: AlreadyMeasured}, "phase 3: level 0.5 already_measured"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func FuzzSweepPlan(f *testing.F) {
	f.Add([]byte{111, 200, 255, 50, 60, 61, 61, 0}, []byte{100, 90, 80, 70}, uint8(5), uint8(0), uint8(8), uint16(0), []byte{})
	f.Add([]byte{10, 20, 40, 80, 160}, []byte{50, 50, 49, 20, 10}, uint8(10), uint8(3), uint8(4), uint16(20), []byte{2, 7})
	f.Add([]byte{1, 0, 0}, []byte{1}, uint8(99), uint8(30), uint8(0), uint16(1), []byte{1, 1, 3})
	f.Fuzz(func(t *testing.T, tputs, inters []byte, threshold, maxProbes, fill uint8, maxLevel uint16, resumed []byte) {
		if len(tputs) == 0 || len(inters) == 0 {
			return
		}
		// The server: throughput and interactivity depend on the level's
		// position on a log2 scale; a throughput byte of 0 is an invalid
		// point.
		value := func(b []byte, level float64) byte {
			return b[int(math.Log2(level)*3)%len(b)]
		}
		var calls []float64
		probe := func(_ context.Context, level float64) (Measurement, error) {
			calls = append(calls, level)
			v := value(tputs, level)
			return Measurement{OutputThroughput: float64(v), InteractivityP50: float64(value(inters, level)), Valid: v != 0}, nil
		}
		measured := map[float64]Measurement{}
		for _, r := range resumed {
			l := float64(r%64) + 1
			measured[l] = Measurement{OutputThroughput: float64(value(tputs, l)), InteractivityP50: float64(value(inters, l)), Valid: r%5 != 0}
		}
		cfg := AutoConfig{
			Threshold:  float64(threshold%100) / 100,
			MaxProbes:  int(maxProbes % 25),
			FillPoints: int(fill % 40),
			MaxLevel:   float64(maxLevel),
		}
		plan, err := Auto(t.Context(), cfg, measured, probe)
		if err != nil && !errors.Is(err, ErrNoValidPoint) {
			t.Fatalf("Auto: %v", err)
		}
		if !slices.IsSorted(plan.Levels) || len(slices.Compact(slices.Clone(plan.Levels))) != len(plan.Levels) {
			t.Errorf("Levels = %v, want sorted and unique", plan.Levels)
		}
		for _, l := range plan.Levels {
			if l < 1 {
				t.Errorf("level %v below 1 in %v", l, plan.Levels)
			}
		}
		seen := map[float64]bool{}
		for _, l := range calls {
			if seen[l] {
				t.Errorf("level %v probed twice (calls %v)", l, calls)
			}
			if _, ok := measured[l]; ok {
				t.Errorf("resumed level %v probed (calls %v)", l, calls)
			}
			if cfg.MaxLevel > 0 && l > cfg.MaxLevel {
				t.Errorf("level %v probed above max level %v", l, cfg.MaxLevel)
			}
			if !slices.Contains(plan.Levels, l) {
				t.Errorf("probed level %v missing from Levels %v", l, plan.Levels)
			}
			seen[l] = true
		}
		if want := len(calls) + len(measured); len(plan.Levels) != want {
			t.Errorf("%d levels, want %d probed + resumed", len(plan.Levels), want)
		}
		maxProbesEff := cmp.Or(cfg.MaxProbes, DefaultMaxProbes)
		if n := len(decisionsOf(plan, 1)); n > maxProbesEff {
			t.Errorf("%d phase 1 decisions, more than max probes %d", n, maxProbesEff)
		}
		if err == nil && (plan.Lower > plan.Upper || plan.Lower < 1) {
			t.Errorf("Lower, Upper = %v, %v, want 1 <= Lower <= Upper", plan.Lower, plan.Upper)
		}
	})
}
