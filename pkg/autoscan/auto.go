package autoscan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// Defaults of AutoConfig; a zero field takes its default.
const (
	// DefaultThreshold is the relative output-throughput gain below which
	// the exponential probe stops, and the relative interactivity loss that
	// counts as imperceptible (--auto-throughput-threshold).
	DefaultThreshold = 0.05
	// DefaultMaxProbes is the most levels the exponential probe visits.
	DefaultMaxProbes = 20
	// DefaultFillPoints is how many log-spaced levels the fill phase aims at.
	DefaultFillPoints = 8
	// DefaultReuse is the relative distance within which a measured level
	// stands in for a fill target: |measured - target| / max(target, 1).
	DefaultReuse = 0.2
)

// ErrNoValidPoint is returned (wrapped) by Auto when no level, probed or
// resumed, gave a valid point, so no bound can be computed.
var ErrNoValidPoint = errors.New("no valid point")

// Measurement is what one level measured, as far as the scan needs it.
type Measurement struct {
	// Level is the load level: clients, or requests per second.
	Level float64 `json:"level"`
	// OutputThroughput is the output token throughput, in tokens per second.
	OutputThroughput float64 `json:"output_throughput_tps"`
	// InteractivityP50 is the median per-user speed 1 / TPOT, in tokens per
	// second.
	InteractivityP50 float64 `json:"interactivity_p50_tps"`
	// Valid is false when the level gave too few samples to be used.
	Valid bool `json:"valid"`
}

// Prober runs one level, or loads it when it was already run, and returns
// its point. An error stops the scan.
type Prober func(ctx context.Context, level float64) (Measurement, error)

// AutoConfig configures Auto. Zero fields take the Default* values.
type AutoConfig struct {
	// Threshold is the relative gain and loss threshold (0.05 = 5 %).
	Threshold float64 `json:"threshold"`
	// MaxProbes caps the number of levels the exponential probe visits,
	// reused levels included.
	MaxProbes int `json:"max_probes"`
	// FillPoints is the number of log-spaced fill targets.
	FillPoints int `json:"fill_points"`
	// MaxLevel is a safety cap: no level above it is probed. 0 means none.
	MaxLevel float64 `json:"max_level"`
	// Reuse is the relative distance within which a measured level stands
	// in for a fill target.
	Reuse float64 `json:"reuse_tolerance"`
}

