package simengine

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCalibrationTables drives the default profile's cost model through the
// public API at every calibration point and checks it reproduces the
// measurements: decode and prefill (n >= 512) within 5 %, the chunk table
// (n >= 512) and the mixed table within 10 %.
func TestCalibrationTables(t *testing.T) {
	t.Parallel()
	p, err := LookupProfile(DefaultProfileName())
	if err != nil {
		t.Fatal(err)
	}
	pts, err := loadCalibration(calibrationDir)
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]float64{tableDecode: 5, tablePrefill: 5, tableChunk: 10, tableMixed: 10}
	worst := map[string]float64{}
	rows := map[string]int{}
	for _, pt := range pts {
		if !pt.fitted {
			continue
		}
		s := pt.shape
		var got time.Duration
		switch {
		case len(s.Prefill) == 0:
			got = p.DecodeStepTime(s.DecodeBatch, s.DecodeContextTokens)
		default:
			got = p.IterationTime(s.Prefill[0].Tokens, s.Prefill[0].Past, s.DecodeBatch, s.DecodeContextTokens)
		}
		gotMS := float64(got) / 1e6
		errPct := 100 * math.Abs(gotMS-pt.medianMS) / pt.medianMS
		rows[pt.table]++
		worst[pt.table] = math.Max(worst[pt.table], errPct)
		if errPct > bound[pt.table] {
			t.Errorf("%s %+v: model %.3f ms, measured %.3f ms: error %.1f%%, want <= %.0f%%",
				pt.table, s, gotMS, pt.medianMS, errPct, bound[pt.table])
		}
	}
	for _, table := range []string{tableDecode, tablePrefill, tableChunk, tableMixed} {
		if rows[table] == 0 {
			t.Errorf("calibration table %s has no fitted rows", table)
		}
		t.Logf("%-8s rows=%2d max error %.2f%%", table, rows[table], worst[table])
	}
}

// testCost is a cost model with round coefficients, for hand-computed
// expectations.
var testCost = CostModel{
	BaseMS:             2,
	DecodeSeqUS:        10,
	DecodeContextNS:    100,
	PrefillBaseMS:      1,
	PrefillTokenUS:     20,
	PrefillKneeTokens:  300,
	PrefillSquareNS:    1,
	PrefillPastChunkMS: 0.5,
	PrefillPastPairNS:  2,
}

func testProfile() Profile {
	return Profile{Name: "test", ChunkSize: 512, MaxRunning: 64, KVCacheTokens: 100_000, MaxModelLen: 16384, Cost: testCost}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	p := testProfile()
	ms := func(v float64) time.Duration { return time.Duration(math.Round(v * 1e6)) }
	tests := []struct {
		name  string
		shape Shape
		want  time.Duration
	}{
		{"empty", Shape{}, ms(2)},
		{"decode", Shape{DecodeBatch: 4, DecodeContextTokens: 1000}, ms(2 + 4*0.010 + 1000*100e-6)},
		// 400 tokens: roofline √(300²+400²) − 300 = 200 token-equivalents.
		{"prefill", Shape{Prefill: []Chunk{{Tokens: 400}}}, ms(2 + 1 + 200*0.020 + 400*400*1e-6)},
		{"chunk with past", Shape{Prefill: []Chunk{{Tokens: 400, Past: 1000}}},
			ms(2 + 1 + 200*0.020 + 400*400*1e-6 + 0.5 + 400*1000*2e-6)},
		{"two chunks and decodes", Shape{Prefill: []Chunk{{Tokens: 300}, {Tokens: 100, Past: 50}}, DecodeBatch: 2, DecodeContextTokens: 10},
			ms(2 + 2*0.010 + 10*100e-6 + 1 + 200*0.020 + (300*300+100*100)*1e-6 + 0.5 + 100*50*2e-6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.Duration(tt.shape); got != tt.want {
				t.Errorf("Duration(%+v) = %v, want %v", tt.shape, got, tt.want)
			}
		})
	}
}

