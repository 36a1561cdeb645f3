package fdlimit

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		l        Limit
		need     uint64
		wantSoft uint64
		wantOK   bool
	}{
		{"soft suffices", Limit{Soft: 1024, Hard: 4096}, 1000, 1024, true},
		{"raise within the hard limit", Limit{Soft: 256, Hard: 4096}, 2064, 2064, true},
		{"unlimited hard limit", Limit{Soft: 1024, Hard: Unlimited}, 100000, 100000, true},
		{"hard limit too low", Limit{Soft: 1024, Hard: 1024}, 2064, 1024, false},
	}
	for _, tt := range tests {
		soft, ok := decide(tt.l, tt.need)
		if soft != tt.wantSoft || ok != tt.wantOK {
			t.Errorf("%s: decide(%+v, %d) = %d, %v, want %d, %v", tt.name, tt.l, tt.need, soft, ok, tt.wantSoft, tt.wantOK)
		}
	}
}

// Ensure never lowers the limit and reports it; asking for what the
// process already has changes nothing.
func TestEnsureCurrent(t *testing.T) {
	t.Parallel()
	l, err := Get()
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	found, raised, err := Ensure(min(l.Soft, 64))
	if err != nil || raised || found != l {
		t.Errorf("Ensure(%d) = %+v, %v, %v; want %+v, false, nil", min(l.Soft, 64), found, raised, err, l)
	}
	if l.Hard != Unlimited {
		_, _, err = Ensure(l.Hard + 1)
		if tl := (*TooLowError)(nil); !errors.As(err, &tl) {
			t.Errorf("Ensure(hard+1) = %v, want a *TooLowError", err)
		}
	}
}

// childEnv makes the test binary run TestEnsureRaisesInChild's child part.
const childEnv = "FDLIMIT_TEST_CHILD"

// Ensure raises a soft limit below need up to need when the hard limit
// allows. The limit is the whole process's, so the test lowers it in a
// child process (the test binary run again), never in this one.
func TestEnsureRaisesInChild(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		l, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if err := setSoft(l, 100); err != nil {
			t.Fatal(err)
		}
		found, raised, err := Ensure(300)
		after, _ := Get()
		if err != nil || !raised || found.Soft != 100 || after.Soft != 300 || after.Hard != l.Hard {
			t.Fatalf("Ensure(300) with soft 100 = %+v, %v, %v; limit after %+v, want raised to 300", found, raised, err, after)
		}
		return
	}
	t.Parallel()
	l, err := Get()
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Hard < 300 {
		t.Skipf("hard limit %d is below 300", l.Hard)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureRaisesInChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestEnsureRaisesInChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
