package stress

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/slo"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// sec is n seconds.
func sec(n int) result.Seconds { return result.Seconds(time.Duration(n) * time.Second) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func baseConfig() Config {
	return Config{InputLength: 512, OutputLength: 4, TrafficMode: FixedClients, Mode: Manual, Levels: []float64{1},
		PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}
}

// req is a successful request sent at sent, with its 4 tokens every 100 ms
// after a 50 ms TTFC.
func req(seq int, sent time.Duration) result.Request {
	r := result.Request{Seq: seq, Intended: sent, Sent: sent, TargetPromptTokens: 512, PromptTokens: 512, UsageReported: true, OutputTokens: 4}
	for i := range 4 {
		r.TokenTimes = append(r.TokenTimes, sent+50*time.Millisecond+time.Duration(i)*100*time.Millisecond)
	}
	r.End = r.TokenTimes[3]
	return r
}

func TestAnalyzeWindow(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	run := LevelRun{Level: 1, EndReason: result.EndCompleted, Config: LevelRunConditions{
		TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}}
	// One request every 500 ms from t=0 to 9.5 s: 20 requests.
	for i := range 20 {
		run.Requests = append(run.Requests, req(i, time.Duration(i)*500*time.Millisecond))
	}
	p := Analyze(run)
	// Sent in [2 s, 10 s]: i = 4..19, 16 requests.
	if p.NumRequests != 16 || p.Sent != 16 {
		t.Errorf("NumRequests = %d, Sent = %d, want 16", p.NumRequests, p.Sent)
	}
	// Tokens arriving in [2, 10]: request 3 (sent 1.5 s) has tokens at
	// 1.55..1.85: none; requests 4..18 all 4 tokens (60); request 19 (9.5 s)
	// has 9.55, 9.65, 9.75, 9.85: 4. Total 64 over 8 s.
	if !near(p.OutputThroughput, 64.0/8) {
		t.Errorf("OutputThroughput = %v, want %v", p.OutputThroughput, 64.0/8)
	}
	if !near(p.InputThroughput, 16*512.0/8) {
		t.Errorf("InputThroughput = %v, want %v", p.InputThroughput, 16*512.0/8)
	}
	if !near(p.TTFCP50, 0.05) || !near(p.E2EP50, 0.35) || !near(p.TPOTP50, 0.1) || !near(p.InteractivityP50, 10) {
		t.Errorf("latencies: ttfc %v e2e %v tpot %v interactivity %v", p.TTFCP50, p.E2EP50, p.TPOTP50, p.InteractivityP50)
	}
	rep := Check(cfg, []LevelRun{run}, []Point{p}, fidelity.DefaultBounds())
	if rep.Failed() {
		t.Errorf("clean level failed validation: %+v", rep.Checks)
	}
	// 16 samples bound a median but not a P99: the check and the table say so.
	if !p.E2E.CI95.Median.Supported || p.E2E.CI95.P99.Supported {
		t.Errorf("E2E CI95 = %+v, want a supported median and an unsupported P99", p.E2E.CI95)
	}
	for _, c := range rep.Checks {
		if c.Name == "sample_count" && !strings.Contains(c.Detail, "P99s need >= 555") {
			t.Errorf("sample_count detail %q does not say how many samples a P99 needs", c.Detail)
		}
	}
	if notes := strings.Join(Table(cfg, []Point{p}).Notes, "\n"); !strings.Contains(notes, "P99 at c=1: too few samples") {
		t.Errorf("table notes do not flag the P99:\n%s", notes)
	}
}

// Tokens whose chunks carry several tokens are counted by usage, so
// coalescing never lowers the throughput.
func TestAnalyzeCountsCoalescedTokens(t *testing.T) {
	t.Parallel()
	r := req(0, 3*time.Second)
	r.OutputTokens = 8 // 4 chunks of 2 tokens, per-chunk counts unknown
	run := LevelRun{Level: 1, EndReason: result.EndCompleted, Config: LevelRunConditions{TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2)}}
	run.Requests = []result.Request{r}
	if p := Analyze(run); !near(p.OutputToks, 8) {
		t.Errorf("OutputToks = %v, want 8", p.OutputToks)
	}
	r.TokensPerChunk = []int{1, 3, 2, 2}
	run.Requests = []result.Request{r}
	if p := Analyze(run); !near(p.OutputToks, 8) {
		t.Errorf("with per-chunk counts: OutputToks = %v, want 8", p.OutputToks)
	}
}

