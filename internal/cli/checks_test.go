package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Checks never vanish: against a server without /metrics, prefix_cache
// and server_batch are SKIP with the reason, in the console table and in
// validation.json, and the run still passes (exit 0).
func TestServerChecksSkipWithoutMetrics(t *testing.T) {
	t.Parallel()
	// 10 ms between tokens: the decode lasts longer than the stalls of a
	// loaded CI machine, which would give every token one receive time.
	srv := openaitest.NewFunc(t, func(openaitest.Received) openaitest.Script {
		return openaitest.Script{TTFT: 2 * time.Millisecond, Gap: 10 * time.Millisecond}
	})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.URL, "--batch-sizes", "2",
		"--input-lengths", "64", "--samples-per-length", "5", "--output-dir", out, "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d, want %d: a SKIP never fails a run\nstdout:\n%s\nstderr:\n%s", code, ExitOK, stdout, stderr)
	}
	rep := readResults[validate.Report](t, filepath.Join(out, "decode", "latest", "validation.json"))
	for _, title := range []string{"prefix_cache [bs=2,il=64]", "server_batch [bs=2,il=64]"} {
		c, ok := findCheck(&rep, title)
		if !ok || c.Status != validate.Skip || !strings.Contains(c.Detail, "/metrics was not scraped") {
			t.Errorf("%s = %+v (found %v), want SKIP: the server has no /metrics", title, c, ok)
		}
	}
	for _, want := range []string{"SKIP", "prefix_cache", "server_batch", "2 skipped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the console lacks %q:\n%s", want, stdout)
		}
	}
}

