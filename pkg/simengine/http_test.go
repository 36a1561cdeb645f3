package simengine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer starts a server for one test and closes it at the end.
func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// sseEvent is one "data:" event as a raw client saw it.
type sseEvent struct {
	at   time.Time // when its line was read, before any decoding
	data string
}

// sseResult is what a tiny raw SSE client saw of one request.
type sseResult struct {
	status   int
	body     string // the body of a non-200 response
	sent     time.Time
	events   []sseEvent // data events, [DONE] excluded
	comments []string
	done     bool // [DONE] seen
}

// post sends body as JSON to url and reads the response as SSE: a
// bufio.Reader over the body, one line at a time, each "data:" line stamped
// as soon as it is read. It does not depend on pkg/client.
func post(t *testing.T, url string, body any, header ...string) sseResult {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res := sseResult{sent: time.Now()}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		res.body = string(b)
		return res
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		at := time.Now()
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data: [DONE]"):
			res.done = true
		case strings.HasPrefix(line, "data:"):
			res.events = append(res.events, sseEvent{at: at, data: strings.TrimSpace(line[len("data:"):])})
		case strings.HasPrefix(line, ":"):
			res.comments = append(res.comments, line)
		}
		if err != nil {
			return res
		}
	}
}

// chunk is the union of the chat and completions chunk shapes.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta *struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *usage `json:"usage"`
	SentNS int64  `json:"sim_sent_unix_ns"`
}

// text is the generated text of the chunk, "" for none.
func (c chunk) text() string {
	if len(c.Choices) == 0 {
		return ""
	}
	ch := c.Choices[0]
	switch {
	case ch.Text != nil:
		return *ch.Text
	case ch.Delta != nil && ch.Delta.Content != nil:
		return *ch.Delta.Content
	}
	return ""
}

func decodeChunk(t *testing.T, data string) chunk {
	t.Helper()
	var c chunk
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("event %q is not valid JSON: %v", data, err)
	}
	return c
}

// contentEvents returns the events that carry generated text, decoded,
// with their arrival times; invalid JSON events are skipped.
func contentEvents(res sseResult) ([]chunk, []time.Time) {
	var cs []chunk
	var ts []time.Time
	for _, e := range res.events {
		var c chunk
		if json.Unmarshal([]byte(e.data), &c) != nil || c.text() == "" {
			continue
		}
		cs = append(cs, c)
		ts = append(ts, e.at)
	}
	return cs, ts
}

// tokenIDs is a completions prompt of exactly n tokens.
func tokenIDs(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 1000 + i
	}
	return ids
}

