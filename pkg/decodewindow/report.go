package decodewindow

import (
	"encoding/json"
	"fmt"

	"github.com/veeksha-go/veeksha/pkg/metrics"
)

// Stats is a metrics.Summary that marshals to {"count": 0} alone when the
// sample is empty, so that no meaningless zero statistic is ever written.
type Stats metrics.Summary

// MarshalJSON writes every field when Count > 0, else only the count.
func (s Stats) MarshalJSON() ([]byte, error) {
	if s.Count == 0 {
		return []byte(`{"count":0}`), nil
	}
	return json.Marshal(metrics.Summary(s))
}

// File is the decode_window.json form of a Result. Keys ending in _s are
// seconds from the run start, or durations in seconds.
type File struct {
	Config FileConfig `json:"config"`
	// PeakActiveRequests is Result.Peak: how many requests really decoded
	// together. Compare it with the batch size that was sent.
	PeakActiveRequests int            `json:"peak_active_requests"`
	EligibleRequests   Eligibility    `json:"eligible_requests"`
	Windows            WindowList     `json:"windows"`
	TBTInWindow        Stats          `json:"tbt_in_window_stats_s"`
	TBTPerTokenWindow  Stats          `json:"tbt_per_token_in_window_stats_s"`
	TokensPerChunk     *Stats         `json:"tokens_per_chunk_in_window_stats,omitempty"`
	Requests           []RequestEntry `json:"requests"`
	Notes              []string       `json:"notes"`
}

// FileConfig echoes the configuration and the resolved threshold.
type FileConfig struct {
	// MinActiveRequests is the configured threshold; 0 means max observed.
	MinActiveRequests int  `json:"min_active_requests"`
	MaxObserved       bool `json:"max_observed"`
	// ResolvedMinActiveRequests is the threshold actually used.
	ResolvedMinActiveRequests int      `json:"resolved_min_active_requests"`
	SelectionStrategy         Strategy `json:"selection_strategy"`
}

// Eligibility counts the requests used and those left out, by reason.
type Eligibility struct {
	TotalRequests int            `json:"total_requests"`
	Eligible      int            `json:"eligible"`
	Skipped       map[string]int `json:"skipped"`
}

// WindowList describes the candidate segments and the selected windows.
type WindowList struct {
	NumCandidateSegments int           `json:"num_candidate_segments"`
	NumSelectedSegments  int           `json:"num_selected_segments"`
	TotalDurationS       float64       `json:"total_duration_s"`
	PerWindow            []WindowEntry `json:"per_window"`
}

// WindowEntry is one selected window: its bounds in seconds from the run
// start, and its chunk-gap statistics in seconds.
type WindowEntry struct {
	WindowIndex int     `json:"window_index"`
	StartS      float64 `json:"start_s"`
	EndS        float64 `json:"end_s"`
	DurationS   float64 `json:"duration_s"`
	TBTCount    int     `json:"tbt_count"`
	TBTStats    Stats   `json:"tbt_stats_s"`
}

// RequestEntry is one request's decode interval and in-window sample count.
type RequestEntry struct {
	ID int `json:"id"`
	// Skipped is the reason the request was left out; empty when eligible.
	Skipped string `json:"skipped,omitempty"`
	// DecodeStartS and DecodeEndS bound its decode interval (first and last
	// content chunk), in seconds from the run start; omitted when skipped.
	DecodeStartS *float64 `json:"decode_start_s,omitempty"`
	DecodeEndS   *float64 `json:"decode_end_s,omitempty"`
	// InWindowSamples is the number of its chunk gaps inside the windows.
	InWindowSamples     int  `json:"in_window_samples"`
	TokensPerChunkKnown bool `json:"tokens_per_chunk_known"`
}

// File builds the decode_window.json form of r.
func (r *Result) File() File {
	rep := File{
		Config: FileConfig{
			MinActiveRequests:         r.Config.MinActive,
			MaxObserved:               r.Config.MinActive == 0,
			ResolvedMinActiveRequests: r.Threshold,
			SelectionStrategy:         r.Config.Strategy,
		},
		PeakActiveRequests: r.Peak,
		EligibleRequests: Eligibility{
			TotalRequests: r.Total,
			Eligible:      r.Eligible,
			Skipped:       map[string]int{SkipNoDecodeChunks: 0, SkipUnordered: 0},
		},
		Windows: WindowList{
			NumCandidateSegments: len(r.Segments),
			NumSelectedSegments:  len(r.Windows),
			PerWindow:            []WindowEntry{},
		},
		TBTInWindow:       Stats(r.ChunkGapStats),
		TBTPerTokenWindow: Stats(r.TokenGapStats),
		Requests:          make([]RequestEntry, 0, len(r.Streams)),
	}
	for reason, n := range r.Skipped {
		rep.EligibleRequests.Skipped[reason] = n
	}
	for _, w := range r.Windows {
		rep.Windows.TotalDurationS += w.Duration().Seconds()
		rep.Windows.PerWindow = append(rep.Windows.PerWindow, WindowEntry{
			WindowIndex: w.Index,
			StartS:      w.Start.Seconds(),
			EndS:        w.End.Seconds(),
			DurationS:   w.Duration().Seconds(),
			TBTCount:    w.ChunkGaps,
			TBTStats:    Stats(w.Stats),
		})
	}
	known := 0
	for _, s := range r.Streams {
		rr := RequestEntry{ID: s.ID, Skipped: s.Skipped, InWindowSamples: s.Samples, TokensPerChunkKnown: s.TokensKnown}
		if s.Skipped == "" {
			start, end := s.Decode.Start.Seconds(), s.Decode.End.Seconds()
			rr.DecodeStartS, rr.DecodeEndS = &start, &end
			if s.TokensKnown {
				known++
			}
		}
		rep.Requests = append(rep.Requests, rr)
	}
	if len(r.TokensPerChunk) > 0 {
		tpc := make([]float64, len(r.TokensPerChunk))
		for i, n := range r.TokensPerChunk {
			tpc[i] = float64(n)
		}
		st := Stats(metrics.Summarize(tpc))
		rep.TokensPerChunk = &st
	}
	rep.Notes = r.notes(known)
	return rep
}

// MarshalJSON writes r as its Report.
func (r Result) MarshalJSON() ([]byte, error) { return json.Marshal(r.File()) }

func (r *Result) notes(tokensKnown int) []string {
	notes := []string{
		"a request decodes from its first content chunk to its last; the decode window is the time during which at least resolved_min_active_requests requests were decoding at once",
		"max_observed: the threshold is the peak number of requests that decoded together for a positive length of time",
		"samples are gaps between consecutive content chunks of one request whose later chunk arrived inside a selected window (both ends inclusive); the time to first chunk is never a sample",
		"adjacent qualifying segments are merged, so no chunk is counted twice",
	}
	if r.Eligible == 0 {
		notes = append(notes, "no request had two content chunks at different times: there is no decode window")
	} else if len(r.Windows) == 0 {
		notes = append(notes, fmt.Sprintf("no time had %d requests decoding at once: there is no decode window", r.Threshold))
	}
	if tokensKnown < r.Eligible {
		notes = append(notes, fmt.Sprintf("tokens per chunk unknown for %d of %d eligible requests: their chunks count as one token each in the per-token gaps", r.Eligible-tokensKnown, r.Eligible))
	}
	return notes
}