func TestConvenienceCosts(t *testing.T) {
	t.Parallel()
	p := testProfile()
	one := func(tokens, past int) time.Duration {
		return p.Duration(Shape{Prefill: []Chunk{{Tokens: tokens, Past: past}}})
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"IterationTime decode only", p.IterationTime(0, 0, 3, 300), p.Duration(Shape{DecodeBatch: 3, DecodeContextTokens: 300})},
		{"IterationTime mixed", p.IterationTime(64, 128, 3, 300),
			p.Duration(Shape{Prefill: []Chunk{{Tokens: 64, Past: 128}}, DecodeBatch: 3, DecodeContextTokens: 300})},
		{"DecodeStepTime", p.DecodeStepTime(8, 4096), p.Duration(Shape{DecodeBatch: 8, DecodeContextTokens: 4096})},
		{"LonePrefillTime one chunk", p.LonePrefillTime(100, 512), one(100, 0)},
		{"LonePrefillTime exact chunks", p.LonePrefillTime(1024, 512), one(512, 0) + one(512, 512)},
		{"LonePrefillTime split", p.LonePrefillTime(1200, 512), one(512, 0) + one(512, 512) + one(176, 1024)},
		{"LonePrefillTime profile chunk", p.LonePrefillTime(600, 0), one(512, 0) + one(88, 512)},
		{"LonePrefillTime empty", p.LonePrefillTime(0, 512), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	names := Profiles()
	if !slices.Contains(names, DefaultProfileName()) {
		t.Fatalf("Profiles() = %v, want it to contain %q", names, DefaultProfileName())
	}
	for _, name := range names {
		p, err := LookupProfile(name)
		if err != nil {
			t.Errorf("LookupProfile(%q) error: %v", name, err)
			continue
		}
		if p.Name != name {
			t.Errorf("LookupProfile(%q).Name = %q, want %q", name, p.Name, name)
		}
	}
	for _, bad := range []string{"", "nope", "../profiles/llama3-8b-h100", "profiles/llama3-8b-h100"} {
		if _, err := LookupProfile(bad); err == nil {
			t.Errorf("LookupProfile(%q) error = nil, want an error", bad)
		}
	}
}

func TestLoadAndResolveProfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := write("good.json", `{"name":"mine","chunk_size":256,"max_running":16,"kv_cache_tokens":1000,"max_model_len":900,"cost":{"base_ms":3}}`)
	tests := []struct {
		name    string
		load    func() (Profile, error)
		want    string // profile name, or "" for an error
		errPart string
	}{
		{"load good", func() (Profile, error) { return LoadProfile(good) }, "mine", ""},
		{"resolve file", func() (Profile, error) { return ResolveProfile(good) }, "mine", ""},
		{"resolve name", func() (Profile, error) { return ResolveProfile(DefaultProfileName()) }, DefaultProfileName(), ""},
		{"resolve empty", func() (Profile, error) { return ResolveProfile("") }, DefaultProfileName(), ""},
		{"resolve unknown", func() (Profile, error) { return ResolveProfile("nope") }, "", "unknown profile"},
		{"missing file", func() (Profile, error) { return LoadProfile(filepath.Join(dir, "none.json")) }, "", "no such file"},
		{"unknown field", func() (Profile, error) {
			return LoadProfile(write("typo.json", `{"name":"x","chunk_sise":1}`))
		}, "", "unknown field"},
		{"invalid values", func() (Profile, error) {
			return LoadProfile(write("bad.json", `{"name":"x","chunk_size":0,"max_running":1,"kv_cache_tokens":1,"max_model_len":1,"cost":{"base_ms":1,"decode_seq_us":-1}}`))
		}, "", "chunk_size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.load()
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Errorf("error = %v, want one containing %q", err, tt.errPart)
				}
				return
			}
			if err != nil || p.Name != tt.want {
				t.Errorf("got profile %q, error %v; want %q", p.Name, err, tt.want)
			}
		})
	}
}
