package decodewindow

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/veeksha-go/veeksha/pkg/result"
)

const ms = time.Millisecond

// arrivals turns gaps (the first one is the TTFC from an anchor at 0) into
// absolute arrival offsets, as the reference's test vector describes them.
func arrivals(gaps ...time.Duration) []time.Duration {
	out := make([]time.Duration, len(gaps))
	var t time.Duration
	for i, g := range gaps {
		t += g
		out[i] = t
	}
	return out
}

func at(offsets ...time.Duration) []time.Duration { return offsets }

// TestReferenceVector is the test vector of reference §6.4.
func TestReferenceVector(t *testing.T) {
	t.Parallel()
	streams := []Stream{
		{ID: 0, Arrivals: arrivals(100*ms, 100*ms, 100*ms)},
		{ID: 1, Arrivals: arrivals(150*ms, 100*ms, 100*ms)},
	}
	res, err := Analyze(streams, Config{MinActive: 2, Strategy: Longest})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if got, want := res.Selected(), []Segment{{150 * ms, 300 * ms}}; !slices.Equal(got, want) {
		t.Errorf("Selected() = %v, want %v", got, want)
	}
	if got, want := res.ChunkGaps, at(100*ms, 100*ms, 100*ms); !slices.Equal(got, want) {
		t.Errorf("ChunkGaps = %v, want %v", got, want)
	}
	if got, want := res.ChunkGapStats.Count, 3; got != want {
		t.Errorf("ChunkGapStats.Count = %d, want %d", got, want)
	}
	if got, want := res.ChunkGapStats.Mean, 0.1; math.Abs(got-want) > 1e-12 {
		t.Errorf("ChunkGapStats.Mean = %v, want %v", got, want)
	}
	if got, want := []int{res.Streams[0].Samples, res.Streams[1].Samples}, []int{2, 1}; !slices.Equal(got, want) {
		t.Errorf("samples per stream = %v, want %v", got, want)
	}
	if res.Peak != 2 || res.Threshold != 2 {
		t.Errorf("Peak, Threshold = %d, %d, want 2, 2", res.Peak, res.Threshold)
	}
}

