// Package validate holds the post-run validity checks' common shape: a Check
// with a PASS, WARN, FAIL or SKIP status and a one-line detail, and a Report
// that collects them. Each benchmark supplies its own checks, and makes every
// check it can make at every point: one that cannot be evaluated there is
// SKIP with the reason, never left out. A run fails validation when any
// check is FAIL; WARN and SKIP never fail it.
package validate

import "fmt"

// Status is the outcome of one check.
type Status string

// The outcomes. WARN flags a threat to validity without failing the run;
// SKIP says the check could not be evaluated at that point (its detail says
// why: no data, a server that does not report it) and never fails the run.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is one validity check's outcome. Label names the point it applies
// to ("bs=4,il=512", "c=8"), empty for run-wide checks.
type Check struct {
	Name   string `json:"name"`
	Label  string `json:"label,omitempty"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Title is the check's name with its label, as shown in tables: "name [label]".
func (c Check) Title() string {
	if c.Label == "" {
		return c.Name
	}
	return c.Name + " [" + c.Label + "]"
}

// Report is the ordered list of checks of one run, and the outcome of
// the user's thresholds (--threshold) at each point. A crossed threshold
// is not a failed check: the measurement is valid, the server too slow
// for the user's gate.
type Report struct {
	Checks     []Check `json:"checks"`
	Thresholds []Check `json:"thresholds,omitempty"`
}

// Add appends a check.
func (r *Report) Add(name, label string, s Status, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Label: label, Status: s, Detail: fmt.Sprintf(format, args...)})
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Count(Fail) > 0 }

// Crossed reports whether any threshold failed.
func (r *Report) Crossed() bool {
	for _, c := range r.Thresholds {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Summary is the one-line count: "7 passed, 1 warnings, 0 failures", and
// ", 2 skipped" when some checks could not be evaluated.
func (r *Report) Summary() string {
	s := fmt.Sprintf("%d passed, %d warnings, %d failures", r.Count(Pass), r.Count(Warn), r.Count(Fail))
	if n := r.Count(Skip); n > 0 {
		s += fmt.Sprintf(", %d skipped", n)
	}
	return s
}
