package traffic

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

const ms = time.Millisecond

// gauge tracks how many sends are in flight and the most ever seen.
type gauge struct{ cur, peak atomic.Int64 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) exit() { g.cur.Add(-1) }

func TestPoissonArrivals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate  float64
		until time.Duration
	}{
		{rate: 10, until: 20000 * time.Second}, // 200,000 arrivals
		{rate: 0.5, until: 200000 * time.Second},
		{rate: 2000, until: 100 * time.Second},
	}
	for _, tc := range tests {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			got := PoissonArrivals(tc.rate, rand.New(rand.NewPCG(42, 7)), tc.until)
			again := PoissonArrivals(tc.rate, rand.New(rand.NewPCG(42, 7)), tc.until)
			if !slices.Equal(got, again) {
				t.Fatalf("PoissonArrivals(%v) differs between two runs with the same seed", tc.rate)
			}
			other := PoissonArrivals(tc.rate, rand.New(rand.NewPCG(43, 7)), tc.until)
			if slices.Equal(got, other) {
				t.Errorf("PoissonArrivals(%v) is the same for two seeds", tc.rate)
			}
			if len(got) == 0 || got[0] <= 0 || got[len(got)-1] >= tc.until || !slices.IsSorted(got) {
				t.Fatalf("PoissonArrivals(%v, %v): %d arrivals from %v to %v, want increasing, in (0, until)", tc.rate, tc.until, len(got), got[0], got[len(got)-1])
			}
			mean := 1 / tc.rate
			var sum float64
			long, prev := 0, time.Duration(0)
			for _, a := range got {
				g := (a - prev).Seconds()
				sum += g
				if g > 3*mean {
					long++
				}
				prev = a
			}
			n := float64(len(got))
			if m := sum / n; math.Abs(m-mean)/mean > 0.02 {
				t.Errorf("PoissonArrivals(%v): mean gap %v s, want %v s within 2%%", tc.rate, m, mean)
			}
			// Count over the interval: rate*until, within 4 standard deviations.
			want := tc.rate * tc.until.Seconds()
			if math.Abs(n-want) > 4*math.Sqrt(want) {
				t.Errorf("PoissonArrivals(%v): %v arrivals, want %v +- %v", tc.rate, n, want, 4*math.Sqrt(want))
			}
			// No clipping: P(gap > 3/rate) = e^-3 ~ 4.98 %.
			if f := float64(long) / n; f < 0.045 || f > 0.055 {
				t.Errorf("PoissonArrivals(%v): %.4f of gaps exceed 3/rate, want about e^-3 = 0.0498", tc.rate, f)
			}
		})
	}
}

func TestPoissonArrivalsDegenerate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 1))
	tests := []struct {
		rate  float64
		rng   *rand.Rand
		until time.Duration
	}{
		{0, rng, time.Second},
		{-1, rng, time.Second},
		{math.NaN(), rng, time.Second},
		{math.Inf(1), rng, time.Second},
		{1, nil, time.Second},
		{1, rng, 0},
	}
	for _, tc := range tests {
		if got := PoissonArrivals(tc.rate, tc.rng, tc.until); got != nil {
			t.Errorf("PoissonArrivals(%v, rng %v, %v) = %d arrivals, want nil", tc.rate, tc.rng != nil, tc.until, len(got))
		}
	}
}

// TestOpenSchedule runs Open on a fake clock (synctest): every send starts
// exactly at its arrival, even while earlier sends are blocked.
func TestOpenSchedule(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		began := time.Now()
		arrivals := PoissonArrivals(50, rand.New(rand.NewPCG(1, 2)), 2*time.Second)
		release := make(chan struct{})
		started := make([]time.Duration, len(arrivals))
		slots := make([]Slot, len(arrivals))
		var g gauge
		n := Open(t.Context(), began, arrivals, func(ctx context.Context, s Slot) {
			g.enter()
			defer g.exit()
			started[s.Index] = time.Since(began)
			slots[s.Index] = s
			if s.Index < 10 {
				<-release // the first ten never finish until the last arrival
			} else {
				time.Sleep(time.Second)
			}
			if s.Index == len(arrivals)-1 {
				close(release)
			}
		})
		if n != len(arrivals) {
			t.Fatalf("Open = %d, want %d", n, len(arrivals))
		}
		for i, a := range arrivals {
			if started[i] != a || slots[i].Intended != a || slots[i].Index != i {
				t.Errorf("arrival %d at %v: started %v with slot %+v, want at once, Intended %v", i, a, started[i], slots[i], a)
			}
		}
		if g.peak.Load() < 10 {
			t.Errorf("at most %d sends in flight, want the blocked ones and the later ones together", g.peak.Load())
		}
	})
}

func TestOpenCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		began := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 550*ms)
		defer cancel()
		arrivals := []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms, 700 * ms}
		n := Open(ctx, began, arrivals, func(ctx context.Context, _ Slot) {
			<-ctx.Done() // every send runs until the end
		})
		if n != 6 {
			t.Errorf("Open = %d, want 6 (arrivals before the cancel at 550ms)", n)
		}
		if got := time.Since(began); got != 550*ms {
			t.Errorf("Open returned at %v, want 550ms", got)
		}
	})
}

