package simengine

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// These tests drive the scheduler by hand, without the engine goroutine or
// real time: requests are put in pending and each step plans and completes
// one iteration at a synthetic time.

func newTestEngine(t *testing.T, mod func(*Options)) *engine {
	t.Helper()
	o := Options{Profile: testProfile(), Record: true}
	if mod != nil {
		mod(&o)
	}
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	return newEngine(o, time.Unix(0, 0), &gauges{})
}

// add queues a request that arrived at offset at.
func add(e *engine, seq, prompt, maxOut int, at time.Duration) *request {
	r := newRequest()
	r.seq, r.id, r.prompt, r.maxOut, r.stopAt = seq, "r"+string(rune('a'+seq)), prompt, maxOut, maxOut
	r.arrived = e.began.Add(at)
	e.pending = append(e.pending, r)
	e.g.waiting.Add(1)
	return r
}

// step runs one iteration starting at offset at and returns its shape.
func step(e *engine, at time.Duration) Shape {
	start := e.began.Add(at)
	e.promote(start)
	plan := e.plan(nil, start)
	s := shapeOf(plan)
	if len(plan) > 0 {
		e.complete(plan, s, start, start.Add(e.profile.Duration(s)))
	}
	return s
}

func prefill(chunks ...Chunk) []Chunk { return chunks }

