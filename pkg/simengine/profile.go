package simengine

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// defaultProfile is the profile used when Options.Profile is empty.
const defaultProfile = "llama3-8b-h100"

//go:embed profiles/*.json
var embeddedProfiles embed.FS

// Profile describes one simulated deployment: its engine limits and the cost
// model that turns the work of an iteration into its duration. Profiles are
// data: the embedded ones live in profiles/*.json and LoadProfile reads the
// same format from a file.
type Profile struct {
	// Name identifies the profile; it is also the default served model id.
	Name string `json:"name"`
	// Description says what the profile models and where its numbers come from.
	Description string `json:"description,omitempty"`
	// ChunkSize is the token budget of one iteration (vLLM's
	// max_num_batched_tokens): decode tokens plus prefill chunk tokens.
	ChunkSize int `json:"chunk_size"`
	// MaxRunning is the most requests admitted at once (vLLM's max_num_seqs).
	MaxRunning int `json:"max_running"`
	// KVCacheTokens is the KV-cache capacity in tokens.
	KVCacheTokens int `json:"kv_cache_tokens"`
	// MaxModelLen is the model's context length in tokens (prompt + output).
	MaxModelLen int `json:"max_model_len"`
	// TokensPerChunk is the default number of tokens per SSE event (0 means 1).
	TokensPerChunk int `json:"tokens_per_chunk,omitempty"`
	// Jitter is the default relative jitter of iteration durations (0 = off).
	Jitter float64 `json:"jitter,omitempty"`
	// Cost is the iteration cost model.
	Cost CostModel `json:"cost"`
	// Fit, when set, says how the profile was fitted to a server's runs
	// (written by pkg/predict: sources, residuals, assumptions); the
	// engine does not read it.
	Fit json.RawMessage `json:"fit,omitempty"`
}

// CostModel gives the duration of one engine iteration from its shape:
//
//	T = Base + DecodeSeq·B + DecodeContext·C
//	  + [P > 0]·(PrefillBase + PrefillToken·(√(K² + P²) − K))
//	  + Σ over chunks i: PrefillSquare·pᵢ² + [pastᵢ > 0]·(PrefillPastChunk + PrefillPastPair·pᵢ·pastᵢ)
//
// where B is the number of decoding requests, C the sum of their cached
// context tokens, pᵢ and pastᵢ the tokens of prefill chunk i and the tokens of
// the same request already in the KV cache, P = Σ pᵢ, and K the knee. The
// √(K² + P²) − K term is a smooth roofline: below about K prefill tokens the
// weights' memory reads dominate and extra tokens are nearly free; far above it
// every token costs PrefillToken. pᵢ² is causal self-attention within a chunk
// and pᵢ·pastᵢ is attention to the cached part of the prompt.
type CostModel struct {
	// BaseMS is paid by every iteration, in milliseconds.
	BaseMS float64 `json:"base_ms"`
	// DecodeSeqUS is paid per decoding request, in microseconds.
	DecodeSeqUS float64 `json:"decode_seq_us"`
	// DecodeContextNS is paid per cached context token summed over the
	// decoding requests, in nanoseconds.
	DecodeContextNS float64 `json:"decode_context_ns"`
	// PrefillBaseMS is paid once by an iteration that has any prefill, in
	// milliseconds.
	PrefillBaseMS float64 `json:"prefill_base_ms"`
	// PrefillTokenUS is the cost per prefill token far above the knee, in
	// microseconds.
	PrefillTokenUS float64 `json:"prefill_token_us"`
	// PrefillKneeTokens is the knee K of the prefill roofline, in tokens.
	PrefillKneeTokens float64 `json:"prefill_knee_tokens"`
	// PrefillSquareNS is paid per squared token of each prefill chunk, in
	// nanoseconds.
	PrefillSquareNS float64 `json:"prefill_square_ns"`
	// PrefillPastChunkMS is paid per prefill chunk that attends to cached
	// tokens, in milliseconds.
	PrefillPastChunkMS float64 `json:"prefill_past_chunk_ms"`
	// PrefillPastPairNS is paid per (chunk token, cached token) pair, in
	// nanoseconds.
	PrefillPastPairNS float64 `json:"prefill_past_pair_ns"`
}

// Chunk is one request's share of an iteration's prefill.
type Chunk struct {
	// Tokens is the number of prompt tokens prefilled in this iteration.
	Tokens int `json:"tokens"`
	// Past is the number of the request's prompt tokens already in the KV
	// cache from earlier iterations.
	Past int `json:"past"`
}

