package session

import "testing"

func TestOpenFilesNeeded(t *testing.T) {
	for _, tc := range []struct {
		conns    int
		inProc   bool
		wantNeed uint64
	}{
		{300, false, 300 + 75 + 64},
		{300, true, 2*(300+75) + 64},
		{1, false, 1 + 64},
		{0, false, 1 + 64},
	} {
		if got := OpenFilesNeeded(tc.conns, tc.inProc); got != tc.wantNeed {
			t.Errorf("OpenFilesNeeded(%d, %v) = %d, want %d", tc.conns, tc.inProc, got, tc.wantNeed)
		}
	}
}

func TestEnsureOpenFilesWithinLimit(t *testing.T) {
	f, err := EnsureOpenFiles(1, false)
	if err != nil {
		t.Fatalf("EnsureOpenFiles(1): %v", err)
	}
	if f.Need != 65 {
		t.Errorf("Need = %d, want 65", f.Need)
	}
}
