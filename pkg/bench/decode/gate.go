package decode

import (
	"github.com/veeksha-go/veeksha/pkg/threshold"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ThresholdMetrics are the per-combination figures --threshold may name;
// the goodput ones need an SLO.
func ThresholdMetrics() threshold.Metrics {
	ms := append(threshold.Latency("tbt", "decode_tokens_per_s"), threshold.Metric{Name: "error_rate", Unit: threshold.Ratio})
	return append(ms, threshold.Goodput()...)
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
	threshold.AddLatency(v, "tbt", r.TBT, "decode_tokens_per_s", r.DecodeTPS)
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
