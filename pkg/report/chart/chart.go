package chart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/report"
)

// The PNG renderers, for Options.Renderer and Result.Renderer.
const (
	// RendererAuto uses Chromium when one is found and works, else the
	// built-in renderer.
	RendererAuto = "auto"
	// RendererChromium snapshots the HTML chart in a headless Chromium.
	RendererChromium = "chromium"
	// RendererBuiltin draws the PNG in pure Go, in this package (vector
	// shapes with golang.org/x/image/vector, text in the Go fonts), to look
	// like the HTML chart. Runs before it existed say "gonum" for the
	// pure-Go renderer of that time (gonum/plot).
	RendererBuiltin = "builtin"
)

// DefaultSnapshotTimeout bounds the browser's start and each chart's
// snapshot, so a stuck browser can never hang a benchmark.
const DefaultSnapshotTimeout = 20 * time.Second

// Chart size in CSS pixels. PNGs are drawn at twice this (2000×1200).
const (
	widthPx     = 1000
	heightPx    = 600
	pixelRatio  = 2
	pngWidthPx  = widthPx * pixelRatio
	pngHeightPx = heightPx * pixelRatio
)

// Options configure WriteAll.
type Options struct {
	// Renderer is RendererAuto (also ""), RendererChromium or
	// RendererBuiltin.
	// A forced RendererChromium fails when no browser works, instead of
	// falling back.
	Renderer string
	// BrowserPath is the Chromium or Chrome executable; "" searches for one
	// (see FindBrowser).
	BrowserPath string
	// SnapshotTimeout bounds the browser's start and each snapshot;
	// 0 means DefaultSnapshotTimeout.
	SnapshotTimeout time.Duration
	// Logger gets debug and warning messages (the browser's own log
	// included); nil discards them.
	Logger *slog.Logger
}

// Result tells what WriteAll did.
type Result struct {
	// Renderer is the PNG renderer used for every PNG: RendererChromium or
	// RendererBuiltin (empty when there were no charts).
	Renderer string
	// FallbackReason says why the built-in renderer drew the PNGs when
	// Chromium was allowed (no browser found, it failed to start or to
	// render).
	FallbackReason string
	// Files are the paths of the files written (dir joined with the file
	// name): every PNG.
	Files []string
}

var stemPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validate checks the charts before anything is written.
func validate(charts []report.Chart) error {
	var errs []error
	seen := make(map[string]bool, len(charts))
	for i, c := range charts {
		if !stemPattern.MatchString(c.Name) {
			errs = append(errs, fmt.Errorf("chart %d: name %q is not a plain file stem (letters, digits, _ - .)", i, c.Name))
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("chart name %q is used twice", c.Name))
		}
		seen[c.Name] = true
		for _, s := range c.Series {
			if len(s.X) != len(s.Y) {
				errs = append(errs, fmt.Errorf("chart %q series %q: %d x values but %d y values", c.Name, s.Name, len(s.X), len(s.Y)))
			}
			if len(s.Labels) != 0 && len(s.Labels) != len(s.X) {
				errs = append(errs, fmt.Errorf("chart %q series %q: %d labels for %d points", c.Name, s.Name, len(s.Labels), len(s.X)))
			}
		}
	}
	return errors.Join(errs...)
}

// point is one drawable point and its label ("" when the series has none).
type point struct {
	x, y  float64
	label string
}

// points returns the series' drawable points: finite, and with x > 0 on a
// log x axis.
func points(s report.Series, logX bool) []point {
	pts := make([]point, 0, len(s.X))
	for i := range s.X {
		x, y := s.X[i], s.Y[i]
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		if logX && x <= 0 {
			continue
		}
		p := point{x: x, y: y}
		if i < len(s.Labels) {
			p.label = s.Labels[i]
		}
		pts = append(pts, p)
	}
	return pts
}

