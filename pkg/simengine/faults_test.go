package simengine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// completionsBody is a streamed completions request of n output tokens.
func completionsBody(prompt, out int) map[string]any {
	return map[string]any{"prompt": tokenIDs(prompt), "max_tokens": out, "ignore_eos": true, "stream": true}
}

func TestTokensPerChunk(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), TokensPerChunk: 3})
	body := completionsBody(10, 10)
	body["stream_options"] = map[string]any{"continuous_usage_stats": true}
	res := post(t, s.BaseURL()+"/completions", body)
	cs, _ := contentEvents(res)
	var sizes, cumulative []int
	for _, c := range cs {
		sizes = append(sizes, CountTokens(c.text()))
		if c.Usage != nil {
			cumulative = append(cumulative, c.Usage.CompletionTokens)
		}
	}
	if want := []int{3, 3, 3, 1}; !equalInts(sizes, want) {
		t.Errorf("tokens per event = %v, want %v", sizes, want)
	}
	if want := []int{3, 6, 9, 10}; !equalInts(cumulative, want) {
		t.Errorf("continuous usage completion_tokens = %v, want %v", cumulative, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJitter checks that jitter changes iteration durations within its bound
// and that the same seed gives the same durations.
func TestJitter(t *testing.T) {
	t.Parallel()
	const jitter = 0.3
	run := func(seed uint64) []float64 {
		s := startServer(t, Options{Profile: fastProfile(), Jitter: jitter, Seed: seed, Record: true})
		post(t, s.BaseURL()+"/completions", completionsBody(10, 30))
		var ratios []float64
		for _, it := range s.Iterations() {
			ratios = append(ratios, float64(it.Duration())/float64(s.Options().Profile.Duration(it.Shape())))
		}
		return ratios
	}
	a, b, other := run(1), run(1), run(2)
	if len(a) != 30 {
		t.Fatalf("%d iterations, want 30", len(a))
	}
	moved := 0
	for i, r := range a {
		if r < 1-jitter-1e-6 || r > 1+jitter+1e-6 {
			t.Errorf("iteration %d lasted %.3f x the model, want within 1 ± %.1f", i, r, jitter)
		}
		if r < 0.99 || r > 1.01 {
			moved++
		}
	}
	if moved < 10 {
		t.Errorf("only %d of %d iterations moved by more than 1%%, want most", moved, len(a))
	}
	if !slicesEqualFloat(a, b) {
		t.Error("two runs with the same seed gave different durations")
	}
	if slicesEqualFloat(a, other) {
		t.Error("runs with seeds 1 and 2 gave the same durations")
	}
}

func slicesEqualFloat(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFailures(t *testing.T) {
	t.Parallel()
	const seed, frac = 3, 0.5
	s := startServer(t, Options{Profile: fastProfile(), Seed: seed, FailFraction: frac, FailStatus: http.StatusTooManyRequests})
	failed := 0
	for seq := range 12 {
		res := post(t, s.BaseURL()+"/completions", completionsBody(5, 2))
		want := hit(seed, decideFail, frac, seq, 0)
		if want {
			failed++
			if res.status != http.StatusTooManyRequests || !strings.Contains(res.body, `"rate_limit_error"`) {
				t.Errorf("request %d: status %d body %q, want 429 with a rate_limit_error", seq, res.status, res.body)
			}
		} else if res.status != http.StatusOK || !res.done {
			t.Errorf("request %d: status %d, want 200", seq, res.status)
		}
	}
	if failed == 0 || failed == 12 {
		t.Errorf("%d of 12 requests were to fail; the test needs both kinds (change the seed)", failed)
	}
}

// The tests of timing knobs below are not parallel: they run alone, so a
// thousand streams of another test do not starve their timers.

// TestStall checks, on the server's send stamps, that the streams chosen by
// the seed pause for the stall after StallAfterTokens tokens, and that the
// others do not pause.
func TestStall(t *testing.T) {
	const seed, frac, stall, after, out = 9, 0.5, 150 * time.Millisecond, 2, 6
	eventually(t, 3, func() error {
		s := startServer(t, Options{Profile: fastProfile(), Seed: seed, SentTimestamps: true,
			StallFraction: frac, StallAfterTokens: after, StallDuration: stall})
		var wg sync.WaitGroup
		results := make([]sseResult, 8)
		for i := range results {
			wg.Go(func() { results[i] = post(t, s.BaseURL()+"/completions", completionsBody(5, out)) })
		}
		wg.Wait()
		stalls := 0
		var soft error
		for _, res := range results {
			cs, _ := contentEvents(res)
			if len(cs) != out || !res.done {
				t.Fatalf("%d content events (done %v), want %d", len(cs), res.done, out)
			}
			seq := seqOf(t, cs[0].ID)
			want := hit(seed, decideStall, frac, seq, 0)
			if want {
				stalls++
			}
			for i := 1; i < len(cs); i++ {
				gap := time.Duration(cs[i].SentNS - cs[i-1].SentNS)
				switch {
				case i == after && want && gap < stall:
					t.Errorf("request %d: sent token %d %v after token %d, want a stall of at least %v", seq, i+1, gap, i, stall)
				case !(i == after && want) && gap >= stall:
					soft = fmt.Errorf("request %d: gap of %v before token %d, want no stall there (stalled stream: %v)", seq, gap, i+1, want)
				}
			}
		}
		if stalls == 0 || stalls == len(results) {
			t.Fatalf("%d of %d streams stalled; the test needs both kinds (change the seed)", stalls, len(results))
		}
		return soft
	})
}

// seqOf parses the sequence number out of a response id "cmpl-sim-7".
func seqOf(t *testing.T, id string) int {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	var n int
	if err := json.Unmarshal([]byte(id[i+1:]), &n); err != nil {
		t.Fatalf("id %q has no sequence number", id)
	}
	return n
}

func TestMalformedEvents(t *testing.T) {
	t.Parallel()
	const seed, frac, out = 4, 0.4, 20
	s := startServer(t, Options{Profile: fastProfile(), Seed: seed, MalformedFraction: frac})
	res := post(t, s.BaseURL()+"/chat/completions", map[string]any{
		"messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_tokens": out, "ignore_eos": true, "stream": true,
	})
	invalid := 0
	for _, e := range res.events {
		if !json.Valid([]byte(e.data)) {
			invalid++
		}
	}
	want := 0
	for i := range out {
		if hit(seed, decideMalformed, frac, 0, i) {
			want++
		}
	}
	if cs, _ := contentEvents(res); len(cs) != out || !res.done {
		t.Errorf("%d valid content events (done %v), want all %d: malformed events come in addition", len(cs), res.done, out)
	}
	if invalid != want || want == 0 {
		t.Errorf("%d invalid events, want %d (and more than 0)", invalid, want)
	}
}

func TestRoleEventAndTimestamps(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), RoleEvent: true, SentTimestamps: true})
	res := post(t, s.BaseURL()+"/chat/completions", map[string]any{
		"messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_tokens": 60, "ignore_eos": true, "stream": true,
	})
	if len(res.events) < 2 {
		t.Fatalf("%d events, want at least 2", len(res.events))
	}
	first := decodeChunk(t, res.events[0].data)
	if d := first.Choices[0].Delta; d == nil || d.Role != "assistant" || d.Content != nil {
		t.Errorf("first event %s, want a role-only delta", res.events[0].data)
	}
	cs, ts := contentEvents(res)
	if !res.events[0].at.Before(ts[0]) {
		t.Error("role event did not arrive before the first content")
	}
	for i, c := range cs {
		if c.Choices[0].Delta.Role != "" {
			t.Errorf("content event %d repeats the role", i)
		}
	}
	for i, e := range res.events {
		c := decodeChunk(t, e.data)
		sent := time.Unix(0, c.SentNS)
		if lag := e.at.Sub(sent); c.SentNS == 0 || lag < 0 || lag > time.Second {
			t.Errorf("event %d: sim_sent_unix_ns %d, receive lag %v; want a send time just before receipt", i, c.SentNS, lag)
		}
	}
	// The completions endpoint has no role.
	res = post(t, s.BaseURL()+"/completions", completionsBody(3, 2))
	if c := decodeChunk(t, res.events[0].data); c.text() == "" {
		t.Errorf("completions first event %s, want content", res.events[0].data)
	}
}

