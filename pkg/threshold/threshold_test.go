package threshold

import (
	"strings"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/validate"
)

var testMetrics = append([]Metric{{Name: "ttfc_p99", Unit: Seconds}, {Name: "output_throughput", Unit: TokPerSec}, {Name: "num_requests", Unit: Count}},
	Goodput()...)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr   string
		metric string
		op     string
		value  float64
		err    string
	}{
		// Happy paths: every unit and operator.
		{"ttfc_p99<500ms", "ttfc_p99", "<", 0.5, ""},
		{" ttfc_p99 <= 1.5s ", "ttfc_p99", "<=", 1.5, ""},
		{"output_throughput>1000tok/s", "output_throughput", ">", 1000, ""},
		{"output_throughput>=1000", "output_throughput", ">=", 1000, ""},
		{"goodput_ratio>=0.95", "goodput_ratio", ">=", 0.95, ""},
		{"goodput_ratio>=95%", "goodput_ratio", ">=", 0.95, ""},
		{"goodput_rps>2req/s", "goodput_rps", ">", 2, ""},
		{"NUM_REQUESTS>=10", "num_requests", ">=", 10, ""},
		// Sad paths.
		{"ttfc_p99<500", "", "", 0, "needs a unit"},
		{"ttfc_p99<fast", "", "", 0, "not a duration"},
		{"ttfc_p42<5ms", "", "", 0, `unknown metric "ttfc_p42"`},
		{"ttfc_p99==5ms", "", "", 0, "want METRIC OP VALUE"},
		{"ttfc_p99=<5ms", "", "", 0, "want METRIC OP VALUE"},
		{"ttfc_p99 5ms", "", "", 0, "want METRIC OP VALUE"},
		{"goodput_ratio>x%", "", "", 0, "not a number"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.expr, testMetrics)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.expr, err, tt.err)
			}
			continue
		}
		if err != nil || got.Metric.Name != tt.metric || got.Op != tt.op || got.Value < tt.value-1e-12 || got.Value > tt.value+1e-12 {
			t.Errorf("Parse(%q) = %+v, %v, want %s %s %v", tt.expr, got, err, tt.metric, tt.op, tt.value)
		}
	}
	if _, err := ParseAll([]string{"ttfc_p99<1", "x>1"}, testMetrics); err == nil || strings.Count(err.Error(), "--threshold") != 2 {
		t.Errorf("ParseAll reports %v, want both problems", err)
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	ths, err := ParseAll([]string{"ttfc_p99<500ms", "goodput_ratio>=95%"}, testMetrics)
	if err != nil {
		t.Fatal(err)
	}
	points := []Point{
		{Label: "c=1", Values: map[string]float64{"ttfc_p99": 0.499, "goodput_ratio": 0.95}},
		{Label: "c=8", Values: map[string]float64{"ttfc_p99": 0.5, "goodput_ratio": 0.9}},
		{Label: "c=64", Values: map[string]float64{}},
	}
	got := Evaluate(ths, points)
	want := []struct {
		title  string
		status validate.Status
		detail string
	}{
		{"ttfc_p99<500ms [c=1]", validate.Pass, "ttfc_p99 = 499.00 ms"},
		{"ttfc_p99<500ms [c=8]", validate.Fail, "ttfc_p99 = 500.00 ms, crossing < 500.00 ms"},
		{"ttfc_p99<500ms [c=64]", validate.Warn, "not measured"},
		{"goodput_ratio>=95% [c=1]", validate.Pass, "95.0%"},
		{"goodput_ratio>=95% [c=8]", validate.Fail, "goodput_ratio = 90.0%, crossing >= 95.0%"},
		{"goodput_ratio>=95% [c=64]", validate.Warn, "not measured"},
	}
	if len(got) != len(want) {
		t.Fatalf("Evaluate gave %d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Title() != w.title || got[i].Status != w.status || !strings.Contains(got[i].Detail, w.detail) {
			t.Errorf("check %d = %s %s %q, want %s %s %q", i, got[i].Title(), got[i].Status, got[i].Detail, w.title, w.status, w.detail)
		}
	}
	rep := validate.Report{Thresholds: got}
	if !rep.Crossed() || rep.Failed() {
		t.Errorf("Crossed = %v, Failed = %v; want a crossed threshold that is not a failed check", rep.Crossed(), rep.Failed())
	}
}

func TestRequireSLO(t *testing.T) {
	t.Parallel()
	ths, err := ParseAll([]string{"ttfc_p99<1s", "goodput_ratio>0.9"}, testMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if err := RequireSLO(ths, false); err == nil || !strings.Contains(err.Error(), "add --slo") {
		t.Errorf("RequireSLO without an SLO = %v, want an error naming --slo", err)
	}
	if err := RequireSLO(ths, true); err != nil {
		t.Errorf("RequireSLO with an SLO = %v", err)
	}
}
