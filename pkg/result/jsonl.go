package result

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// wireRequest is the on-disk shape of a Request: one requests.jsonl line.
// Times are seconds from the run start. The key set is documented in
// README.md ("requests.jsonl") and is part of the product: add keys, never
// rename or remove them.
type wireRequest struct {
	Seq                int       `json:"seq"`
	Shard              *int      `json:"shard,omitempty"`
	Shards             int       `json:"shards,omitempty"`
	Warmup             bool      `json:"warmup"`
	TargetPromptTokens int       `json:"target_prompt_tokens"`
	PromptTokens       *int      `json:"prompt_tokens"`
	TargetOutputTokens int       `json:"target_output_tokens"`
	OutputTokens       int       `json:"output_tokens"`
	UsageReported      bool      `json:"usage_reported"`
	IntendedSendS      float64   `json:"intended_send_s"`
	SendS              float64   `json:"send_s"`
	HeadersS           *float64  `json:"headers_s"`
	FirstByteS         *float64  `json:"first_byte_s"`
	FirstTokenS        *float64  `json:"first_token_s"`
	TokenTimesS        []float64 `json:"token_times_s"`
	EndS               *float64  `json:"end_s"`
	TTFCS              *float64  `json:"ttfc_s"`
	E2ES               *float64  `json:"e2e_s"`
	TPOTS              *float64  `json:"tpot_s"`
	SendLagS           float64   `json:"send_lag_s"`
	TokensPerChunk     []int     `json:"tokens_per_chunk"`
	FinishReason       string    `json:"finish_reason"`
	HTTPStatus         int       `json:"http_status"`
	RetryAfterS        float64   `json:"retry_after_s,omitempty"`
	Error              *string   `json:"error"`
	ErrorClass         *string   `json:"error_class"`
}

// seconds converts an offset to seconds, keeping nanosecond precision.
func seconds(d time.Duration) float64 { return d.Seconds() }

// fromSeconds converts seconds back to an offset, rounding to the nanosecond.
func fromSeconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

func optSeconds(d time.Duration) *float64 {
	if d == 0 {
		return nil
	}
	s := seconds(d)
	return &s
}

func optDerived(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	s := seconds(d)
	return &s
}

// MarshalJSON writes the requests.jsonl form of r: times in seconds from the
// run start, null for events that did not happen.
func (r Request) MarshalJSON() ([]byte, error) {
	w := wireRequest{
		Seq:                r.Seq,
		Shards:             r.Shards,
		Warmup:             r.Warmup,
		TargetPromptTokens: r.TargetPromptTokens,
		TargetOutputTokens: r.TargetOutputTokens,
		OutputTokens:       r.OutputTokens,
		UsageReported:      r.UsageReported,
		IntendedSendS:      seconds(r.Intended),
		SendS:              seconds(r.Sent),
		HeadersS:           optSeconds(r.Headers),
		FirstByteS:         optSeconds(r.FirstByte),
		EndS:               optSeconds(r.End),
		SendLagS:           seconds(r.SendLag()),
		TokensPerChunk:     r.TokensPerChunk,
		FinishReason:       r.FinishReason,
		HTTPStatus:         r.HTTPStatus,
		RetryAfterS:        seconds(r.RetryAfter),
		TokenTimesS:        make([]float64, len(r.TokenTimes)),
	}
	if r.Shards > 0 {
		i := r.Shard
		w.Shard = &i
	}
	if r.UsageReported {
		n := r.PromptTokens
		w.PromptTokens = &n
	}
	for i, t := range r.TokenTimes {
		w.TokenTimesS[i] = seconds(t)
	}
	if len(r.TokenTimes) > 0 {
		first := seconds(r.TokenTimes[0])
		w.FirstTokenS = &first
	}
	w.TTFCS = optDerived(r.TTFC())
	w.E2ES = optDerived(r.E2E())
	w.TPOTS = optDerived(r.TPOT())
	if r.ErrClass != "" {
		e, c := r.Err, r.ErrClass
		w.Error, w.ErrorClass = &e, &c
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the requests.jsonl form written by MarshalJSON. Derived
// fields (ttfc_s, e2e_s, tpot_s, send_lag_s) are ignored: they are always
// recomputed from the timeline.
func (r *Request) UnmarshalJSON(data []byte) error {
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = Request{
		Seq:                w.Seq,
		Shards:             w.Shards,
		Warmup:             w.Warmup,
		TargetPromptTokens: w.TargetPromptTokens,
		TargetOutputTokens: w.TargetOutputTokens,
		OutputTokens:       w.OutputTokens,
		UsageReported:      w.UsageReported,
		Intended:           fromSeconds(w.IntendedSendS),
		Sent:               fromSeconds(w.SendS),
		TokensPerChunk:     w.TokensPerChunk,
		FinishReason:       w.FinishReason,
		HTTPStatus:         w.HTTPStatus,
		RetryAfter:         fromSeconds(w.RetryAfterS),
	}
	if w.Shard != nil {
		r.Shard = *w.Shard
	}
	if w.PromptTokens != nil {
		r.PromptTokens = *w.PromptTokens
	}
	if w.HeadersS != nil {
		r.Headers = fromSeconds(*w.HeadersS)
	}
	if w.FirstByteS != nil {
		r.FirstByte = fromSeconds(*w.FirstByteS)
	}
	if w.EndS != nil {
		r.End = fromSeconds(*w.EndS)
	}
	if len(w.TokenTimesS) > 0 {
		r.TokenTimes = make([]time.Duration, len(w.TokenTimesS))
		for i, s := range w.TokenTimesS {
			r.TokenTimes[i] = fromSeconds(s)
		}
	}
	if w.ErrorClass != nil {
		r.ErrClass = *w.ErrorClass
		if w.Error != nil {
			r.Err = *w.Error
		}
	}
	return nil
}

// WriteJSONL writes one JSON object per request, one per line, in the order given.
func WriteJSONL(w io.Writer, reqs []Request) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range reqs {
		if err := enc.Encode(reqs[i]); err != nil {
			return fmt.Errorf("encode request %d: %w", reqs[i].Seq, err)
		}
	}
	return bw.Flush()
}

// ReadJSONL reads requests written by WriteJSONL. Blank lines are skipped; a
// malformed line is an error naming its line number.
func ReadJSONL(r io.Reader) ([]Request, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	var out []Request
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var req Request
		if err := json.Unmarshal(b, &req); err != nil {
			return nil, fmt.Errorf("requests.jsonl line %d: %w", line, err)
		}
		out = append(out, req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read requests.jsonl: %w", err)
	}
	return out, nil
}