type analyzeCase struct {
	name          string
	streams       []Stream
	cfg           Config
	wantPeak      int
	wantThreshold int
	wantSegments  []Segment
	wantSelected  []Segment
	wantChunkGaps []time.Duration
	wantTokenGaps []time.Duration
	wantSkipped   map[string]int
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	tests := []analyzeCase{
		{
			name:          "no streams",
			wantPeak:      0,
			wantThreshold: 1,
			wantSkipped:   map[string]int{},
		},
		{
			name:          "batch of one: whole decode interval, every gap but the TTFC",
			streams:       []Stream{{Arrivals: at(50*ms, 60*ms, 75*ms, 95*ms)}},
			wantPeak:      1,
			wantThreshold: 1,
			wantSegments:  []Segment{{50 * ms, 95 * ms}},
			wantSelected:  []Segment{{50 * ms, 95 * ms}},
			wantChunkGaps: at(10*ms, 15*ms, 20*ms),
			wantTokenGaps: at(10*ms, 15*ms, 20*ms),
			wantSkipped:   map[string]int{},
		},
		{
			name: "skipped streams",
			streams: []Stream{
				{ID: 1},                                    // no chunk
				{ID: 2, Arrivals: at(5 * ms)},              // one chunk
				{ID: 3, Arrivals: at(5*ms, 5*ms)},          // two chunks at one instant
				{ID: 4, Arrivals: at(5*ms, 9*ms, 7*ms)},    // goes backwards
				{ID: 5, Arrivals: at(10*ms, 20*ms, 30*ms)}, // eligible
			},
			wantPeak:      1,
			wantThreshold: 1,
			wantSegments:  []Segment{{10 * ms, 30 * ms}},
			wantSelected:  []Segment{{10 * ms, 30 * ms}},
			wantChunkGaps: at(10*ms, 10*ms),
			wantTokenGaps: at(10*ms, 10*ms),
			wantSkipped:   map[string]int{SkipNoDecodeChunks: 3, SkipUnordered: 1},
		},
		{
			// The original counted the shared instant as a peak of 2 and so
			// found no window at all.
			name: "end and start at one instant are not concurrent",
			streams: []Stream{
				{Arrivals: at(0, 10*ms, 20*ms)},
				{Arrivals: at(20*ms, 30*ms, 40*ms)},
			},
			wantPeak:      1,
			wantThreshold: 1,
			wantSegments:  []Segment{{0, 40 * ms}},
			wantSelected:  []Segment{{0, 40 * ms}},
			wantChunkGaps: at(10*ms, 10*ms, 10*ms, 10*ms),
			wantTokenGaps: at(10*ms, 10*ms, 10*ms, 10*ms),
			wantSkipped:   map[string]int{},
		},
		{
			// One request ends at 20 as another starts: two requests decode
			// throughout [10, 30], one segment. The original saw a peak of
			// 3 at the instant 20 and found no window.
			name: "hand-over at one instant keeps the window whole",
			streams: []Stream{
				{Arrivals: at(0, 10*ms, 20*ms)},
				{Arrivals: at(10*ms, 20*ms, 30*ms)},
				{Arrivals: at(20*ms, 30*ms, 40*ms)},
			},
			wantPeak:      2,
			wantThreshold: 2,
			wantSegments:  []Segment{{10 * ms, 30 * ms}},
			wantSelected:  []Segment{{10 * ms, 30 * ms}},
			wantChunkGaps: at(10*ms, 10*ms, 10*ms, 10*ms, 10*ms),
			wantTokenGaps: at(10*ms, 10*ms, 10*ms, 10*ms, 10*ms),
			wantSkipped:   map[string]int{},
		},
		{
			// Active goes 1, 2, 3, 2, 1: the reference emits [10,20], [20,30],
			// [30,40] for threshold 2 and would count the chunks at 20, 30
			// twice; merged there is one segment.
			name: "fixed threshold below the peak merges adjacent pieces",
			streams: []Stream{
				{Arrivals: at(0, 20*ms, 30*ms, 50*ms)},
				{Arrivals: at(10*ms, 20*ms, 30*ms, 40*ms)},
				{Arrivals: at(20*ms, 25*ms, 30*ms)},
			},
			cfg:           Config{MinActive: 2},
			wantPeak:      3,
			wantThreshold: 2,
			wantSegments:  []Segment{{10 * ms, 40 * ms}},
			wantSelected:  []Segment{{10 * ms, 40 * ms}},
			// stream 0: 20 (gap 20), 30 (10); stream 1: 20 (10), 30 (10),
			// 40 (10); stream 2: 25 (5), 30 (5).
			wantChunkGaps: at(20*ms, 10*ms, 10*ms, 10*ms, 10*ms, 5*ms, 5*ms),
			wantTokenGaps: at(20*ms, 10*ms, 10*ms, 10*ms, 10*ms, 5*ms, 5*ms),
			wantSkipped:   map[string]int{},
		},
	}
	// Two separate pairs: [10,20] (length 10) and [50,70] (length 20).
	twoPairs := []Stream{
		{Arrivals: at(0, 10*ms, 20*ms)},
		{Arrivals: at(10*ms, 15*ms, 25*ms)},
		{Arrivals: at(40*ms, 50*ms, 60*ms, 70*ms)},
		{Arrivals: at(50*ms, 55*ms, 70*ms, 80*ms)},
	}
	for _, s := range []struct {
		strategy Strategy
		selected []Segment
		gaps     []time.Duration
	}{
		{All, []Segment{{10 * ms, 20 * ms}, {50 * ms, 70 * ms}}, at(10*ms, 10*ms, 5*ms, 10*ms, 10*ms, 10*ms, 5*ms, 15*ms)},
		{"", []Segment{{10 * ms, 20 * ms}, {50 * ms, 70 * ms}}, at(10*ms, 10*ms, 5*ms, 10*ms, 10*ms, 10*ms, 5*ms, 15*ms)},
		{First, []Segment{{10 * ms, 20 * ms}}, at(10*ms, 10*ms, 5*ms)},
		{Longest, []Segment{{50 * ms, 70 * ms}}, at(10*ms, 10*ms, 10*ms, 5*ms, 15*ms)},
	} {
		tests = append(tests, analyzeCase{
			name:          "strategy " + string(s.strategy),
			streams:       twoPairs,
			cfg:           Config{Strategy: s.strategy},
			wantPeak:      2,
			wantThreshold: 2,
			wantSegments:  []Segment{{10 * ms, 20 * ms}, {50 * ms, 70 * ms}},
			wantSelected:  s.selected,
			wantChunkGaps: s.gaps,
			wantTokenGaps: s.gaps,
			wantSkipped:   map[string]int{},
		})
	}
	tests = append(tests, analyzeCase{
		name: "per-token gaps split each chunk gap over the later chunk's tokens",
		streams: []Stream{{
			Arrivals:       at(0, 30*ms, 40*ms, 100*ms),
			TokensPerChunk: []int{5, 3, 1, 0}, // 0 counts as one token
		}},
		wantPeak:      1,
		wantThreshold: 1,
		wantSegments:  []Segment{{0, 100 * ms}},
		wantSelected:  []Segment{{0, 100 * ms}},
		wantChunkGaps: at(30*ms, 10*ms, 60*ms),
		wantTokenGaps: at(10*ms, 10*ms, 10*ms, 10*ms, 60*ms),
		wantSkipped:   map[string]int{},
	})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Analyze(tc.streams, tc.cfg)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if res.Peak != tc.wantPeak || res.Threshold != tc.wantThreshold {
				t.Errorf("Peak, Threshold = %d, %d, want %d, %d", res.Peak, res.Threshold, tc.wantPeak, tc.wantThreshold)
			}
			if !slices.Equal(res.Segments, tc.wantSegments) {
				t.Errorf("Segments = %v, want %v", res.Segments, tc.wantSegments)
			}
			if got := res.Selected(); !slices.Equal(got, tc.wantSelected) {
				t.Errorf("Selected() = %v, want %v", got, tc.wantSelected)
			}
			if !slices.Equal(res.ChunkGaps, tc.wantChunkGaps) {
				t.Errorf("ChunkGaps = %v, want %v", res.ChunkGaps, tc.wantChunkGaps)
			}
			if !slices.Equal(res.TokenGaps, tc.wantTokenGaps) {
				t.Errorf("TokenGaps = %v, want %v", res.TokenGaps, tc.wantTokenGaps)
			}
			if diff := cmp.Diff(tc.wantSkipped, res.Skipped); diff != "" {
				t.Errorf("Skipped (-want +got):\n%s", diff)
			}
			checkInvariants(t, tc.streams, tc.cfg, res)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{}, ""},
		{Config{MinActive: 3, Strategy: Longest}, ""},
		{Config{MinActive: -1}, "min active requests -1"},
		{Config{Strategy: "widest"}, `"widest"`},
	}
	for _, tc := range tests {
		t.Run(string(tc.cfg.Strategy), func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("%+v.Validate() = %v, want nil", tc.cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v.Validate() = %v, want an error containing %q", tc.cfg, err, tc.wantErr)
			}
			if _, aerr := Analyze(nil, tc.cfg); aerr == nil {
				t.Errorf("Analyze(nil, %+v) error = nil, want the validation error", tc.cfg)
			}
		})
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	r := result.Request{Seq: 7, TokenTimes: at(1*ms, 2*ms), TokensPerChunk: []int{1, 2}}
	got := FromRequest(&r)
	if got.ID != 7 || !slices.Equal(got.Arrivals, r.TokenTimes) || !slices.Equal(got.TokensPerChunk, r.TokensPerChunk) {
		t.Errorf("FromRequest(%+v) = %+v, want ID 7 and the same times and counts", r, got)
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	streams := []Stream{
		{ID: 10, Arrivals: arrivals(100*ms, 100*ms, 100*ms), TokensPerChunk: []int{1, 2, 2}},
		{ID: 11, Arrivals: arrivals(150*ms, 100*ms, 100*ms)},
		{ID: 12, Arrivals: at(5 * ms)},
	}
	res, err := Analyze(streams, Config{})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"config", "max_observed"}, true},
		{[]string{"config", "resolved_min_active_requests"}, 2.0},
		{[]string{"config", "selection_strategy"}, "all"},
		{[]string{"peak_active_requests"}, 2.0},
		{[]string{"eligible_requests", "total_requests"}, 3.0},
		{[]string{"eligible_requests", "eligible"}, 2.0},
		{[]string{"eligible_requests", "skipped", "no_decode_chunks"}, 1.0},
		{[]string{"windows", "num_selected_segments"}, 1.0},
		{[]string{"tbt_in_window_stats_s", "count"}, 3.0},
		{[]string{"tbt_in_window_stats_s", "mean"}, 0.1},
		// Stream 10's chunks at 0.2 (2 tokens) and 0.3 (2 tokens), stream
		// 11's at 0.25 counted as one token.
		{[]string{"tbt_per_token_in_window_stats_s", "count"}, 5.0},
		{[]string{"tokens_per_chunk_in_window_stats", "mean"}, 2.0},
	}
	for _, c := range checks {
		var v any = got
		for _, k := range c.path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if f, ok := v.(float64); ok {
			if w, ok := c.want.(float64); ok && math.Abs(f-w) < 1e-9 {
				continue
			}
		}
		if v != c.want {
			t.Errorf("json %v = %v, want %v (document %s)", c.path, v, c.want, b)
		}
	}
	pw := got["windows"].(map[string]any)["per_window"].([]any)[0].(map[string]any)
	if got, want := pw["start_s"], 0.15; math.Abs(got.(float64)-want) > 1e-9 {
		t.Errorf("per_window[0].start_s = %v, want %v", got, want)
	}
}