// TestKeepAlive waits 200 ms for a first token with 10 ms keep-alives: the
// comments must come, and before the token.
func TestKeepAlive(t *testing.T) {
	s := startServer(t, Options{ZeroCost: true, FixedTTFT: 200 * time.Millisecond, KeepAlive: 10 * time.Millisecond})
	res := post(t, s.BaseURL()+"/completions", completionsBody(3, 1))
	if n := len(res.comments); n < 2 || res.comments[0] != ": keep-alive" {
		t.Errorf("comments = %q, want at least 2 \": keep-alive\"", res.comments)
	}
	if cs, _ := contentEvents(res); len(cs) != 1 || !res.done {
		t.Errorf("%d content events (done %v), want 1: comments must not disturb the stream", len(cs), res.done)
	}
}

func TestZeroCost(t *testing.T) {
	const ttft, gap, out = 20 * time.Millisecond, 2 * time.Millisecond, 30
	tests := []struct {
		name string
		tpc  int
	}{{"one token per event", 1}, {"four tokens per event", 4}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{ZeroCost: true, FixedTTFT: ttft, FixedGap: gap, TokensPerChunk: tt.tpc})
			eventually(t, 3, func() error {
				res := post(t, s.BaseURL()+"/chat/completions", map[string]any{
					"messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_tokens": out, "ignore_eos": true, "stream": true,
					"stream_options": map[string]any{"include_usage": true},
				})
				cs, ts := contentEvents(res)
				if want := (out + tt.tpc - 1) / tt.tpc; len(cs) != want {
					t.Fatalf("%d content events, want %d", len(cs), want)
				}
				for i, e := range res.events {
					if c := decodeChunk(t, e.data); c.SentNS == 0 {
						t.Errorf("event %d has no sim_sent_unix_ns", i)
					}
				}
				if last := decodeChunk(t, res.events[len(res.events)-1].data); last.Usage == nil || last.Usage.CompletionTokens != out {
					t.Errorf("usage = %+v, want %d completion tokens", last.Usage, out)
				}
				// Event k is due when its last token is: TTFT + i·gap for
				// token index i. None may arrive early; the median lateness
				// is the timer's precision.
				var late []time.Duration
				for k, at := range ts {
					i := min((k+1)*tt.tpc, out) - 1
					due := ttft + time.Duration(i)*gap
					got := at.Sub(res.sent)
					if got < due {
						t.Errorf("event %d arrived %v after sending, before it was due at %v", k, got, due)
					}
					late = append(late, got-due)
				}
				// Go timers wake up to ~1 ms late, more on a busy machine.
				if m := median(late); m > 3*time.Millisecond {
					return fmt.Errorf("median lateness of events = %v, want under 3ms", m)
				}
				return nil
			})
			if s.Iterations() != nil || s.Requests() != nil {
				t.Error("zero-cost mode recorded engine iterations")
			}
		})
	}
}