// Validate reports fields that are negative, not finite, or a Threshold of
// 1 or more (which would accept any interactivity loss).
func (c AutoConfig) Validate() error {
	var errs []error
	bad := func(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	if bad(c.Threshold) || c.Threshold >= 1 {
		errs = append(errs, fmt.Errorf("autoscan: threshold %v is outside [0, 1)", c.Threshold))
	}
	if c.MaxProbes < 0 {
		errs = append(errs, fmt.Errorf("autoscan: max probes %d is negative", c.MaxProbes))
	}
	if c.FillPoints < 0 {
		errs = append(errs, fmt.Errorf("autoscan: fill points %d is negative", c.FillPoints))
	}
	if bad(c.MaxLevel) {
		errs = append(errs, fmt.Errorf("autoscan: max level %v is negative or not finite", c.MaxLevel))
	}
	if bad(c.Reuse) {
		errs = append(errs, fmt.Errorf("autoscan: reuse tolerance %v is negative or not finite", c.Reuse))
	}
	return errors.Join(errs...)
}

func (c AutoConfig) withDefaults() AutoConfig {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MaxProbes == 0 {
		c.MaxProbes = DefaultMaxProbes
	}
	if c.FillPoints == 0 {
		c.FillPoints = DefaultFillPoints
	}
	if c.Reuse == 0 {
		c.Reuse = DefaultReuse
	}
	return c
}

// Action says what the scan did with one level.
type Action string

// The actions recorded in a Decision.
const (
	// Probed: the Prober was called for the level.
	Probed Action = "probed"
	// AlreadyMeasured: the level was measured before (resumed, or probed
	// earlier in this scan) and its point was reused without a probe.
	AlreadyMeasured Action = "already_measured"
	// ReusedNearby: a fill target was skipped because a measured level
	// (ReusedFrom) lies within the reuse tolerance.
	ReusedNearby Action = "reused_nearby"
	// AboveMaxLevel: a fill target above MaxLevel was skipped.
	AboveMaxLevel Action = "above_max_level"
	// Bound: phase 2 chose Level as the lower bound.
	Bound Action = "lower_bound"
)

// StopReason says why the exponential probe stopped.
type StopReason string

// The reasons phase 1 stops.
const (
	StopGain      StopReason = "gain_below_threshold"
	StopInvalid   StopReason = "invalid_point"
	StopMaxProbes StopReason = "max_probes"
	StopMaxLevel  StopReason = "max_level"
)

// Decision is one step of the scan.
type Decision struct {
	// Phase is 1 (exponential probe), 2 (interactivity bound) or 3 (fill).
	Phase  int     `json:"phase"`
	Level  float64 `json:"level"`
	Action Action  `json:"action"`
	// ReusedFrom is the measured level standing in (ReusedNearby), and
	// Distance its relative distance |ReusedFrom - Level| / max(Level, 1).
	ReusedFrom float64 `json:"reused_from,omitempty"`
	Distance   float64 `json:"distance,omitempty"`
	// Gain is, in phase 1, the relative output-throughput gain over the
	// previous probe; nil for the first probe.
	Gain *float64 `json:"gain,omitempty"`
	// Reason explains the decision in words.
	Reason string `json:"reason"`
}

// String is a one-line account of the decision, for logs.
func (d Decision) String() string {
	s := fmt.Sprintf("phase %d: level %s %s", d.Phase, fmtLevel(d.Level), d.Action)
	if d.Action == ReusedNearby {
		s += fmt.Sprintf(" (level %s, distance %.3f)", fmtLevel(d.ReusedFrom), d.Distance)
	}
	if d.Gain != nil {
		s += fmt.Sprintf(", gain %+.1f%%", 100*(*d.Gain))
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}

func fmtLevel(l float64) string { return strconv.FormatFloat(l, 'g', -1, 64) }

// Plan is the outcome of Auto: every decision, the bounds, and the points.
type Plan struct {
	// Config is the configuration used, defaults filled in.
	Config    AutoConfig `json:"config"`
	Decisions []Decision `json:"decisions"`
	// Phase1Stop is why the exponential probe stopped.
	Phase1Stop StopReason `json:"phase1_stop"`
	// Upper is the largest level with a valid point after phase 1.
	Upper float64 `json:"upper"`
	// BestInteractivityP50 is the best median interactivity among valid
	// points after phase 1, in tokens per second.
	BestInteractivityP50 float64 `json:"best_interactivity_p50_tps"`
	// Lower is the interactivity bound of phase 2.
	Lower float64 `json:"lower"`
	// Fill is LogSpaced(Lower, Upper, FillPoints): the phase 3 targets.
	Fill []float64 `json:"fill_targets"`
	// Points holds every measured level (resumed, probed, valid or not),
	// sorted by level; Levels holds their levels.
	Points []Measurement `json:"points"`
	Levels []float64     `json:"levels"`
}

// Auto runs the automatic sweep.
//
// measured holds points known before the scan (a resumed run), keyed by
// level; Auto does not modify it, and never probes one of its levels.
//
// Phase 1 (upper bound): for c = 1, 2, 4, ... while fewer than MaxProbes
// levels were visited and c <= MaxLevel (when set), take the point of c
// (measured, or probed); a measured level counts as a visit. Stop at an
// invalid point, or when the output-throughput gain over the previous
// level, (tput - prev) / prev, is below Threshold (a loss stops too). Upper
// is the largest level with a valid point, resumed levels included.
//
// Phase 2 (lower bound): best is the highest InteractivityP50 among valid
// points and floor = best * (1 - Threshold). Starting at the level that
// reached best (the smallest one on a tie) and walking up through the
// valid levels, Lower is the last level with InteractivityP50 >= floor
// before the first one below it. This is SPEC's "highest level whose P50
// interactivity is still within the threshold of the best observed": below
// Lower, less load buys no perceptible per-user speed. (The original tool
// took the smallest level within the threshold, its bug B-lower. Walking
// from the smallest level instead of from the best gives the same answer
// unless the smallest level is itself below the floor, when it would fall
// back to the smallest level.)
//
// Phase 3 (fill): for each target t in LogSpaced(Lower, Upper, FillPoints):
// skip t above MaxLevel; reuse t's point when t was measured; reuse the
// valid measured level m nearest to t (ties: the smaller m) when |m - t| /
// max(t, 1) <= Reuse; otherwise probe t.
//
// A Prober error or the end of ctx stops the scan: Auto returns the plan
// so far with the error wrapped. When no valid point exists after phase 1
// it returns the plan with an error wrapping ErrNoValidPoint.
func Auto(ctx context.Context, cfg AutoConfig, measured map[float64]Measurement, probe Prober) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, err
	}
	if probe == nil {
		return Plan{}, errors.New("autoscan: nil prober")
	}
	s := &scan{probe: probe, points: make(map[float64]Measurement, len(measured))}
	s.plan.Config = cfg.withDefaults()
	for level, p := range measured {
		p.Level = level
		s.points[level] = p
	}
	err := s.run(ctx)
	s.finish()
	return s.plan, err
}

// scan holds the state of one Auto call.
type scan struct {
	probe  Prober
	points map[float64]Measurement
	plan   Plan
}