// Shape is the work of one engine iteration, the input of the cost model.
type Shape struct {
	// Prefill holds one chunk per request being prefilled.
	Prefill []Chunk `json:"prefill,omitempty"`
	// DecodeBatch is the number of requests producing one token each.
	DecodeBatch int `json:"decode_batch"`
	// DecodeContextTokens is the sum of the decoding requests' cached
	// context tokens (prompt plus tokens generated before this step).
	DecodeContextTokens int `json:"decode_context_tokens"`
}

// PrefillTokens is the total number of prefill tokens in the shape.
func (s Shape) PrefillTokens() int {
	n := 0
	for _, c := range s.Prefill {
		n += c.Tokens
	}
	return n
}

// costFeatures is the number of coefficients of the cost model.
const costFeatures = 8

// features returns the cost model's regressors for shape s, in the order of
// CostModel.coefficients, with a given knee. Each feature is in natural units
// (requests, tokens, tokens², pairs); the matching coefficient is in ms.
func (s Shape) features(knee float64) [costFeatures]float64 {
	var f [costFeatures]float64
	f[0] = 1
	f[1] = float64(s.DecodeBatch)
	f[2] = float64(s.DecodeContextTokens)
	p := float64(s.PrefillTokens())
	if p > 0 {
		f[3] = 1
		f[4] = math.Hypot(knee, p) - knee
	}
	for _, c := range s.Prefill {
		t := float64(c.Tokens)
		f[5] += t * t
		if c.Past > 0 && c.Tokens > 0 {
			f[6]++
			f[7] += t * float64(c.Past)
		}
	}
	return f
}

// coefficients returns the model's coefficients in ms per feature unit, in
// the order of Shape.features.
func (m CostModel) coefficients() [costFeatures]float64 {
	return [costFeatures]float64{
		m.BaseMS,
		m.DecodeSeqUS * 1e-3,
		m.DecodeContextNS * 1e-6,
		m.PrefillBaseMS,
		m.PrefillTokenUS * 1e-3,
		m.PrefillSquareNS * 1e-6,
		m.PrefillPastChunkMS,
		m.PrefillPastPairNS * 1e-6,
	}
}

// costModelFrom builds a CostModel from coefficients in ms per feature unit.
func costModelFrom(c [costFeatures]float64, knee float64) CostModel {
	return CostModel{
		BaseMS:             c[0],
		DecodeSeqUS:        c[1] * 1e3,
		DecodeContextNS:    c[2] * 1e6,
		PrefillBaseMS:      c[3],
		PrefillTokenUS:     c[4] * 1e3,
		PrefillKneeTokens:  knee,
		PrefillSquareNS:    c[5] * 1e6,
		PrefillPastChunkMS: c[6],
		PrefillPastPairNS:  c[7] * 1e6,
	}
}

// millis is the model's prediction for shape s, in milliseconds.
func (m CostModel) millis(s Shape) float64 {
	f := s.features(m.PrefillKneeTokens)
	c := m.coefficients()
	ms := 0.0
	for i := range f {
		ms += f[i] * c[i]
	}
	return ms
}

// Duration is the modelled duration of an iteration of shape s.
func (p Profile) Duration(s Shape) time.Duration {
	return time.Duration(math.Round(p.Cost.millis(s) * 1e6))
}

// IterationTime is the duration of an iteration with one prefill chunk of
// prefillTokens tokens (prefillPast of them already cached) fused with
// decodeBatch decoding requests holding decodeContextTokens cached tokens in
// total. prefillTokens 0 gives a pure decode step.
func (p Profile) IterationTime(prefillTokens, prefillPast, decodeBatch, decodeContextTokens int) time.Duration {
	s := Shape{DecodeBatch: decodeBatch, DecodeContextTokens: decodeContextTokens}
	if prefillTokens > 0 {
		s.Prefill = []Chunk{{Tokens: prefillTokens, Past: prefillPast}}
	}
	return p.Duration(s)
}

// DecodeStepTime is the duration of a pure decode iteration of batch
// requests whose cached context tokens sum to contextTokensSum.
func (p Profile) DecodeStepTime(batch, contextTokensSum int) time.Duration {
	return p.IterationTime(0, 0, batch, contextTokensSum)
}

