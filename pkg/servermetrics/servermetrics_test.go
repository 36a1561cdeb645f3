package servermetrics

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/veeksha-go/veeksha/pkg/validate"
)

func TestParse(t *testing.T) {
	t.Parallel()
	text := `# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",engine="0"} 3
vllm:num_requests_running{model_name="m",engine="1"} 2
vllm:kv_cache_usage_perc{model_name="m"} 0.25
vllm:prefix_cache_hits_total{model_name="m"} 1.5e3 1712345678
weird line
sglang:num_queue_reqs 7
`
	got, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"vllm:num_requests_running": 5, "vllm:kv_cache_usage_perc": 0.25, "vllm:prefix_cache_hits_total": 1500, "sglang:num_queue_reqs": 7}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Parse: %s = %v, want %v", k, got[k], v)
		}
	}
}

func TestScraperSummarizes(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := n.Add(1)
		fmt.Fprintf(w, "vllm:num_requests_running %d\nvllm:num_requests_waiting 1\nvllm:prefix_cache_hits_total %d\n", i%4, 10*i)
	}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: time.Second}
	if !Available(t.Context(), hc, srv.URL) {
		t.Fatal("Probe = false for a vLLM-style endpoint")
	}
	s := Start(t.Context(), hc, srv.URL, 10*time.Millisecond, nil)
	s.ScrapeNow(t.Context())
	from := time.Now()
	time.Sleep(120 * time.Millisecond)
	to := time.Now()
	s.ScrapeNow(t.Context())
	s.Stop()
	sum := s.Summarize(from, to)
	if sum.Scrapes < 3 {
		t.Fatalf("%d scrapes in 120 ms at 10 ms", sum.Scrapes)
	}
	if sum.MaxRunning == nil || *sum.MaxRunning != 3 || sum.MaxWaiting == nil || *sum.MaxWaiting != 1 {
		t.Errorf("summary %+v, want max running 3 and waiting 1", sum)
	}
	if sum.MaxKVUsage != nil {
		t.Errorf("KV usage %v reported for a server without it", *sum.MaxKVUsage)
	}
	if !sum.Bracketed || sum.PrefixHits == nil || *sum.PrefixHits <= 0 || math.Mod(*sum.PrefixHits, 10) != 0 {
		t.Errorf("prefix hits %v (bracketed %v), want a positive multiple of 10", sum.PrefixHits, sum.Bracketed)
	}
	if sum.PrefixQueries != nil {
		t.Errorf("prefix queries %v reported for a server without them", *sum.PrefixQueries)
	}
}

// A point shorter than the polling interval is still bracketed by the
// scrapes at its start and end: the counters' growth is known, though no
// gauge was read while it ran.
func TestShortPointBracketed(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "vllm:num_requests_running 0\nvllm:prefix_cache_queries_total %d\nvllm:prefix_cache_hits_total %d\n", 4*hits.Load(), hits.Load())
	}))
	t.Cleanup(srv.Close)
	s := Start(t.Context(), &http.Client{Timeout: time.Second}, srv.URL, time.Hour, nil)
	t.Cleanup(s.Stop)
	s.ScrapeNow(t.Context())
	from := time.Now()
	hits.Add(16) // the point: 16 tokens hit of 64 queried
	to := time.Now()
	s.ScrapeNow(t.Context())
	sum := s.Summarize(from, to)
	if !sum.Bracketed || sum.PrefixHits == nil || *sum.PrefixHits != 16 || sum.PrefixQueries == nil || *sum.PrefixQueries != 64 {
		t.Fatalf("summary %+v, want bracketed with 16 hits of 64 queries", sum)
	}
	if sum.Scrapes != 0 || sum.MaxRunning != nil {
		t.Errorf("summary %+v: the boundary scrapes count as scrapes during the point", sum)
	}
	var rep validate.Report
	Check(&rep, &sum, "bs=4,il=128", 4, Prompts{Salted: true})
	got := map[string]validate.Check{}
	for _, c := range rep.Checks {
		got[c.Name] = c
	}
	if c := got["prefix_cache"]; c.Status != validate.Warn || !strings.Contains(c.Detail, "16 prefix-cache hits of 64 queried (25.0 %)") {
		t.Errorf("prefix_cache = %+v, want WARN with 16 of 64", c)
	}
	if c := got["server_batch"]; c.Status != validate.Skip || !strings.Contains(c.Detail, "no /metrics scrape while") {
		t.Errorf("server_batch = %+v, want SKIP: no scrape ran during the point", c)
	}
}

