package prefill

import (
	"strconv"

	"github.com/veeksha-go/veeksha/pkg/threshold"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ThresholdMetrics are the per-length figures --threshold may name; the
// goodput ones need an SLO.
func ThresholdMetrics() threshold.Metrics {
	ms := append(threshold.Latency("ttfc", "prefill_tokens_per_s"), threshold.Metric{Name: "error_rate", Unit: threshold.Ratio})
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
	threshold.AddLatency(v, "ttfc", r.TTFC, "prefill_tokens_per_s", r.PrefillTPS)
	threshold.AddGoodput(v, r.Goodput)
	return v
}

// Gate checks cfg.Thresholds at every input length ("il=512").
func Gate(cfg Config, rows []Row) ([]validate.Check, error) {
	ths, err := cfg.thresholds()
	if err != nil {
		return nil, err
	}
	tp := make([]threshold.Point, len(rows))
	for i, r := range rows {
		tp[i] = threshold.Point{Label: "il=" + strconv.Itoa(r.InputLength), Values: r.values()}
	}
	return threshold.Evaluate(ths, tp), nil
}
