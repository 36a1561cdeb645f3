package stress

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/veeksha-go/veeksha/pkg/autoscan"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/sampler"
	"github.com/veeksha-go/veeksha/pkg/slo"
)

// TrafficMode is the arrival pattern.
type TrafficMode string

// The traffic modes.
const (
	// FixedClients is a closed loop: N clients, each sending its next
	// request as soon as its previous one ends.
	FixedClients TrafficMode = "fixed-clients"
	// FixedRate is an open loop: Poisson arrivals at N requests per second,
	// whatever the server's state.
	FixedRate TrafficMode = "fixed-rate"
)

// Mode chooses how the levels are found.
type Mode string

// The stress modes.
const (
	Manual Mode = "manual"
	Range  Mode = "range"
	Auto   Mode = "auto"
)

// Defaults for the stress benchmark's settings.
const (
	DefaultInputLength    = 512
	DefaultOutputLength   = 128
	DefaultPointDuration  = 120 * time.Second
	DefaultWarmupDuration = 10 * time.Second
	DefaultGracePeriod    = 30 * time.Second
	DefaultRangeMin       = 1
	DefaultRangeMax       = 64
	DefaultRangePoints    = 8
	// DefaultAutoMaxLevel caps the auto scan's levels (the original had no
	// cap: 20 doublings reach 2^19 clients).
	DefaultAutoMaxLevel = 1024
	// MinSamples is the fewest post-warm-up requests a level needs to pass
	// the sample_count check.
	MinSamples = 10
	// DefaultSLOAttainment is the goodput ratio at which a level meets
	// the SLO (--slo-attainment).
	DefaultSLOAttainment = 0.9
	// RateTolerance is the largest relative gap between the achieved and
	// the scheduled arrival rate before an open-loop point is flagged.
	RateTolerance = 0.05
)

// DefaultLevels are the manual levels used when none are given.
func DefaultLevels() []float64 { return []float64{1, 2, 4, 8, 16, 32} }

// Config is the stress benchmark's own settings.
type Config struct {
	InputLength  int         `json:"input_length"`
	OutputLength int         `json:"output_length"`
	TrafficMode  TrafficMode `json:"traffic_mode"`
	Mode         Mode        `json:"stress_mode"`

	// PointDuration is how long each level sends load; WarmupDuration the
	// start of it left out of the measurement window; GracePeriod how long
	// requests still running at its end may finish before they are cut.
	PointDuration  result.Seconds `json:"point_duration_s"`
	WarmupDuration result.Seconds `json:"warmup_duration_s"`
	GracePeriod    result.Seconds `json:"grace_period_s"`

	// Levels are the manual levels.
	Levels []float64 `json:"concurrency_levels,omitempty"`
	// RangeMin, RangeMax and RangePoints define the range mode's levels.
	RangeMin    float64 `json:"concurrency_min,omitempty"`
	RangeMax    float64 `json:"concurrency_max,omitempty"`
	RangePoints int     `json:"concurrency_points,omitempty"`
	// Auto configures the automatic scan.
	Auto autoscan.AutoConfig `json:"auto"`
	// Seed drives the Poisson arrivals (salted per level).
	Seed uint64 `json:"seed"`
	// SLO, when set, judges every request: each point reports its goodput.
	SLO slo.SLO `json:"slo,omitzero"`
	// SLOAttainment is the goodput ratio at which a level meets the SLO,
	// for the auto mode's search of the highest such level (0 means
	// DefaultSLOAttainment).
	SLOAttainment float64 `json:"slo_attainment,omitempty"`
	// Thresholds are gates checked at every level (ThresholdMetrics):
	// "ttfc_p99<500ms".
	Thresholds []string `json:"thresholds,omitempty"`
	// Shard, when set, makes this run one shard of a run spread over
	// several processes (--shard, --start-at): it sends its share of
	// every level, from planned wall-clock instants.
	Shard *Shard `json:"shard,omitempty"`
}

// DefaultAuto is the automatic scan as the stress benchmark runs it
// unless told otherwise: autoscan's defaults, levels capped at
// DefaultAutoMaxLevel.
func DefaultAuto() autoscan.AutoConfig {
	return autoscan.AutoConfig{
		Threshold: autoscan.DefaultThreshold, MaxProbes: autoscan.DefaultMaxProbes, FillPoints: autoscan.DefaultFillPoints,
		MaxLevel: DefaultAutoMaxLevel, Reuse: autoscan.DefaultReuse,
	}
}

