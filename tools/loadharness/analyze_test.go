package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestParseStamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		data   string
		want   int64
		wantOK bool
	}{
		{"last field", `{"choices":[{"index":0}],"sim_sent_unix_ns":1764000000123456789}`, 1764000000123456789, true},
		{"trailing newline", "{\"sim_sent_unix_ns\":42}\n", 42, true},
		{"missing", `{"choices":[]}`, 0, false},
		{"not a number", `{"sim_sent_unix_ns":null}`, 0, false},
		{"too many digits", `{"sim_sent_unix_ns":12345678901234567890}`, 0, false},
		{"largest int64", `{"sim_sent_unix_ns":9223372036854775807}`, math.MaxInt64, true},
		{"past int64", `{"sim_sent_unix_ns":9223372036854775808}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseStamp([]byte(tt.data))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseStamp(%q) = %d, %v, want %d, %v", tt.data, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestStreamRecordAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		capacity  int
		events    []string
		wantSent  []int64
		wantChunk int
		wantNo    int
		wantOver  int
	}{
		{
			name:     "content kept, usage-only and [DONE] ignored",
			capacity: 4,
			events: []string{
				`{"choices":[{"delta":{"content":" tok0"}}],"sim_sent_unix_ns":10}`,
				` {"choices":[{"delta":{"content":" tok1"}}],"usage":{},"sim_sent_unix_ns":20}`,
				`{"choices":[],"usage":{},"sim_sent_unix_ns":30}`,
				`[DONE]`,
			},
			wantSent: []int64{10, 20}, wantChunk: 2,
		},
		{
			name:      "content without stamp is counted, not kept",
			capacity:  4,
			events:    []string{`{"choices":[{"delta":{"content":"a"}}]}`},
			wantChunk: 1, wantNo: 1,
		},
		{
			name:     "past the capacity",
			capacity: 1,
			events: []string{
				`{"choices":[{}],"sim_sent_unix_ns":1}`,
				`{"choices":[{}],"sim_sent_unix_ns":2}`,
			},
			wantSent: []int64{1}, wantChunk: 2, wantOver: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRecords(1, tt.capacity)[0]
			for i, e := range tt.events {
				r.add(int64(100+i), []byte(e))
			}
			var sent []int64
			for _, s := range r.samples {
				sent = append(sent, s.sent)
				if s.arrived < 100 {
					t.Errorf("sample %+v: arrival not recorded", s)
				}
			}
			if !slices.Equal(sent, tt.wantSent) {
				t.Errorf("stamps kept = %v, want %v", sent, tt.wantSent)
			}
			if r.chunks != tt.wantChunk || r.noStamp != tt.wantNo || r.overflow != tt.wantOver {
				t.Errorf("chunks, noStamp, overflow = %d, %d, %d, want %d, %d, %d",
					r.chunks, r.noStamp, r.overflow, tt.wantChunk, tt.wantNo, tt.wantOver)
			}
		})
	}
}

func TestGridLateness(t *testing.T) {
	t.Parallel()
	const gap = 10 * time.Millisecond
	// grid builds stamps t0 + i·gap + late[i].
	grid := func(t0 int64, late ...int64) []sample {
		s := make([]sample, len(late))
		for i, l := range late {
			s[i].sent = t0 + int64(i)*int64(gap) + l
		}
		return s
	}
	tests := []struct {
		name string
		s    []sample
		want []int64
	}{
		{"perfect grid", grid(5e9, 0, 0, 0), []int64{0, 0, 0}},
		{"constant offset is absorbed in t0", grid(5e9, 300, 300, 300), []int64{0, 0, 0}},
		{"relative to the least late chunk", grid(5e9, 200, 50, 1000, 50), []int64{150, 0, 950, 0}},
		{"a late burst", grid(0, 0, int64(25*time.Millisecond), int64(15*time.Millisecond), 0), []int64{0, 25e6, 15e6, 0}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := gridLateness(tt.s, gap, nil); !slices.Equal(got, tt.want) {
				t.Errorf("gridLateness(%v) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

// stream returns a record whose chunks were sent at the given times.
func stream(sent ...int64) streamRecord {
	r := streamRecord{}
	for _, s := range sent {
		r.samples = append(r.samples, sample{sent: s, arrived: s + 100})
	}
	return r
}

func TestSteadyWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		recs   []streamRecord
		settle time.Duration
		want   window
		wantOK bool
	}{
		{
			name:   "last first chunk plus settle to first last chunk",
			recs:   []streamRecord{stream(100, 200, 300, 900), stream(150, 250, 700), {}},
			settle: 10,
			want:   window{start: 160, end: 700}, wantOK: true,
		},
		{
			name:   "settle past the end",
			recs:   []streamRecord{stream(100, 200), stream(150, 250)},
			settle: 100,
			want:   window{start: 250, end: 200},
		},
		{name: "no chunks", recs: []streamRecord{{}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := steadyWindow(tt.recs, tt.settle)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("steadyWindow = %+v, %v, want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	const gap = 100
	recs := []streamRecord{
		stream(0, 100, 230, 300),                               // lateness 0, 0, 30, 0
		stream(50, 150, 250, 350),                              // on the grid
		{samples: stream(10, 110).samples, errClass: "stream"}, // failed: lag only
	}
	recs[1].samples[2].arrived += 900 // lag 1000 ns instead of 100
	st := split(recs, gap, window{start: 100, end: 250})
	wantSteadyLag := []float64{100e-6, 100e-6, 100e-6, 1000e-6, 100e-6}
	wantBurstLag := []float64{100e-6, 100e-6, 100e-6, 100e-6, 100e-6}
	wantSteadyLate := []float64{0, 30e-6, 0, 0}
	for _, c := range []struct {
		name      string
		got, want []float64
	}{
		{"steady lag", st.steadyLag, wantSteadyLag},
		{"burst lag", st.burstLag, wantBurstLag},
		{"steady lateness", st.steadyLate, wantSteadyLate},
	} {
		if !slices.EqualFunc(c.got, c.want, func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }) {
			t.Errorf("split: %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(st.allLate) != 8 {
		t.Errorf("split: %d lateness values, want 8 (the failed stream has none)", len(st.allLate))
	}
}

func TestCPUCores(t *testing.T) {
	t.Parallel()
	sec := int64(time.Second)
	points := []usagePoint{
		{at: 0, cpu: 0},
		{at: sec, cpu: 500 * time.Millisecond},
		{at: 3 * sec, cpu: 2500 * time.Millisecond},
	}
	tests := []struct {
		name   string
		w      window
		want   float64
		wantOK bool
	}{
		{"on readings", window{0, 3 * sec}, 2.5 / 3, true},
		{"interpolated", window{sec / 2, 2 * sec}, (1.5 - 0.25) / 1.5, true},
		{"before the first reading", window{-sec, sec}, 0, false},
		{"after the last reading", window{sec, 4 * sec}, 0, false},
		{"empty", window{sec, sec}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := cpuCores(points, tt.w)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("cpuCores(%+v) = %v, %v, want %v, %v", tt.w, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestHistPercentile(t *testing.T) {
	t.Parallel()
	buckets := []float64{math.Inf(-1), 0, 1e-3, 2e-3, math.Inf(1)}
	before := []uint64{0, 5, 5, 0}
	tests := []struct {
		name  string
		after []uint64
		p     float64
		want  float64
	}{
		{"only the observations between readings", []uint64{0, 55, 5, 0}, 99, 1e-3},
		{"p99 in the second bucket", []uint64{0, 103, 7, 0}, 99, 2e-3},
		{"unbounded last bucket gives its lower bound", []uint64{0, 6, 5, 100}, 99, 2e-3},
		{"nothing observed", before, 99, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := histPercentile(buckets, before, tt.after, tt.p); got != tt.want {
				t.Errorf("histPercentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestParseScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []scenario
		wantErr bool
	}{
		{in: "100x100, 1000x50,10000x5", want: []scenario{{100, 100}, {1000, 50}, {10000, 5}}},
		{in: "10x2.5", want: []scenario{{10, 2.5}}},
		{in: "100", wantErr: true},
		{in: "0x5", wantErr: true},
		{in: "10x0", wantErr: true},
		{in: "10x-1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseScenarios(tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("parseScenarios(%q) = %v, %v, want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSummarizeRounds(t *testing.T) {
	t.Parallel()
	bare := map[int]float64{1: 1, 2: 2, 3: 4, 4: 0}
	client := map[int]float64{1: 1.2, 2: 3, 3: 4, 4: 1, 5: 9}
	s := summarizeRounds(bare, client)
	// Rounds 1-3 pair up; round 4's bare value is 0 and round 5 has no
	// bare run: no ratio for them.
	if want := []float64{1.2, 1.5, 1}; !slices.Equal(s.ratios, want) {
		t.Errorf("ratios = %v, want %v", s.ratios, want)
	}
	if s.within() != 2 {
		t.Errorf("within = %d, want 2 (1.2 and 1.0 are at most %.2f)", s.within(), ratioTarget)
	}
	if s.bare != 1.5 || s.client != 3 {
		t.Errorf("medians = %v and %v, want 1.5 (of 0, 1, 2, 4) and 3 (of 1, 1.2, 3, 4, 9)", s.bare, s.client)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median(nil) = %v, want 0", got)
	}
}