// A point far shorter than the 200 ms scrape interval still gets its
// prefix_cache verdict: the runner scrapes /metrics at the point's start
// and end. server_batch is there too, evaluated or SKIP with the reason.
func TestShortPointKeepsServerChecks(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--api-base", srv.BaseURL(), "--input-lengths", "64",
		"--samples-per-length", "1", "--warmup-requests", "0", "--output-tokens", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", "prefill_results.json"))
	if res.Server == nil || !res.Server.Bracketed || res.Server.PrefixHits == nil {
		t.Fatalf("server metrics %+v, want counters from before and after the point", res.Server)
	}
	if c, ok := findCheck(res.Validation, "prefix_cache"); !ok || c.Status != validate.Pass {
		t.Errorf("prefix_cache = %+v (found %v), want PASS from the point's start and end scrapes", c, ok)
	}

	// Twenty samples (40 tokens, about 0.26 s of decoding): tokens that
	// wait in the client's socket get one receive time, so a decode
	// shorter than a stall of the loaded CI machine (the client's
	// scheduler latency reached 29 ms there, longer than the 6 tokens this
	// test once asked for) has no window at all (decode_window_overlap
	// fails, exit 3). Still shorter than a scrape interval.
	out = t.TempDir()
	code, stdout, stderr = runCLI(t, t.Context(), Decode, "--api-base", srv.BaseURL(), "--batch-sizes", "1",
		"--input-lengths", "64", "--samples-per-length", "20", "--engine-chunk-size", "512", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dres := readResults[decode.Results](t, filepath.Join(out, "decode", "latest", "decode_results.json"))
	c, ok := findCheck(dres.Validation, "server_batch [bs=1,il=64]")
	switch {
	case !ok:
		t.Errorf("server_batch vanished from %+v", dres.Validation.Checks)
	case c.Status == validate.Skip && !strings.Contains(c.Detail, "no /metrics scrape while the point's requests ran"):
		t.Errorf("server_batch = %+v: a SKIP without the reason", c)
	case c.Status != validate.Skip && c.Status != validate.Pass:
		t.Errorf("server_batch = %+v, want PASS or SKIP", c)
	}
	if c, ok := findCheck(dres.Validation, "prefix_cache [bs=1,il=64]"); !ok || c.Status != validate.Pass {
		t.Errorf("prefix_cache [bs=1,il=64] = %+v (found %v), want PASS", c, ok)
	}
}

// prefillPoint runs prefill at one length against srv, which must serve
// no other run, and returns its results and the engine's records of its
// requests (the warm-up first).
func prefillPoint(t *testing.T, srv *simengine.Server, length int, extra ...string) (prefill.Results, []simengine.RequestRecord) {
	t.Helper()
	out := t.TempDir()
	args := append([]string{"--api-base", srv.BaseURL(), "--input-lengths", strconv.Itoa(length), "--samples-per-length", "3",
		"--warmup-requests", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s"}, extra...)
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, args...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", "prefill_results.json"))
	reqs, err := report.ReadRecords(filepath.Join(out, "prefill", "latest", "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	engine := engineRecords(srv)
	var recs []simengine.RequestRecord
	for _, r := range reqs {
		rec, ok := engine[r.Seq]
		if !ok {
			t.Fatalf("request %d: no engine record", r.Seq)
		}
		recs = append(recs, rec)
	}
	return res, recs
}

// The prefix_cache check both ways against the simulated engine's prefix
// cache. Salted prompts (the default) share no block: the engine caches
// nothing for them, the server reports no hits, PASS. With
// --no-prompt-salt the repeated prompt hits: the server's counters show
// exactly the tokens the engine took from its cache, the check PASSes
// saying so, and TTFC is the engine's shorter prefill. Without the cache
// the second half fails: no hits, no counters.
func TestPrefixCacheCheckAgainstSim(t *testing.T) {
	// Not parallel: it compares TTFC with the engine's own.
	srv := startTestSim(t, simengine.Options{})
	o := srv.Options()
	const length = 1024

	res, recs := prefillPoint(t, srv, length)
	for _, rec := range recs {
		if rec.CachedTokens != 0 {
			t.Errorf("salted request %s: the engine found %d tokens in its cache", rec.ClientID, rec.CachedTokens)
		}
	}
	if s := res.Server; s == nil || s.PrefixHits == nil || *s.PrefixHits != 0 || s.PrefixQueries == nil || *s.PrefixQueries == 0 {
		t.Errorf("salted: server metrics %+v, want 0 hits of the queried prompt tokens", res.Server)
	}
	if c, ok := findCheck(res.Validation, "prefix_cache"); !ok || c.Status != validate.Pass || !strings.Contains(c.Detail, "no prefix-cache hits") {
		t.Errorf("salted: prefix_cache = %+v (found %v), want PASS with no hits", c, ok)
	}
	missTTFC := res.Results[0].TTFC.Min

	srv = startTestSim(t, simengine.Options{})
	res, recs = prefillPoint(t, srv, length, "--no-prompt-salt")
	cached := 0
	for _, rec := range recs {
		cached += rec.CachedTokens
		// Ground truth: the engine's prefill took the cost model's time
		// for the tokens it did not find.
		if got, want := rec.FirstToken-rec.Admitted, o.Profile.PrefillTime(rec.PromptTokens, rec.CachedTokens, o.ChunkSize); got != want {
			t.Errorf("request %s: engine prefill %v, cost model %v for %d cached of %d", rec.ClientID, got, want, rec.CachedTokens, rec.PromptTokens)
		}
	}
	// Unsalted, the set-up's check of the longest prompt sent this very
	// prompt: every request of the point, the warm-up too, finds all but
	// its last block in the cache.
	prompt := recs[0].PromptTokens
	if want := 4 * ((prompt - 1) / simengine.DefaultBlockSize * simengine.DefaultBlockSize); cached != want {
		t.Errorf("unsalted: the engine took %d tokens from its cache, want %d", cached, want)
	}
	s := res.Server
	if s == nil || s.PrefixHits == nil || *s.PrefixHits != float64(cached) || s.PrefixQueries == nil || *s.PrefixQueries != float64(4*prompt) {
		t.Fatalf("unsalted: server metrics %+v, want %d hits of %d queried tokens", s, cached, 4*prompt)
	}
	c, ok := findCheck(res.Validation, "prefix_cache")
	if !ok || c.Status != validate.Pass || !strings.Contains(c.Detail, fmt.Sprintf("%d prefix-cache hits of %d queried", cached, 4*prompt)) || !strings.Contains(c.Detail, "--no-prompt-salt") {
		t.Errorf("unsalted: prefix_cache = %+v (found %v), want PASS naming %d hits", c, ok, cached)
	}
	hitTTFC := res.Results[0].TTFC.Max
	full := o.Profile.LonePrefillTime(prompt, o.ChunkSize).Seconds()
	t.Logf("TTFC at %d tokens: salted best %.2f ms, unsalted (cache hits) worst %.2f ms; engine prefill %.2f ms whole, %.2f ms after a hit",
		length, 1000*missTTFC, 1000*hitTTFC, 1000*full, 1000*o.Profile.PrefillTime(prompt, recs[1].CachedTokens, o.ChunkSize).Seconds())
	if hitTTFC >= missTTFC || hitTTFC >= full {
		t.Errorf("unsalted TTFC %.2f ms is not below the salted %.2f ms and the full prefill %.2f ms", 1000*hitTTFC, 1000*missTTFC, 1000*full)
	}
}

// Salted prompts still share the chat template's first tokens. With a
// block that small (2 tokens) the server caches them: no request has more
// cached tokens than the template adds, and the check PASSes naming the
// template (a real vLLM caches a long system header the same way; a WARN
// there would be a false alarm on every run). Content hits beyond the
// template WARN: TestCheck in pkg/servermetrics.
func TestPrefixCacheTemplateHitsPass(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{BlockSize: 2})
	res, recs := prefillPoint(t, srv, 256)
	hits, overhead := 0, res.Settings.PromptOverheadTokens
	for _, rec := range recs {
		hits += rec.CachedTokens
		if rec.CachedTokens > overhead {
			t.Errorf("request %d: %d cached tokens, more than the template's %d: a salted prompt's content was cached", rec.Seq, rec.CachedTokens, overhead)
		}
	}
	if hits == 0 || res.Server == nil || res.Server.PrefixHits == nil || *res.Server.PrefixHits != float64(hits) {
		t.Fatalf("server metrics %+v, want the engine's %d cached tokens", res.Server, hits)
	}
	if c, ok := findCheck(res.Validation, "prefix_cache"); !ok || c.Status != validate.Pass || !strings.Contains(c.Detail, "its chat template adds to each of the") {
		t.Errorf("prefix_cache = %+v (found %v), want PASS naming the chat template", c, ok)
	}
}