// TestOpenRealTime runs 200 arrivals over about one second on the real
// clock: no send starts before its time, and lateness stays small even
// though every tenth send blocks for half a second.
func TestOpenRealTime(t *testing.T) {
	t.Parallel()
	arrivals := make([]time.Duration, 200)
	for i := range arrivals {
		arrivals[i] = time.Duration(i) * 5 * ms
	}
	late := make([]time.Duration, len(arrivals))
	began := time.Now()
	n := Open(t.Context(), began, arrivals, func(ctx context.Context, s Slot) {
		late[s.Index] = time.Since(began) - s.Intended
		if s.Index%10 == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(500 * ms):
			}
		}
	})
	if n != len(arrivals) {
		t.Fatalf("Open = %d, want %d", n, len(arrivals))
	}
	for i, l := range late {
		if l < 0 {
			t.Errorf("send %d started %v before its arrival", i, -l)
		}
	}
	sorted := slices.Sorted(slices.Values(late))
	t.Logf("lateness over %d arrivals: median %v, max %v", len(sorted), sorted[len(sorted)/2], sorted[len(sorted)-1])
	// Generous bounds: the machine is shared and -race slows everything.
	if p50, worst := sorted[len(sorted)/2], sorted[len(sorted)-1]; p50 > 20*ms || worst > 300*ms {
		t.Errorf("lateness median %v, max %v, want <= 20ms and <= 300ms", p50, worst)
	}
	// Later arrivals were not pushed back: the schedule did not drift.
	if l := late[len(late)-1]; l > 100*ms {
		t.Errorf("last send %v late, want <= 100ms (no drift)", l)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		began := time.Now()
		var g gauge
		var mu sync.Mutex // test bookkeeping only
		var slots []Slot
		n := Closed(t.Context(), began, 4, time.Second, func(ctx context.Context, s Slot) {
			g.enter()
			defer g.exit()
			mu.Lock()
			slots = append(slots, s)
			mu.Unlock()
			// Client c's requests take 10ms * (c+1).
			time.Sleep(time.Duration(s.Client+1) * 10 * ms)
		})
		// Client c admits at 0, d, 2d, ... while < 1s with d = 10ms*(c+1):
		// 100 + 50 + 34 + 25 requests.
		if want := 100 + 50 + 34 + 25; n != want || len(slots) != want {
			t.Fatalf("Closed = %d with %d sends, want %d", n, len(slots), want)
		}
		if got := time.Since(began); got != 1020*ms {
			t.Errorf("Closed returned at %v, want 1.02s (client 2 admits at 990ms a 30ms request)", got)
		}
		if p := g.peak.Load(); p != 4 {
			t.Errorf("peak in flight = %d, want 4", p)
		}
		seen := make([]bool, n)
		perClient := map[int][]time.Duration{}
		for _, s := range slots {
			if s.Index < 0 || s.Index >= n || seen[s.Index] {
				t.Fatalf("Index %d repeated or out of [0, %d)", s.Index, n)
			}
			seen[s.Index] = true
			if s.Intended >= time.Second {
				t.Errorf("slot %+v admitted at or after admitUntil 1s", s)
			}
			perClient[s.Client] = append(perClient[s.Client], s.Intended)
		}
		for c, ts := range perClient {
			d := time.Duration(c+1) * 10 * ms
			for i, it := range ts {
				if it != time.Duration(i)*d {
					t.Errorf("client %d request %d intended at %v, want %v", c, i, it, time.Duration(i)*d)
				}
			}
		}
	})
}

// TestClosedRealTime checks Closed's concurrency bound on the real clock,
// with uneven request times.
func TestClosedRealTime(t *testing.T) {
	t.Parallel()
	var g gauge
	var maxIndex atomic.Int64
	began := time.Now()
	admitUntil := 150 * ms
	var lateAdmission atomic.Int64
	n := Closed(t.Context(), began, 8, admitUntil, func(ctx context.Context, s Slot) {
		g.enter()
		defer g.exit()
		if s.Intended >= admitUntil {
			lateAdmission.Add(1)
		}
		for {
			m := maxIndex.Load()
			if int64(s.Index) <= m || maxIndex.CompareAndSwap(m, int64(s.Index)) {
				break
			}
		}
		time.Sleep(time.Duration(1+s.Index%5) * ms)
	})
	if p := g.peak.Load(); p > 8 || p < 1 {
		t.Errorf("peak in flight = %d, want 1..8", p)
	}
	if lateAdmission.Load() != 0 {
		t.Errorf("%d requests admitted at or after admitUntil", lateAdmission.Load())
	}
	if n < 8 || int64(n-1) != maxIndex.Load() {
		t.Errorf("Closed = %d with highest Index %d, want >= 8 and n-1", n, maxIndex.Load())
	}
}

