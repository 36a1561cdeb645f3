// Package threshold turns gates such as "ttfc_p99<500ms" into checks at
// every point of a run: a CI verdict on the server's speed, distinct from
// the validity checks that say whether the measurement itself holds.
//
// An expression is METRIC OP VALUE: METRIC one of the benchmark's
// per-point figures, OP one of < <= > >=, VALUE a number with the
// metric's unit where it has one: a duration (500ms, 1.5s) for latencies,
// an optional tok/s or req/s for rates, an optional % for ratios.
package threshold

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/slo"

	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Unit is how a metric's values are held and written.
type Unit int

// The units. Values are held in the first unit named.
const (
	// Seconds: a latency, written as a duration ("500ms", "2s").
	Seconds Unit = iota
	// TokPerSec: a token rate, written as a number with an optional "tok/s".
	TokPerSec
	// ReqPerSec: a request rate, written as a number with an optional "req/s".
	ReqPerSec
	// Ratio: a share in [0, 1], written as a fraction or with "%".
	Ratio
	// Count: a plain number.
	Count
)

// Metric is one per-point figure a threshold may name.
type Metric struct {
	Name string
	Unit Unit
	// NeedsSLO marks a goodput figure, measured only with an SLO.
	NeedsSLO bool
}

// Metrics are the figures a benchmark's thresholds may name.
type Metrics []Metric

// Names lists the metrics' names, comma-separated, for help texts.
func (ms Metrics) Names() string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

// Threshold is one parsed expression.
type Threshold struct {
	// Expr is the expression as given, which names its checks.
	Expr   string
	Metric Metric
	// Op is one of < <= > >=.
	Op string
	// Value is the limit in the metric's unit (seconds, tok/s, req/s, a
	// fraction).
	Value float64
}

// ops are the operators, the two-character ones first so that "<=" is
// not read as "<".
var ops = []string{"<=", ">=", "<", ">"}

// Parse reads expr against the metrics a benchmark has.
func Parse(expr string, known Metrics) (Threshold, error) {
	t := Threshold{Expr: strings.TrimSpace(expr)}
	i, op := -1, ""
	for _, o := range ops {
		if j := strings.Index(t.Expr, o); j >= 0 && (i < 0 || j < i) {
			i, op = j, o
		}
	}
	if i < 0 || strings.ContainsAny(t.Expr, "=!") && !strings.Contains(op, "=") {
		return t, fmt.Errorf("--threshold %q: want METRIC OP VALUE with OP one of < <= > >=, e.g. ttfc_p99<500ms", expr)
	}
	t.Op = op
	name := strings.ToLower(strings.TrimSpace(t.Expr[:i]))
	raw := strings.TrimSpace(t.Expr[i+len(op):])
	k := slices.IndexFunc(known, func(m Metric) bool { return m.Name == name })
	if k < 0 {
		return t, fmt.Errorf("--threshold %q: unknown metric %q (known: %s)", expr, name, known.Names())
	}
	t.Metric = known[k]
	v, err := parseValue(raw, t.Metric.Unit)
	if err != nil {
		return t, fmt.Errorf("--threshold %q: %w", expr, err)
	}
	t.Value = v
	return t, nil
}

