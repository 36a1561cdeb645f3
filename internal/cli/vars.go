package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/bench/stress"
)

// benchVars are the benchmark defaults for help texts and default tags,
// taken from the packages' Default constants so there is one source of truth.
func benchVars() kong.Vars {
	auto := stress.DefaultAuto()
	return kong.Vars{
		"default_input_lengths":         joinInts(prefill.DefaultInputLengths()),
		"default_prefill_output_tokens": fmt.Sprint(prefill.DefaultOutputTokens),
		"default_prefill_samples":       fmt.Sprint(prefill.DefaultSamplesPerLength),
		"default_warmup_requests":       fmt.Sprint(prefill.DefaultWarmupRequests),
		"default_batch_sizes":           joinInts(decode.DefaultBatchSizes()),
		"default_decode_samples":        fmt.Sprint(decode.DefaultSamplesPerLength),
		"default_engine_chunk_size":     fmt.Sprint(decode.DefaultEngineChunkSize),
		"default_ticket_timeout":        fmt.Sprint(decode.DefaultTicketTimeout.Seconds()),
		"default_stress_input_length":   fmt.Sprint(stress.DefaultInputLength),
		"default_stress_output_length":  fmt.Sprint(stress.DefaultOutputLength),
		"default_point_duration":        fmt.Sprint(stress.DefaultPointDuration.Seconds()),
		"default_warmup_duration":       fmt.Sprint(stress.DefaultWarmupDuration.Seconds()),
		"default_grace_period":          fmt.Sprint(stress.DefaultGracePeriod.Seconds()),
		"default_shard_gap":             fmt.Sprint(stress.DefaultShardGap.Seconds()),
		"default_levels":                joinFloats(stress.DefaultLevels()),
		"default_range_min":             fmt.Sprint(stress.DefaultRangeMin),
		"default_range_max":             fmt.Sprint(stress.DefaultRangeMax),
		"default_range_points":          fmt.Sprint(stress.DefaultRangePoints),
		"default_auto_threshold":        fmt.Sprint(auto.Threshold),
		"default_auto_max_probes":       fmt.Sprint(auto.MaxProbes),
		"default_auto_fill_points":      fmt.Sprint(auto.FillPoints),
		"default_auto_max_level":        fmt.Sprint(auto.MaxLevel),
		"default_slo_attainment":        fmt.Sprint(stress.DefaultSLOAttainment),
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " ")
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strings.Join(s, " ")
}

// thresholdNames are the figures benchmark b's --threshold may name.
func thresholdNames(b Bench) string {
	switch b {
	case Prefill:
		return prefill.ThresholdMetrics().Names()
	case Decode:
		return decode.ThresholdMetrics().Names()
	default:
		return stress.ThresholdMetrics().Names()
	}
}
