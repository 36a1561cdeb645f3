// Package sampler builds prompts of an exact length in the server's own
// tokens, each starting with a unique salt so that no two requests share a
// cacheable prefix, and the length patterns the benchmarks send (the stair
// of the prefill benchmark).
//
// A prompt is a sequence of single-token words: a salt of SaltWords words
// that encodes the run's nonce, the point and the request's sequence number
// (so it is unique within a run and, through the nonce, across runs), then
// body words drawn from a seeded generator. Because every word is one token,
// all prompts with the same number of words have the same length whatever
// their salt. Calibrate asks the server (its /tokenize endpoint, or a probe
// request reading usage.prompt_tokens, which also counts the chat template)
// how many tokens a given number of words makes, and searches for the word
// count that gives each requested length exactly.
package sampler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// SaltWords is the number of words at the start of every salted prompt. Eight
// words from a 256-word list carry 64 bits.
const SaltWords = 8

// calibrationPoint is the point number of calibration prompts; benchmark
// points are never negative, so calibration never shares a salt with a
// measured request.
const calibrationPoint = -1

// maxCalibrationRounds bounds the search for one length's word count.
const maxCalibrationRounds = 6

// CountFunc returns how many prompt tokens the server sees for text, chat
// template included when the benchmark uses the chat endpoint.
type CountFunc func(ctx context.Context, text string) (int, error)

// Config controls prompt content.
type Config struct {
	// Seed drives the body words. The same seed gives the same bodies.
	Seed uint64
	// Nonce is mixed into every salt so that two runs with the same seed do
	// not send identical prompts (a server's prefix cache would remember them).
	Nonce uint64
	// NoSalt turns the salt off: every prompt of a given length is then
	// identical, which lets a user measure a prefix cache on purpose.
	NoSalt bool
}

// Sampler makes exact-length prompts. Calibrate must have been called for a
// length before Prompt is asked for it. It is not safe for concurrent use.
type Sampler struct {
	cfg   Config
	count CountFunc
	words [256]string
	// wordsFor maps a target length in server tokens to the number of words
	// (salt included) that makes it.
	wordsFor map[int]int
	// overhead is tokens(w words) - w as last measured: the template's share.
	overhead int
	measured bool
}

// New returns a Sampler that measures prompt lengths with count.
func New(cfg Config, count CountFunc) *Sampler {
	return &Sampler{cfg: cfg, count: count, words: wordList(), wordsFor: map[int]int{}}
}

// ErrTooShort is returned by Calibrate for a length the server cannot be
// given: shorter than its template overhead plus the salt and one word.
var ErrTooShort = errors.New("input length too short")

// MinLength is the shortest length Calibrate can build once the overhead is
// known: template tokens, salt and one body word.
func (s *Sampler) MinLength() int {
	n := s.overhead + 1
	if !s.cfg.NoSalt {
		n += SaltWords
	}
	return n
}

// Overhead is the number of tokens the server adds to a prompt of plain
// words (chat template, BOS), as measured by Calibrate.
func (s *Sampler) Overhead() int { return s.overhead }

// Calibrate finds, for every length, the number of words that the server
// counts as exactly that many tokens. Lengths already calibrated are skipped.
func (s *Sampler) Calibrate(ctx context.Context, lengths []int) error {
	if !s.measured {
		probe := SaltWords + 8
		n, err := s.count(ctx, s.text(probe, calibrationPoint, 0))
		if err != nil {
			return fmt.Errorf("measure prompt overhead: %w", err)
		}
		s.overhead = n - probe
		s.measured = true
	}
	for _, target := range lengths {
		if _, ok := s.wordsFor[target]; ok {
			continue
		}
		if target < s.MinLength() {
			return fmt.Errorf("%w: %d tokens requested, the shortest possible prompt here is %d (server adds %d, salt takes %d, one word of text)",
				ErrTooShort, target, s.MinLength(), s.overhead, s.saltLen())
		}
		w, err := s.search(ctx, target)
		if err != nil {
			return err
		}
		s.wordsFor[target] = w
	}
	return nil
}

func (s *Sampler) saltLen() int {
	if s.cfg.NoSalt {
		return 0
	}
	return SaltWords
}