func (s *scan) run(ctx context.Context) error {
	cfg := s.plan.Config

	// Phase 1: exponential probe.
	s.plan.Phase1Stop = StopMaxProbes
	prev := 0.0
	for probes, c := 0, 1.0; ; c *= 2 {
		if probes >= cfg.MaxProbes {
			break
		}
		if cfg.MaxLevel > 0 && c > cfg.MaxLevel {
			s.plan.Phase1Stop = StopMaxLevel
			break
		}
		p, d, err := s.get(ctx, 1, c)
		if err != nil {
			return err
		}
		probes++
		if !p.Valid {
			d.Reason = "too few samples: stop"
			s.record(d)
			s.plan.Phase1Stop = StopInvalid
			break
		}
		if prev > 0 {
			gain := (p.OutputThroughput - prev) / prev
			d.Gain = &gain
			if !(gain >= cfg.Threshold) { // a NaN gain stops too
				d.Reason = fmt.Sprintf("gain below threshold %.1f%%: stop", 100*cfg.Threshold)
				s.record(d)
				s.plan.Phase1Stop = StopGain
				break
			}
		}
		s.record(d)
		prev = p.OutputThroughput
	}

	valid := s.valid()
	if len(valid) == 0 {
		return fmt.Errorf("autoscan: phase 1 stopped (%s) with %w to bound the scan", s.plan.Phase1Stop, ErrNoValidPoint)
	}
	s.plan.Upper = valid[len(valid)-1].Level

	// Phase 2: interactivity bound.
	best := 0
	for i, p := range valid {
		if p.InteractivityP50 > valid[best].InteractivityP50 {
			best = i
		}
	}
	s.plan.BestInteractivityP50 = valid[best].InteractivityP50
	floor := valid[best].InteractivityP50 * (1 - cfg.Threshold)
	lower := best
	for i := best + 1; i < len(valid) && valid[i].InteractivityP50 >= floor; i++ {
		lower = i
	}
	s.plan.Lower = valid[lower].Level
	reason := fmt.Sprintf("highest level from the best (%.4g tok/s at level %s) whose P50 interactivity stays >= %.4g tok/s",
		valid[best].InteractivityP50, fmtLevel(valid[best].Level), floor)
	if lower+1 < len(valid) {
		reason += fmt.Sprintf(" before level %s falls below", fmtLevel(valid[lower+1].Level))
	}
	s.record(Decision{Phase: 2, Level: s.plan.Lower, Action: Bound, Reason: reason})

	// Phase 3: fill.
	s.plan.Fill = LogSpaced(s.plan.Lower, s.plan.Upper, cfg.FillPoints)
	for _, t := range s.plan.Fill {
		if cfg.MaxLevel > 0 && t > cfg.MaxLevel {
			s.record(Decision{Phase: 3, Level: t, Action: AboveMaxLevel, Reason: fmt.Sprintf("above max level %s", fmtLevel(cfg.MaxLevel))})
			continue
		}
		if _, ok := s.points[t]; !ok {
			if m, dist, ok := s.nearest(t); ok && dist <= cfg.Reuse {
				s.record(Decision{Phase: 3, Level: t, Action: ReusedNearby, ReusedFrom: m, Distance: dist,
					Reason: fmt.Sprintf("within reuse tolerance %.2f", cfg.Reuse)})
				continue
			}
		}
		_, d, err := s.get(ctx, 3, t)
		if err != nil {
			return err
		}
		s.record(d)
	}
	return nil
}

// get returns the point of level, probing it unless it was measured, and
// the decision describing how it was obtained.
func (s *scan) get(ctx context.Context, phase int, level float64) (Measurement, Decision, error) {
	d := Decision{Phase: phase, Level: level, Action: AlreadyMeasured}
	if p, ok := s.points[level]; ok {
		return p, d, nil
	}
	if err := ctx.Err(); err != nil {
		return Measurement{}, d, fmt.Errorf("autoscan: stopped before level %s: %w", fmtLevel(level), err)
	}
	p, err := s.probe(ctx, level)
	if err != nil {
		return Measurement{}, d, fmt.Errorf("autoscan: probe of level %s: %w", fmtLevel(level), err)
	}
	p.Level = level
	s.points[level] = p
	d.Action = Probed
	return p, d, nil
}

// nearest returns the valid measured level closest to t in relative
// distance |m - t| / max(t, 1), the smaller level on a tie.
func (s *scan) nearest(t float64) (level, dist float64, ok bool) {
	for _, p := range s.valid() {
		d := math.Abs(p.Level-t) / math.Max(t, 1)
		if !ok || d < dist {
			level, dist, ok = p.Level, d, true
		}
	}
	return level, dist, ok
}

// valid returns the valid points sorted by level.
func (s *scan) valid() []Measurement {
	var out []Measurement
	for _, p := range s.points {
		if p.Valid {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Measurement) int { return cmp.Compare(a.Level, b.Level) })
	return out
}

func (s *scan) record(d Decision) { s.plan.Decisions = append(s.plan.Decisions, d) }

// finish fills Points and Levels from everything measured.
func (s *scan) finish() {
	s.plan.Levels = slices.Sorted(maps.Keys(s.points))
	s.plan.Points = make([]Measurement, len(s.plan.Levels))
	for i, l := range s.plan.Levels {
		s.plan.Points[i] = s.points[l]
	}
}
