package decodewindow

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// Strategy chooses which qualifying segments become decode windows.
type Strategy string

// The selection strategies.
const (
	// All selects every qualifying segment. It is what the decode benchmark
	// uses, and the default when Config.Strategy is empty.
	All Strategy = "all"
	// First selects the earliest segment.
	First Strategy = "first"
	// Longest selects the longest segment; ties go to the earlier one.
	Longest Strategy = "longest"
)

// Skip reasons recorded in StreamWindow.Skipped.
const (
	// SkipNoDecodeChunks: fewer than two content chunks, or first and last
	// chunk at the same instant, so the request never decoded for any time.
	SkipNoDecodeChunks = "no_decode_chunks"
	// SkipUnordered: the arrival times go backwards, which a monotonic clock
	// cannot produce; the stream is left out rather than giving negative gaps.
	SkipUnordered = "unordered_arrivals"
)

// Stream is one request's content-chunk timeline.
type Stream struct {
	// ID identifies the request in the output (the decode benchmark uses
	// the request's Seq).
	ID int
	// Arrivals holds the arrival of every content chunk, as offsets from
	// the run start, in arrival order.
	Arrivals []time.Duration
	// TokensPerChunk holds the number of tokens each chunk carried,
	// parallel to Arrivals; nil (or any other length) means unknown.
	TokensPerChunk []int
}

// FromRequest builds the Stream of one recorded request: ID is its Seq,
// Arrivals its TokenTimes, TokensPerChunk its TokensPerChunk. Choosing which
// requests to analyze (warm-up, failures) is the caller's decision.
func FromRequest(r *result.Request) Stream {
	return Stream{ID: r.Seq, Arrivals: r.TokenTimes, TokensPerChunk: r.TokensPerChunk}
}

// Config chooses the threshold and the selection strategy.
type Config struct {
	// MinActive is the number of requests that must be decoding at once
	// for a time to belong to the window. 0 means the peak concurrency
	// observed ("max_observed"), which is what the decode benchmark uses.
	MinActive int `json:"min_active_requests"`
	// Strategy selects among the qualifying segments; empty means All.
	Strategy Strategy `json:"selection_strategy"`
}

// Validate reports a negative MinActive or an unknown Strategy.
func (c Config) Validate() error {
	var errs []error
	if c.MinActive < 0 {
		errs = append(errs, fmt.Errorf("decode window: min active requests %d is negative (0 means the observed peak)", c.MinActive))
	}
	switch c.Strategy {
	case "", All, First, Longest:
	default:
		errs = append(errs, fmt.Errorf("decode window: selection strategy %q is not one of all, first, longest", c.Strategy))
	}
	return errors.Join(errs...)
}

// Segment is a closed time interval [Start, End], as offsets from the run
// start.
type Segment struct {
	Start time.Duration
	End   time.Duration
}

// Duration is End minus Start.
func (s Segment) Duration() time.Duration { return s.End - s.Start }

// Contains reports whether t lies in [Start, End], both ends inclusive.
func (s Segment) Contains(t time.Duration) bool { return t >= s.Start && t <= s.End }

// Window is one selected segment with the samples taken inside it.
type Window struct {
	// Index numbers the selected windows in time order, from 0.
	Index int
	Segment
	// ChunkGaps is the number of chunk-gap samples in this window.
	ChunkGaps int
	// Stats summarizes this window's chunk gaps, in seconds.
	Stats metrics.Summary
}

// StreamWindow is one input stream's part in the analysis.
type StreamWindow struct {
	// ID is the Stream's ID.
	ID int
	// Skipped is empty for an eligible stream, else one of the Skip*
	// constants.
	Skipped string
	// Decode is the stream's decode interval [first chunk, last chunk];
	// meaningful only when the stream is eligible.
	Decode Segment
	// Samples is the number of this stream's chunk gaps inside the
	// selected windows.
	Samples int
	// TokensKnown says whether the stream carried per-chunk token counts.
	TokensKnown bool
}

// Result is the outcome of Analyze. Every time is a time.Duration offset
// from the run start or a gap; the Stats fields are in seconds.
type Result struct {
	// Config is the configuration Analyze ran with, defaults filled in.
	Config Config
	// Peak is the highest number of requests decoding at once for a
	// positive length of time; 0 when no stream is eligible.
	Peak int
	// Threshold is the resolved minimum number of active requests: Peak
	// (at least 1) when Config.MinActive is 0, else Config.MinActive.
	Threshold int
	// Total is the number of input streams; Eligible of them were used.
	Total, Eligible int
	// Skipped counts the streams left out, by Skip* reason.
	Skipped map[string]int
	// Segments are all maximal intervals where at least Threshold
	// requests were decoding, in time order.
	Segments []Segment
	// Windows are the selected segments, in time order, with their samples.
	Windows []Window
	// ChunkGaps are the in-window samples: gaps between consecutive
	// content chunks whose later chunk arrived inside a selected window.
	// Ordered by window, then stream (input order), then chunk.
	ChunkGaps []time.Duration
	// TokenGaps are the per-token gaps of the same chunks: each chunk gap
	// divided by the tokens the later chunk carried, repeated once per
	// token. A chunk of a stream without token counts counts as one token.
	TokenGaps []time.Duration
	// TokensPerChunk holds the token count of every in-window chunk of the
	// streams whose counts are known (so that coalescing is never hidden).
	TokensPerChunk []int
	// ChunkGapStats and TokenGapStats summarize ChunkGaps and TokenGaps in
	// seconds.
	ChunkGapStats, TokenGapStats metrics.Summary
	// Streams has one entry per input stream, in input order.
	Streams []StreamWindow
}

