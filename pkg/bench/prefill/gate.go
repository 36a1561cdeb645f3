package prefill

import (
	"strconv"

	"github.com/veeksha-go/veeksha/pkg/threshold"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// ThresholdMetrics are the per-length figures --threshold may name; the
// goodput ones need an SLO.
func ThresholdMetrics() []threshold.Metric {
	return append([]threshold.Metric{
		{Name: "ttfc_p50", Unit: threshold.Seconds}, {Name: "ttfc_p90", Unit: threshold.Seconds},
		{Name: "ttfc_p99", Unit: threshold.Seconds}, {Name: "ttfc_mean", Unit: threshold.Seconds},
		{Name: "ttfc_max", Unit: threshold.Seconds}, {Name: "prefill_tokens_per_s", Unit: threshold.TokPerSec},
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
	if r.TTFC.Count > 0 {
		v["ttfc_p50"], v["ttfc_p90"], v["ttfc_p99"] = r.TTFC.Median, r.TTFC.P90, r.TTFC.P99
		v["ttfc_mean"], v["ttfc_max"], v["prefill_tokens_per_s"] = r.TTFC.Mean, r.TTFC.Max, r.PrefillTPS
	}
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
