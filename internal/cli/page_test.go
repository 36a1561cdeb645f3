package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/validate"
)

func TestOverallVerdict(t *testing.T) {
	t.Parallel()
	pass := validate.Check{Name: "a", Status: validate.Pass}
	warn := validate.Check{Name: "b", Status: validate.Warn}
	fail := validate.Check{Name: "c", Status: validate.Fail}
	skip := validate.Check{Name: "d", Status: validate.Skip}
	for _, tt := range []struct {
		name       string
		rep        validate.Report
		want, text string
	}{
		{"all pass", validate.Report{Checks: []validate.Check{pass}}, "PASS", "every check passed"},
		{"a warning", validate.Report{Checks: []validate.Check{pass, warn}}, "WARN", "with warnings"},
		{"a skip does not fail nor claim every check passed", validate.Report{Checks: []validate.Check{pass, skip}}, "PASS", "every check that could be evaluated passed: 1 passed, 0 warnings, 0 failures, 1 skipped"},
		{"a warning beats a skip", validate.Report{Checks: []validate.Check{skip, warn}}, "WARN", "with warnings"},
		{"a failure beats a warning", validate.Report{Checks: []validate.Check{warn, fail}}, "FAIL", "not valid"},
		{"thresholds held", validate.Report{Checks: []validate.Check{pass}, Thresholds: []validate.Check{pass}}, "PASS", "thresholds held"},
		{"a crossed threshold fails a valid run", validate.Report{Checks: []validate.Check{warn}, Thresholds: []validate.Check{fail}}, "FAIL", "thresholds crossed"},
	} {
		got, text := overallVerdict(tt.rep)
		if got != tt.want || !strings.Contains(text, tt.text) {
			t.Errorf("%s: overallVerdict = %q, %q; want %q with %q", tt.name, got, text, tt.want, tt.text)
		}
	}
}

func TestSettingsGridLeavesOutKeys(t *testing.T) {
	t.Parallel()
	doc := map[string]any{
		"settings": map[string]any{"model": "m", "api_key": "secret", "nested": map[string]any{"APIKey": "secret"}},
		"config":   map[string]any{"levels": []int{1, 2}},
		"results":  []int{3},
	}
	g, err := settingsGrid(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range g.Rows {
		got = append(got, r[0]+"="+r[1])
	}
	if want := []string{"config.levels=[1,2]", `settings.model="m"`}; !slices.Equal(got, want) {
		t.Errorf("settings rows %q, want %q", got, want)
	}
}
