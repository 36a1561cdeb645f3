package decode

import (
	"github.com/veeksha-go/veeksha/pkg/threshold"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ThresholdMetrics are the per-combination figures --threshold may name;
// the goodput ones need an SLO.
func ThresholdMetrics() []threshold.Metric {
	return append([]threshold.Metric{
		{Name: "tbt_p50", Unit: threshold.Seconds}, {Name: "tbt_p90", Unit: threshold.Seconds},
		{Name: "tbt_p99", Unit: threshold.Seconds}, {Name: "tbt_mean", Unit: threshold.Seconds},
		{Name: "tbt_max", Unit: threshold.Seconds}, {Name: "decode_tokens_per_s", Unit: threshold.TokPerSec},
		{Name: "error_rate", Unit: threshold.Ratio},
	}, threshold.Goodput()...)
}

// thresholds parses c's thresholds, refusing a goodput one without an SLO.
func (c Config) thresholds() ([]threshold.Threshold, error) {
	return threshold.ParseFor(c.Thresholds, ThresholdMetrics(), !c.SLO.IsZero())
}

// values are the figures of r that thresholds may name.
func (r Row) values() map[string]float64 {
	v := map[string]float64{}
	if r.Requests > 0 {
		v["error_rate"] = float64(r.Errors) / float64(r.Requests)
	}
	if r.TBT.Count > 0 {
		v["tbt_p50"], v["tbt_p90"], v["tbt_p99"] = r.TBT.Median, r.TBT.P90, r.TBT.P99
		v["tbt_mean"], v["tbt_max"], v["decode_tokens_per_s"] = r.TBT.Mean, r.TBT.Max, r.DecodeTPS
	}
	threshold.AddGoodput(v, r.Goodput)
	return v
}

// Gate checks cfg.Thresholds at every combination ("bs=4,il=512").
func Gate(cfg Config, rows []Row) ([]validate.Check, error) {
	ths, err := cfg.thresholds()
	if err != nil {
		return nil, err
	}
	tp := make([]threshold.Point, len(rows))
	for i, r := range rows {
		label := Combination{BatchSize: r.BatchSize, InputLength: r.InputLength}.CheckLabel()
		tp[i] = threshold.Point{Label: label, Values: r.values()}
	}
	return threshold.Evaluate(ths, tp), nil
}
