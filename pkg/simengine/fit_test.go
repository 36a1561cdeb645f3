package simengine

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the embedded default profile's cost model from a fresh fit of testdata/calibration")

const calibrationDir = "testdata/calibration"

// TestFitReproducesEmbeddedProfile refits the cost model from the
// calibration files and checks that the embedded default profile carries the
// same coefficients, so the profile cannot drift from the code that made it.
// Run with -update to rewrite the profile after changing the fit.
func TestFitReproducesEmbeddedProfile(t *testing.T) {
	t.Parallel()
	pts, err := loadCalibration(calibrationDir)
	if err != nil {
		t.Fatal(err)
	}
	fit, err := fitCostModel(pts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fitErrors(fit, pts) {
		t.Logf("%-8s fitted=%-5v rows=%2d max=%5.2f%% rms=%5.2f%%", e.Table, e.Fitted, e.Rows, e.MaxPct, e.RMSPct)
	}
	t.Logf("fit: %+v", fit)
	file := filepath.Join("profiles", defaultProfile+".json")
	if *update {
		p, err := LoadProfile(file)
		if err != nil {
			t.Fatal(err)
		}
		p.Cost = roundCost(fit)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s; run the tests again to check the embedded copy", file)
		return
	}
	p, err := LookupProfile(defaultProfile)
	if err != nil {
		t.Fatal(err)
	}
	got, want := p.Cost.coefficients(), roundCost(fit).coefficients()
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-4*math.Abs(want[i]) {
			t.Errorf("embedded coefficient %d = %g, want %g from the fit (run go test -run TestFitReproducesEmbeddedProfile -update)", i, got[i], want[i])
		}
	}
	if p.Cost.PrefillKneeTokens != fit.PrefillKneeTokens {
		t.Errorf("embedded knee = %g, want %g", p.Cost.PrefillKneeTokens, fit.PrefillKneeTokens)
	}
}

// roundCost keeps 5 significant digits, far below the fit's error, so the
// profile file stays readable.
func roundCost(m CostModel) CostModel {
	r := func(v float64) float64 {
		if v == 0 {
			return 0
		}
		mag := math.Pow(10, 4-math.Floor(math.Log10(math.Abs(v))))
		return math.Round(v*mag) / mag
	}
	return CostModel{
		BaseMS:             r(m.BaseMS),
		DecodeSeqUS:        r(m.DecodeSeqUS),
		DecodeContextNS:    r(m.DecodeContextNS),
		PrefillBaseMS:      r(m.PrefillBaseMS),
		PrefillTokenUS:     r(m.PrefillTokenUS),
		PrefillKneeTokens:  m.PrefillKneeTokens,
		PrefillSquareNS:    r(m.PrefillSquareNS),
		PrefillPastChunkMS: r(m.PrefillPastChunkMS),
		PrefillPastPairNS:  r(m.PrefillPastPairNS),
	}
}