func TestStatsJSONEmpty(t *testing.T) {
	t.Parallel()
	res, err := Analyze(nil, Config{})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	rep := res.File()
	b, err := json.Marshal(rep.TBTInWindow)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if got, want := string(b), `{"count":0}`; got != want {
		t.Errorf("empty stats JSON = %s, want %s", got, want)
	}
	if rep.TokensPerChunk != nil {
		t.Errorf("TokensPerChunk = %+v, want nil without token counts", rep.TokensPerChunk)
	}
	if len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "no decode window") {
		t.Errorf("Notes = %q, want a note that there is no decode window", rep.Notes)
	}
}

// randomStreams draws n streams on a coarse millisecond grid, so that
// equal times (ties between starts, ends and arrivals) are frequent.
func randomStreams(rng *rand.Rand, n int) []Stream {
	streams := make([]Stream, n)
	for i := range streams {
		chunks := rng.IntN(12)
		t := time.Duration(rng.IntN(40)) * ms
		s := Stream{ID: i}
		known := rng.IntN(2) == 0
		for range chunks {
			s.Arrivals = append(s.Arrivals, t)
			if known {
				s.TokensPerChunk = append(s.TokensPerChunk, rng.IntN(4))
			}
			t += time.Duration(rng.IntN(6)) * ms
		}
		streams[i] = s
	}
	return streams
}

func TestAnalyzeProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	strategies := []Strategy{All, First, Longest}
	for i := range 2000 {
		streams := randomStreams(rng, 1+rng.IntN(8))
		cfg := Config{MinActive: rng.IntN(5), Strategy: strategies[rng.IntN(3)]}
		res, err := Analyze(streams, cfg)
		if err != nil {
			t.Fatalf("case %d: Analyze: %v", i, err)
		}
		checkInvariants(t, streams, cfg, res)
		if t.Failed() {
			t.Fatalf("case %d: streams %+v, config %+v", i, streams, cfg)
		}
	}
}

// TestSingleStreamProperty: with a batch of one, the window is the whole
// decode interval and the samples are all of the request's chunk gaps.
func TestSingleStreamProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		s := randomStreams(rng, 1)[0]
		r := result.Request{TokenTimes: s.Arrivals}
		res, err := Analyze([]Stream{s}, Config{})
		if err != nil {
			t.Fatalf("Analyze: %v", err)
		}
		if res.Eligible == 0 {
			continue
		}
		want := []Segment{{s.Arrivals[0], s.Arrivals[len(s.Arrivals)-1]}}
		if got := res.Selected(); !slices.Equal(got, want) {
			t.Fatalf("Analyze(%v).Selected() = %v, want %v", s.Arrivals, got, want)
		}
		if got, want := res.ChunkGaps, r.ChunkGaps(); !slices.Equal(got, want) {
			t.Fatalf("Analyze(%v).ChunkGaps = %v, want every gap %v", s.Arrivals, got, want)
		}
	}
}