func TestSchedulerShapes(t *testing.T) {
	t.Parallel()
	type req struct{ prompt, maxOut int }
	tests := []struct {
		name  string
		mod   func(*Options)
		reqs  []req
		steps int
		want  []Shape
	}{
		{
			name:  "long prompt is split into chunks that attend to the earlier ones",
			reqs:  []req{{1200, 3}},
			steps: 5,
			want: []Shape{
				{Prefill: prefill(Chunk{512, 0})},
				{Prefill: prefill(Chunk{512, 512})},
				{Prefill: prefill(Chunk{176, 1024})}, // completes the prefill: first token
				{DecodeBatch: 1, DecodeContextTokens: 1200},
				{DecodeBatch: 1, DecodeContextTokens: 1201}, // third token: done
			},
		},
		{
			name:  "small prefills share an iteration",
			reqs:  []req{{100, 2}, {200, 2}, {300, 2}},
			steps: 3,
			want: []Shape{
				{Prefill: prefill(Chunk{100, 0}, Chunk{200, 0}, Chunk{212, 0})},
				{Prefill: prefill(Chunk{88, 212}), DecodeBatch: 2, DecodeContextTokens: 300},
				{DecodeBatch: 1, DecodeContextTokens: 300},
			},
		},
		{
			name:  "max running holds the rest back",
			mod:   func(o *Options) { o.MaxRunning = 2 },
			reqs:  []req{{10, 2}, {10, 2}, {10, 2}},
			steps: 3,
			want: []Shape{
				{Prefill: prefill(Chunk{10, 0}, Chunk{10, 0})},
				{DecodeBatch: 2, DecodeContextTokens: 20}, // both finish: two slots free up
				{Prefill: prefill(Chunk{10, 0})},
			},
		},
		{
			name: "a request that does not fit the KV cache blocks the queue",
			// The first reserves 400+2; the second needs 100+600 more and
			// waits; the third would fit but must not overtake the second.
			mod:   func(o *Options) { o.KVCacheTokens = 1000 },
			reqs:  []req{{400, 2}, {100, 600}, {10, 2}},
			steps: 3,
			want: []Shape{
				{Prefill: prefill(Chunk{400, 0})},
				{DecodeBatch: 1, DecodeContextTokens: 400}, // the first finishes: its KV is freed
				{Prefill: prefill(Chunk{100, 0}, Chunk{10, 0})},
			},
		},
		{
			name:  "chunk size is the budget of decodes plus prefill",
			mod:   func(o *Options) { o.ChunkSize = 64 },
			reqs:  []req{{60, 5}, {100, 1}},
			steps: 3,
			want: []Shape{
				{Prefill: prefill(Chunk{60, 0}, Chunk{4, 0})},
				{Prefill: prefill(Chunk{63, 4}), DecodeBatch: 1, DecodeContextTokens: 60},
				{Prefill: prefill(Chunk{33, 67}), DecodeBatch: 1, DecodeContextTokens: 61},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEngine(t, tt.mod)
			for i, r := range tt.reqs {
				add(e, i, r.prompt, r.maxOut, 0)
			}
			var got []Shape
			at := time.Duration(0)
			for range tt.steps {
				s := step(e, at)
				got = append(got, s)
				at += e.profile.Duration(s)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("iteration shapes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchedulerLifecycle(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, nil)
	a := add(e, 0, 20, 3, 0)
	b := add(e, 1, 20, 5, 0)
	b.stopAt = 2 // stops early, as without ignore_eos
	late := add(e, 2, 20, 1, 5*time.Millisecond)

	s := step(e, 0)
	if got := len(s.Prefill); got != 2 {
		t.Fatalf("iteration 0 prefills %d requests, want 2 (the third arrives after it starts)", got)
	}
	if n, fin := a.progress(); n != 1 || fin != "" {
		t.Errorf("after prefill: a.progress() = %d, %q; want 1, \"\"", n, fin)
	}
	if w := e.g.waiting.Load(); w != 1 {
		t.Errorf("waiting gauge = %d, want 1", w)
	}
	if r := e.g.running.Load(); r != 2 {
		t.Errorf("running gauge = %d, want 2", r)
	}
	for at := 10 * time.Millisecond; len(e.running)+len(e.waiting)+len(e.pending) > 0; at += 10 * time.Millisecond {
		step(e, at)
	}
	for _, c := range []struct {
		r      *request
		n      int
		finish string
	}{{a, 3, finishLength}, {b, 2, finishStop}, {late, 1, finishLength}} {
		if n, fin := c.r.progress(); n != c.n || fin != c.finish {
			t.Errorf("request %d: progress() = %d, %q; want %d, %q", c.r.seq, n, fin, c.n, c.finish)
		}
	}
	if e.kvReserved != 0 || e.kvUsed != 0 || e.g.running.Load() != 0 || e.g.waiting.Load() != 0 {
		t.Errorf("after all finished: kvReserved %d, kvUsed %d, running %d, waiting %d; want all 0",
			e.kvReserved, e.kvUsed, e.g.running.Load(), e.g.waiting.Load())
	}
	if got, want := e.g.genToks.Load(), int64(3+2+1); got != want {
		t.Errorf("generation tokens = %d, want %d", got, want)
	}
	if got, want := e.g.promptToks.Load(), int64(60); got != want {
		t.Errorf("prompt tokens = %d, want %d", got, want)
	}
	_, recs := e.records()
	if len(recs) != 3 {
		t.Fatalf("records = %d, want 3", len(recs))
	}
	for _, rec := range recs {
		if rec.FirstToken <= rec.Arrived || rec.Finished < rec.FirstToken {
			t.Errorf("record %+v: want arrived < first token <= finished", rec)
		}
	}
}

func TestSchedulerDropsCanceled(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, func(o *Options) { o.MaxRunning = 1 })
	run := add(e, 0, 10, 100, 0)
	queued := add(e, 1, 10, 100, 0)
	step(e, 0)
	queued.canceled.Store(true)
	run.canceled.Store(true)
	if s := step(e, time.Millisecond); len(s.Prefill)+s.DecodeBatch != 0 {
		t.Errorf("after cancel: shape %+v, want an empty iteration", s)
	}
	if _, fin := queued.progress(); fin != finishAbort {
		t.Errorf("canceled waiting request finish = %q, want %q", fin, finishAbort)
	}
	if e.kvReserved != 0 || e.kvUsed != 0 || e.g.running.Load() != 0 || e.g.waiting.Load() != 0 {
		t.Errorf("after cancel: kvReserved %d, kvUsed %d, running %d, waiting %d; want all 0",
			e.kvReserved, e.kvUsed, e.g.running.Load(), e.g.waiting.Load())
	}
	if got := e.g.finished[2].Load(); got != 2 {
		t.Errorf("aborted count = %d, want 2", got)
	}
}

func TestDecisions(t *testing.T) {
	t.Parallel()
	// The same inputs give the same answer; fractions are honoured.
	const n = 20000
	hits := 0
	for seq := range n {
		if hit(7, decideFail, 0.25, seq, 0) != hit(7, decideFail, 0.25, seq, 0) {
			t.Fatal("hit is not deterministic")
		}
		if hit(7, decideFail, 0.25, seq, 0) {
			hits++
		}
	}
	if frac := float64(hits) / n; frac < 0.23 || frac > 0.27 {
		t.Errorf("hit fraction = %.3f, want 0.25 ± 0.02", frac)
	}
	if hit(7, decideFail, 0, 1, 0) || !hit(7, decideFail, 1, 1, 0) {
		t.Error("fraction 0 must never hit and fraction 1 always")
	}
	seen := map[int]bool{}
	for seq := range 2000 {
		l := stopLength(3, seq, 5, 10)
		if l < 5 || l > 10 {
			t.Fatalf("stopLength(min 5, max 10) = %d, want within [5, 10]", l)
		}
		seen[l] = true
	}
	if len(seen) != 6 {
		t.Errorf("stopLength(min 5, max 10) took %d distinct values, want all 6", len(seen))
	}
	if got := stopLength(3, 0, 0, 1); got != 1 {
		t.Errorf("stopLength(max 1) = %d, want 1", got)
	}
}
