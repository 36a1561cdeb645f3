// Package servermetrics scrapes an inference server's Prometheus /metrics
// endpoint while a benchmark runs, so that each point can be explained by
// what the server itself reported: how many requests it was running and
// queueing, how full its KV cache was, and whether its prefix cache served
// any prompt (which would make TTFC look better than it is). It knows the
// metric names of vLLM (and the simulated engine, which uses them) and
// SGLang; a server without /metrics is simply not scraped. Besides the
// periodic scrape, the runner scrapes at each point's start and end
// (ScrapeNow), so the counters' growth always spans the whole point. Check
// turns a point's Summary into the prefix_cache and server_batch checks,
// SKIP with the reason when the data cannot decide them.
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

// Metric names, by what they mean, in the order they are tried. The
// prefix-cache counters are vLLM V1's (in tokens) and V0's (in blocks).
var (
	runningNames     = []string{"vllm:num_requests_running", "sglang:num_running_reqs"}
	waitingNames     = []string{"vllm:num_requests_waiting", "sglang:num_queue_reqs"}
	kvUsageNames     = []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"}
	prefixHitNames   = []string{"vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total", "vllm:prefix_cache_hits"}
	prefixQueryNames = []string{"vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total", "vllm:prefix_cache_queries"}
)

// Sample is one scrape: the value of each known metric (summed over label
// sets), NaN when the server does not expose it. Sent is when the request
// left, At when the answer was read: the server read its counters between
// the two.
type Sample struct {
	Sent          time.Time
	At            time.Time
	Running       float64
	Waiting       float64
	KVUsage       float64
	PrefixHits    float64
	PrefixQueries float64
}

// Scraper polls a /metrics URL in the background, and scrapes it on
// demand (ScrapeNow) at the boundaries of each point.
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
		s.ScrapeNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ScrapeNow scrapes once and returns when the sample is kept (or the
// scrape failed, which is counted and logged at debug level). The runner
// calls it at each point's start and end, so that even a point shorter
// than the polling interval has counters from before and after it.
func (s *Scraper) ScrapeNow(ctx context.Context) {
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
}

// Stop ends the scraping and waits for the last scrape to finish.
func (s *Scraper) Stop() {
	s.cancel()
	<-s.done
}

// Summary describes what the server reported during one point.
type Summary struct {
	// Scrapes counts the scrapes made while the point ran (sent after its
	// start, read before its end): the gauges' maxima come from them.
	Scrapes int `json:"scrapes"`
	// Bracketed is true when a scrape read before the point's start and
	// one sent after its end were found: the counters' growth below spans
	// the whole point.
	Bracketed bool `json:"bracketed,omitempty"`
	// MaxRunning and MaxWaiting are the most requests the server said it
	// was running and queueing; nil when it does not report them.
	MaxRunning *float64 `json:"max_running,omitempty"`
	MaxWaiting *float64 `json:"max_waiting,omitempty"`
	// MaxKVUsage is the highest KV-cache usage, as a fraction.
	MaxKVUsage *float64 `json:"max_kv_cache_usage,omitempty"`
	// PrefixHits is the growth of the server's prefix-cache hit counter
	// over the point (tokens or blocks, as the server counts them), and
	// PrefixQueries that of its query counter (the same unit); nil when
	// the server has no such counter or the point was not bracketed.
	PrefixHits    *float64 `json:"prefix_cache_hits,omitempty"`
	PrefixQueries *float64 `json:"prefix_cache_queries,omitempty"`
}

// Summarize returns what the server reported during the point that ran
// from from to to. The gauges are the maxima over the scrapes made inside
// the point; the counters' growth is taken from the last scrape read by
// from to the first sent at or after to.
func (s *Scraper) Summarize(from, to time.Time) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Summary
	var before, after *Sample
	for i := range s.samples {
		smp := &s.samples[i]
		switch {
		case !smp.At.After(from):
			if before == nil || smp.At.After(before.At) {
				before = smp
			}
		case !smp.Sent.Before(to):
			if after == nil || smp.Sent.Before(after.Sent) {
				after = smp
			}
		case !smp.Sent.Before(from) && !smp.At.After(to):
			out.Scrapes++
			out.MaxRunning = maxOf(out.MaxRunning, smp.Running)
			out.MaxWaiting = maxOf(out.MaxWaiting, smp.Waiting)
			out.MaxKVUsage = maxOf(out.MaxKVUsage, smp.KVUsage)
		}
	}
	if before == nil || after == nil {
		return out
	}
	out.Bracketed = true
	out.PrefixHits = growth(before.PrefixHits, after.PrefixHits)
	out.PrefixQueries = growth(before.PrefixQueries, after.PrefixQueries)
	return out
}

