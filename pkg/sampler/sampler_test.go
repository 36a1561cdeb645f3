package sampler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// wordCounter counts whitespace-separated words plus a fixed overhead, the
// way a server with a chat template counts single-token words.
func wordCounter(overhead int) (CountFunc, *int) {
	calls := 0
	return func(_ context.Context, text string) (int, error) {
		calls++
		return len(strings.Fields(text)) + overhead, nil
	}, &calls
}

func TestCalibrateExactLengths(t *testing.T) {
	t.Parallel()
	count, _ := wordCounter(10)
	s := New(Config{Seed: 42, Nonce: 7}, count)
	lengths := []int{128, 19, 2048}
	if err := s.Calibrate(t.Context(), lengths); err != nil {
		t.Fatalf("Calibrate(%v): %v", lengths, err)
	}
	for _, l := range lengths {
		for seq := range 3 {
			p, err := s.Prompt(l, 2, seq)
			if err != nil {
				t.Fatalf("Prompt(%d): %v", l, err)
			}
			if got, _ := count(t.Context(), p); got != l {
				t.Errorf("Prompt(%d, 2, %d) counts %d tokens, want %d", l, seq, got, l)
			}
		}
	}
	if got := s.Overhead(); got != 10 {
		t.Errorf("Overhead() = %d, want 10", got)
	}
}

// A server whose template adds tokens that depend on length (here one extra
// token per 100 words) still gets exact prompts: the search corrects itself.
func TestCalibrateNonlinearCounter(t *testing.T) {
	t.Parallel()
	count := func(_ context.Context, text string) (int, error) {
		w := len(strings.Fields(text))
		return w + 5 + w/100, nil
	}
	s := New(Config{Seed: 1}, count)
	for _, l := range []int{64, 500, 3000} {
		if err := s.Calibrate(t.Context(), []int{l}); err != nil {
			t.Fatalf("Calibrate(%d): %v", l, err)
		}
		p, _ := s.Prompt(l, 0, 0)
		if got, _ := count(t.Context(), p); got != l {
			t.Errorf("Prompt(%d) counts %d", l, got)
		}
	}
}

func TestCalibrateErrors(t *testing.T) {
	t.Parallel()
	count, _ := wordCounter(10)
	s := New(Config{}, count)
	err := s.Calibrate(t.Context(), []int{12})
	if !errors.Is(err, ErrTooShort) {
		t.Fatalf("Calibrate(12) with overhead 10 = %v, want ErrTooShort", err)
	}
	if !strings.Contains(err.Error(), "shortest possible prompt here is 19") {
		t.Errorf("error %q does not name the shortest length", err)
	}

	boom := errors.New("connection refused")
	s = New(Config{}, func(context.Context, string) (int, error) { return 0, boom })
	if err := s.Calibrate(t.Context(), []int{100}); !errors.Is(err, boom) {
		t.Errorf("Calibrate with a failing counter = %v, want it wrapped", err)
	}

	// A counter that never lands on the target: every word is two tokens.
	s = New(Config{}, func(_ context.Context, text string) (int, error) { return 2 * len(strings.Fields(text)), nil })
	if err := s.Calibrate(t.Context(), []int{101}); err == nil || !strings.Contains(err.Error(), "exactly 101 tokens") {
		t.Errorf("Calibrate(101) with 2-token words = %v, want an exactness error", err)
	}

	if _, err := New(Config{}, nil).Prompt(64, 0, 0); err == nil {
		t.Errorf("Prompt before Calibrate gave no error")
	}
}

func TestSaltsAreUniqueAndBodiesVary(t *testing.T) {
	t.Parallel()
	count, _ := wordCounter(0)
	s := New(Config{Seed: 42, Nonce: 99}, count)
	if err := s.Calibrate(t.Context(), []int{64}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for point := range 20 {
		for seq := range 200 {
			p, _ := s.Prompt(64, point, seq)
			prefix := strings.Join(strings.Fields(p)[:SaltWords], " ")
			if seen[prefix] {
				t.Fatalf("salt %q repeats at point %d seq %d", prefix, point, seq)
			}
			seen[prefix] = true
		}
	}
	// Same inputs, same prompt: runs are reproducible for a given nonce.
	a, _ := s.Prompt(64, 3, 5)
	b, _ := s.Prompt(64, 3, 5)
	if a != b {
		t.Errorf("Prompt is not deterministic")
	}
	// Another nonce changes the salt.
	s2 := New(Config{Seed: 42, Nonce: 100}, count)
	_ = s2.Calibrate(t.Context(), []int{64})
	c, _ := s2.Prompt(64, 3, 5)
	if a == c {
		t.Errorf("different nonces gave the same prompt")
	}
}

func TestNoSaltGivesIdenticalPrompts(t *testing.T) {
	t.Parallel()
	count, _ := wordCounter(3)
	s := New(Config{Seed: 42, NoSalt: true}, count)
	if err := s.Calibrate(t.Context(), []int{50}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Prompt(50, 0, 0)
	b, _ := s.Prompt(50, 4, 17)
	if a != b {
		t.Errorf("unsalted prompts differ:\n%s\n%s", a, b)
	}
	if got, _ := count(t.Context(), a); got != 50 {
		t.Errorf("unsalted prompt counts %d, want 50", got)
	}
	if got := s.MinLength(); got != 4 {
		t.Errorf("MinLength() without salt = %d, want 4", got)
	}
}

func TestCalibrationNeverSharesAMeasuredSalt(t *testing.T) {
	t.Parallel()
	var probes []string
	count := func(_ context.Context, text string) (int, error) {
		probes = append(probes, text)
		return len(strings.Fields(text)), nil
	}
	s := New(Config{Seed: 42}, count)
	if err := s.Calibrate(t.Context(), []int{40}); err != nil {
		t.Fatal(err)
	}
	for seq := range 50 {
		p, _ := s.Prompt(40, 0, seq)
		salt := strings.Fields(p)[:SaltWords]
		for _, probe := range probes {
			if slices.Equal(strings.Fields(probe)[:SaltWords], salt) {
				t.Fatalf("request %d shares its salt with a calibration probe", seq)
			}
		}
	}
}

func TestWordListIsDistinctAndShort(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, w := range wordList() {
		if w == "" || len(w) > 7 || strings.ToLower(w) != w || seen[w] {
			t.Errorf("word %q is empty, long, not lowercase or repeated", w)
		}
		seen[w] = true
	}
}

func TestStair(t *testing.T) {
	t.Parallel()
	got := Stair([]int{512, 128}, 3)
	want := []int{512, 512, 512, 128, 128, 128}
	if !slices.Equal(got, want) {
		t.Errorf("Stair([512 128], 3) = %v, want %v", got, want)
	}
}

func BenchmarkPrompt2048(b *testing.B) {
	count, _ := wordCounter(10)
	s := New(Config{Seed: 42}, count)
	if err := s.Calibrate(context.Background(), []int{2048}); err != nil {
		b.Fatal(err)
	}
	seq := 0
	for b.Loop() {
		seq++
		if _, err := s.Prompt(2048, 0, seq); err != nil {
			b.Fatal(err)
		}
	}
}
