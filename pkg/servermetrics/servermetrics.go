// Package servermetrics scrapes an inference server's Prometheus /metrics
// endpoint while a benchmark runs, so that each point can be explained by
// what the server itself reported: how many requests it was running and
// queueing, how full its KV cache was, and whether its prefix cache served
// any prompt (which would make TTFC look better than it is). It knows the
// metric names of vLLM (and the simulated engine, which uses them) and
// SGLang; a server without /metrics is simply not scraped.
package servermetrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Metric names, by what they mean, in the order they are tried.
var (
	runningNames   = []string{"vllm:num_requests_running", "sglang:num_running_reqs"}
	waitingNames   = []string{"vllm:num_requests_waiting", "sglang:num_queue_reqs"}
	kvUsageNames   = []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"}
	prefixHitNames = []string{"vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total", "vllm:prefix_cache_hits"}
)

// Sample is one scrape: the value of each known metric (summed over label
// sets), NaN when the server does not expose it.
type Sample struct {
	At         time.Time
	Running    float64
	Waiting    float64
	KVUsage    float64
	PrefixHits float64
}

// Scraper polls a /metrics URL in the background.
type Scraper struct {
	url    string
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	samples []Sample
	failed  int
	cancel  context.CancelFunc
	done    chan struct{}
}

// Available tells whether url serves Prometheus text with at least one known
// metric. It is called once before a run to decide whether to scrape.
func Available(ctx context.Context, hc *http.Client, url string) bool {
	s, err := scrape(ctx, hc, url)
	return err == nil && !(math.IsNaN(s.Running) && math.IsNaN(s.Waiting) && math.IsNaN(s.KVUsage))
}

// Start scrapes url every interval until Stop. hc should have a short
// timeout; a failed scrape is counted and skipped.
func Start(ctx context.Context, hc *http.Client, url string, interval time.Duration, log *slog.Logger) *Scraper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Scraper{url: url, client: hc, log: log, cancel: cancel, done: make(chan struct{})}
	go s.loop(ctx, interval)
	return s
}

