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
	from := time.Now()
	s := Start(t.Context(), hc, srv.URL, 10*time.Millisecond, nil)
	time.Sleep(120 * time.Millisecond)
	s.Stop()
	sum := s.Summarize(from, time.Now())
	if sum.Scrapes < 3 {
		t.Fatalf("%d scrapes in 120 ms at 10 ms", sum.Scrapes)
	}
	if sum.MaxRunning == nil || *sum.MaxRunning != 3 || sum.MaxWaiting == nil || *sum.MaxWaiting != 1 {
		t.Errorf("summary %+v, want max running 3 and waiting 1", sum)
	}
	if sum.MaxKVUsage != nil {
		t.Errorf("KV usage %v reported for a server without it", *sum.MaxKVUsage)
	}
	if sum.PrefixHits == nil || *sum.PrefixHits <= 0 || math.Mod(*sum.PrefixHits, 10) != 0 {
		t.Errorf("prefix hits %v, want a positive multiple of 10", sum.PrefixHits)
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
	var rep validate.Report
	Summary{Scrapes: 3, MaxRunning: f(2), PrefixHits: f(0)}.Check(&rep, "bs=4,il=128", 4, true)
	Summary{Scrapes: 3, MaxRunning: f(8), PrefixHits: f(32)}.Check(&rep, "c=8", 0, true)
	Summary{}.Check(&rep, "c=16", 0, true)
	got := map[string]validate.Status{}
	for _, c := range rep.Checks {
		got[c.Title()] = c.Status
	}
	want := map[string]validate.Status{
		"prefix_cache [bs=4,il=128]": validate.Pass, "server_batch [bs=4,il=128]": validate.Warn,
		"prefix_cache [c=8]": validate.Warn,
	}
	if len(got) != len(want) {
		t.Errorf("checks %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
}

// Parse skips any malformed line, wherever it is, and keeps the others;
// a histogram and a summary keep the names their series have in the text.
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
