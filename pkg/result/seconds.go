package result

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Seconds is a duration that results files hold as a number of seconds
// (keys ending in _s). In Go it is a time.Duration: D converts.
type Seconds time.Duration

// D is s as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// String formats s as a time.Duration does ("2m0s").
func (s Seconds) String() string { return time.Duration(s).String() }

// MarshalJSON writes s as seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(s).Seconds())
}

// UnmarshalJSON reads seconds, rounding to the nanosecond.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("seconds: %w", err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/1e9 {
		return fmt.Errorf("seconds: %v is out of range", f)
	}
	*s = Seconds(math.Round(f * 1e9))
	return nil
}