// TestZeroCostManyStreams runs a thousand concurrent zero-cost streams: all
// must complete, close to the ideal time, with a send stamp in every event.
func TestZeroCostManyStreams(t *testing.T) {
	const streams, out, gap = 1000, 10, 50 * time.Millisecond
	s := startServer(t, Options{ZeroCost: true, FixedTTFT: gap, FixedGap: gap})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(completionsBody(5, out))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lags []time.Duration
	complete := 0
	began := time.Now()
	for range streams {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.BaseURL()+"/completions", bytes.NewReader(body))
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			n := 0
			var mine []time.Duration
			for sc.Scan() {
				line := sc.Bytes()
				if !bytes.HasPrefix(line, []byte("data: {")) {
					continue
				}
				now := time.Now()
				i := bytes.Index(line, []byte(`"sim_sent_unix_ns":`))
				var ns int64
				if i < 0 || json.Unmarshal(bytes.TrimSuffix(line[i+len(`"sim_sent_unix_ns":`):], []byte("}")), &ns) != nil {
					t.Errorf("event without sim_sent_unix_ns: %s", line)
					return
				}
				mine = append(mine, now.Sub(time.Unix(0, ns)))
				n++
			}
			mu.Lock()
			defer mu.Unlock()
			lags = append(lags, mine...)
			if n == out {
				complete++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	p50 := median(lags)
	t.Logf("%d streams x %d tokens in %v; send-to-receive lag median %v", streams, out, elapsed, p50)
	if complete != streams {
		t.Errorf("%d of %d streams got all %d tokens", complete, streams, out)
	}
	if ideal := gap * out; elapsed > ideal+5*time.Second {
		t.Errorf("took %v, want close to the ideal %v", elapsed, ideal)
	}
	// The lag is mostly the test's own client, a thousand goroutines on two
	// shared cores, so it is only logged; the bench harness measures it.

}

func TestClientDisconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), Record: true})
	ctx, cancel := context.WithCancel(t.Context())
	data, _ := json.Marshal(completionsBody(5, 3000))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL()+"/completions", bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the first token
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	root := "http://" + s.Addr()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, page := getText(t, root+"/metrics")
		if metricValue(page, "vllm:num_requests_running") == 0 && metricValue(page, "vllm:kv_cache_usage_perc") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine still runs the request 2s after its client left:\n%s", page)
		}
	}
	recs := s.Requests()
	if len(recs) != 1 || recs[0].FinishReason != finishAbort || recs[0].OutputTokens >= 3000 {
		t.Errorf("records = %+v, want one aborted request", recs)
	}
}