func TestSequential(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		began := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 35*ms)
		defer cancel()
		var g gauge
		var slots []Slot
		n := Sequential(ctx, began, 10, func(ctx context.Context, s Slot) {
			g.enter()
			defer g.exit()
			slots = append(slots, s)
			time.Sleep(10 * ms)
		})
		// Requests at 0, 10, 20, 30; at 40 ctx is done.
		if n != 4 {
			t.Errorf("Sequential = %d, want 4", n)
		}
		for i, s := range slots {
			if s.Index != i || s.Intended != time.Duration(i)*10*ms {
				t.Errorf("slot %d = %+v, want Index %d, Intended %v", i, s, i, time.Duration(i)*10*ms)
			}
		}
		if p := g.peak.Load(); p != 1 {
			t.Errorf("peak in flight = %d, want 1", p)
		}
	})
}

// TestSequentialLaunch checks each way a ticket is released, on a fake
// clock: the release times are exact.
func TestSequentialLaunch(t *testing.T) {
	t.Parallel()
	const n = 5
	tests := []struct {
		name    string
		timeout time.Duration
		// send behaves as request k does; it may block until hold is closed.
		send func(ctx context.Context, s Slot, accepted func(), hold <-chan struct{})
		// wantStep is the expected time between consecutive releases.
		wantStep time.Duration
	}{
		{
			name:    "released on accept",
			timeout: time.Hour,
			send: func(ctx context.Context, s Slot, accepted func(), hold <-chan struct{}) {
				time.Sleep(7 * ms) // response headers
				accepted()
				accepted() // a second call is harmless
				<-hold     // streams until the whole batch is in flight
			},
			wantStep: 7 * ms,
		},
		{
			name:    "released on failure without accept",
			timeout: time.Hour,
			send: func(ctx context.Context, s Slot, accepted func(), hold <-chan struct{}) {
				time.Sleep(3 * ms) // connection refused
			},
			wantStep: 3 * ms,
		},
		{
			name:    "released by the ticket timeout",
			timeout: 20 * ms,
			send: func(ctx context.Context, s Slot, accepted func(), hold <-chan struct{}) {
				<-hold // a server that never answers
			},
			wantStep: 20 * ms,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				began := time.Now()
				hold := make(chan struct{})
				var g gauge
				var started atomic.Int64
				slots := make([]Slot, n)
				order := make([]int, 0, n)
				var mu sync.Mutex // test bookkeeping only
				got := SequentialLaunch(t.Context(), began, n, tc.timeout, func(ctx context.Context, s Slot, accepted func()) {
					g.enter()
					defer g.exit()
					mu.Lock()
					order = append(order, s.Index)
					slots[s.Index] = s
					mu.Unlock()
					if started.Add(1) == n {
						close(hold)
					}
					tc.send(ctx, s, accepted, hold)
				})
				if got != n {
					t.Fatalf("SequentialLaunch = %d, want %d", got, n)
				}
				if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
					t.Errorf("sends started in order %v, want 0..4", order)
				}
				for k, s := range slots {
					if want := time.Duration(k) * tc.wantStep; s.Intended != want {
						t.Errorf("request %d released at %v, want %v", k, s.Intended, want)
					}
				}
			})
		})
	}
}

// TestSequentialLaunchAllInFlight: requests that accept at once and then
// stream are all in flight together.
func TestSequentialLaunchAllInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		n := SequentialLaunch(t.Context(), time.Now(), 8, time.Hour, func(ctx context.Context, s Slot, accepted func()) {
			g.enter()
			defer g.exit()
			accepted()
			time.Sleep(time.Second)
		})
		if n != 8 || g.peak.Load() != 8 {
			t.Errorf("SequentialLaunch = %d with peak %d in flight, want 8 and 8", n, g.peak.Load())
		}
	})
}

// TestCancel: with every send blocked until ctx is done, each pattern
// returns promptly once ctx is canceled, on the real clock.
func TestCancel(t *testing.T) {
	t.Parallel()
	block := func(ctx context.Context, _ Slot) { <-ctx.Done() }
	tests := []struct {
		name string
		run  func(ctx context.Context, began time.Time) int
		want int
	}{
		{"sequential", func(ctx context.Context, b time.Time) int { return Sequential(ctx, b, 100, block) }, 1},
		{"closed", func(ctx context.Context, b time.Time) int { return Closed(ctx, b, 3, time.Hour, block) }, 3},
		{"open", func(ctx context.Context, b time.Time) int {
			return Open(ctx, b, []time.Duration{0, 10 * ms, time.Hour}, block)
		}, 2},
		{"sequential launch", func(ctx context.Context, b time.Time) int {
			return SequentialLaunch(ctx, b, 100, 0, func(ctx context.Context, s Slot, _ func()) { block(ctx, s) })
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 100*ms)
			defer cancel()
			began := time.Now()
			n := tc.run(ctx, began)
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("returned %v after the start, want soon after the cancel at 100ms", took)
			}
			if n != tc.want {
				t.Errorf("admitted %d, want %d", n, tc.want)
			}
		})
	}
}
