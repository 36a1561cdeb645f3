package simengine

// This file fits a CostModel to GPU measurements. It is how the default
// profile's coefficients were made: fit_test.go runs it on
// testdata/calibration and checks (or, with -update, rewrites) the embedded
// profile. See doc.go for the resulting errors.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Calibration table names, as in the calibration files.
const (
	tableDecode  = "decode"
	tablePrefill = "prefill"
	tableChunk   = "chunk"
	tableMixed   = "mixed"
)

// minGraphlessTokens is the smallest prefill measured without CUDA graphs
// that the fit uses. Below it the "prefill" and "chunk" tables are dominated
// by kernel-launch overhead (~12 ms at 16 tokens) that a serving engine hides
// with CUDA graphs: the "mixed" table, measured with graphs, puts a 64-token
// chunk at 7.5 ms.
const minGraphlessTokens = 512

// calibrationPoint is one measured iteration.
type calibrationPoint struct {
	table    string
	shape    Shape
	medianMS float64
	fitted   bool // used by the fit (see minGraphlessTokens)
}

// loadCalibration reads the two calibration files in dir:
// h100-llama3-8b-shape.json (prefill, chunk, decode) and
// h100-llama3-8b-shape-mixed.json (mixed).
func loadCalibration(dir string) ([]calibrationPoint, error) {
	var shape struct {
		Prefill []struct {
			Tokens   int     `json:"tokens"`
			MedianMS float64 `json:"median_ms"`
		} `json:"prefill"`
		Chunk []struct {
			Tokens   int     `json:"tokens"`
			Past     int     `json:"past"`
			MedianMS float64 `json:"median_ms"`
		} `json:"chunk"`
		Decode []struct {
			Batch    int     `json:"batch"`
			Context  int     `json:"context"`
			MedianMS float64 `json:"median_ms"`
		} `json:"decode"`
	}
	var mixed struct {
		Mixed []struct {
			PrefillTokens int     `json:"prefill_tokens"`
			PrefillPast   int     `json:"prefill_past"`
			DecodeBatch   int     `json:"decode_batch"`
			DecodeContext int     `json:"decode_context"`
			MedianMS      float64 `json:"median_ms"`
		} `json:"mixed"`
	}
	if err := readJSON(filepath.Join(dir, "h100-llama3-8b-shape.json"), &shape); err != nil {
		return nil, err
	}
	if err := readJSON(filepath.Join(dir, "h100-llama3-8b-shape-mixed.json"), &mixed); err != nil {
		return nil, err
	}
	var pts []calibrationPoint
	for _, r := range shape.Prefill {
		pts = append(pts, calibrationPoint{
			table:    tablePrefill,
			shape:    Shape{Prefill: []Chunk{{Tokens: r.Tokens}}},
			medianMS: r.MedianMS,
			fitted:   r.Tokens >= minGraphlessTokens,
		})
	}
	for _, r := range shape.Chunk {
		pts = append(pts, calibrationPoint{
			table:    tableChunk,
			shape:    Shape{Prefill: []Chunk{{Tokens: r.Tokens, Past: r.Past}}},
			medianMS: r.MedianMS,
			fitted:   r.Tokens >= minGraphlessTokens,
		})
	}
	for _, r := range shape.Decode {
		pts = append(pts, calibrationPoint{
			table:    tableDecode,
			shape:    Shape{DecodeBatch: r.Batch, DecodeContextTokens: r.Batch * r.Context},
			medianMS: r.MedianMS,
			fitted:   true,
		})
	}
	for _, r := range mixed.Mixed {
		s := Shape{DecodeBatch: r.DecodeBatch, DecodeContextTokens: r.DecodeBatch * r.DecodeContext}
		if r.PrefillTokens > 0 {
			s.Prefill = []Chunk{{Tokens: r.PrefillTokens, Past: r.PrefillPast}}
		}
		pts = append(pts, calibrationPoint{table: tableMixed, shape: s, medianMS: r.MedianMS, fitted: true})
	}
	for _, p := range pts {
		if !(p.medianMS > 0) {
			return nil, fmt.Errorf("calibration %s: %s row %+v has median_ms %g", dir, p.table, p.shape, p.medianMS)
		}
	}
	return pts, nil
}

func readJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read calibration: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse calibration %s: %w", file, err)
	}
	return nil
}

// maxKnee bounds the grid search of the roofline knee, in tokens.
const maxKnee = 1024

// fitCostModel fits a CostModel to the fitted calibration points (see
// FitObserved), each table weighing the same in total (so 35 decode rows
// do not outvote 5 prefill rows).
func fitCostModel(pts []calibrationPoint) (CostModel, error) {
	var obs []Observation
	for _, p := range pts {
		if p.fitted {
			obs = append(obs, Observation{Group: p.table, Shapes: []Shape{p.shape}, MS: p.medianMS})
		}
	}
	if len(obs) == 0 {
		return CostModel{}, errors.New("fit: no calibration points")
	}
	return FitObserved(obs, CostModel{})
}

// Cost model terms that FitObserved can be told to keep at their assumed
// values (named as in the profile's JSON).
const (
	TermPrefillSquare    = "prefill_square_ns"
	TermPrefillPastChunk = "prefill_past_chunk_ms"
)

// termIndex maps a term's name to its feature.
var termIndex = map[string]int{TermPrefillSquare: 5, TermPrefillPastChunk: 6}

// Observation is the measured duration of a sequence of engine
// iterations: one iteration, one decode step, or the prefill iterations of
// a lone request up to its first token.
type Observation struct {
	// Group names where the observation comes from: every group weighs
	// the same in the fit, however many observations it has.
	Group  string
	Shapes []Shape
	MS     float64
}

// FitObserved fits a CostModel to observations by weighted linear least
// squares on relative error, each group weighing the same in total. The
// knee, the one non-linear parameter, is found by a grid search over whole
// tokens 0..maxKnee, keeping the knee whose objective is smallest. A term
// that no observation exercises (its feature is zero in every one, e.g.
// attention to cached tokens when no prompt was longer than a chunk) cannot
// be fitted: it keeps its value in assumed, as do the terms named in keep
// (Term* constants): second-order terms that a few noisy observations
// would otherwise trade against the first-order ones.
func FitObserved(obs []Observation, assumed CostModel, keep ...string) (CostModel, error) {
	var kept [costFeatures]bool
	for _, name := range keep {
		j, ok := termIndex[name]
		if !ok {
			return CostModel{}, fmt.Errorf("fit: no term %q can be kept", name)
		}
		kept[j] = true
	}
	groups := map[string]int{}
	for _, o := range obs {
		groups[o.Group]++
	}
	var best CostModel
	bestObj := math.Inf(1)
	for knee := 0.0; knee <= maxKnee; knee++ {
		m, obj, err := fitAtKnee(obs, groups, knee, assumed, kept)
		if err == nil && obj < bestObj {
			bestObj, best = obj, m
		}
	}
	if math.IsInf(bestObj, 1) {
		return CostModel{}, errors.New("fit: every knee gave a singular system")
	}
	return best, nil
}

// fitAtKnee is the least-squares fit of FitObserved at one knee, and its
// objective. Costs are never negative: a term the unconstrained fit makes
// negative is set to 0 and the rest fitted again (an active-set
// approximation of non-negative least squares).
func fitAtKnee(obs []Observation, groups map[string]int, knee float64, assumed CostModel, kept [costFeatures]bool) (CostModel, float64, error) {
	fixed := assumed.coefficients()
	rows := make([][costFeatures]float64, len(obs))
	var free [costFeatures]bool
	for i, o := range obs {
		for _, s := range o.Shapes {
			f := s.features(knee)
			for j := range f {
				rows[i][j] += f[j]
				free[j] = !kept[j] && (free[j] || f[j] != 0)
			}
		}
	}
	for {
		all, obj, err := fitFree(obs, groups, rows, free, fixed)
		if err != nil {
			return CostModel{}, 0, err
		}
		negative := false
		for j := range costFeatures {
			if free[j] && all[j] < 0 {
				free[j], fixed[j], negative = false, 0, true
			}
		}
		if !negative {
			return costModelFrom(all, knee), obj, nil
		}
	}
}

