package validate

import "testing"

func TestReport(t *testing.T) {
	t.Parallel()
	var r Report
	r.Add("session_count", "", Pass, "%d requests", 6)
	r.Add("fcfs_order", "bs=2,il=128", Warn, "%d out-of-order first tokens", 1)
	if r.Failed() {
		t.Fatalf("Failed() = true with no FAIL check")
	}
	r.Add("no_errors", "c=4", Fail, "%d of %d requests failed", 1, 10)
	if !r.Failed() {
		t.Fatalf("Failed() = false with a FAIL check")
	}
	if got, want := r.Summary(), "1 passed, 1 warnings, 1 failures"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got, want := r.Checks[1].Title(), "fcfs_order [bs=2,il=128]"; got != want {
		t.Errorf("Title() = %q, want %q", got, want)
	}
	if got, want := r.Checks[0].Title(), "session_count"; got != want {
		t.Errorf("Title() = %q, want %q", got, want)
	}
}
