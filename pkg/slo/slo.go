// Package slo judges requests against a service-level objective (SLO):
// latency targets a request must meet to count as good, and goodput, the
// share and the rate of good requests at one benchmark point.
//
// A request is good when it succeeded and meets every target that is set:
// TTFC, TPOT (only when the request has one: two or more output tokens)
// and E2E, as defined in package result.
package slo

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// SLO is a set of latency targets; a zero target is not set. It is part
// of each benchmark's Config and echoed into its results.
type SLO struct {
	TTFC result.Seconds `json:"ttfc_s,omitzero"`
	TPOT result.Seconds `json:"tpot_s,omitzero"`
	E2E  result.Seconds `json:"e2e_s,omitzero"`
}

// IsZero reports whether no target is set.
func (s SLO) IsZero() bool { return s == SLO{} }

// Parse reads SLO specs as --slo takes them: comma-separated
// name=duration pairs, names ttfc, tpot and e2e, durations with a unit
// ("500ms", "20s"). Several specs merge; a target given twice is an error.
func Parse(specs ...string) (SLO, error) {
	var s SLO
	var errs []error
	seen := map[string]bool{}
	for _, spec := range specs {
		for part := range strings.SplitSeq(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, val, ok := strings.Cut(part, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok {
				errs = append(errs, fmt.Errorf("--slo %q: want name=duration, e.g. ttfc=500ms", part))
				continue
			}
			d, err := time.ParseDuration(strings.TrimSpace(val))
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("--slo %q: %q is not a positive duration with a unit (500ms, 20s)", part, val))
				continue
			}
			if seen[name] {
				errs = append(errs, fmt.Errorf("--slo %q: %s is given twice", part, name))
				continue
			}
			seen[name] = true
			switch name {
			case "ttfc":
				s.TTFC = result.Seconds(d)
			case "tpot":
				s.TPOT = result.Seconds(d)
			case "e2e":
				s.E2E = result.Seconds(d)
			default:
				errs = append(errs, fmt.Errorf("--slo %q: unknown target %q (want ttfc, tpot or e2e)", part, name))
			}
		}
	}
	return s, errors.Join(errs...)
}

// String is the SLO as --slo takes it: "ttfc=500ms,tpot=50ms".
func (s SLO) String() string {
	var parts []string
	for _, t := range []struct {
		name string
		d    result.Seconds
	}{{"ttfc", s.TTFC}, {"tpot", s.TPOT}, {"e2e", s.E2E}} {
		if t.d > 0 {
			parts = append(parts, t.name+"="+t.d.String())
		}
	}
	return strings.Join(parts, ",")
}

// Good reports whether r succeeded and meets every target of s.
func (s SLO) Good(r *result.Request) bool {
	if !r.OK() {
		return false
	}
	ttfc, ok := r.TTFC()
	if !ok {
		return false
	}
	if s.TTFC > 0 && ttfc > s.TTFC.D() {
		return false
	}
	if e2e, _ := r.E2E(); s.E2E > 0 && e2e > s.E2E.D() {
		return false
	}
	if tpot, ok := r.TPOT(); s.TPOT > 0 && ok && tpot > s.TPOT.D() {
		return false
	}
	return true
}

// Goodput is how many of a point's requests were good. Its JSON keys are
// flat, so that a results entry embedding it holds goodput_ratio,
// goodput_rps and goodput_output_throughput.
type Goodput struct {
	// Good counts the good requests; Judged every request they were
	// judged among (failures included).
	Good   int `json:"good_requests"`
	Judged int `json:"judged_requests"`
	// Ratio is Good / Judged (0 when nothing was judged).
	Ratio float64 `json:"goodput_ratio"`
	// RPS is good requests per second of the point's window.
	RPS float64 `json:"goodput_rps"`
	// OutputThroughput is the output tokens of the good requests per
	// second of the point's window.
	OutputThroughput float64 `json:"goodput_output_throughput"`
}

// Judge counts the good requests of reqs, warm-ups left out, and divides
// by window (the point's measurement window) for the rates; a window of 0
// leaves the rates 0. Output tokens are the record's count (the server's
// when it reported usage), else the chunks received.
func (s SLO) Judge(reqs []result.Request, window time.Duration) Goodput {
	var g Goodput
	tokens := 0
	for i := range reqs {
		r := &reqs[i]
		if r.Warmup {
			continue
		}
		g.Judged++
		if !s.Good(r) {
			continue
		}
		g.Good++
		if r.OutputTokens > 0 {
			tokens += r.OutputTokens
		} else {
			tokens += r.Chunks()
		}
	}
	if g.Judged > 0 {
		g.Ratio = float64(g.Good) / float64(g.Judged)
	}
	if window > 0 {
		g.RPS = float64(g.Good) / window.Seconds()
		g.OutputThroughput = float64(tokens) / window.Seconds()
	}
	return g
}

// Span is the time from the first send to the last stream end of reqs
// (warm-ups left out): the window of a point that sends a fixed number of
// requests rather than for a fixed time.
func Span(reqs []result.Request) time.Duration {
	var first, last time.Duration
	seen := false
	for i := range reqs {
		r := &reqs[i]
		if r.Warmup || (r.Sent == 0 && r.End == 0) {
			continue
		}
		end := max(r.End, r.Sent)
		if n := len(r.TokenTimes); n > 0 {
			end = max(end, r.TokenTimes[n-1])
		}
		if !seen || r.Sent < first {
			first = r.Sent
		}
		last = max(last, end)
		seen = true
	}
	return last - first
}