// search adjusts the word count until the server's count equals target.
func (s *Sampler) search(ctx context.Context, target int) (int, error) {
	w := target - s.overhead
	var got int
	for round := range maxCalibrationRounds {
		if w < s.saltLen()+1 {
			w = s.saltLen() + 1
		}
		n, err := s.count(ctx, s.text(w, calibrationPoint, target*maxCalibrationRounds+round+1))
		if err != nil {
			return 0, fmt.Errorf("measure a %d-token prompt: %w", target, err)
		}
		got = n
		if n == target {
			return w, nil
		}
		w += target - n
	}
	return 0, fmt.Errorf("cannot build a prompt of exactly %d tokens: the server counted %d for %d words after %d tries", target, got, w, maxCalibrationRounds)
}

// Words returns the calibrated word count for length, and whether it is known.
func (s *Sampler) Words(length int) (int, bool) {
	w, ok := s.wordsFor[length]
	return w, ok
}

// Prompt returns the prompt for one request: length is the target in server
// tokens (calibrated), point identifies the benchmark point (a stress level,
// a decode combination) and seq the request within the run. Different
// (point, seq) pairs get different salts.
func (s *Sampler) Prompt(length, point, seq int) (string, error) {
	w, ok := s.wordsFor[length]
	if !ok {
		return "", fmt.Errorf("prompt length %d was not calibrated", length)
	}
	return s.text(w, point, seq), nil
}

// CheckPrompt returns a calibrated prompt of length for checking the
// server outside the measurements (its salt is never a measured one's).
func (s *Sampler) CheckPrompt(length int) (string, error) {
	w, ok := s.wordsFor[length]
	if !ok {
		return "", fmt.Errorf("prompt length %d was not calibrated", length)
	}
	return s.text(w, calibrationPoint, -1), nil
}

// text builds a prompt of exactly w words.
func (s *Sampler) text(w, point, seq int) string {
	var b strings.Builder
	b.Grow(w * 7)
	salt := s.saltLen()
	if salt > 0 {
		key := mix(s.cfg.Nonce ^ mix(uint64(point)<<32^uint64(uint32(seq))))
		for i := range salt {
			s.writeWord(&b, s.words[byte(key>>(8*i))])
		}
	}
	// Bodies depend on the seed and length only when unsalted, so that a
	// user who turned the salt off gets identical prompts per length.
	bodySeed := s.cfg.Seed
	if salt > 0 {
		bodySeed ^= mix(uint64(point)<<32 ^ uint64(uint32(seq)) ^ 0x9e3779b97f4a7c15)
	}
	rng := rand.New(rand.NewPCG(bodySeed, uint64(w)))
	for range w - salt {
		s.writeWord(&b, s.words[rng.IntN(len(s.words))])
	}
	return b.String()
}

func (s *Sampler) writeWord(b *strings.Builder, word string) {
	b.WriteByte(' ')
	b.WriteString(word)
}

// mix is the splitmix64 finaliser: a cheap bijective hash, so distinct
// inputs give distinct salts.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Stair returns the prefill benchmark's length pattern: each length in the
// user's order, repeated samples times.
func Stair(lengths []int, samples int) []int {
	out := make([]int, 0, len(lengths)*samples)
	for _, l := range lengths {
		for range samples {
			out = append(out, l)
		}
	}
	return out
}

// MaxLength is the longest prompt accepted, in tokens: longer than any
// model's context today, and short enough that building the prompt cannot
// exhaust the client's memory.
const MaxLength = 1 << 21

// CheckLengths reports the problems with a list of prompt lengths given
// with flag: an empty list, and every length that is not positive or is
// longer than MaxLength.
func CheckLengths(flag string, lengths []int) []error {
	var errs []error
	if len(lengths) == 0 {
		errs = append(errs, fmt.Errorf("%s must list at least one length", flag))
	}
	for _, l := range lengths {
		switch {
		case l <= 0:
			errs = append(errs, fmt.Errorf("%s %d: lengths must be positive", flag, l))
		case l > MaxLength:
			errs = append(errs, fmt.Errorf("%s %d: longer than any model's context (at most %d tokens)", flag, l, MaxLength))
		}
	}
	return errs
}
