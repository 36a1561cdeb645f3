package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// IntList is a list flag that takes its values the way the seed documents
// them, space-separated after one flag (--input-lengths 128 256 512), and
// also comma-separated or repeated. A value given replaces the default.
type IntList []int

// Decode implements kong.MapperValue.
func (l *IntList) Decode(ctx *kong.DecodeContext) error {
	vals, err := decodeList(ctx, "integer list")
	if err != nil {
		return err
	}
	for _, v := range vals {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*l = append(*l, n)
	}
	return nil
}

// FloatList is IntList for numbers that may be fractional (request rates).
type FloatList []float64

// Decode implements kong.MapperValue.
func (l *FloatList) Decode(ctx *kong.DecodeContext) error {
	vals, err := decodeList(ctx, "number list")
	if err != nil {
		return err
	}
	for _, v := range vals {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*l = append(*l, f)
	}
	return nil
}

// decodeList takes the flag's value and every following token that looks
// like a number, splitting each on commas. The first value of this
// occurrence resets a default; later occurrences of the flag append.
func decodeList(ctx *kong.DecodeContext, what string) ([]string, error) {
	first, err := ctx.Scan.PopValue(what)
	if err != nil {
		return nil, err
	}
	raw := []string{first.String()}
	for {
		t := ctx.Scan.Peek()
		if t.IsEOL() || !t.IsValue() || !looksNumeric(t.String()) {
			break
		}
		ctx.Scan.Pop()
		raw = append(raw, t.String())
	}
	var out []string
	for _, r := range raw {
		for _, part := range strings.Split(r, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("expected at least one value")
	}
	return out, nil
}

// looksNumeric reports whether s is a list element (digits, sign, dot,
// commas), so that a positional argument after the list is left alone.
func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789.,+-eE", c) {
			return false
		}
	}
	return true
}

// Seconds is a duration flag that accepts a bare number of seconds (the
// seed's "--request-timeout 120") or a Go duration ("2m", "1m30s").
type Seconds time.Duration

// Decode implements kong.MapperValue.
func (s *Seconds) Decode(ctx *kong.DecodeContext) error {
	t, err := ctx.Scan.PopValue("duration")
	if err != nil {
		return err
	}
	v := t.String()
	if f, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// A float converted to a Duration past its range wraps around to
		// a negative number: refuse it instead of printing "-2562047h".
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= maxSeconds {
			return fmt.Errorf("%q seconds is out of range (at most %.0f, about 292 years)", v, maxSeconds)
		}
		*s = Seconds(time.Duration(f * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use seconds, e.g. 120, or 2m; at most about 292 years)", v)
	}
	*s = Seconds(d)
	return nil
}

// maxSeconds is the first number of seconds a time.Duration cannot hold.
const maxSeconds = float64(math.MaxInt64) / float64(time.Second)

// D returns the value as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// PathList is a list of paths given after one flag (--merge a b c), or
// with the flag repeated; it takes every following argument that is not
// a flag.
type PathList []string

// Decode implements kong.MapperValue.
func (l *PathList) Decode(ctx *kong.DecodeContext) error {
	first, err := ctx.Scan.PopValue("path")
	if err != nil {
		return err
	}
	*l = append(*l, first.String())
	for {
		t := ctx.Scan.Peek()
		if t.IsEOL() || !t.IsValue() || strings.HasPrefix(t.String(), "-") {
			return nil
		}
		ctx.Scan.Pop()
		*l = append(*l, t.String())
	}
}
