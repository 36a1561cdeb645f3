package validate

import (
	"strings"
	"testing"

	"github.com/veeksha-go/veeksha/pkg/result"
)

func TestReport(t *testing.T) {
	t.Parallel()
	var r Report
	r.Add("session_count", "", Pass, "%d requests", 6)
	r.Add("fcfs_order", "bs=2,il=128", Warn, "%d out-of-order first tokens", 1)
	if r.Failed() {
		t.Fatalf("Failed() = true with no FAIL check")
	}
	r.Add("no_errors", "c=4", Fail, "%d of %d requests failed", 1, 10)
	if !r.Failed() {
		t.Fatalf("Failed() = false with a FAIL check")
	}
	if got, want := r.Summary(), "1 passed, 1 warnings, 1 failures"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	r.Add("prefix_cache", "c=4", Skip, "no /metrics scrape during the point")
	if got, want := r.Summary(), "1 passed, 1 warnings, 1 failures, 1 skipped"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got, want := r.Checks[1].Title(), "fcfs_order [bs=2,il=128]"; got != want {
		t.Errorf("Title() = %q, want %q", got, want)
	}
	if got, want := r.Checks[0].Title(), "session_count"; got != want {
		t.Errorf("Title() = %q, want %q", got, want)
	}
}

func TestSkipNeverFails(t *testing.T) {
	t.Parallel()
	var r Report
	r.Add("server_batch", "bs=4,il=128", Skip, "no /metrics scrape during the point")
	r.Add("no_errors", "bs=4,il=128", Pass, "all 4 requests succeeded")
	if r.Failed() {
		t.Errorf("Failed() = true with only PASS and SKIP checks")
	}
	if got := r.Count(Skip); got != 1 {
		t.Errorf("Count(Skip) = %d, want 1", got)
	}
}

func TestRequestChecks(t *testing.T) {
	t.Parallel()
	ok := func(seq, prompt, target, out int) result.Request {
		return result.Request{Seq: seq, UsageReported: true, PromptTokens: prompt, TargetPromptTokens: target, OutputTokens: out}
	}
	tests := []struct {
		name   string
		reqs   []result.Request
		want   map[string]Status
		detail string
	}{
		{"all good", []result.Request{ok(0, 128, 128, 4), ok(1, 128, 128, 4)},
			map[string]Status{"no_errors": Pass, "output_tokens": Pass, "prompt_tokens_exact": Pass}, ""},
		{"one failed", []result.Request{ok(0, 128, 128, 4), {Seq: 1, ErrClass: result.ErrHTTPStatus, HTTPStatus: 500}},
			map[string]Status{"no_errors": Fail, "output_tokens": Pass, "prompt_tokens_exact": Pass}, "1 of 2 requests failed: 1 http_status (500: 1)"},
		{"wrong prompt length", []result.Request{ok(0, 130, 128, 4)},
			map[string]Status{"prompt_tokens_exact": Fail}, "request 0: server counted 130 for a target of 128"},
		{"early stop", []result.Request{ok(0, 128, 128, 3)},
			map[string]Status{"output_tokens": Warn}, "1 requests produced another output length than 4"},
		{"no usage", []result.Request{{Seq: 0, OutputTokens: 4}},
			map[string]Status{"prompt_tokens_exact": Warn}, "reported no usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r Report
			r.NoErrors("c=1", tt.reqs)
			r.OutputTokens("c=1", tt.reqs, 4)
			r.PromptTokensExact("c=1", tt.reqs)
			found := false
			for _, c := range r.Checks {
				if want, ok := tt.want[c.Name]; ok && c.Status != want {
					t.Errorf("%s = %s (%s), want %s", c.Name, c.Status, c.Detail, want)
				}
				if tt.detail != "" && strings.Contains(c.Detail, tt.detail) {
					found = true
				}
			}
			if tt.detail != "" && !found {
				t.Errorf("no check detail contains %q: %+v", tt.detail, r.Checks)
			}
		})
	}
}