// LonePrefillTime is the sum of the prefill iterations of one request of
// promptTokens tokens alone in an engine with the given chunk size: the ideal
// time to its first token, without network or queueing.
func (p Profile) LonePrefillTime(promptTokens, chunkSize int) time.Duration {
	return p.PrefillTime(promptTokens, 0, chunkSize)
}

// PrefillTime is LonePrefillTime for a prompt whose first cachedTokens
// tokens were found in the prefix cache: only the others are computed, in
// chunks whose past starts at cachedTokens.
func (p Profile) PrefillTime(promptTokens, cachedTokens, chunkSize int) time.Duration {
	if chunkSize <= 0 {
		chunkSize = p.ChunkSize
	}
	var total time.Duration
	for done := cachedTokens; done < promptTokens; {
		n := min(chunkSize, promptTokens-done)
		total += p.IterationTime(n, done, 0, 0)
		done += n
	}
	return total
}

// Validate reports every problem with the profile, joined.
func (p Profile) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("profile: name is empty"))
	}
	positive := []struct {
		name string
		v    int
	}{
		{"chunk_size", p.ChunkSize},
		{"max_running", p.MaxRunning},
		{"kv_cache_tokens", p.KVCacheTokens},
		{"max_model_len", p.MaxModelLen},
	}
	for _, f := range positive {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("profile %q: %s %d is not positive", p.Name, f.name, f.v))
		}
	}
	if p.TokensPerChunk < 0 {
		errs = append(errs, fmt.Errorf("profile %q: tokens_per_chunk %d is negative", p.Name, p.TokensPerChunk))
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("profile %q: jitter %g is outside [0, 1)", p.Name, p.Jitter))
	}
	if !(p.Cost.BaseMS > 0) {
		errs = append(errs, fmt.Errorf("profile %q: cost.base_ms %g is not positive", p.Name, p.Cost.BaseMS))
	}
	c := p.Cost
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"decode_seq_us", c.DecodeSeqUS},
		{"decode_context_ns", c.DecodeContextNS},
		{"prefill_base_ms", c.PrefillBaseMS},
		{"prefill_token_us", c.PrefillTokenUS},
		{"prefill_knee_tokens", c.PrefillKneeTokens},
		{"prefill_square_ns", c.PrefillSquareNS},
		{"prefill_past_chunk_ms", c.PrefillPastChunkMS},
		{"prefill_past_pair_ns", c.PrefillPastPairNS},
	} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("profile %q: cost.%s %g is not a finite value >= 0", p.Name, f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// DefaultProfileName is the name of the profile used when none is given.
func DefaultProfileName() string { return defaultProfile }

// Profiles lists the names of the embedded profiles, sorted.
func Profiles() []string {
	entries, err := fs.ReadDir(embeddedProfiles, "profiles")
	if err != nil {
		return nil // cannot happen: the directory is embedded
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// LookupProfile returns the embedded profile called name.
func LookupProfile(name string) (Profile, error) {
	var data []byte
	err := fs.ErrNotExist
	if name != "" && !strings.ContainsAny(name, `/\`) {
		data, err = embeddedProfiles.ReadFile(path.Join("profiles", name+".json"))
	}
	if err != nil {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(Profiles(), ", "))
	}
	return parseProfile(data, name)
}

// LoadProfile reads a profile from a JSON file in the format of the embedded
// profiles. Unknown fields are an error, so typos do not pass silently.
func LoadProfile(file string) (Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Profile{}, fmt.Errorf("load profile: %w", err)
	}
	return parseProfile(data, file)
}

// ResolveProfile returns the embedded profile called nameOrFile, or, when no
// embedded profile has that name, the profile in the file at that path. An
// empty string gives the default profile.
func ResolveProfile(nameOrFile string) (Profile, error) {
	if nameOrFile == "" {
		nameOrFile = defaultProfile
	}
	if slices.Contains(Profiles(), nameOrFile) {
		return LookupProfile(nameOrFile)
	}
	if strings.HasSuffix(nameOrFile, ".json") || strings.ContainsAny(nameOrFile, `/\`) {
		return LoadProfile(nameOrFile)
	}
	return Profile{}, fmt.Errorf("unknown profile %q: not one of %s and not a .json file", nameOrFile, strings.Join(Profiles(), ", "))
}

func parseProfile(data []byte, source string) (Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("parse profile %s: %w", source, err)
	}
	if err := p.Validate(); err != nil {
		return Profile{}, fmt.Errorf("profile %s: %w", source, err)
	}
	return p, nil
}