// syncBuffer is a bytes.Buffer safe for the engine goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestIterationLog(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	s := startServer(t, Options{Profile: fastProfile(), Record: true, IterationLog: &log})
	post(t, s.BaseURL()+"/completions", completionsBody(700, 3), "X-Request-Id", "run1/0")
	if err := s.Close(); err != nil { // the log is complete once Close returns
		t.Fatal(err)
	}
	its := s.Iterations()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(its) != 4 || len(lines) != len(its) { // 512 + 188 prefill, then 2 decodes
		t.Fatalf("%d iterations and %d log lines, want 4 of each", len(its), len(lines))
	}
	for i, line := range lines {
		var got Iteration
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("log line %d %q: %v", i, line, err)
		}
		want := its[i]
		if got.Index != i || got.Start != want.Start || got.End != want.End || got.PrefillTokens != want.PrefillTokens ||
			got.DecodeBatch != want.DecodeBatch || len(got.Work) != 1 || got.Work[0].ClientID != "run1/0" {
			t.Errorf("log line %d = %+v, want %+v with client id run1/0", i, got, want)
		}
	}
	w := its[1].Work[0]
	if w.PrefillTokens != 188 || w.PrefillPast != 512 || w.Tokens != 1 || w.Decode {
		t.Errorf("second iteration's work = %+v, want the last 188 prompt tokens after 512, making the first token", w)
	}
	if w := its[3].Work[0]; !w.Decode || w.ContextTokens != 701 || w.Finish != finishLength {
		t.Errorf("last iteration's work = %+v, want a decode of context 701 that finishes", w)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		part string
	}{
		{"max running above chunk size", Options{ChunkSize: 16, MaxRunning: 32}, "MaxRunning 32 is above ChunkSize 16"},
		{"jitter", Options{Jitter: 1.5}, "Jitter 1.5"},
		{"fail status", Options{FailStatus: 200}, "FailStatus 200"},
		{"fraction", Options{StallFraction: 2}, "StallFraction 2"},
		{"negative duration", Options{FixedGap: -time.Second}, "negative duration"},
		{"bad profile", Options{Profile: Profile{Name: "x"}}, "chunk_size 0"},
		{"bad address", Options{Addr: "127.0.0.1:99999"}, "listen on 127.0.0.1:99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(tt.o)
			if err == nil {
				s.Close()
				t.Fatalf("Start(%+v) error = nil, want one containing %q", tt.o, tt.part)
			}
			if !strings.Contains(err.Error(), tt.part) {
				t.Errorf("Start error = %v, want one containing %q", err, tt.part)
			}
		})
	}
}

func TestCloseCutsStreams(t *testing.T) {
	t.Parallel()
	s, err := Start(Options{Profile: fastProfile()})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(completionsBody(5, 3000))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.BaseURL()+"/completions", bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Close took %v, want well under a second", d)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			t.Fatal("stream completed, want it cut by Close")
		}
	}
}

// slowWriter blocks its third write, holding up the engine goroutine.
type slowWriter struct {
	mu     sync.Mutex
	writes int
	delay  time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n == 3 {
		time.Sleep(w.delay)
	}
	return len(p), nil
}

// TestFallingBehindRestartsSchedule stalls the engine goroutine for 150 ms
// after its third iteration: instead of releasing a burst of catch-up
// iterations, the engine restarts its schedule from the moment it resumes.
func TestFallingBehindRestartsSchedule(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), Record: true, IterationLog: &slowWriter{delay: 150 * time.Millisecond}})
	post(t, s.BaseURL()+"/completions", completionsBody(5, 6))
	its := s.Iterations()
	if len(its) != 6 {
		t.Fatalf("%d iterations, want 6", len(its))
	}
	for i := 1; i < len(its); i++ {
		gap := its[i].Start - its[i-1].End
		if i == 3 && gap < 150*time.Millisecond {
			t.Errorf("iteration 3 starts %v after iteration 2 ends, want the 150ms stall", gap)
		}
		if i != 3 && gap != 0 {
			t.Errorf("iteration %d starts %v after the previous end, want 0", i, gap)
		}
	}
}