// Validate reports every problem with c, naming the flag at fault.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, sampler.CheckLengths("--input-length", []int{c.InputLength})...)
	if c.OutputLength <= 0 {
		errs = append(errs, fmt.Errorf("--output-length %d: must be positive", c.OutputLength))
	}
	if c.TrafficMode != FixedClients && c.TrafficMode != FixedRate {
		errs = append(errs, fmt.Errorf("--traffic-mode %q: want fixed-clients or fixed-rate", c.TrafficMode))
	}
	if c.PointDuration <= 0 {
		errs = append(errs, fmt.Errorf("--point-duration %v: must be positive", c.PointDuration))
	}
	if c.WarmupDuration < 0 {
		errs = append(errs, fmt.Errorf("--warmup-duration %v: must not be negative", c.WarmupDuration))
	}
	if c.PointDuration > 0 && c.WarmupDuration >= c.PointDuration {
		errs = append(errs, fmt.Errorf("--point-duration %v must exceed --warmup-duration %v", c.PointDuration, c.WarmupDuration))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("--grace-period %v: must not be negative", c.GracePeriod))
	}
	if _, err := c.thresholds(); err != nil {
		errs = append(errs, err)
	}
	if c.Shard != nil {
		errs = append(errs, c.Shard.validate(c)...)
	}
	if a := c.SLOAttainment; a < 0 || a > 1 || a != a {
		errs = append(errs, fmt.Errorf("--slo-attainment %v: must be a fraction in (0, 1]", a))
	}
	switch c.Mode {
	case Manual:
		if len(c.Levels) == 0 {
			errs = append(errs, errors.New("--concurrency-levels must list at least one level"))
		}
		for _, l := range c.Levels {
			if !(l > 0) || math.IsInf(l, 0) {
				errs = append(errs, fmt.Errorf("--concurrency-levels %v: levels must be positive", l))
			} else if err := c.checkLevel("--concurrency-levels", l); err != nil {
				errs = append(errs, err)
			} else if c.TrafficMode == FixedClients && l != math.Trunc(l) {
				errs = append(errs, fmt.Errorf("--concurrency-levels %v: a number of clients must be a whole number", l))
			}
		}
	case Range:
		if c.RangeMin < 1 {
			errs = append(errs, fmt.Errorf("--concurrency-min %v: must be at least 1", c.RangeMin))
		}
		if err := c.checkLevel("--concurrency-max", c.RangeMax); err != nil {
			errs = append(errs, err)
		}
		if c.RangeMax <= c.RangeMin {
			errs = append(errs, fmt.Errorf("--concurrency-max %v must exceed --concurrency-min %v", c.RangeMax, c.RangeMin))
		}
		if c.RangePoints <= 0 {
			errs = append(errs, fmt.Errorf("--concurrency-points %d: must be positive", c.RangePoints))
		}
	case Auto:
		if c.Auto.Threshold <= 0 || c.Auto.Threshold >= 1 {
			errs = append(errs, fmt.Errorf("--auto-throughput-threshold %v: must be between 0 and 1", c.Auto.Threshold))
		}
		if c.Auto.MaxProbes <= 0 {
			errs = append(errs, fmt.Errorf("--auto-max-probes %d: must be positive", c.Auto.MaxProbes))
		}
		if c.Auto.FillPoints <= 0 {
			errs = append(errs, fmt.Errorf("--auto-fill-points %d: must be positive", c.Auto.FillPoints))
		}
		if c.Auto.MaxLevel < 0 {
			errs = append(errs, fmt.Errorf("--auto-max-level %v: must not be negative", c.Auto.MaxLevel))
		} else if err := c.checkLevel("--auto-max-level", c.Auto.MaxLevel); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("--stress-mode %q: want manual, range or auto", c.Mode))
	}
	return errors.Join(errs...)
}

// Bounds on a level, so that a plan never asks for more than one client
// process can hold: MaxClients concurrent clients, or MaxArrivals
// open-loop arrivals in one point (each is scheduled in advance).
const (
	MaxClients  = 100_000
	MaxArrivals = 10_000_000
)

// checkLevel refuses a level the client could not hold.
func (c Config) checkLevel(flag string, level float64) error {
	if c.TrafficMode == FixedRate {
		if n := level * c.PointDuration.D().Seconds(); n > MaxArrivals {
			return fmt.Errorf("%s %v: %v requests/s for %v is %.3g arrivals, more than one client process can schedule (at most %d a point)", flag, level, level, c.PointDuration, n, MaxArrivals)
		}
		return nil
	}
	if level > MaxClients {
		return fmt.Errorf("%s %v: more clients than one client process can hold (at most %d)", flag, level, MaxClients)
	}
	return nil
}

// LevelName is a level as written in folders and labels: "c=8" for
// clients, "qps=2.5" for rates.
func (c Config) LevelName(level float64) string {
	if c.TrafficMode == FixedRate {
		return "qps=" + strconv.FormatFloat(level, 'f', -1, 64)
	}
	return "c=" + strconv.FormatFloat(level, 'f', -1, 64)
}

// LevelHeader is the level column's name: Concurrency or QPS.
func (c Config) LevelHeader() string {
	if c.TrafficMode == FixedRate {
		return "QPS"
	}
	return "Concurrency"
}

// Attainment is the goodput ratio at which a level meets the SLO.
func (c Config) Attainment() float64 {
	if c.SLOAttainment == 0 {
		return DefaultSLOAttainment
	}
	return c.SLOAttainment
}

// CheckContext refuses a run whose requests cannot fit the model's
// context of contextLen tokens (prompt plus output, as the server counts
// them); 0 means unknown, and nothing is checked.
func (c Config) CheckContext(contextLen int) error {
	if contextLen <= 0 || c.InputLength+c.OutputLength <= contextLen {
		return nil
	}
	return fmt.Errorf("--input-length %d plus --output-length %d is %d tokens, beyond the model's %d-token context",
		c.InputLength, c.OutputLength, c.InputLength+c.OutputLength, contextLen)
}