// growth is b - a, or nil when either is unknown.
func growth(a, b float64) *float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return nil
	}
	d := b - a
	return &d
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
	sent := time.Now()
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
		Sent:          sent,
		At:            time.Now(),
		Running:       first(values, runningNames),
		Waiting:       first(values, waitingNames),
		KVUsage:       first(values, kvUsageNames),
		PrefixHits:    first(values, prefixHitNames),
		PrefixQueries: first(values, prefixQueryNames),
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

// Check adds the checks the server's own metrics support for one point,
// every time, whatever the data: prefix_cache and, when batch > 0,
// server_batch. A check the data cannot decide is SKIP with the reason; s
// is nil when the server was not scraped at all.
//
// prefix_cache: prompts are salted so that no two requests share a
// cacheable prefix of their content. The server's chat template puts the
// same tokens in front of every prompt, so a salted request may hit up to
// that many tokens (Prompts.OverheadTokens) without its content being
// cached: hits within that allowance PASS, naming it. More hits while the
// prompts were salted mean the server served part of some prompts from
// its cache, so TTFC may be understated (WARN).
// With --no-prompt-salt the cache is measured on purpose: hits PASS, and
// the detail says how much of the prompts the cache served. No hits PASS.
//
// server_batch: the server ran fewer requests at once than the batch
// (WARN): the point measured a smaller batch than its label says.
func Check(rep *validate.Report, s *Summary, label string, batch int, pr Prompts) {
	checkPrefix(rep, s, label, pr)
	if batch <= 0 {
		return
	}
	switch {
	case s == nil:
		rep.Add("server_batch", label, validate.Skip, "%s", notScraped)
	case s.Scrapes == 0:
		rep.Add("server_batch", label, validate.Skip, "no /metrics scrape while the point's requests ran (it was shorter than the scrape interval, or the scrapes failed)")
	case s.MaxRunning == nil:
		rep.Add("server_batch", label, validate.Skip, "the server exposes no running-request count")
	case *s.MaxRunning < float64(batch):
		rep.Add("server_batch", label, validate.Warn, "the server reported at most %.0f running requests for a batch of %d", *s.MaxRunning, batch)
	default:
		rep.Add("server_batch", label, validate.Pass, "the server reported up to %.0f running requests", *s.MaxRunning)
	}
}

// notScraped is the SKIP reason of a point without server metrics.
const notScraped = "the server's /metrics was not scraped: it exposes none that veeksha reads (vLLM's or SGLang's names)"

// Prompts is what Check needs to know about the point's prompts.
type Prompts struct {
	// Salted is true when every prompt began with a unique salt.
	Salted bool
	// Requests is how many requests the point sent.
	Requests int
	// OverheadTokens is what the server adds to each prompt (its chat
	// template): the most tokens a salted request can share with another.
	OverheadTokens int
}

func checkPrefix(rep *validate.Report, s *Summary, label string, pr Prompts) {
	switch {
	case s == nil:
		rep.Add("prefix_cache", label, validate.Skip, "%s", notScraped)
		return
	case !s.Bracketed:
		rep.Add("prefix_cache", label, validate.Skip, "no /metrics scrape before and after the point: the prefix-cache counters' growth is unknown")
		return
	case s.PrefixHits == nil:
		rep.Add("prefix_cache", label, validate.Skip, "the server exposes no prefix-cache counters")
		return
	}
	hits := *s.PrefixHits
	share := ""
	if s.PrefixQueries != nil && *s.PrefixQueries > 0 {
		share = fmt.Sprintf(" of %.0f queried (%.1f %%)", *s.PrefixQueries, 100*hits / *s.PrefixQueries)
	}
	switch {
	case hits <= 0:
		rep.Add("prefix_cache", label, validate.Pass, "the server reports no prefix-cache hits")
	case pr.Salted && hits <= float64(pr.Requests*pr.OverheadTokens):
		rep.Add("prefix_cache", label, validate.Pass, "the server reports %.0f prefix-cache hits%s, within the %d tokens its chat template adds to each of the %d salted prompts: no prompt's content was served from the cache", hits, share, pr.OverheadTokens, pr.Requests)
	case pr.Salted:
		rep.Add("prefix_cache", label, validate.Warn, "the server reports %.0f prefix-cache hits%s during this point although every prompt was salted: TTFC may be understated", hits, share)
	default:
		rep.Add("prefix_cache", label, validate.Pass, "the server reports %.0f prefix-cache hits%s: prompts are unsalted on purpose (--no-prompt-salt), so TTFC includes them", hits, share)
	}
}