func gaps(ts []time.Time) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(ts); i++ {
		g = append(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the first sample of a metric in a
// Prometheus text page, or -1.
func metricValue(page, name string) float64 {
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			var v float64
			if err := json.Unmarshal([]byte(f[len(f)-1]), &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// eventually runs a timing check up to attempts times and fails the test
// only if every attempt fails. On a shared 2-core machine another process can
// delay one run by tens of milliseconds, while a real timing error fails
// every attempt.
func eventually(t *testing.T, attempts int, check func() error) {
	t.Helper()
	var errs []error
	for i := range attempts {
		err := check()
		if err == nil {
			if i > 0 {
				t.Logf("timing check passed on attempt %d; earlier attempts: %v", i+1, errors.Join(errs...))
			}
			return
		}
		errs = append(errs, err)
	}
	t.Error(errors.Join(errs...))
}

// The accuracy tests below are not parallel on purpose: they check the
// engine's timing to within a millisecond on a 2-core machine, so they run
// alone, before the parallel tests start.

// readingTime is how long the engine takes, best of 5, to read a
// completions request with this body before it counts as arrived: decode
// the JSON and count the prompt's tokens.
func readingTime(t *testing.T, s *Server, body any) time.Duration {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	best := time.Duration(math.MaxInt64)
	for range 5 {
		start := time.Now()
		var b completionBody
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		if err := promptTokens(b.Prompt, newBlockHasher(s.blockSize())); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// TestTTFCIsPrefillTime checks that one request's time to first content
// chunk, measured by a raw client over HTTP, equals the sum of its prefill
// iterations in the cost model plus the engine's reading of the request and
// under 2 ms of HTTP and wake-up time (5 ms under the race detector). The
// reading (decoding the body, counting the prompt's tokens: what the engine
// does before the request arrives on its clock) is measured here on the
// same body, best of 5: under the race detector it takes several ms at
// 3,000 token IDs, and more on a slower machine, which a fixed slack once
// did not cover in CI. No sample may be below the prefill time: tokens
// leave at the end of their iteration. The upper bound applies to the best
// of 5 samples, the one least disturbed by other processes. The engine's
// own record must match the cost model exactly. The prefix cache is off:
// every sample repeats its prompt, and must prefill it whole
// (TestPrefixCacheHitTTFC measures hits).
func TestTTFCIsPrefillTime(t *testing.T) {
	s := startServer(t, Options{Record: true, NoPrefixCache: true})
	o := s.Options()
	slack := 2 * time.Millisecond
	if raceEnabled {
		slack = 5 * time.Millisecond
	}
	body := func(n int) map[string]any {
		return map[string]any{"model": s.Model(), "prompt": tokenIDs(n), "max_tokens": 2, "ignore_eos": true, "stream": true}
	}
	post(t, s.BaseURL()+"/completions", body(10)) // warm-up: connection, first-use costs
	for _, n := range []int{100, 1500, 3000} {
		want := o.Profile.LonePrefillTime(n, o.ChunkSize)
		reading := readingTime(t, s, body(n))
		eventually(t, 3, func() error {
			var ttfcs []time.Duration
			for range 5 {
				res := post(t, s.BaseURL()+"/completions", body(n))
				_, ts := contentEvents(res)
				if len(ts) != 2 {
					t.Fatalf("prompt %d: %d content events, want 2 (status %d %s)", n, len(ts), res.status, res.body)
				}
				ttfc := ts[0].Sub(res.sent)
				if ttfc < want {
					t.Errorf("prompt %d: TTFC = %v, below the prefill time %v", n, ttfc, want)
				}
				ttfcs = append(ttfcs, ttfc)
			}
			got := slices.Min(ttfcs)
			t.Logf("prompt %d: best TTFC %v of %v; prefill iterations %v, reading the request %v", n, got, ttfcs, want, reading)
			if got > want+reading+slack {
				return fmt.Errorf("prompt %d: best TTFC = %v, want within [%v, %v + %v reading + %v]", n, got, want, want, reading, slack)
			}
			return nil
		})
	}
	for _, r := range s.Requests() {
		if r.CachedTokens != 0 {
			t.Errorf("request %d: %d cached tokens with the prefix cache off", r.Seq, r.CachedTokens)
		}
		if want := o.Profile.LonePrefillTime(r.PromptTokens, o.ChunkSize); r.FirstToken-r.Admitted != want {
			t.Errorf("request %d: engine first token %v after admission, want %v", r.Seq, r.FirstToken-r.Admitted, want)
		}
	}
}

// TestDecodeGapIsDecodeStep sends B requests together and checks that the
// median gap between their tokens, measured by raw clients, equals the cost
// model's decode step for B within 0.5 ms.
func TestDecodeGapIsDecodeStep(t *testing.T) {
	const batch, prompt, out = 8, 32, 80
	eventually(t, 3, func() error {
		s := startServer(t, Options{Record: true})
		results := make([]sseResult, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() {
				results[i] = post(t, s.BaseURL()+"/completions", completionsBody(prompt, out))
			})
		}
		wg.Wait()
		var all []time.Duration
		for i, res := range results {
			_, ts := contentEvents(res)
			if len(ts) != out {
				t.Fatalf("request %d: %d content events, want %d", i, len(ts), out)
			}
			all = append(all, gaps(ts)...)
		}
		full := 0
		for _, it := range s.Iterations() {
			if it.DecodeBatch == batch && it.PrefillTokens == 0 {
				full++
			}
		}
		if full < out/2 {
			t.Fatalf("%d iterations decoded all %d requests, want most of the %d", full, batch, out)
		}
		// Halfway through, every request has a context of prompt + out/2.
		want := s.Options().Profile.DecodeStepTime(batch, batch*(prompt+out/2))
		got := median(all)
		t.Logf("median gap %v over %d gaps, decode step for %d: %v", got, len(all), batch, want)
		if d := got - want; d < -500*time.Microsecond || d > 500*time.Microsecond {
			return fmt.Errorf("median token gap = %v, want %v ± 0.5ms", got, want)
		}
		return nil
	})
}

// TestNoDrift runs a few hundred short iterations and checks that tokens
// reach the client on the engine's absolute schedule: iteration k+1 starts
// where k ends, and the client's lag behind the ideal schedule (the first
// start plus the cost model's durations) is the same at the end of the run
// as at its start (medians of 50 tokens, robust to the odd preemption).
// Sleeping for each duration in turn would add the wake-up lateness of every
// iteration, about 0.1 ms x 400 here.
func TestNoDrift(t *testing.T) {
	p := testProfile()
	p.Cost = CostModel{BaseMS: 1, PrefillBaseMS: 0.5}
	const out = 400
	eventually(t, 3, func() error {
		s := startServer(t, Options{Profile: p, Record: true})
		res := post(t, s.BaseURL()+"/completions", map[string]any{
			"prompt": tokenIDs(8), "max_tokens": out, "ignore_eos": true, "stream": true,
		})
		_, ts := contentEvents(res)
		if len(ts) != out {
			t.Fatalf("%d content events, want %d", len(ts), out)
		}
		its := s.Iterations()
		if len(its) != out {
			t.Fatalf("%d iterations, want %d", len(its), out)
		}
		// Token k is due at the end of iteration k: the first start plus the
		// cost model's durations of iterations 0..k.
		lag := make([]time.Duration, out)
		due := its[0].Start
		for k, it := range its {
			if k > 0 && it.Start != its[k-1].End {
				t.Fatalf("iteration %d starts at %v, want the previous end %v", k, it.Start, its[k-1].End)
			}
			if want := p.Duration(it.Shape()); it.Duration() != want {
				t.Fatalf("iteration %d lasted %v, want the cost model's %v", k, it.Duration(), want)
			}
			due += p.Duration(it.Shape())
			lag[k] = ts[k].Sub(s.Began()) - due
		}
		first, last := median(lag[:50]), median(lag[out-50:])
		t.Logf("client lag behind schedule: median %v over the first 50 tokens, %v over the last 50; run %v",
			first, last, its[out-1].End-its[0].Start)
		if d := last - first; d < -time.Millisecond || d > time.Millisecond {
			return fmt.Errorf("lag grew from %v to %v over %d iterations, want a change within ±1ms", first, last, out)
		}
		if first < 0 || first > 2*time.Millisecond {
			return fmt.Errorf("median lag behind schedule = %v, want within [0, 2ms]", first)
		}
		return nil
	})
}

// TestMaxRunningQueues sends twice MaxRunning requests and checks that half
// of them wait, as /metrics shows while they wait, and start only when the
// first ones finish.
func TestMaxRunningQueues(t *testing.T) {
	t.Parallel()
	p := testProfile()
	p.Cost = CostModel{BaseMS: 4}
	s := startServer(t, Options{Profile: p, MaxRunning: 4, Record: true})
	const n, out = 8, 150 // 600 ms per wave: time to see it even on a busy machine
	done := make(chan sseResult, n)
	for range n {
		go func() {
			done <- post(t, s.BaseURL()+"/completions", map[string]any{
				"prompt": tokenIDs(10), "max_tokens": out, "ignore_eos": true, "stream": true,
			})
		}()
	}
	var seen string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, page := getText(t, "http://"+s.Addr()+"/metrics")
		if metricValue(page, "vllm:num_requests_running") == 4 && metricValue(page, "vllm:num_requests_waiting") == 4 {
			seen = page
			break
		}
	}
	if seen == "" {
		t.Error("/metrics never showed 4 running and 4 waiting")
	}
	for range n {
		if res := <-done; len(res.events) != out || !res.done {
			t.Errorf("a request got %d events (done %v), want %d", len(res.events), res.done, out)
		}
	}
	recs := s.Requests()
	if len(recs) != n {
		t.Fatalf("%d request records, want %d", len(recs), n)
	}
	// Sweep admissions and finishes: never more than 4 running at once.
	type event struct {
		at    time.Duration
		delta int
	}
	var evs []event
	for _, r := range recs {
		evs = append(evs, event{r.Admitted, +1}, event{r.Finished, -1})
	}
	slices.SortFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta // a finish frees its slot before an admission at the same time
	})
	running, peak := 0, 0
	for _, e := range evs {
		running += e.delta
		peak = max(peak, running)
	}
	if peak != 4 {
		t.Errorf("peak running requests = %d, want MaxRunning 4", peak)
	}
}