// checkInvariants checks res against a brute-force reading of streams.
func checkInvariants(t *testing.T, streams []Stream, cfg Config, res Result) {
	t.Helper()

	// Eligibility, recomputed.
	var elig []Stream
	for _, s := range streams {
		sorted := true
		for j := 1; j < len(s.Arrivals); j++ {
			if s.Arrivals[j] < s.Arrivals[j-1] {
				sorted = false
			}
		}
		if sorted && len(s.Arrivals) >= 2 && s.Arrivals[len(s.Arrivals)-1] > s.Arrivals[0] {
			elig = append(elig, s)
		}
	}
	if res.Eligible != len(elig) || res.Total != len(streams) {
		t.Errorf("Eligible, Total = %d, %d, want %d, %d", res.Eligible, res.Total, len(elig), len(streams))
	}

	// Concurrency on every elementary interval between event times: a
	// stream covers (x, y) when it starts at or before x and ends at or
	// after y.
	var times []time.Duration
	for _, s := range elig {
		times = append(times, s.Arrivals[0], s.Arrivals[len(s.Arrivals)-1])
	}
	slices.Sort(times)
	times = slices.Compact(times)
	active := func(x, y time.Duration) int {
		n := 0
		for _, s := range elig {
			if s.Arrivals[0] <= x && s.Arrivals[len(s.Arrivals)-1] >= y {
				n++
			}
		}
		return n
	}
	peak := 0
	for k := 0; k+1 < len(times); k++ {
		peak = max(peak, active(times[k], times[k+1]))
	}
	if res.Peak != peak {
		t.Errorf("Peak = %d, want %d", res.Peak, peak)
	}
	if res.Peak > len(elig) {
		t.Errorf("Peak = %d, more than the %d eligible streams", res.Peak, len(elig))
	}
	threshold := cfg.MinActive
	if threshold == 0 {
		threshold = max(peak, 1)
	}
	if res.Threshold != threshold {
		t.Errorf("Threshold = %d, want %d", res.Threshold, threshold)
	}

	// Segments: the union of qualifying elementary intervals, merged.
	var segs []Segment
	for k := 0; k+1 < len(times); k++ {
		if active(times[k], times[k+1]) < threshold {
			continue
		}
		if n := len(segs); n > 0 && segs[n-1].End == times[k] {
			segs[n-1].End = times[k+1]
		} else {
			segs = append(segs, Segment{times[k], times[k+1]})
		}
	}
	if !slices.Equal(res.Segments, segs) {
		t.Errorf("Segments = %v, want %v", res.Segments, segs)
	}
	for k := 1; k < len(res.Segments); k++ {
		if res.Segments[k].Start <= res.Segments[k-1].End {
			t.Errorf("Segments %v and %v touch or overlap", res.Segments[k-1], res.Segments[k])
		}
	}

	// Selection.
	sel := res.Selected()
	switch {
	case len(segs) == 0:
		if len(sel) != 0 {
			t.Errorf("Selected() = %v with no segment", sel)
		}
	case cfg.Strategy == First:
		if !slices.Equal(sel, segs[:1]) {
			t.Errorf("Selected() = %v, want the first segment %v", sel, segs[0])
		}
	case cfg.Strategy == Longest:
		if len(sel) != 1 || !slices.Contains(segs, sel[0]) {
			t.Fatalf("Selected() = %v, want one of %v", sel, segs)
		}
		for _, s := range segs {
			if s.Duration() > sel[0].Duration() || (s.Duration() == sel[0].Duration() && s.Start < sel[0].Start) {
				t.Errorf("Selected() = %v, but %v is longer or as long and earlier", sel, s)
			}
		}
	default:
		if !slices.Equal(sel, segs) {
			t.Errorf("Selected() = %v, want all segments %v", sel, segs)
		}
	}

	// Samples: every gap whose later chunk lies inside a selected window.
	var chunk, token []time.Duration
	total := 0
	for _, w := range sel {
		for _, s := range elig {
			known := len(s.TokensPerChunk) == len(s.Arrivals)
			for j := 1; j < len(s.Arrivals); j++ {
				if s.Arrivals[j] < w.Start || s.Arrivals[j] > w.End {
					continue
				}
				g := s.Arrivals[j] - s.Arrivals[j-1]
				chunk = append(chunk, g)
				n := 1
				if known && s.TokensPerChunk[j] > 1 {
					n = s.TokensPerChunk[j]
				}
				for range n {
					token = append(token, g/time.Duration(n))
				}
			}
		}
	}
	if !slices.Equal(res.ChunkGaps, chunk) {
		t.Errorf("ChunkGaps = %v, want %v", res.ChunkGaps, chunk)
	}
	if !slices.Equal(res.TokenGaps, token) {
		t.Errorf("TokenGaps = %v, want %v", res.TokenGaps, token)
	}
	for _, s := range res.Streams {
		total += s.Samples
	}
	if total != len(res.ChunkGaps) || res.ChunkGapStats.Count != len(res.ChunkGaps) {
		t.Errorf("per-stream samples sum to %d, stats count %d, want %d", total, res.ChunkGapStats.Count, len(res.ChunkGaps))
	}
	perWindow := 0
	for _, w := range res.Windows {
		perWindow += w.ChunkGaps
	}
	if perWindow != len(res.ChunkGaps) {
		t.Errorf("per-window samples sum to %d, want %d", perWindow, len(res.ChunkGaps))
	}
	for _, g := range res.ChunkGaps {
		if g < 0 {
			t.Errorf("negative gap %v in ChunkGaps", g)
		}
	}
}

