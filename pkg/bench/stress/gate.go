package stress

import (
	"github.com/veeksha-go/veeksha/pkg/threshold"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ThresholdMetrics are the figures of a results entry that --threshold
// may name; the goodput ones need an SLO.
func ThresholdMetrics() threshold.Metrics {
	return append([]threshold.Metric{
		{Name: "ttfc_p50", Unit: threshold.Seconds}, {Name: "ttfc_p99", Unit: threshold.Seconds},
		{Name: "e2e_latency_p50", Unit: threshold.Seconds}, {Name: "e2e_latency_p99", Unit: threshold.Seconds},
		{Name: "tpot_p50", Unit: threshold.Seconds}, {Name: "tpot_p99", Unit: threshold.Seconds},
		{Name: "interactivity_p50", Unit: threshold.TokPerSec}, {Name: "interactivity_p99", Unit: threshold.TokPerSec},
		{Name: "input_throughput", Unit: threshold.TokPerSec}, {Name: "output_throughput", Unit: threshold.TokPerSec},
		{Name: "error_rate", Unit: threshold.Ratio}, {Name: "num_requests", Unit: threshold.Count},
	}, threshold.Goodput()...)
}

// thresholds parses cfg's thresholds, refusing a goodput one without an SLO.
func (c Config) thresholds() ([]threshold.Threshold, error) {
	return threshold.ParseFor(c.Thresholds, ThresholdMetrics(), !c.SLO.IsZero())
}

// values are the figures of p that thresholds may name; latencies and
// interactivity only when some request succeeded.
func (p Point) values() map[string]float64 {
	v := map[string]float64{
		"input_throughput": p.InputThroughput, "output_throughput": p.OutputThroughput,
		"num_requests": float64(p.NumRequests),
	}
	if p.Sent > 0 {
		v["error_rate"] = float64(p.Errors+p.Cut) / float64(p.Sent)
	}
	if p.NumRequests > 0 {
		v["ttfc_p50"], v["ttfc_p99"] = p.TTFCP50, p.TTFCP99
		v["e2e_latency_p50"], v["e2e_latency_p99"] = p.E2EP50, p.E2EP99
	}
	if p.TPOT.Count > 0 {
		v["tpot_p50"], v["tpot_p99"] = p.TPOTP50, p.TPOTP99
		v["interactivity_p50"], v["interactivity_p99"] = p.InteractivityP50, p.InteractivityP99
	}
	threshold.AddGoodput(v, p.Goodput)
	return v
}

// Gate checks cfg.Thresholds at every point.
func Gate(cfg Config, points []Point) ([]validate.Check, error) {
	ths, err := cfg.thresholds()
	if err != nil {
		return nil, err
	}
	tp := make([]threshold.Point, len(points))
	for i, p := range points {
		tp[i] = threshold.Point{Label: cfg.LevelName(p.Level), Values: p.values()}
	}
	return threshold.Evaluate(ths, tp), nil
}
