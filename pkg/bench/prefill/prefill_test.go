package prefill

import (
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/slo"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// done is a successful one-token request of length l sent at sent with
// the given TTFC.
func done(seq, l int, sent, ttfc time.Duration) result.Request {
	return result.Request{Seq: seq, TargetPromptTokens: l, PromptTokens: l, UsageReported: true, OutputTokens: 1,
		Sent: sent, TokenTimes: []time.Duration{sent + ttfc}, End: sent + ttfc + time.Millisecond}
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	reqs := []result.Request{
		{Seq: 0, Warmup: true, TargetPromptTokens: 512, Sent: 0, TokenTimes: []time.Duration{500 * ms}, End: 501 * ms},
		done(1, 512, 1000*ms, 20*ms), done(2, 512, 1100*ms, 30*ms), done(3, 512, 1200*ms, 40*ms),
		done(4, 128, 1300*ms, 10*ms),
		{Seq: 5, TargetPromptTokens: 128, Sent: 1400 * ms, ErrClass: result.ErrHTTPStatus, HTTPStatus: 500, End: 1401 * ms},
		done(6, 128, 1500*ms, 12*ms),
	}
	rows := Analyze(reqs)
	if len(rows) != 2 || rows[0].InputLength != 128 || rows[1].InputLength != 512 {
		t.Fatalf("Analyze rows = %+v, want lengths 128 then 512", rows)
	}
	if rows[0].Errors != 1 || rows[0].TTFC.Count != 2 || rows[0].Requests != 3 {
		t.Errorf("row 128 = %+v, want 2 samples, 1 error, 3 requests", rows[0])
	}
	if got := rows[1].TTFC.Median; got < 0.0299 || got > 0.0301 {
		t.Errorf("row 512 TTFC median = %v, want 0.030 (the warm-up left out)", got)
	}
	if got := rows[1].PrefillTPS; got < 17066 || got > 17067 {
		t.Errorf("row 512 prefill tok/s = %v, want 512/0.030", got)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cfg := Config{InputLengths: []int{512, 128}, OutputTokens: 1, SamplesPerLength: 2}
	good := []result.Request{done(0, 512, 0, 10*ms), done(1, 512, 20*ms, 10*ms), done(2, 128, 40*ms, 5*ms), done(3, 128, 60*ms, 5*ms)}
	rep := Check(cfg, good, fidelity.Assessment{}, fidelity.DefaultBounds())
	if rep.Failed() || rep.Count(validate.Warn) != 0 {
		t.Errorf("Check(good) = %+v", rep.Checks)
	}

	bad := []result.Request{done(0, 512, 0, 10*ms), done(1, 128, 5*ms, 10*ms), done(2, 128, 40*ms, 5*ms)}
	rep = Check(cfg, bad, fidelity.Assessment{}, fidelity.DefaultBounds())
	status := map[string]validate.Check{}
	for _, c := range rep.Checks {
		status[c.Name] = c
	}
	if c := status["session_count"]; c.Status != validate.Fail || !strings.Contains(c.Detail, "expected 4 requests, got 3") {
		t.Errorf("session_count = %+v", c)
	}
	if c := status["sequential_execution"]; c.Status != validate.Warn {
		t.Errorf("sequential_execution = %+v, want WARN for an overlap", c)
	}
	if c := status["prompt_tokens_stair"]; c.Status != validate.Warn || !strings.Contains(c.Detail, "request 1: expected 512 tokens, got 128") {
		t.Errorf("prompt_tokens_stair = %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{InputLengths: []int{0, 128}, OutputTokens: 1, SamplesPerLength: -1}.Validate()
	for _, want := range []string{"--input-lengths 0", "--samples-per-length -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

// Each length's goodput judges its own measured requests; warm-ups are
// left out and failures count against the ratio.
func TestAnalyzeSLO(t *testing.T) {
	t.Parallel()
	mk := func(seq, length int, ttfc time.Duration) result.Request {
		sent := time.Duration(seq) * time.Second
		return result.Request{Seq: seq, TargetPromptTokens: length, Sent: sent, OutputTokens: 1, TokenTimes: []time.Duration{sent + ttfc}, End: sent + ttfc}
	}
	warm := mk(0, 128, time.Second)
	warm.Warmup = true
	failed := mk(4, 512, 0)
	failed.ErrClass, failed.TokenTimes = result.ErrHTTPStatus, nil
	reqs := []result.Request{warm, mk(1, 128, 10*time.Millisecond), mk(2, 128, 30*time.Millisecond), mk(3, 512, 10*time.Millisecond), failed}
	rows := AnalyzeSLO(reqs, slo.SLO{TTFC: result.Seconds(20 * time.Millisecond)})
	if len(rows) != 2 || rows[0].Goodput == nil || rows[1].Goodput == nil {
		t.Fatalf("rows = %+v", rows)
	}
	if g := rows[0].Goodput; g.Good != 1 || g.Judged != 2 || g.Ratio != 0.5 {
		t.Errorf("il=128 goodput = %+v, want 1 of 2", g)
	}
	if g := rows[1].Goodput; g.Good != 1 || g.Judged != 2 || g.Ratio != 0.5 {
		t.Errorf("il=512 goodput = %+v, want 1 of 2 (the failure counts)", g)
	}
	if rows := AnalyzeSLO(reqs, slo.SLO{}); rows[0].Goodput != nil {
		t.Errorf("no SLO: goodput %+v, want nil", rows[0].Goodput)
	}
}
