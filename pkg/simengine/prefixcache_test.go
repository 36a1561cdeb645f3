package simengine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// hashIDs returns the block hashes of a prompt of token ids.
func hashIDs(size int, ids []int) []uint64 {
	h := newBlockHasher(size)
	for _, id := range ids {
		h.add(id)
	}
	return h.blocks
}

// seqIDs is the prompt from, from+1, ..., of n tokens.
func seqIDs(from, n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = from + i
	}
	return ids
}

func TestBlockHashChaining(t *testing.T) {
	t.Parallel()
	base := seqIDs(1000, 64)
	a := hashIDs(16, base)
	if len(a) != 4 {
		t.Fatalf("%d blocks for 64 tokens, want 4", len(a))
	}
	// Only full blocks get a hash.
	if got := hashIDs(16, base[:47]); len(got) != 2 || !slices.Equal(got, a[:2]) {
		t.Errorf("47 tokens: blocks %v, want the first 2 of %v", got, a)
	}
	// Another token at 40 changes block 2 (tokens 32-47) and every block
	// after it, not those before.
	other := slices.Clone(base)
	other[40] = 7
	b := hashIDs(16, other)
	if !slices.Equal(a[:2], b[:2]) {
		t.Errorf("blocks before the change differ: %v, %v", a[:2], b[:2])
	}
	for i := 2; i < 4; i++ {
		if a[i] == b[i] {
			t.Errorf("block %d has the same hash after a change in block 2", i)
		}
	}
	// Chaining: another first token changes every block, although blocks
	// 1 to 3 hold the same tokens.
	first := slices.Clone(base)
	first[0] = 7
	for i, h := range hashIDs(16, first) {
		if h == a[i] {
			t.Errorf("block %d has the same hash after a change in block 0", i)
		}
	}
	// The same tokens in another block position hash differently too.
	if shifted := hashIDs(16, append(seqIDs(1000, 16), base...)); shifted[1] == a[0] {
		t.Errorf("block 1 of a shifted prompt hashes as block 0 of the original")
	}
}

// A text prompt and its token ids (as /tokenize gives them) hash alike,
// and a chat prompt counts as ChatPromptTokens says.
func TestBlockHashTextAndChat(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("alpha beta gamma delta ", 20)
	h := newBlockHasher(16)
	h.addText(text)
	if want := hashIDs(16, textTokenIDs(text, nil)); !slices.Equal(h.blocks, want) || h.tokens != CountTokens(text) {
		t.Errorf("text: %d tokens, blocks %v; want %d tokens, blocks %v", h.tokens, h.blocks, CountTokens(text), want)
	}
	msgs := []chatMessage{{Role: "user", Content: messageContent{Text: text}}}
	h = newBlockHasher(16)
	h.addChat(msgs, true)
	if want := hashIDs(16, chatTokenIDs(msgs, true)); !slices.Equal(h.blocks, want) || h.tokens != ChatPromptTokens([]string{text}, true) {
		t.Errorf("chat: %d tokens, blocks %v; want %d tokens, blocks %v", h.tokens, h.blocks, ChatPromptTokens([]string{text}, true), want)
	}
	// Without a cache, prompts are counted, not hashed.
	h = newBlockHasher(0)
	h.addChat(msgs, true)
	if h.tokens != ChatPromptTokens([]string{text}, true) || h.blocks != nil {
		t.Errorf("no cache: %d tokens, %d blocks", h.tokens, len(h.blocks))
	}
}

func TestPrefixCacheLRU(t *testing.T) {
	t.Parallel()
	c := newPrefixCache(2)
	c.insert(1)
	c.insert(2)
	if got := c.match([]uint64{1, 2, 3}, 3); got != 2 {
		t.Errorf("match = %d, want 2 (stops at the first miss)", got)
	}
	if got := c.match([]uint64{1, 2}, 1); got != 1 {
		t.Errorf("match limited to 1 block = %d", got)
	}
	// 1 was used last: inserting 3 evicts 2, the least recently used.
	c.insert(3)
	if c.len() != 2 {
		t.Errorf("%d blocks cached, capacity 2", c.len())
	}
	if c.match([]uint64{2}, 1) != 0 || c.match([]uint64{1}, 1) != 1 || c.match([]uint64{3}, 1) != 1 {
		t.Errorf("after evicting: 2 must be gone, 1 and 3 kept")
	}
	// Re-inserting a cached block refreshes it instead of adding it.
	c.insert(1)
	c.insert(4)
	if c.match([]uint64{1}, 1) != 1 || c.match([]uint64{3}, 1) != 0 {
		t.Errorf("re-inserted block 1 was evicted before block 3")
	}
	// A prompt whose first block was evicted finds nothing, even though
	// later blocks are cached: a hit is a prefix.
	if got := c.match([]uint64{9, 1, 4}, 3); got != 0 {
		t.Errorf("match past an evicted first block = %d, want 0", got)
	}
}