func TestCheckFailuresAndMonotonicity(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cond := LevelRunConditions{TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}
	mk := func(level float64, failEvery int) (LevelRun, Point) {
		run := LevelRun{Level: level, EndReason: result.EndCompleted, Config: cond}
		for i := range 20 {
			r := req(i, 2*time.Second+time.Duration(i)*300*time.Millisecond)
			if failEvery > 0 && i%failEvery == 0 {
				r = result.Request{Seq: i, Sent: r.Sent, Intended: r.Sent, TargetPromptTokens: 512, ErrClass: result.ErrHTTPStatus, HTTPStatus: 500, Err: "boom"}
			}
			run.Requests = append(run.Requests, r)
		}
		return run, Analyze(run)
	}
	r1, p1 := mk(1, 0)
	r2, p2 := mk(2, 10)
	// A drop in throughput at level 4: fewer requests.
	r4, p4 := mk(4, 0)
	r4.Requests = r4.Requests[:8]
	p4 = Analyze(r4)
	rep := Check(cfg, []LevelRun{r1, r2, r4}, []Point{p1, p2, p4}, fidelity.DefaultBounds())
	got := map[string]validate.Status{}
	for _, c := range rep.Checks {
		got[c.Title()] = c.Status
		if c.Title() == "no_errors [c=2]" && !strings.Contains(c.Detail, "2 http_status (500: 2)") {
			t.Errorf("no_errors detail %q lacks the error counts", c.Detail)
		}
	}
	want := map[string]validate.Status{"no_errors [c=1]": validate.Pass, "no_errors [c=2]": validate.Fail, "sample_count [c=4]": validate.Warn}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.Mode = Range
	c.RangeMin, c.RangeMax, c.RangePoints = 8, 4, 3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--concurrency-max 4 must exceed --concurrency-min 8") {
		t.Errorf("Validate(range 8..4) = %v", err)
	}
	c = baseConfig()
	c.TrafficMode = FixedRate
	c.Levels = []float64{0.5, 2.5}
	if err := c.Validate(); err != nil {
		t.Errorf("fractional rates rejected: %v", err)
	}
	if got := c.LevelName(2.5); got != "qps=2.5" {
		t.Errorf("LevelName(2.5) = %q", got)
	}
	if got := c.LevelName(2e6); got != "qps=2000000" {
		t.Errorf("LevelName(2e6) = %q, want no exponent in a folder name", got)
	}
	// Levels the client cannot hold are refused before any work.
	c.Levels = []float64{1e8}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "more than one client process can schedule") {
		t.Errorf("Validate(fixed-rate 1e8) = %v", err)
	}
	c = baseConfig()
	c.Levels = []float64{1e9}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at most 100000") {
		t.Errorf("Validate(1e9 clients) = %v", err)
	}
	c = baseConfig()
	c.InputLength = 9999999999
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "longer than any model's context") {
		t.Errorf("Validate(--input-length 9999999999) = %v", err)
	}
}