func FuzzDecodeWindow(f *testing.F) {
	f.Add([]byte{2, 3, 100, 100, 100, 3, 150, 100, 100}, uint8(2), uint8(2))
	f.Add([]byte{1, 4, 0, 10, 20, 30}, uint8(0), uint8(0))
	f.Add([]byte{3, 2, 0, 0, 3, 5, 255, 7, 2, 1, 1}, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, minActive, strategy uint8) {
		// data: stream count, then per stream a chunk count and that many
		// signed gaps in milliseconds (negative gaps exercise the
		// unordered-arrivals path), then optional token counts.
		next := func() (byte, bool) {
			if len(data) == 0 {
				return 0, false
			}
			b := data[0]
			data = data[1:]
			return b, true
		}
		n, _ := next()
		streams := make([]Stream, int(n)%16)
		for i := range streams {
			c, _ := next()
			var t time.Duration
			s := Stream{ID: i}
			for range int(c) % 32 {
				g, ok := next()
				if !ok {
					break
				}
				t += time.Duration(int8(g)) * ms
				s.Arrivals = append(s.Arrivals, t)
			}
			if k, ok := next(); ok && k%2 == 1 {
				s.TokensPerChunk = make([]int, len(s.Arrivals))
				for j := range s.TokensPerChunk {
					b, _ := next()
					s.TokensPerChunk[j] = int(b % 8)
				}
			}
			streams[i] = s
		}
		cfg := Config{MinActive: int(minActive) % 20, Strategy: []Strategy{All, First, Longest, ""}[int(strategy)%4]}
		res, err := Analyze(streams, cfg)
		if err != nil {
			t.Fatalf("Analyze(%+v): %v", cfg, err)
		}
		if cfg.Strategy == "" {
			cfg.Strategy = All
		}
		checkInvariants(t, streams, cfg, res)
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("Marshal: %v", err)
		}
	})
}