func TestProbeRejectsOtherEndpoints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	if Available(t.Context(), &http.Client{Timeout: time.Second}, srv.URL) {
		t.Error("Probe = true for a 404")
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "go_goroutines 7") }))
	t.Cleanup(other.Close)
	if Available(t.Context(), &http.Client{Timeout: time.Second}, other.URL) {
		t.Error("Probe = true for metrics without any inference-server gauge")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		s      *Summary
		batch  int
		salted bool
		want   map[string]validate.Status
		detail string
	}{
		{"no hits, batch not held", &Summary{Scrapes: 3, Bracketed: true, MaxRunning: f(2), PrefixHits: f(0)}, 4, true,
			map[string]validate.Status{"prefix_cache": validate.Pass, "server_batch": validate.Warn}, "at most 2 running requests for a batch of 4"},
		{"hits with salted prompts", &Summary{Scrapes: 3, Bracketed: true, MaxRunning: f(8), PrefixHits: f(201)}, 0, true,
			map[string]validate.Status{"prefix_cache": validate.Warn}, "although every prompt was salted"},
		// 10 requests × 20 template tokens: the shared chat header alone.
		{"template hits with salted prompts", &Summary{Scrapes: 3, Bracketed: true, MaxRunning: f(8), PrefixHits: f(200)}, 0, true,
			map[string]validate.Status{"prefix_cache": validate.Pass}, "within the 20 tokens its chat template adds to each of the 10 salted prompts"},
		{"hits with unsalted prompts", &Summary{Scrapes: 3, Bracketed: true, MaxRunning: f(8), PrefixHits: f(32), PrefixQueries: f(64)}, 0, false,
			map[string]validate.Status{"prefix_cache": validate.Pass}, "32 prefix-cache hits of 64 queried (50.0 %): prompts are unsalted on purpose"},
		{"batch held", &Summary{Scrapes: 3, Bracketed: true, MaxRunning: f(8), PrefixHits: f(0)}, 8, true,
			map[string]validate.Status{"prefix_cache": validate.Pass, "server_batch": validate.Pass}, "up to 8 running requests"},
		{"not scraped", nil, 4, true,
			map[string]validate.Status{"prefix_cache": validate.Skip, "server_batch": validate.Skip}, "was not scraped"},
		{"no scrape at all", &Summary{}, 4, true,
			map[string]validate.Status{"prefix_cache": validate.Skip, "server_batch": validate.Skip}, "no /metrics scrape before and after the point"},
		{"no prefix counters", &Summary{Scrapes: 1, Bracketed: true, MaxRunning: f(4)}, 4, false,
			map[string]validate.Status{"prefix_cache": validate.Skip, "server_batch": validate.Pass}, "exposes no prefix-cache counters"},
		{"no running count", &Summary{Scrapes: 1, Bracketed: true, PrefixHits: f(0)}, 4, false,
			map[string]validate.Status{"prefix_cache": validate.Pass, "server_batch": validate.Skip}, "exposes no running-request count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rep validate.Report
			Check(&rep, tt.s, "c=8", tt.batch, Prompts{Salted: tt.salted, Requests: 10, OverheadTokens: 20})
			got := map[string]validate.Status{}
			found := false
			for _, c := range rep.Checks {
				got[c.Name] = c.Status
				found = found || strings.Contains(c.Detail, tt.detail)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("checks %v, want %v (%+v)", got, tt.want, rep.Checks)
			}
			if !found {
				t.Errorf("no detail contains %q: %+v", tt.detail, rep.Checks)
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	t.Parallel()
	text := `# HELP vllm:e2e_request_latency_seconds Latency.

# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.5"} 1
vllm:e2e_request_latency_seconds_bucket{le="+Inf"} 3
vllm:e2e_request_latency_seconds_sum 2.5
vllm:e2e_request_latency_seconds_count 3
bad{label="unterminated} 1
# TYPE rpc summary
rpc{quantile="0.5"} 0.25
rpc{quantile="0.9"} 0.5
rpc_sum 9
rpc_count 12
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running 4
# TYPE vllm:num_requests_running gauge
also{bad="\q"} 1
vllm:num_requests_waiting{a="x"} 1 notatimestamp
vllm:num_requests_waiting{a="y"} 2
{"dotted.name", a="z"} 6
sglang:token_usage 0.5`
	got, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"vllm:e2e_request_latency_seconds_bucket": 4, "vllm:e2e_request_latency_seconds_sum": 2.5, "vllm:e2e_request_latency_seconds_count": 3,
		"rpc": 0.75, "rpc_sum": 9, "rpc_count": 12,
		"vllm:num_requests_running": 4, "vllm:num_requests_waiting": 2, "dotted.name": 6, "sglang:token_usage": 0.5,
	}
	if !maps.Equal(got, want) {
		t.Errorf("Parse = %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	if got, err := Parse(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("Parse(empty) = %v, %v; want nothing", got, err)
	}
	garbage := strings.Repeat("not a metric\n", maxMalformed+1) + "vllm:num_requests_running 1\n"
	if got, err := Parse(strings.NewReader(garbage)); err == nil {
		t.Errorf("Parse(%d malformed lines) = %v, want an error", maxMalformed+1, got)
	}
	if got, err := Parse(iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Parse(failing reader) = %v, %v; want the read error", got, err)
	}
}