// Failures count wherever they were sent: two HTTP 500s in the warm-up
// fail no_errors; a hung request (timeout at the cutoff) is a failure;
// a request still receiving at the cutoff is cut, named next to the
// latencies; requests an interrupt cancelled are not failures.
func TestCheckCountsEveryFailure(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cond := LevelRunConditions{TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}
	fail := func(seq int, sent time.Duration, class string) result.Request {
		return result.Request{Seq: seq, Sent: sent, Intended: sent, TargetPromptTokens: 512, ErrClass: class, HTTPStatus: 500, Err: "boom"}
	}
	level := func(extra ...result.Request) (LevelRun, Point) {
		run := LevelRun{Level: 1, EndReason: result.EndCompleted, Config: cond}
		for i := range 12 {
			run.Requests = append(run.Requests, req(i, 2*time.Second+time.Duration(i)*500*time.Millisecond))
		}
		run.Requests = append(run.Requests, extra...)
		return run, Analyze(run)
	}
	status := func(run LevelRun, p Point, check string) (validate.Status, string) {
		for _, c := range Check(cfg, []LevelRun{run}, []Point{p}, fidelity.DefaultBounds()).Checks {
			if c.Name == check {
				return c.Status, c.Detail
			}
		}
		return "", ""
	}

	run, p := level(fail(20, 100*time.Millisecond, result.ErrHTTPStatus), fail(21, 200*time.Millisecond, result.ErrHTTPStatus))
	if st, detail := status(run, p, "no_errors"); st != validate.Fail || p.ErrorsOutside != 2 || p.Errors != 0 || !strings.Contains(detail, "2 in warm-up or after") {
		t.Errorf("warm-up 500s: no_errors %s (%s), errors %d outside %d; want FAIL with 2 outside", st, detail, p.Errors, p.ErrorsOutside)
	}

	hung := req(22, 9*time.Second)
	hung.TokenTimes, hung.ErrClass, hung.Err = hung.TokenTimes[:1], result.ErrTimeout, "timeout: did not complete"
	run, p = level(hung)
	if st, _ := status(run, p, "no_errors"); st != validate.Fail || p.Errors != 1 || p.Cut != 0 || p.ErrorsBy.ByClass[result.ErrTimeout] != 1 {
		t.Errorf("hung request: no_errors %s, errors %d cut %d by %v; want FAIL, 1 timeout", st, p.Errors, p.Cut, p.ErrorsBy)
	}

	cut := req(23, 9*time.Second)
	cut.ErrClass, cut.Err = result.ErrCanceled, CutError
	run, p = level(cut)
	st, detail := status(run, p, "no_cut_requests")
	if ok, _ := status(run, p, "no_errors"); ok != validate.Pass || p.Cut != 1 || st != validate.Warn || !strings.Contains(detail, "latencies exclude them") {
		t.Errorf("cut request: no_errors %s, cut %d, no_cut_requests %s (%s)", ok, p.Cut, st, detail)
	}
	if p.NumRequests != 12 {
		t.Errorf("cut request in the latency sample: NumRequests = %d, want 12", p.NumRequests)
	}
	var buf strings.Builder
	for _, n := range Table(cfg, []Point{p}).Notes {
		buf.WriteString(n)
	}
	if !strings.Contains(buf.String(), "c=1: 1 cut") {
		t.Errorf("table notes %q do not name the cut request", buf.String())
	}

	// Every count of one level agrees: the no_errors total, its breakdown
	// by class, the table's Errors column and the results' error counts,
	// with failures inside and outside the window, a cut request and an
	// interrupted one (neither of them a failure) in the same level.
	stopped := req(24, 9*time.Second)
	stopped.ErrClass, stopped.Err = result.ErrCanceled, "context canceled"
	run, p = level(fail(20, 100*time.Millisecond, result.ErrHTTPStatus), hung, cut, stopped, fail(25, 4*time.Second, result.ErrStream))
	_, detail = status(run, p, "no_errors")
	if want := "3 of 17 requests the level sent failed (2 in the window, 1 in warm-up or after it): 1 http_status (500: 1), 1 stream, 1 timeout"; detail != want || p.ErrorsBy.Total != p.Failed() {
		t.Errorf("mixed level: no_errors %q (errors by class %d, failed %d), want %q", detail, p.ErrorsBy.Total, p.Failed(), want)
	}
	found := false
	for _, c := range Table(cfg, []Point{p}).Columns {
		if c.Header == "Errors" {
			found = true
			if v, _ := c.Value(p); v != float64(p.ErrorsBy.Total) {
				t.Errorf("table Errors = %v, want %d", v, p.ErrorsBy.Total)
			}
		}
	}
	if !found {
		t.Errorf("the results table has no Errors column")
	}

	stopped = req(24, 9*time.Second)
	stopped.ErrClass, stopped.Err = result.ErrCanceled, "context canceled"
	run, p = level(stopped)
	run.EndReason = result.EndInterrupted
	if st, _ := status(run, p, "no_errors"); st != validate.Pass || p.Canceled != 1 {
		t.Errorf("interrupted request: no_errors %s, canceled %d; want PASS, 1 canceled", st, p.Canceled)
	}
}