// runAlone queues a request for ids and runs iterations until it has its
// first token; it returns the request and the iterations' shapes.
func runAlone(t *testing.T, e *engine, seq int, ids []int, at time.Duration) (*request, []Shape) {
	t.Helper()
	r := add(e, seq, len(ids), 1, at)
	r.blocks = hashIDs(e.blockSize, ids)
	if e.cache == nil {
		r.blocks = nil
	}
	var shapes []Shape
	for i := 0; r.generated == 0; i++ {
		if i > 100 {
			t.Fatalf("request %d: no first token after 100 iterations", seq)
		}
		shapes = append(shapes, step(e, at))
		at += time.Second
	}
	return r, shapes
}

// A hit starts the prefill after the cached blocks: the iteration computes
// only the rest, with the cached tokens as its past, and takes the cost
// model's time for that shape. For a long prompt that is far less than the
// whole prompt's; for a short one the fixed cost of a chunk with a past
// (PrefillPastChunk) can outweigh the saving.
func TestPrefixCacheHitShortensPrefill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		first, hit []int
		wantCached int
		shorter    bool // the hit's prefill is shorter than a miss's
	}{
		{"the same prompt", seqIDs(1000, 100), seqIDs(1000, 100), 96, false},
		// The last token is always computed: a prompt of exactly two
		// blocks found whole hits one.
		{"whole blocks", seqIDs(1000, 32), seqIDs(1000, 32), 16, false},
		// The first prompt's partial third block was never cached.
		{"partial block", seqIDs(1000, 40), seqIDs(1000, 64), 32, false},
		{"another first token", seqIDs(1000, 100), append([]int{7}, seqIDs(1001, 99)...), 0, false},
		{"shorter than a block", seqIDs(1000, 15), seqIDs(1000, 15), 0, false},
		// Blocks are cached as each chunk completes them.
		{"chunked first prompt", seqIDs(1000, 1500), seqIDs(1000, 1600), 1488, true},
		{"long prompt", seqIDs(1000, 4000), seqIDs(1000, 4000), 3984, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEngine(t, nil)
			first, _ := runAlone(t, e, 0, tt.first, 0)
			if first.cached != 0 {
				t.Fatalf("first request: %d cached tokens in an empty cache", first.cached)
			}
			r, shapes := runAlone(t, e, 1, tt.hit, time.Minute)
			if r.cached != tt.wantCached {
				t.Errorf("cached %d tokens, want %d", r.cached, tt.wantCached)
			}
			if c := shapes[0].Prefill[0]; c.Past != tt.wantCached || c.Tokens != min(len(tt.hit)-tt.wantCached, e.chunkSize) {
				t.Errorf("first chunk %+v, want %d tokens after a past of %d", c, len(tt.hit)-tt.wantCached, tt.wantCached)
			}
			var took time.Duration
			for _, s := range shapes {
				took += e.profile.Duration(s)
			}
			if want := e.profile.PrefillTime(len(tt.hit), tt.wantCached, e.chunkSize); took != want {
				t.Errorf("prefill took %v, want %v", took, want)
			}
			if full := e.profile.LonePrefillTime(len(tt.hit), e.chunkSize); tt.shorter && took >= full/2 {
				t.Errorf("a hit of %d tokens took %v, not under half the full prefill's %v", tt.wantCached, took, full)
			}
			_, recs := e.records()
			if rec := recs[len(recs)-1]; rec.Seq != 1 || rec.CachedTokens != tt.wantCached || rec.PromptTokens != len(tt.hit) {
				t.Errorf("record %+v, want %d cached of %d", rec, tt.wantCached, len(tt.hit))
			}
			wantQueries := int64(len(tt.first) + len(tt.hit))
			if q, h, p := e.g.prefixQueries.Load(), e.g.prefixHits.Load(), e.g.promptToks.Load(); q != wantQueries || h != int64(tt.wantCached) || p != wantQueries {
				t.Errorf("counters: queries %d, hits %d, prompt tokens %d; want %d, %d, %d", q, h, p, wantQueries, tt.wantCached, wantQueries)
			}
		})
	}
}