// Selected returns the selected windows' segments, in time order.
func (r *Result) Selected() []Segment {
	out := make([]Segment, len(r.Windows))
	for i, w := range r.Windows {
		out[i] = w.Segment
	}
	return out
}

// Analyze finds the decode window of streams and takes the TBT samples
// inside it. It returns an error only for an invalid cfg.
func Analyze(streams []Stream, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Strategy == "" {
		cfg.Strategy = All
	}
	res := Result{Config: cfg, Total: len(streams), Skipped: map[string]int{}}

	res.Streams = make([]StreamWindow, len(streams))
	var eligible []int // indexes into streams
	for i, s := range streams {
		sw := StreamWindow{ID: s.ID, TokensKnown: len(s.TokensPerChunk) == len(s.Arrivals)}
		switch {
		case !slices.IsSorted(s.Arrivals):
			sw.Skipped = SkipUnordered
		case len(s.Arrivals) < 2 || s.Arrivals[len(s.Arrivals)-1] <= s.Arrivals[0]:
			sw.Skipped = SkipNoDecodeChunks
		default:
			sw.Decode = Segment{Start: s.Arrivals[0], End: s.Arrivals[len(s.Arrivals)-1]}
			eligible = append(eligible, i)
		}
		if sw.Skipped != "" {
			res.Skipped[sw.Skipped]++
		}
		res.Streams[i] = sw
	}
	res.Eligible = len(eligible)

	steps := activeSteps(res.Streams, eligible)
	for _, st := range steps {
		res.Peak = max(res.Peak, st.active)
	}
	res.Threshold = cfg.MinActive
	if res.Threshold == 0 {
		res.Threshold = max(res.Peak, 1)
	}
	res.Segments = segments(steps, res.Threshold)

	for i, seg := range selectSegments(res.Segments, cfg.Strategy) {
		w := Window{Index: i, Segment: seg}
		first := len(res.ChunkGaps)
		for _, si := range eligible {
			chunk, token, tpc := samples(streams[si], seg)
			res.ChunkGaps = append(res.ChunkGaps, chunk...)
			res.TokenGaps = append(res.TokenGaps, token...)
			res.TokensPerChunk = append(res.TokensPerChunk, tpc...)
			res.Streams[si].Samples += len(chunk)
		}
		w.ChunkGaps = len(res.ChunkGaps) - first
		w.Stats = metrics.Summarize(metrics.Seconds(res.ChunkGaps[first:]))
		res.Windows = append(res.Windows, w)
	}
	res.ChunkGapStats = metrics.Summarize(metrics.Seconds(res.ChunkGaps))
	res.TokenGapStats = metrics.Summarize(metrics.Seconds(res.TokenGaps))
	return res, nil
}

// step says that from time t until the next step's time, active requests
// were decoding.
type step struct {
	t      time.Duration
	active int
}

// activeSteps sweeps the decode intervals of the eligible streams and
// returns the number of active requests after each distinct event time.
// All events at one instant are applied together, so the order of starts
// and ends at equal times cannot matter: a count that holds for zero time
// never appears. The last step always has active 0.
func activeSteps(streams []StreamWindow, eligible []int) []step {
	type event struct {
		t     time.Duration
		delta int
	}
	events := make([]event, 0, 2*len(eligible))
	for _, i := range eligible {
		events = append(events, event{streams[i].Decode.Start, +1}, event{streams[i].Decode.End, -1})
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.t, b.t) })

	var steps []step
	active := 0
	for i := 0; i < len(events); {
		t := events[i].t
		for i < len(events) && events[i].t == t {
			active += events[i].delta
			i++
		}
		steps = append(steps, step{t: t, active: active})
	}
	return steps
}

// segments returns the maximal intervals where at least threshold requests
// were active. The original emitted one segment per pair of consecutive
// events; here consecutive qualifying pieces are merged.
func segments(steps []step, threshold int) []Segment {
	var segs []Segment
	for k := 0; k+1 < len(steps); k++ {
		if steps[k].active < threshold {
			continue
		}
		if n := len(segs); n > 0 && segs[n-1].End == steps[k].t {
			segs[n-1].End = steps[k+1].t
			continue
		}
		segs = append(segs, Segment{Start: steps[k].t, End: steps[k+1].t})
	}
	return segs
}

// selectSegments applies the strategy to segments, which are in time order
// and disjoint.
func selectSegments(segs []Segment, s Strategy) []Segment {
	if len(segs) == 0 {
		return nil
	}
	switch s {
	case First:
		return segs[:1]
	case Longest:
		best := 0
		for i, seg := range segs {
			if seg.Duration() > segs[best].Duration() {
				best = i
			}
		}
		return segs[best : best+1]
	default:
		return segs
	}
}

// samples returns the chunk gaps of s whose later chunk arrived inside seg,
// the matching per-token gaps, and the token counts of those chunks when
// known. s.Arrivals is sorted.
func samples(s Stream, seg Segment) (chunk, token []time.Duration, tpc []int) {
	known := len(s.TokensPerChunk) == len(s.Arrivals)
	j, _ := slices.BinarySearch(s.Arrivals, seg.Start) // first arrival >= Start
	j = max(j, 1)                                      // chunk 0 ends the TTFC, never a sample
	for ; j < len(s.Arrivals) && s.Arrivals[j] <= seg.End; j++ {
		gap := s.Arrivals[j] - s.Arrivals[j-1]
		chunk = append(chunk, gap)
		n := 1
		if known {
			n = max(s.TokensPerChunk[j], 1)
			tpc = append(tpc, s.TokensPerChunk[j])
		}
		for range n {
			token = append(token, gap/time.Duration(n))
		}
	}
	return chunk, token, tpc
}