// chartID is the chart's DOM id and JavaScript name: derived from its name
// only, so the same input gives the same HTML bytes.
func chartID(name string) string {
	var b strings.Builder
	b.WriteString("chart_")
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// WriteAll writes, into dir (created if needed), <Name>.png for every chart,
// each atomically. The interactive charts are in the run's report page
// (WritePage), which holds ECharts once; dir gets no copy of it.
//
// PNGs come from one headless Chromium started for all charts (snapshots of
// the charts' HTML pages, written to a temporary folder and removed after,
// 2000×1200) or, when none is found or it fails, from the built-in
// renderer (same size and layout); Result tells which and why. With
// Options.Renderer RendererAuto a Chromium failure part-way redraws every
// PNG with the built-in renderer, so a run's PNGs always share one look.
//
// ctx bounds the whole call: when it ends WriteAll stops and returns its
// error, with the files written so far in Result.
func WriteAll(ctx context.Context, dir string, charts []report.Chart, opts Options) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.SnapshotTimeout
	if timeout <= 0 {
		timeout = DefaultSnapshotTimeout
	}
	var res Result
	switch opts.Renderer {
	case "", RendererAuto, RendererChromium, RendererBuiltin:
	default:
		return res, fmt.Errorf("chart renderer %q: want %q, %q or %q", opts.Renderer, RendererAuto, RendererChromium, RendererBuiltin)
	}
	if err := validate(charts); err != nil {
		return res, err
	}
	if len(charts) == 0 {
		return res, nil
	}

	write := func(name string, fill func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		if err := report.WriteFileAtomic(path, fill); err != nil {
			return err
		}
		res.Files = append(res.Files, path)
		return nil
	}
	if err := ctx.Err(); err != nil {
		return res, err // never start a browser for nothing
	}
	pngs, renderer, reason, err := snapshots(ctx, charts, opts, timeout, log)
	if err != nil {
		return res, err
	}
	res.Renderer, res.FallbackReason = renderer, reason
	var p *painter
	if pngs == nil {
		if p, err = newPainter(); err != nil {
			return res, err
		}
		if opts.Renderer != RendererBuiltin {
			log.Warn("PNG charts drawn with the built-in renderer instead of Chromium", "reason", reason)
		}
	}
	for i, c := range charts {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if pngs != nil {
			png := pngs[i]
			err = write(c.Name+".png", func(w io.Writer) error {
				_, err := w.Write(png)
				return err
			})
		} else {
			t0 := time.Now()
			err = write(c.Name+".png", func(w io.Writer) error { return p.writePNG(w, c) })
			log.Debug("chart drawn", "chart", c.Name, "renderer", RendererBuiltin, "took", time.Since(t0))
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// snapshots takes the Chromium PNGs when allowed and possible. It returns
// them (nil when the built-in renderer must draw), the renderer, and why
// the built-in renderer is used instead of an allowed Chromium. err is set only when Chromium was forced
// and failed, or ctx ended.
func snapshots(ctx context.Context, charts []report.Chart, opts Options, timeout time.Duration, log *slog.Logger) (pngs [][]byte, renderer, reason string, err error) {
	if opts.Renderer == RendererBuiltin {
		return nil, RendererBuiltin, "", nil
	}
	forced := opts.Renderer == RendererChromium
	fail := func(e error) ([][]byte, string, string, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, "", "", ctxErr
		}
		if forced {
			return nil, "", "", fmt.Errorf("png with chromium: %w", e)
		}
		return nil, RendererBuiltin, e.Error(), nil
	}
	path, err := FindBrowser(opts.BrowserPath)
	if err != nil {
		return fail(err)
	}
	// The browser snapshots each chart's standalone page, beside a copy of
	// ECharts, in a folder of its own that goes away after.
	absDir, err := os.MkdirTemp("", "veeksha-charts-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(absDir)
	pages := map[string]func(io.Writer) error{EChartsFile: func(w io.Writer) error {
		_, err := io.WriteString(w, echartsJS)
		return err
	}}
	for _, c := range charts {
		pages[c.Name+".html"] = func(w io.Writer) error { return writeHTML(w, c) }
	}
	for name, fill := range pages {
		if err := report.WriteFileAtomic(filepath.Join(absDir, name), fill); err != nil {
			return fail(err)
		}
	}
	start := time.Now()
	b, err := startBrowser(ctx, path, timeout, log)
	if err != nil {
		return fail(err)
	}
	defer b.close()
	log.Debug("chromium started", "path", path, "took", time.Since(start))
	pngs = make([][]byte, len(charts))
	for i, c := range charts {
		t0 := time.Now()
		png, err := b.snapshot(filepath.Join(absDir, c.Name+".html"), chartID(c.Name), timeout)
		if err != nil {
			return fail(fmt.Errorf("chromium failed on chart %s: %w", c.Name, err))
		}
		log.Debug("chart snapshot", "chart", c.Name, "bytes", len(png), "took", time.Since(t0))
		pngs[i] = png
	}
	return pngs, RendererChromium, "", nil
}