// Without the prefix cache every prompt is prefilled whole.
func TestNoPrefixCache(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, func(o *Options) { o.NoPrefixCache = true })
	runAlone(t, e, 0, seqIDs(1000, 100), 0)
	r, shapes := runAlone(t, e, 1, seqIDs(1000, 100), time.Minute)
	if r.cached != 0 || shapes[0].Prefill[0] != (Chunk{Tokens: 100}) {
		t.Errorf("cached %d, first chunk %+v; want a whole prefill", r.cached, shapes[0].Prefill[0])
	}
	if e.g.prefixQueries.Load() != 0 || e.g.prefixHits.Load() != 0 {
		t.Errorf("prefix counters moved without a cache")
	}
}

// A small cache evicts the least recently used blocks: a prompt that was
// pushed out by newer ones misses again.
func TestPrefixCacheEvictsInEngine(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, func(o *Options) { o.PrefixCacheBlocks = 8 })
	at := time.Duration(0)
	run := func(seq int, ids []int) *request {
		r, _ := runAlone(t, e, seq, ids, at)
		at += time.Minute
		return r
	}
	run(0, seqIDs(1000, 64)) // 4 blocks
	run(1, seqIDs(5000, 64)) // 4 more: full
	if r := run(2, seqIDs(1000, 64)); r.cached != 48 {
		t.Errorf("while cached: %d tokens hit, want 48", r.cached)
	}
	run(3, seqIDs(9000, 128)) // 8 new blocks evict everything older
	if r := run(4, seqIDs(1000, 64)); r.cached != 0 {
		t.Errorf("after eviction: %d tokens hit, want 0", r.cached)
	}
	if got := e.cache.len(); got != 8 {
		t.Errorf("%d blocks cached, capacity 8", got)
	}
}

// Over HTTP, a repeated prompt's first token comes sooner by what the cost
// model saves: the engine's record shows the cached tokens and a prefill
// of exactly PrefillTime, the client sees a TTFC at least that and shorter
// than the first request's, and /metrics counts the hit.
func TestPrefixCacheHitTTFC(t *testing.T) {
	s := startServer(t, Options{Record: true})
	o := s.Options()
	slack := 2 * time.Millisecond
	if raceEnabled {
		slack = 5 * time.Millisecond
	}
	const n = 1500
	body := map[string]any{"model": s.Model(), "prompt": tokenIDs(n), "max_tokens": 2, "ignore_eos": true, "stream": true}
	post(t, s.BaseURL()+"/completions", map[string]any{"model": s.Model(), "prompt": tokenIDs(10), "max_tokens": 2, "stream": true}) // warm-up
	ttfc := func() time.Duration {
		res := post(t, s.BaseURL()+"/completions", body)
		_, ts := contentEvents(res)
		if len(ts) != 2 {
			t.Fatalf("%d content events, want 2 (status %d %s)", len(ts), res.status, res.body)
		}
		return ts[0].Sub(res.sent)
	}
	miss := ttfc()
	cached := (n - 1) / DefaultBlockSize * DefaultBlockSize
	full := o.Profile.LonePrefillTime(n, o.ChunkSize)
	want := o.Profile.PrefillTime(n, cached, o.ChunkSize)
	eventually(t, 3, func() error {
		var hits []time.Duration
		for range 5 {
			hits = append(hits, ttfc())
		}
		best := slices.Min(hits)
		t.Logf("miss %v (cost model %v); hits %v (cost model %v)", miss, full, hits, want)
		if best < want || best > want+slack {
			return fmt.Errorf("best hit TTFC %v, want within [%v, %v + %v]", best, want, want, slack)
		}
		return nil
	})
	if miss < full {
		t.Errorf("first request's TTFC %v is below its full prefill %v", miss, full)
	}
	for i, r := range s.Requests()[1:] {
		wantCached := cached
		if i == 0 {
			wantCached = 0
		}
		if r.CachedTokens != wantCached {
			t.Errorf("request %d: %d cached tokens, want %d", r.Seq, r.CachedTokens, wantCached)
		}
		if got, want := r.FirstToken-r.Admitted, o.Profile.PrefillTime(r.PromptTokens, r.CachedTokens, o.ChunkSize); got != want {
			t.Errorf("request %d: engine first token %v after admission, want %v", r.Seq, got, want)
		}
	}
	_, page := getText(t, "http://"+s.Addr()+"/metrics")
	hits := float64(len(s.Requests())-2) * float64(cached)
	if got := metricValue(page, "vllm:prefix_cache_hits_total"); got != hits {
		t.Errorf("vllm:prefix_cache_hits_total = %v, want %v", got, hits)
	}
	if got, want := metricValue(page, "vllm:prefix_cache_queries_total"), float64(10+n*(len(s.Requests())-1)); got != want {
		t.Errorf("vllm:prefix_cache_queries_total = %v, want %v", got, want)
	}
}