func (s *Scraper) loop(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		smp, err := scrape(ctx, s.client, s.url)
		s.mu.Lock()
		if err != nil {
			s.failed++
		} else {
			s.samples = append(s.samples, smp)
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Debug("metrics scrape failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Stop ends the scraping and waits for the last scrape to finish.
func (s *Scraper) Stop() {
	s.cancel()
	<-s.done
}

// Summary describes what the server reported between two instants.
type Summary struct {
	Scrapes int `json:"scrapes"`
	// MaxRunning and MaxWaiting are the most requests the server said it
	// was running and queueing; nil when it does not report them.
	MaxRunning *float64 `json:"max_running,omitempty"`
	MaxWaiting *float64 `json:"max_waiting,omitempty"`
	// MaxKVUsage is the highest KV-cache usage, as a fraction.
	MaxKVUsage *float64 `json:"max_kv_cache_usage,omitempty"`
	// PrefixHits is the growth of the server's prefix-cache hit counter
	// over the interval (tokens or blocks, as the server counts them).
	PrefixHits *float64 `json:"prefix_cache_hits,omitempty"`
}

// Summarize returns what the server reported in [from, to]. The prefix-hit
// growth is taken from the last scrape before from (or the first in the
// interval) to the last one in it.
func (s *Scraper) Summarize(from, to time.Time) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Summary
	var before *Sample
	var last *Sample
	for i := range s.samples {
		smp := &s.samples[i]
		if smp.At.Before(from) {
			before = smp
			continue
		}
		if smp.At.After(to) {
			break
		}
		out.Scrapes++
		out.MaxRunning = maxOf(out.MaxRunning, smp.Running)
		out.MaxWaiting = maxOf(out.MaxWaiting, smp.Waiting)
		out.MaxKVUsage = maxOf(out.MaxKVUsage, smp.KVUsage)
		if before == nil {
			before = smp
		}
		last = smp
	}
	if before != nil && last != nil && !math.IsNaN(before.PrefixHits) && !math.IsNaN(last.PrefixHits) {
		d := last.PrefixHits - before.PrefixHits
		out.PrefixHits = &d
	}
	return out
}

func maxOf(cur *float64, v float64) *float64 {
	if math.IsNaN(v) {
		return cur
	}
	if cur == nil || v > *cur {
		return &v
	}
	return cur
}

func scrape(ctx context.Context, hc *http.Client, url string) (Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return Sample{}, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	values, err := Parse(resp.Body)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	return Sample{
		At:         time.Now(),
		Running:    first(values, runningNames),
		Waiting:    first(values, waitingNames),
		KVUsage:    first(values, kvUsageNames),
		PrefixHits: first(values, prefixHitNames),
	}, nil
}

func first(values map[string]float64, names []string) float64 {
	for _, n := range names {
		if v, ok := values[n]; ok {
			return v
		}
	}
	return math.NaN()
}

// Parse reads Prometheus text exposition format and returns each metric's
// value summed over its label sets. Comments and malformed lines are
// skipped; histogram and summary series keep their suffixed names
// (name_bucket, name_sum, name_count; a summary's quantiles sum to name).
func Parse(r io.Reader) (map[string]float64, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	// expfmt wants every line ended, the last one too.
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	for skipped := 0; ; skipped++ {
		families, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err == nil {
			return sums(families), nil
		}
		// expfmt stops at the first malformed line: drop it and parse
		// again, up to a bound (a real server sends none).
		var pe expfmt.ParseError
		if !errors.As(err, &pe) || skipped == maxMalformed {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
		var ok bool
		if body, ok = dropLine(body, pe.Line); !ok {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
	}
}

// maxMalformed is how many malformed lines Parse skips before it fails.
const maxMalformed = 100

// dropLine removes line n (1-based) from text; ok is false when there is
// no such line.
func dropLine(text []byte, n int) (out []byte, ok bool) {
	start := 0
	for range n - 1 {
		i := bytes.IndexByte(text[start:], '\n')
		if i < 0 {
			return text, false
		}
		start += i + 1
	}
	if n < 1 || start >= len(text) {
		return text, false
	}
	end := len(text)
	if i := bytes.IndexByte(text[start:], '\n'); i >= 0 {
		end = start + i + 1
	}
	return append(text[:start:start], text[end:]...), true
}

// sums adds up each family's samples over its label sets, under the names
// the samples have in the text.
func sums(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] += m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[name] += m.GetUntyped().GetValue()
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					out[name] += q.GetValue()
				}
				if s.SampleSum != nil {
					out[name+"_sum"] += s.GetSampleSum()
				}
				if s.SampleCount != nil {
					out[name+"_count"] += float64(s.GetSampleCount())
				}
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[name+"_bucket"] += float64(b.GetCumulativeCount()) + b.GetCumulativeCountFloat()
				}
				if h.SampleSum != nil {
					out[name+"_sum"] += h.GetSampleSum()
				}
				if h.SampleCount != nil || h.SampleCountFloat != nil {
					out[name+"_count"] += float64(h.GetSampleCount()) + h.GetSampleCountFloat()
				}
			}
		}
	}
	return out
}

// Check adds the checks the server's own metrics support for one point:
// prefix_cache (hits while prompts were salted mean TTFC was helped by a
// cache) and, when batch > 0, server_batch (the server ran fewer requests
// at once than the batch). Nothing is added for a summary without scrapes.
func (s Summary) Check(rep *validate.Report, label string, batch int, salted bool) {
	if s.Scrapes == 0 {
		return
	}
	if s.PrefixHits != nil {
		switch {
		case *s.PrefixHits > 0 && salted:
			rep.Add("prefix_cache", label, validate.Warn, "the server reports %.0f prefix-cache hits during this point although every prompt was salted: TTFC may be understated", *s.PrefixHits)
		case *s.PrefixHits > 0:
			rep.Add("prefix_cache", label, validate.Pass, "the server reports %.0f prefix-cache hits (prompts are unsalted on purpose)", *s.PrefixHits)
		default:
			rep.Add("prefix_cache", label, validate.Pass, "the server reports no prefix-cache hits")
		}
	}
	if batch > 0 && s.MaxRunning != nil {
		if *s.MaxRunning < float64(batch) {
			rep.Add("server_batch", label, validate.Warn, "the server reported at most %.0f running requests for a batch of %d", *s.MaxRunning, batch)
		} else {
			rep.Add("server_batch", label, validate.Pass, "the server reported up to %.0f running requests", *s.MaxRunning)
		}
	}
}
