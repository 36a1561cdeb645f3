package slo

import (
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

func TestParse(t *testing.T) {
	t.Parallel()
	ms := func(n int) result.Seconds { return result.Seconds(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		specs []string
		want  SLO
		err   string
	}{
		// Happy paths.
		{"all three", []string{"ttfc=500ms,tpot=50ms,e2e=20s"}, SLO{TTFC: ms(500), TPOT: ms(50), E2E: ms(20000)}, ""},
		{"a subset", []string{"tpot=50ms"}, SLO{TPOT: ms(50)}, ""},
		{"repeated flag merges", []string{"ttfc=1s", "e2e=2s"}, SLO{TTFC: ms(1000), E2E: ms(2000)}, ""},
		{"spaces and case", []string{" TTFC = 250ms , "}, SLO{TTFC: ms(250)}, ""},
		{"nothing", nil, SLO{}, ""},
		// Sad paths.
		{"no unit", []string{"ttfc=500"}, SLO{}, `"500" is not a positive duration`},
		{"negative", []string{"e2e=-1s"}, SLO{}, "not a positive duration"},
		{"unknown name", []string{"tbt=5ms"}, SLO{}, `unknown target "tbt"`},
		{"no equals", []string{"ttfc"}, SLO{}, "want name=duration"},
		{"twice", []string{"ttfc=1s", "ttfc=2s"}, SLO{}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.specs...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Parse(%q) error = %v, want one containing %q", tt.specs, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %+v, %v, want %+v", tt.specs, got, err, tt.want)
			}
		})
	}
	if s, _ := Parse("e2e=20s,ttfc=500ms"); s.String() != "ttfc=500ms,e2e=20s" {
		t.Errorf("String() = %q", s.String())
	}
}

// req is a request sent at 1 s with a TTFC of ttfc and n tokens, gap apart.
func req(ttfc, gap time.Duration, n int) result.Request {
	r := result.Request{Sent: time.Second, OutputTokens: n, UsageReported: true}
	for i := range n {
		r.TokenTimes = append(r.TokenTimes, r.Sent+ttfc+time.Duration(i)*gap)
	}
	r.End = r.TokenTimes[n-1]
	return r
}

func TestGood(t *testing.T) {
	t.Parallel()
	s, err := Parse("ttfc=100ms,tpot=20ms,e2e=1s")
	if err != nil {
		t.Fatal(err)
	}
	failed := req(10*time.Millisecond, 10*time.Millisecond, 5)
	failed.ErrClass, failed.Err = result.ErrStream, "reset"
	tests := []struct {
		name string
		r    result.Request
		want bool
	}{
		{"meets all", req(50*time.Millisecond, 10*time.Millisecond, 10), true},
		{"at the targets exactly", req(100*time.Millisecond, 20*time.Millisecond, 10), true},
		{"ttfc over", req(101*time.Millisecond, 10*time.Millisecond, 10), false},
		{"tpot over", req(50*time.Millisecond, 21*time.Millisecond, 10), false},
		{"e2e over", req(90*time.Millisecond, 19*time.Millisecond, 50), false},
		{"one token: no tpot to judge", req(50*time.Millisecond, 0, 1), true},
		{"failed", failed, false},
		{"no content", result.Request{Sent: time.Second}, false},
	}
	for _, tt := range tests {
		if got := s.Good(&tt.r); got != tt.want {
			t.Errorf("%s: Good = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !(SLO{}).Good(&tests[2].r) {
		t.Errorf("an empty SLO rejects a successful request")
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	s := SLO{TPOT: result.Seconds(15 * time.Millisecond)}
	warm := req(time.Millisecond, 30*time.Millisecond, 4)
	warm.Warmup = true
	failed := req(time.Millisecond, time.Millisecond, 4)
	failed.ErrClass = result.ErrHTTPStatus
	reqs := []result.Request{
		warm, // left out
		req(time.Millisecond, 10*time.Millisecond, 8),  // good, 8 tokens
		req(time.Millisecond, 10*time.Millisecond, 12), // good, 12 tokens
		req(time.Millisecond, 20*time.Millisecond, 8),  // too slow
		failed, // counts against the ratio
	}
	g := s.Judge(reqs, 4*time.Second)
	want := Goodput{Good: 2, Judged: 4, Ratio: 0.5, RPS: 0.5, OutputThroughput: 5}
	if g != want {
		t.Errorf("Judge = %+v, want %+v", g, want)
	}
	if g := s.Judge(nil, 0); g != (Goodput{}) {
		t.Errorf("Judge(nil) = %+v, want zero", g)
	}
}

func TestSpan(t *testing.T) {
	t.Parallel()
	a := req(10*time.Millisecond, 10*time.Millisecond, 3) // 1.0 s .. 1.03 s
	b := req(10*time.Millisecond, 10*time.Millisecond, 3)
	b.Sent, b.TokenTimes = 2*time.Second, []time.Duration{2010 * time.Millisecond, 2500 * time.Millisecond}
	b.End = 2600 * time.Millisecond
	unsent := result.Request{ErrClass: result.ErrCanceled}
	if got := Span([]result.Request{a, b, unsent}); got != 1600*time.Millisecond {
		t.Errorf("Span = %v, want 1.6s", got)
	}
}