// fitFree fits the free coefficients with the others fixed, returning all
// coefficients and the objective.
func fitFree(obs []Observation, groups map[string]int, rows [][costFeatures]float64, free [costFeatures]bool, fixed [costFeatures]float64) ([costFeatures]float64, float64, error) {
	var all [costFeatures]float64
	var x [][]float64
	var y, w []float64
	for i, o := range obs {
		// Dividing a row by its measurement turns absolute residuals into
		// relative ones; the fixed terms move to the right-hand side.
		var row []float64
		rest := o.MS
		for j := range costFeatures {
			if free[j] {
				row = append(row, rows[i][j]/o.MS)
			} else {
				rest -= rows[i][j] * fixed[j]
			}
		}
		x = append(x, row)
		y = append(y, rest/o.MS)
		w = append(w, 1/float64(groups[o.Group]))
	}
	c, err := leastSquares(x, y, w)
	if err != nil {
		return all, 0, err
	}
	obj := 0.0
	for i := range x {
		pred := 0.0
		for j := range c {
			pred += x[i][j] * c[j]
		}
		obj += w[i] * (pred - y[i]) * (pred - y[i])
	}
	k := 0
	for j := range costFeatures {
		if free[j] {
			all[j], k = c[k], k+1
		} else {
			all[j] = fixed[j]
		}
	}
	return all, obj, nil
}

// leastSquares solves min Σ w_i (x_i·c − y_i)² through the normal equations,
// with columns scaled to unit maximum so features of very different sizes
// (1 and tokens²) stay well conditioned, and Gaussian elimination with
// partial pivoting. Every row of x has the same length n.
func leastSquares(x [][]float64, y, w []float64) ([]float64, error) {
	if len(x) == 0 {
		return nil, errors.New("least squares: no rows")
	}
	n := len(x[0])
	c, scale := make([]float64, n), make([]float64, n)
	for j := range n {
		for i := range x {
			scale[j] = math.Max(scale[j], math.Abs(x[i][j]))
		}
		if scale[j] == 0 {
			return c, fmt.Errorf("least squares: feature %d is zero in every row", j)
		}
	}
	a := make([][]float64, n)
	for j := range a {
		a[j] = make([]float64, n+1)
	}
	for i := range x {
		for j := range n {
			xj := x[i][j] / scale[j]
			for k := range n {
				a[j][k] += w[i] * xj * x[i][k] / scale[k]
			}
			a[j][n] += w[i] * xj * y[i]
		}
	}
	for col := range n {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return c, fmt.Errorf("least squares: singular at feature %d", col)
		}
		a[col], a[piv] = a[piv], a[col]
		for r := range n {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for k := col; k <= n; k++ {
				a[r][k] -= f * a[col][k]
			}
		}
	}
	for j := range n {
		c[j] = a[j][n] / a[j][j] / scale[j]
	}
	return c, nil
}

// tableError is how well a cost model reproduces one calibration table.
type tableError struct {
	Table  string
	Fitted bool    // the rows the fit used, or the ones it left out
	Rows   int     // number of rows
	MaxPct float64 // largest |model − measured| / measured, in percent
	RMSPct float64 // root mean square of the same, in percent
}

// fitErrors reports the relative error of m on pts, per table and per
// fitted/left-out group, in a fixed order.
func fitErrors(m CostModel, pts []calibrationPoint) []tableError {
	var out []tableError
	for _, table := range []string{tableDecode, tablePrefill, tableChunk, tableMixed} {
		for _, fitted := range []bool{true, false} {
			e := tableError{Table: table, Fitted: fitted}
			for _, p := range pts {
				if p.table != table || p.fitted != fitted {
					continue
				}
				rel := 100 * math.Abs(m.millis(p.shape)-p.medianMS) / p.medianMS
				e.Rows++
				e.MaxPct = math.Max(e.MaxPct, rel)
				e.RMSPct += rel * rel
			}
			if e.Rows == 0 {
				continue
			}
			e.RMSPct = math.Sqrt(e.RMSPct / float64(e.Rows))
			out = append(out, e)
		}
	}
	return slices.Clip(out)
}