// Goodput judges the requests sent in the window, failures included, and
// divides by the window: an SLO above the requests' latencies passes all
// of them, one below passes none.
func TestAnalyzeGoodput(t *testing.T) {
	t.Parallel()
	run := LevelRun{Level: 1, EndReason: result.EndCompleted, Config: LevelRunConditions{
		TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}}
	// One request every 500 ms; the window [2 s, 10 s] holds i = 4..19.
	for i := range 20 {
		run.Requests = append(run.Requests, req(i, time.Duration(i)*500*time.Millisecond))
	}
	// Two of the window's requests fail.
	for _, i := range []int{6, 7} {
		run.Requests[i].ErrClass, run.Requests[i].Err = result.ErrHTTPStatus, "500"
	}
	ms := func(n int) result.Seconds { return result.Seconds(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name string
		slo  slo.SLO
		good int
	}{
		{"tpot just above the truth (100 ms)", slo.SLO{TPOT: ms(101)}, 14},
		{"tpot just below", slo.SLO{TPOT: ms(99)}, 0},
		{"ttfc above (50 ms), e2e above (350 ms)", slo.SLO{TTFC: ms(51), E2E: ms(351)}, 14},
		{"e2e below", slo.SLO{E2E: ms(349)}, 0},
	}
	for _, tt := range tests {
		p := AnalyzeSLO(run, tt.slo)
		want := slo.Goodput{Good: tt.good, Judged: 16, Ratio: float64(tt.good) / 16, RPS: float64(tt.good) / 8, OutputThroughput: float64(4*tt.good) / 8}
		if p.Goodput == nil || *p.Goodput != want {
			t.Errorf("%s: Goodput = %+v, want %+v", tt.name, p.Goodput, want)
		}
	}
	if p := AnalyzeSLO(run, slo.SLO{}); p.Goodput != nil {
		t.Errorf("no SLO: Goodput = %+v, want nil", p.Goodput)
	}
	cfg := baseConfig()
	cfg.SLO = slo.SLO{TPOT: ms(101)}
	p := AnalyzeSLO(run, cfg.SLO)
	var csv strings.Builder
	if err := report.WriteCSV(&csv, Table(cfg, []Point{p})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), "goodput_ratio,goodput_rps,goodput_output_throughput_tok_s") || !strings.Contains(csv.String(), ",0.875,1.75,7") {
		t.Errorf("CSV lacks the goodput columns or values:\n%s", csv.String())
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"goodput_ratio":0.875`, `"goodput_rps":1.75`, `"goodput_output_throughput":7`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("results entry lacks %s", key)
		}
	}
	charts := Charts(cfg, []Point{p})
	if last := charts[len(charts)-1]; last.Name != "goodput_vs_load" || last.Series[0].Y[0] != 1.75 {
		t.Errorf("last chart = %+v, want goodput_vs_load at 1.75 req/s", last)
	}
}

func TestCheckContext(t *testing.T) {
	t.Parallel()
	cfg := Config{InputLength: 4096, OutputLength: 4096}
	if err := cfg.CheckContext(0); err != nil {
		t.Errorf("unknown context: %v", err)
	}
	if err := cfg.CheckContext(8192); err != nil {
		t.Errorf("8192 tokens in an 8192-token context: %v", err)
	}
	if err := cfg.CheckContext(8191); err == nil || !strings.Contains(err.Error(), "--input-length 4096 plus --output-length 4096 is 8192 tokens, beyond the model's 8191-token context") {
		t.Errorf("CheckContext(8191) = %v", err)
	}
}
