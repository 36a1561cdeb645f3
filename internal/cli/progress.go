package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/jedib0t/go-pretty/v6/progress"

	"github.com/veeksha-go/veeksha/pkg/runner"
)

// progressUI shows one progress bar per benchmark point on stderr. It is
// a no-op unless stderr is a terminal and neither --quiet nor --no-progress
// is set, so logs and CI output stay clean.
type progressUI struct {
	pw   progress.Writer
	mu   sync.Mutex
	last *progress.Tracker
	// point and bar are the point being shown and its bar's callback.
	point string
	bar   func(done, failed, total int)
}

func newProgress(e *env, c *Common) *progressUI {
	if !e.stderrTTY || c.Quiet || c.NoProgress {
		return &progressUI{}
	}
	pw := progress.NewWriter()
	pw.SetOutputWriter(e.stderr)
	pw.SetUpdateFrequency(200 * time.Millisecond)
	pw.SetAutoStop(false)
	pw.SetTrackerLength(30)
	pw.SetMessageLength(28)
	pw.ShowETA(true)
	pw.Style().Visibility.Value = true
	go pw.Render()
	return &progressUI{pw: pw}
}

// Units of the progress bars: requests, or seconds of a timed level.
var (
	requestUnits = progress.Units{Notation: " req", NotationPosition: progress.UnitsNotationPositionAfter}
	secondUnits  = progress.Units{Notation: " s", NotationPosition: progress.UnitsNotationPositionAfter}
)

// track starts a bar for one point and returns the callback the benchmark
// calls with its counts (in units).
func (p *progressUI) track(name string, total int, units progress.Units) func(done, failed, total int) {
	if p.pw == nil {
		return nil
	}
	t := &progress.Tracker{Message: name, Total: int64(total), Units: units}
	p.mu.Lock()
	if p.last != nil && !p.last.IsDone() {
		p.last.MarkAsDone()
	}
	p.last = t
	p.mu.Unlock()
	p.pw.AppendTracker(t)
	return func(done, failed, total int) {
		t.UpdateTotal(int64(total))
		t.SetValue(int64(done))
		if failed > 0 {
			t.UpdateMessage(fmt.Sprintf("%s (%d failed)", name, failed))
		}
		if done >= total {
			t.MarkAsDone()
		}
	}
}

// update shows a progress event of the load engine: a bar per point,
// counting requests, or the seconds of a timed point. Points with
// neither (warm-ups) get no bar.
func (p *progressUI) update(pr runner.Progress) {
	if p.pw == nil || (pr.Total == 0 && pr.Duration == 0) {
		return
	}
	if pr.Point != p.point {
		p.point = pr.Point
		if pr.Total > 0 {
			p.bar = p.track(pr.Point, pr.Total, requestUnits)
		} else {
			p.bar = p.track(pr.Point, int(pr.Duration.Seconds()), secondUnits)
		}
	}
	if pr.Total > 0 {
		p.bar(pr.Done, pr.Failed, pr.Total)
		return
	}
	p.bar(int(min(pr.Elapsed, pr.Duration).Seconds()), pr.Failed, int(pr.Duration.Seconds()))
}

// stop ends rendering; call it before printing tables.
func (p *progressUI) stop() {
	if p.pw == nil {
		return
	}
	p.mu.Lock()
	if p.last != nil && !p.last.IsDone() {
		p.last.MarkAsDone()
	}
	p.mu.Unlock()
	// Let the renderer draw the final state before it stops.
	time.Sleep(250 * time.Millisecond)
	p.pw.Stop()
	for p.pw.IsRenderInProgress() {
		time.Sleep(10 * time.Millisecond)
	}
}