// ParseAll parses every expression and reports every problem.
func ParseAll(exprs []string, known Metrics) ([]Threshold, error) {
	var out []Threshold
	var errs []error
	for _, e := range exprs {
		t, err := Parse(e, known)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// RequireSLO refuses a threshold on a goodput figure when the run has no
// SLO (hasSLO false): it would never be measured.
func RequireSLO(ths []Threshold, hasSLO bool) error {
	for _, t := range ths {
		if t.Metric.NeedsSLO && !hasSLO {
			return fmt.Errorf("--threshold %q: %s is measured against an objective: add --slo", t.Expr, t.Metric.Name)
		}
	}
	return nil
}

// ParseFor parses a benchmark's threshold expressions against its metrics
// and refuses a goodput threshold when the run has no SLO.
func ParseFor(exprs []string, known Metrics, hasSLO bool) ([]Threshold, error) {
	ths, err := ParseAll(exprs, known)
	if err == nil {
		err = RequireSLO(ths, hasSLO)
	}
	return ths, err
}

// AddGoodput sets the goodput figures of g in v, when g is known.
func AddGoodput(v map[string]float64, g *slo.Goodput) {
	if g != nil {
		v["goodput_ratio"], v["goodput_rps"], v["goodput_output_throughput"] = g.Ratio, g.RPS, g.OutputThroughput
	}
}

// Latency are the figures of one latency summary (prefix_p50, _p90,
// _p99, _mean and _max, in seconds) and of the token rate derived from it
// (rate, tok/s), as prefill (TTFC) and decode (TBT) offer them.
func Latency(prefix, rate string) []Metric {
	return []Metric{
		{Name: prefix + "_p50", Unit: Seconds}, {Name: prefix + "_p90", Unit: Seconds},
		{Name: prefix + "_p99", Unit: Seconds}, {Name: prefix + "_mean", Unit: Seconds},
		{Name: prefix + "_max", Unit: Seconds}, {Name: rate, Unit: TokPerSec},
	}
}

// AddLatency sets in v the figures Latency(prefix, rate) names: those of
// summary s and the token rate tps, when s holds samples.
func AddLatency(v map[string]float64, prefix string, s metrics.Summary, rate string, tps float64) {
	if s.Count == 0 {
		return
	}
	v[prefix+"_p50"], v[prefix+"_p90"], v[prefix+"_p99"] = s.Median, s.P90, s.P99
	v[prefix+"_mean"], v[prefix+"_max"], v[rate] = s.Mean, s.Max, tps
}

// Goodput are the goodput figures every benchmark has with an SLO.
func Goodput() []Metric {
	return []Metric{
		{Name: "goodput_ratio", Unit: Ratio, NeedsSLO: true},
		{Name: "goodput_rps", Unit: ReqPerSec, NeedsSLO: true},
		{Name: "goodput_output_throughput", Unit: TokPerSec, NeedsSLO: true},
	}
}

// parseValue reads a limit written in unit u.
func parseValue(raw string, u Unit) (float64, error) {
	number := func(s string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f != f {
			return 0, fmt.Errorf("%q is not a number", raw)
		}
		return f, nil
	}
	switch u {
	case Seconds:
		d, err := time.ParseDuration(raw)
		if err != nil {
			if _, nerr := number(raw); nerr == nil {
				return 0, fmt.Errorf("%q needs a unit (ms or s)", raw)
			}
			return 0, fmt.Errorf("%q is not a duration (500ms, 2s)", raw)
		}
		return d.Seconds(), nil
	case TokPerSec:
		return number(strings.TrimSuffix(raw, "tok/s"))
	case ReqPerSec:
		return number(strings.TrimSuffix(raw, "req/s"))
	case Ratio:
		if s, ok := strings.CutSuffix(raw, "%"); ok {
			f, err := number(s)
			return f / 100, err
		}
		return number(raw)
	default:
		return number(raw)
	}
}

// Holds reports whether v meets the threshold.
func (t Threshold) Holds(v float64) bool {
	switch t.Op {
	case "<":
		return v < t.Value
	case "<=":
		return v <= t.Value
	case ">":
		return v > t.Value
	default:
		return v >= t.Value
	}
}

// Format writes v in the metric's unit as people read it.
func (m Metric) Format(v float64) string {
	switch m.Unit {
	case Seconds:
		return strconv.FormatFloat(v*1000, 'f', 2, 64) + " ms"
	case TokPerSec:
		return strconv.FormatFloat(v, 'f', 1, 64) + " tok/s"
	case ReqPerSec:
		return strconv.FormatFloat(v, 'f', 2, 64) + " req/s"
	case Ratio:
		return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// Point is one benchmark point's figures by metric name; a metric missing
// from Values was not measured there.
type Point struct {
	Label  string
	Values map[string]float64
}

// Evaluate checks every threshold at every point, in the order given:
// PASS when the value meets it, FAIL when it crosses it, WARN when the
// point has no value for the metric (nothing was measured there).
func Evaluate(ths []Threshold, points []Point) []validate.Check {
	var out []validate.Check
	for _, t := range ths {
		for _, p := range points {
			c := validate.Check{Name: t.Expr, Label: p.Label}
			v, ok := p.Values[t.Metric.Name]
			switch {
			case !ok:
				c.Status, c.Detail = validate.Warn, t.Metric.Name+" was not measured at this point"
			case t.Holds(v):
				c.Status, c.Detail = validate.Pass, fmt.Sprintf("%s = %s", t.Metric.Name, t.Metric.Format(v))
			default:
				c.Status, c.Detail = validate.Fail, fmt.Sprintf("%s = %s, crossing %s %s", t.Metric.Name, t.Metric.Format(v), t.Op, t.Metric.Format(t.Value))
			}
			out = append(out, c)
		}
	}
	return out
}
