package stress

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// Shard makes a run one of Count processes that together send the
// plan's load (--shard Index/Count, --start-at StartAt). Each runs its
// share of every level (Config.Share) with its own seed (Config.RunSeed),
// and starts level k at the planned wall-clock instant PlannedStart(k),
// which depends on the plan alone, so no shard waits on another. Merge
// puts the shards' records back together.
type Shard struct {
	// Index is this process's shard, from 0; Count the number of shards.
	Index int `json:"index"`
	Count int `json:"count"`
	// StartAt is the planned start of the first level (wall clock, UTC).
	StartAt time.Time `json:"start_at"`
	// Gap is the pause planned between a level's cutoff (point duration
	// plus grace period) and the next level's start, for writing the
	// level's results.
	Gap result.Seconds `json:"gap_s"`
}

// DefaultShardGap is the default of Shard.Gap (--shard-gap).
const DefaultShardGap = 5 * time.Second

// EndMissedStart is the end reason of a sharded level that was not run
// because its shard reached it too late: so late that no part of the
// measurement window was left before the level's planned end.
const EndMissedStart = "missed_start"

// ParseShard reads "I/N" (I from 0 to N-1).
func ParseShard(s string) (index, count int, err error) {
	i, n, ok := strings.Cut(s, "/")
	if ok {
		index, err = strconv.Atoi(strings.TrimSpace(i))
		if err == nil {
			count, err = strconv.Atoi(strings.TrimSpace(n))
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("--shard %q: want I/N, e.g. 0/4 (shard I of N, I from 0)", s)
	}
	if count < 1 || index < 0 || index >= count {
		return 0, 0, fmt.Errorf("--shard %q: want 0 <= I < N", s)
	}
	return index, count, nil
}

// String is "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// validate reports the problems of s within cfg.
func (s Shard) validate(cfg Config) []error {
	var errs []error
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		errs = append(errs, fmt.Errorf("--shard %d/%d: want 0 <= I < N", s.Index, s.Count))
	}
	if cfg.Mode == Auto {
		errs = append(errs, errors.New("--shard: auto mode needs every level's result to choose the next level, which one shard does not have; use --stress-mode manual or range"))
	}
	if s.StartAt.IsZero() {
		errs = append(errs, errors.New("--shard needs --start-at (the same RFC 3339 instant for every shard)"))
	}
	if s.Gap < 0 {
		errs = append(errs, fmt.Errorf("--shard-gap %v: must not be negative", s.Gap))
	}
	return errs
}

// ShareClients is shard i's share of c clients split over n shards:
// ⌊c/n⌋, plus one for the first c mod n shards, so the shares add up
// to c. A shard whose share is 0 sends nothing at that level.
func ShareClients(c, i, n int) int {
	share := c / n
	if i < c%n {
		share++
	}
	return share
}

// Share is this run's part of level: the level itself when the run is
// not sharded; else its share of the clients (ShareClients), or level/N
// requests/s in fixed-rate mode.
func (c Config) Share(level float64) float64 {
	if c.Shard == nil {
		return level
	}
	if c.TrafficMode == FixedRate {
		return level / float64(c.Shard.Count)
	}
	return float64(ShareClients(int(math.Round(level)), c.Shard.Index, c.Shard.Count))
}

// RunSeed is the seed of this run's arrivals and prompt bodies: the
// configured seed, or for a shard a seed derived from it and the shard's
// index, so that shards never draw the same arrivals or prompts.
func (c Config) RunSeed() uint64 {
	if c.Shard == nil {
		return c.Seed
	}
	return splitmix(c.Seed ^ splitmix(uint64(c.Shard.Index)+1))
}

// PromptSeq is the number that salts the prompt of request seq of this
// run: seq itself, or for shard I of N seq·N + I, so that no two shards
// of a run ever salt two prompts alike.
func (c Config) PromptSeq(seq int) int {
	if c.Shard == nil {
		return seq
	}
	return seq*c.Shard.Count + c.Shard.Index
}

// LevelSlot is the planned time from one level's start to the next in a
// sharded run: the point duration, the grace period and the gap. It
// depends on the plan alone.
func (c Config) LevelSlot() time.Duration {
	gap := DefaultShardGap
	if c.Shard != nil {
		gap = c.Shard.Gap.D()
	}
	return c.PointDuration.D() + c.GracePeriod.D() + gap
}

// PlannedStart is when level number k (from 0, in run order) starts in
// a sharded run: StartAt + k·LevelSlot. Zero when the run is not sharded.
func (c Config) PlannedStart(k int) time.Time {
	if c.Shard == nil {
		return time.Time{}
	}
	return c.Shard.StartAt.Add(time.Duration(k) * c.LevelSlot())
}

// splitmix is the splitmix64 finaliser: distinct inputs, distinct outputs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
